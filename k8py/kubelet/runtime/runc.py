"""RuncRuntime: pods as persistent namespaces plus a cgroup, containers as runc bundles.

Layout under the runtime root (everything a restarted kubelet needs is on disk):

    sandboxes/<id>/sandbox.json   the Sandbox, its config and its PID-namespace holder
    sandboxes/<id>/ns/{net,ipc,uts}   bind-mounted namespace files
    sandboxes/<id>/shm            the pod's /dev/shm (tmpfs)
    containers/<id>/meta.json     config, labels, image, log path, created time
    containers/<id>/config.json   the OCI spec; rootfs/ is an overlay on the image snapshot
    containers/<id>/created.json, started.json, exit.json, start-error.json   written by the shim
    runc/                         runc's own state (--root)
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

from k8py.kubelet.runtime import cgroups, namespaces
from k8py.kubelet.runtime.interface import (ContainerConfig, ContainerStats, ContainerStatus, ImageError, Runtime,
                                            Sandbox, SandboxConfig)
from k8py.kubelet.runtime.oci_spec import SpecError, build_spec
from k8py.kubelet.runtime.shim import FRAME_START, FRAME_STARTED, proc_start_time
from k8py.kubelet.runtime.shim import frame as shim_frame
from k8py.kubelet.runtime.shim_launcher import ShimLauncher
from k8py.kubelet.runtime.streams import ExecProcess, attach_socket, exec_pipes, exec_tty

SHIM_START_TIMEOUT = 60.0


class RuntimeFailure(Exception):
    """A runtime operation failed; `reason` is what the kubelet reports (CreateContainerError, ...)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _runc_version() -> str:
    try:
        out = subprocess.run(["runc", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = out.splitlines()[0] if out else ""
    return first.split()[-1] if first else "unknown"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


class RuncRuntime(Runtime):
    name = "runc"

    def __init__(self, root_dir: Path, images=None, runc: str = "runc", log_max_size: int = 10 << 20,
                 log_max_files: int = 5):
        self.root = Path(root_dir)
        self.images = images
        self.runc = shutil.which(runc) or runc
        self.runc_root = self.root / "runc"
        self.sandbox_dir = self.root / "sandboxes"
        self.container_dir = self.root / "containers"
        for d in (self.runc_root, self.sandbox_dir, self.container_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self.version = _runc_version()
        self.swap_accounting = cgroups.swap_accounting()
        self.shims = ShimLauncher()

    def close(self) -> None:
        """Let go of the shim zygote; running containers and their shims are not affected."""
        self.shims.close()

    # --- helpers ---

    async def _runc(self, *args: str, timeout: float = 30) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            self.runc, "--root", str(self.runc_root), *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return -1, f"runc {args[0]} timed out"
        return proc.returncode, out.decode(errors="replace")

    def _sandbox_record(self, sandbox_id: str) -> dict | None:
        return _read_json(self.sandbox_dir / sandbox_id / "sandbox.json")

    def _bundle(self, container_id: str) -> Path:
        if not container_id or "/" in container_id or container_id.startswith("."):
            raise RuntimeFailure("NotFound", f"no such container {container_id!r}")
        return self.container_dir / container_id

    def _meta(self, container_id: str) -> dict:
        meta = _read_json(self._bundle(container_id) / "meta.json")
        if meta is None:
            raise RuntimeFailure("NotFound", f"no such container {container_id!r}")
        return meta

    # --- sandboxes ---

    async def run_sandbox(self, config: SandboxConfig) -> Sandbox:
        sandbox_id = secrets.token_hex(16)
        directory = self.sandbox_dir / sandbox_id
        directory.mkdir(parents=True)
        kinds = [k for k, host in (("net", config.host_network), ("ipc", config.host_ipc),
                                   ("uts", config.host_network)) if not host]
        cgroup_parent = config.cgroup_parent or f"k8py/pod{config.pod_uid}"
        holder = None
        # Only a cgroup this sandbox creates is its to empty and remove later: a parent shared
        # with other pods (or made by someone else) is left alone.
        owns_cgroup = not any(d.exists() for d in cgroups.controller_dirs(cgroup_parent))
        try:
            paths = await asyncio.to_thread(namespaces.create, directory / "ns", kinds, config.hostname)
            if config.share_process_namespace and not config.host_pid:
                holder = await asyncio.to_thread(namespaces.start_pid_holder)
            if not config.host_ipc:
                namespaces.mount_tmpfs(directory / "shm")
            for d in cgroups.controller_dirs(cgroup_parent):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            await self._release_sandbox(directory, {"holder_pid": holder, "cgroup_parent": cgroup_parent,
                                                    "owns_cgroup": owns_cgroup})
            raise RuntimeFailure("SandboxCreateError", f"failed to create pod sandbox: {exc}") from exc
        sandbox = Sandbox(id=sandbox_id, pod_uid=config.pod_uid, netns_path=paths.get("net"),
                          ipc_ns_path=paths.get("ipc"), uts_ns_path=paths.get("uts"),
                          pid_ns_path=f"/proc/{holder}/ns/pid" if holder else None,
                          cgroup_parent=cgroup_parent, labels=dict(config.labels))
        _write_json(directory / "sandbox.json", {
            "sandbox": asdict(sandbox), "config": asdict(config), "holder_pid": holder,
            "holder_start_time": proc_start_time(holder) if holder else None,
            "cgroup_parent": cgroup_parent, "owns_cgroup": owns_cgroup, "created_at": time.time()})
        return sandbox

    async def list_sandboxes(self) -> list[Sandbox]:
        result = []
        for directory in sorted(self.sandbox_dir.iterdir()):
            record = self._sandbox_record(directory.name)
            if record:
                result.append(Sandbox(**record["sandbox"]))
        return result

    def sandbox(self, sandbox_id: str) -> Sandbox | None:
        record = self._sandbox_record(sandbox_id)
        return Sandbox(**record["sandbox"]) if record else None

    def sandbox_ready(self, sandbox_id: str) -> bool:
        """Whether the sandbox's namespaces still exist: after a host reboot the files remain but
        their bind mounts (and the PID namespace holder) are gone, and the pod needs a new sandbox."""
        record = self._sandbox_record(sandbox_id)
        if record is None:
            return False
        sandbox = record["sandbox"]
        for path in (sandbox["netns_path"], sandbox["ipc_ns_path"], sandbox["uts_ns_path"]):
            if path and not namespaces.is_mounted(Path(path)):
                return False
        holder = record.get("holder_pid")
        return not holder or proc_start_time(holder) == record.get("holder_start_time")

    def record_sandbox_ip(self, sandbox_id: str, ip: str | None) -> None:
        """Persist the pod IP the network plugin gave the sandbox, so list_sandboxes has it after a restart."""
        path = self.sandbox_dir / sandbox_id / "sandbox.json"
        record = _read_json(path)
        if record is not None:
            record["sandbox"]["ip"] = ip
            _write_json(path, record)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        directory = self.sandbox_dir / sandbox_id
        if not directory.exists():
            return
        for status in await self.list_containers():
            if status.sandbox_id == sandbox_id:
                await self.remove_container(status.id)
        record = self._sandbox_record(sandbox_id) or {}
        await self._release_sandbox(directory, record)

    async def _release_sandbox(self, directory: Path, record: dict) -> None:
        holder = record.get("holder_pid")
        if holder and proc_start_time(holder) == record.get("holder_start_time"):
            namespaces.stop_pid_holder(holder)
        ns_dir = directory / "ns"
        if ns_dir.exists():
            namespaces.release([str(p) for p in ns_dir.iterdir()])
        if (directory / "shm").exists():
            namespaces.unmount(directory / "shm")
        if record.get("cgroup_parent") and record.get("owns_cgroup"):
            for pid in cgroups.pids_in(record["cgroup_parent"]):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            await asyncio.to_thread(cgroups.remove, record["cgroup_parent"])
        shutil.rmtree(directory, ignore_errors=True)

    # --- containers ---

    async def create_container(self, sandbox: Sandbox, config: ContainerConfig) -> str:
        if self.images is None:
            raise RuntimeFailure("CreateContainerError", "the runtime has no image store")
        image = self.images.get(config.image)
        if image is None:
            raise ImageError("ErrImageNeverPull", f'image "{config.image}" is not present')
        record = self._sandbox_record(sandbox.id)
        if record is None:
            raise RuntimeFailure("CreateContainerError", f"no such sandbox {sandbox.id}")
        pid_ns_path = None
        if config.pid_namespace_of:
            target_pid = self.container_pid(config.pid_namespace_of)
            if target_pid is None:
                raise RuntimeFailure("CreateContainerError",
                                     f"target container {config.pid_namespace_of} is not running")
            pid_ns_path = f"/proc/{target_pid}/ns/pid"
        container_id = secrets.token_hex(16)
        bundle = self._bundle(container_id)
        bundle.mkdir(parents=True)
        try:
            lower = await asyncio.to_thread(self.images.rootfs_path, image.id)
            rootfs = bundle / "rootfs"
            namespaces.mount_overlay(rootfs, lower, bundle / "fs" / "upper", bundle / "fs" / "work")
            cgroups_path = f"/{sandbox.cgroup_parent.strip('/')}/{container_id}"
            shm = bundle.parent.parent / "sandboxes" / sandbox.id / "shm"
            spec = build_spec(config, image.config, sandbox, rootfs=rootfs, cgroups_path=cgroups_path,
                              shm_source=str(shm) if shm.exists() else "/dev/shm",
                              host_pid=bool((record.get("config") or {}).get("host_pid")),
                              swap_accounting=self.swap_accounting, pid_ns_path=pid_ns_path)
        except (SpecError, OSError) as exc:
            await self._discard_bundle(bundle)
            raise RuntimeFailure("CreateContainerError", str(exc)) from exc
        for m in config.mounts:
            if not os.path.exists(m.host_path):
                await self._discard_bundle(bundle)
                raise RuntimeFailure("CreateContainerError",
                                     f'failed to create containerd container: mount source "{m.host_path}" '
                                     'does not exist')
        _write_json(bundle / "config.json", spec)
        stop_signal = image.config.get("StopSignal") or "SIGTERM"
        _write_json(bundle / "meta.json", {
            "id": container_id, "sandbox_id": sandbox.id, "name": config.name, "image": config.image,
            "image_id": image.id, "log_path": config.log_path, "labels": dict(config.labels),
            "created_at": time.time(), "stop_signal": stop_signal, "tty": config.tty,
            "stdin": config.stdin, "stdin_once": config.stdin_once, "cgroups_path": cgroups_path,
            "shared_pid": bool(sandbox.pid_ns_path or pid_ns_path)})
        # The shim does `runc create` now: the costly part of a start (namespaces, mounts,
        # cgroup) overlaps whatever the kubelet does before start_container (the pod network).
        # A failure here is reported by start_container, as a StartError, like upstream.
        text = await self.shims.start(self._write_shim_options(container_id, create_only=True), SHIM_START_TIMEOUT)
        if not text.startswith("ok "):
            self._record_start_error(bundle, text)
        return container_id

    def _write_shim_options(self, container_id: str, create_only: bool) -> Path:
        meta = self._meta(container_id)
        bundle = self._bundle(container_id)
        _write_json(bundle / "shim.json", {
            "id": container_id, "runc": self.runc, "runc_root": str(self.runc_root),
            "log_path": meta["log_path"] or str(bundle / "container.log"),
            "log_max_size": self.log_max_size, "log_max_files": self.log_max_files, "tty": meta["tty"],
            "stdin": meta["stdin"], "stdin_once": meta["stdin_once"], "create_only": create_only,
            "oom_files": cgroups.oom_files(meta["cgroups_path"])})
        return bundle

    @staticmethod
    def _record_start_error(bundle: Path, text: str) -> str:
        message = text[4:] if text.startswith("err ") else f"the container shim failed: {text or 'no output'}"
        if not (bundle / "start-error.json").exists():
            _write_json(bundle / "start-error.json", {"message": message, "at": time.time()})
        return message

    async def _discard_bundle(self, bundle: Path) -> None:
        rootfs = bundle / "rootfs"
        if rootfs.exists() and namespaces.is_mounted(rootfs):
            namespaces.unmount(rootfs)
        shutil.rmtree(bundle, ignore_errors=True)

    async def start_container(self, container_id: str) -> None:
        self._meta(container_id)
        bundle = self._bundle(container_id)
        if (bundle / "started.json").exists():
            raise RuntimeFailure("StartError", f"container {container_id} was already started")
        failed = _read_json(bundle / "start-error.json")
        if failed:
            raise RuntimeFailure("StartError", failed["message"])
        if (bundle / "created.json").exists():
            text = await self._start_created(bundle)
        else:
            # Created by an agent that ran `runc run` at start (an upgrade in place): do that.
            text = await self.shims.start(self._write_shim_options(container_id, create_only=False),
                                          SHIM_START_TIMEOUT)
        if not text.startswith("ok "):
            raise RuntimeFailure("StartError", self._record_start_error(bundle, text))

    async def _start_created(self, bundle: Path) -> str:
        """Ask the shim holding a created container to start it; its `ok <pid>` / `err ...` reply."""
        fd = os.open(bundle, os.O_RDONLY | os.O_DIRECTORY)     # socket paths are limited to 108 bytes
        try:
            reader, writer = await asyncio.open_unix_connection(f"/proc/self/fd/{fd}/attach.sock")
        except OSError as exc:
            return f"err the container shim is gone: {exc}"
        finally:
            os.close(fd)
        try:
            writer.write(shim_frame(FRAME_START, b""))
            await writer.drain()

            async def reply() -> str:
                while True:       # output frames may come first: this is the attach socket
                    kind, length = struct.unpack(">BI", await reader.readexactly(5))
                    payload = await reader.readexactly(length)
                    if kind == FRAME_STARTED:
                        return payload.decode(errors="replace")
            return await asyncio.wait_for(reply(), SHIM_START_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
            return f"err the container shim did not start the container: {exc or type(exc).__name__}"
        finally:
            writer.close()

    def container_pid(self, container_id: str) -> int | None:
        started = _read_json(self._bundle(container_id) / "started.json")
        if not started or (self._bundle(container_id) / "exit.json").exists():
            return None
        pid = started["pid"]
        if proc_start_time(pid) != started.get("pid_start_time"):
            return None
        return pid

    async def container_status(self, container_id: str) -> ContainerStatus:
        meta = self._meta(container_id)
        bundle = self._bundle(container_id)
        status = ContainerStatus(id=container_id, sandbox_id=meta["sandbox_id"], name=meta["name"], state="created",
                                 image=meta["image"], image_id=meta["image_id"], created_at=meta["created_at"],
                                 log_path=meta["log_path"], labels=dict(meta["labels"]))
        started = _read_json(bundle / "started.json")
        exited = _read_json(bundle / "exit.json")
        failed = _read_json(bundle / "start-error.json")
        if failed and not started:
            status.state, status.exit_code, status.reason = "exited", 128, "StartError"
            status.message, status.finished_at = failed["message"], failed["at"]
            return status
        if not started:
            return status
        status.started_at, status.pid = started["started_at"], started["pid"]
        if exited:
            status.state, status.pid = "exited", None
            status.exit_code = exited["exit_code"] if exited["exit_code"] is not None else 255
            status.finished_at = exited["finished_at"]
            status.oom_killed = bool(exited.get("oom_killed"))
            status.reason = "OOMKilled" if status.oom_killed else ("Completed" if status.exit_code == 0 else "Error")
            return status
        if proc_start_time(started["pid"]) == started.get("pid_start_time"):
            status.state = "running"
            return status
        shim = started.get("shim_pid")
        if shim and os.path.exists(f"/proc/{shim}"):
            status.state = "running"       # the process just ended; its shim is writing exit.json
            return status
        status.state, status.pid, status.exit_code = "exited", None, 255
        status.reason, status.message = "Error", "the container's shim went away; its exit status is lost"
        status.finished_at = time.time()
        return status

    async def list_containers(self) -> list[ContainerStatus]:
        result = []
        for directory in sorted(self.container_dir.iterdir()):
            if (directory / "meta.json").exists():
                try:
                    result.append(await self.container_status(directory.name))
                except RuntimeFailure:
                    continue
        return result

    async def _wait_exit(self, container_id: str, timeout: float) -> bool:
        bundle = self._bundle(container_id)
        deadline = time.monotonic() + timeout
        while True:
            status = await self.container_status(container_id)
            if status.state != "running" and (status.state != "exited" or (bundle / "exit.json").exists()
                                              or status.reason in ("StartError", "Error")):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        meta = self._meta(container_id)
        status = await self.container_status(container_id)
        if status.state != "running":
            return
        stop_signal = meta.get("stop_signal") or "SIGTERM"
        if timeout > 0:
            await self._runc("kill", container_id, stop_signal.removeprefix("SIG"))
            if await self._wait_exit(container_id, timeout):
                return
        kill_args = ["kill", "--all"] if meta.get("shared_pid") else ["kill"]
        await self._runc(*kill_args, container_id, "KILL")
        await self._wait_exit(container_id, 10)

    async def remove_container(self, container_id: str) -> None:
        bundle = self._bundle(container_id)
        if not bundle.exists():
            return
        meta = _read_json(bundle / "meta.json") or {}
        if (await self.container_status(container_id)).state == "running":
            await self.stop_container(container_id, 0)
        await self._runc("delete", "--force", container_id)
        await self._discard_bundle(bundle)
        if meta.get("cgroups_path"):
            try:
                await asyncio.to_thread(cgroups.remove, meta["cgroups_path"], 2.0)
            except OSError:
                pass

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> tuple[int, bytes]:
        if (await self.container_status(container_id)).state != "running":
            raise RuntimeFailure("NotRunning", f"container {container_id} is not running")
        pid_file = self._bundle(container_id) / f"exec-{secrets.token_hex(4)}.pid"
        proc = await asyncio.create_subprocess_exec(
            self.runc, "--root", str(self.runc_root), "exec", "--pid-file", str(pid_file), container_id, *argv,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout if timeout and timeout > 0 else None)
        except asyncio.TimeoutError:
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
            proc.kill()
            await proc.wait()
            raise TimeoutError(f"command {argv!r} timed out after {timeout}s") from None
        finally:
            pid_file.unlink(missing_ok=True)
        return proc.returncode, out

    async def exec_stream(self, container_id: str, argv: list[str], tty: bool, stdin: bool) -> ExecProcess:
        if (await self.container_status(container_id)).state != "running":
            raise RuntimeFailure("NotRunning", f"container {container_id} is not running")
        base = [self.runc, "--root", str(self.runc_root), "exec"]
        if tty:
            return await exec_tty([*base, "--tty", container_id, *argv], stdin)
        return await exec_pipes([*base, container_id, *argv], stdin)

    async def attach(self, container_id: str, stdin: bool = True) -> ExecProcess:
        meta = self._meta(container_id)
        sock = self._bundle(container_id) / "attach.sock"
        if (await self.container_status(container_id)).state != "running" or not sock.exists():
            raise RuntimeFailure("NotRunning", f"container {container_id} is not running")

        async def final_status() -> int:
            await self._wait_exit(container_id, 5)
            return (await self.container_status(container_id)).exit_code or 0

        # A socket path can exceed the 108-byte limit; connecting through /proc/self/fd avoids it.
        fd = os.open(sock.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return await attach_socket(f"/proc/self/fd/{fd}/attach.sock", stdin and meta["stdin"], final_status)
        finally:
            os.close(fd)

    def writable_layer(self, container_id: str) -> str | None:
        """The container's own files (the overlay's upper directory): its rootfs usage."""
        upper = self._bundle(container_id) / "fs" / "upper"
        return str(upper) if upper.is_dir() else None

    async def stats(self, container_id: str) -> ContainerStats | None:
        meta = self._meta(container_id)
        found = await asyncio.to_thread(cgroups.usage, meta["cgroups_path"])
        if found is None:
            return None
        return ContainerStats(cpu_usage_ns=found["cpu_ns"], memory_working_set_bytes=found["working_set"],
                              memory_usage_bytes=found["usage"], memory_rss_bytes=found["rss"],
                              page_faults=found["page_faults"], major_page_faults=found["major_page_faults"])
