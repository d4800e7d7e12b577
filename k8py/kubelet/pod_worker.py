"""One worker per pod: make what runs match what the pod asks for, and report it.

A worker wakes on a pod update, a container state change (seen by the agent's
relist), a probe result or a timer (back-off, volume refresh), and then runs
one idempotent `sync`: sandbox and network, volumes, init containers in order,
app containers with restarts and back-off, then the pod status. Deletion runs
preStop hooks, stops containers within the grace period, releases everything
and finally deletes the pod object with gracePeriodSeconds=0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Callable

from k8py.apimachinery import meta
from k8py.kubelet import hooks, qos
from k8py.kubelet.env import ContainerConfigError, EnvSources, container_env, expand_command
from k8py.kubelet.image_puller import ImagePullFailed, ensure_image
from k8py.kubelet.pod_dns import hostname_and_domain, write_pod_files
from k8py.kubelet.probes import ContainerProbes
from k8py.kubelet.resources import container_config
from k8py.kubelet.runtime.interface import (LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE,
                                            LABEL_POD_UID, LABEL_RESTART_COUNT, ContainerStatus, Sandbox,
                                            SandboxConfig)
from k8py.kubelet.status import ContainerRecord, container_status, pod_conditions, pod_phase
from k8py.kubelet.volumes import VolumeError

log = logging.getLogger("k8py.kubelet.pod")

DEFAULT_GRACE = 30
STATUS_KEYS = ("phase", "conditions", "hostIP", "hostIPs", "podIP", "podIPs", "startTime", "qosClass",
               "containerStatuses", "initContainerStatuses", "reason", "message")
RETRY_SECONDS = 2.0


def go_duration(seconds: float) -> str:
    """Seconds as Go prints a time.Duration: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    return f"{s // 60}m{s % 60}s"


MAX_TERMINATION_MESSAGE = 4096
FALLBACK_LOG_LINES = 80


def termination_message(container: dict, cs: ContainerStatus, path: Path | None) -> str:
    """What the container left in terminationMessagePath, or (FallbackToLogsOnError, on
    failure) the end of its log, as the kubelet reports in terminated.message."""
    text = ""
    if path is not None:
        try:
            text = path.read_bytes()[:MAX_TERMINATION_MESSAGE].decode("utf-8", "replace")
        except OSError:
            text = ""
    if not text and cs.exit_code not in (0, None) and \
            container.get("terminationMessagePolicy") == "FallbackToLogsOnError" and cs.log_path:
        try:
            lines = Path(cs.log_path).read_text(errors="replace").splitlines()[-FALLBACK_LOG_LINES:]
        except OSError:
            lines = []
        # CRI log lines: "<time> <stream> <P|F> <text>"
        text = "\n".join(line.split(" ", 3)[3] if line.count(" ") >= 3 else line for line in lines)
        text = text[-MAX_TERMINATION_MESSAGE:]
    return text


def _host_name() -> str:
    import socket
    return socket.gethostname()


def pod_description(pod: dict) -> str:
    m = pod.get("metadata") or {}
    return f"{m.get('name', '')}_{m.get('namespace', '')}({m.get('uid', '')})"


class PodWorker:
    def __init__(self, ctx, pod: dict, adopted: tuple[Sandbox | None, list[ContainerStatus]] | None = None,
                 static: bool = False, on_finished: Callable[["PodWorker"], None] | None = None,
                 finished_before: bool = False, rejected: tuple[str, str] | None = None):
        self.ctx = ctx
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.static = static
        self.on_finished = on_finished
        self.sandbox: Sandbox | None = None
        self.pod_ips: list[str] = []
        self.network_ready = False
        self.volume_paths: dict | None = None
        self.pod_files: dict = {}
        self.records: dict[str, ContainerRecord] = {}
        self.probers: dict[str, ContainerProbes] = {}
        self.start_time: str | None = (pod.get("status") or {}).get("startTime")
        self.deleted = False          # the API object (or static file) is gone
        self.terminal = finished_before   # Succeeded/Failed: nothing restarts any more
        # The API already shows a final status (e.g. from before a kubelet restart): keep it.
        self.finished_before = finished_before
        # (reason, message) that failed the pod as a whole: admission, activeDeadlineSeconds.
        self.rejected = rejected
        self.failure: tuple[str, str] | None = rejected
        if rejected:
            self.terminal = True
        self.finished = False
        self.last_status: dict | None = None
        self._wake = asyncio.Event()
        self._next_sync: float | None = None
        self._next_volume_refresh = 0.0
        self._volume_retry_at = 0.0
        self._task: asyncio.Task | None = None
        self._killing: set[str] = set()
        self.initialized = False      # init containers done once: app containers may run
        self._termination_log: dict[str, Path] = {}     # container id -> its terminationMessagePath file
        self._sync_count = 0
        for c in self._all_containers():
            self.records[c["name"]] = ContainerRecord(name=c["name"], image=c.get("image", ""))
        if adopted is not None:
            self._adopt(*adopted)

    # ---- plumbing ------------------------------------------------------------

    def _spec(self) -> dict:
        return self.pod.get("spec") or {}

    def _init_containers(self) -> list[dict]:
        return list(self._spec().get("initContainers") or [])

    def _app_containers(self) -> list[dict]:
        return list(self._spec().get("containers") or [])

    def _all_containers(self) -> list[dict]:
        return self._init_containers() + self._app_containers()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pod {pod_description(self.pod)}")

    async def stop(self) -> None:
        """Stop the worker (agent shutdown) without touching containers."""
        for p in self.probers.values():
            p.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def update(self, pod: dict) -> None:
        if pod["metadata"].get("uid") != self.uid:
            return
        self.pod = pod
        for c in self._all_containers():
            self.records.setdefault(c["name"], ContainerRecord(name=c["name"], image=c.get("image", "")))
        self.wake()

    def delete(self) -> None:
        self.deleted = True
        self.wake()

    def wake(self, after: float = 0.0) -> None:
        if after <= 0:
            self._wake.set()
            return
        at = time.monotonic() + after
        if self._next_sync is None or at < self._next_sync:
            self._next_sync = at

    async def _run(self) -> None:
        self._wake.set()
        while not self.finished:
            timeout = None if self._next_sync is None else max(0.0, self._next_sync - time.monotonic())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            self._next_sync = None
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pod %s: sync failed", pod_description(self.pod))
                self.wake(RETRY_SECONDS)
        if self.on_finished:
            self.on_finished(self)

    def _event(self, type_: str, reason: str, message: str, container: str | None = None) -> None:
        field_path = None
        if container is not None:
            kind = "initContainers" if any(c["name"] == container for c in self._init_containers()) \
                else "containers"
            field_path = f"spec.{kind}{{{container}}}"
        ref = self.pod if self.pod.get("kind") else {**self.pod, "kind": "Pod", "apiVersion": "v1"}
        self.ctx.recorder.event(ref, type_, reason, message, field_path=field_path)

    # ---- adoption after a kubelet restart ------------------------------------

    def _adopt(self, sandbox: Sandbox | None, containers: list[ContainerStatus]) -> None:
        self.sandbox = sandbox
        if sandbox is not None:
            ip = sandbox.ip or (self.pod.get("status") or {}).get("podIP")
            self.pod_ips = [ip] if ip else []
            self.network_ready = True
        by_name: dict[str, list[ContainerStatus]] = {}
        for cs in containers:
            by_name.setdefault(cs.labels.get(LABEL_CONTAINER_NAME, cs.name), []).append(cs)
        for name, instances in by_name.items():
            rec = self.records.get(name)
            if rec is None:
                continue
            instances.sort(key=lambda c: (int(c.labels.get(LABEL_RESTART_COUNT, "0") or 0), c.created_at or 0))
            rec.current = instances[-1]
            rec.previous = instances[-2] if len(instances) > 1 else None
            rec.restart_count = int(rec.current.labels.get(LABEL_RESTART_COUNT, "0") or 0)
            old = next((s for s in (self.pod.get("status") or {}).get("containerStatuses") or []
                        if s.get("name") == name), None)
            if rec.current.state == "running":
                # Until probes say otherwise, keep what the API last showed.
                rec.started = bool(old.get("started", True)) if old else True
                rec.ready = bool(old.get("ready")) if old else not self._container(name).get("readinessProbe")

        # App containers ran before: init is over, even if its containers are gone.
        if any(self.records[c["name"]].current is not None for c in self._app_containers()):
            self.initialized = True

    def _name_image(self, rec: ContainerRecord, image: str) -> None:
        """Report the image the way a CRI runtime does: full name and repo digest."""
        info = self.ctx.images.get(image) if self.ctx.images is not None else None
        if info is not None:
            rec.image_name = (info.repo_tags or [""])[0]
            rec.image_ref = (info.repo_digests or [info.id])[0]

    def _container(self, name: str) -> dict:
        return next((c for c in self._all_containers() if c["name"] == name), {})

    # ---- sync ----------------------------------------------------------------

    def _deleting(self) -> bool:
        return self.deleted or bool(self.pod["metadata"].get("deletionTimestamp"))

    async def sync(self) -> None:
        self._sync_count += 1
        if self._deleting():
            await self.terminate()
            return
        if self.finished_before:
            return
        await self._refresh_records()
        if self.terminal:
            await self.publish_status()
            return
        if self._deadline_passed():
            message = "Pod was active on the node longer than the specified deadline"
            self.failure = ("DeadlineExceeded", message)
            self._event("Normal", "DeadlineExceeded", message)
            self.terminal = True
            await self._stop_all(self._grace(), reason_message="")
            await self.publish_status()
            await self._release_network()
            return
        self._ensure_probers()
        if await self._ensure_sandbox() and await self._ensure_volumes():
            if await self._sync_init_containers():
                await self._sync_app_containers()
        if self.compute_status(final=True)["phase"] in ("Succeeded", "Failed"):
            # Done: stop what still runs (sidecars) before the phase turns terminal.
            self.terminal = True
            await self._stop_all(self._grace(), reason_message=None)
            await self.publish_status()
            await self._release_network()
            return
        phase = await self.publish_status()
        if phase in ("Succeeded", "Failed"):
            self.terminal = True
            await self._release_network()
        elif self._has_refreshed_volumes():
            self.wake(max(0.0, self._next_volume_refresh - time.monotonic()) or self.ctx.volume_refresh_seconds)

    def _deadline_passed(self) -> bool:
        deadline = self._spec().get("activeDeadlineSeconds")
        started = meta.parse_time(self.start_time) if self.start_time else None
        if not deadline or started is None:
            return False
        left = started.timestamp() + int(deadline) - time.time()
        if left > 0:
            self.wake(left + 0.01)
            return False
        return True

    async def _refresh_records(self) -> None:
        for rec in self.records.values():
            if rec.current is None or rec.current.state == "exited":
                continue
            try:
                fresh = await self.ctx.runtime.container_status(rec.current.id)
            except Exception:
                fresh = ContainerStatus(id=rec.current.id, sandbox_id=rec.current.sandbox_id, name=rec.name,
                                        state="exited", exit_code=137, finished_at=time.time(),
                                        reason="ContainerStatusUnknown",
                                        message="The container could not be located when the pod was "
                                                "terminated", labels=rec.current.labels)
            was_running = rec.current.state == "running"
            self._attach_message(fresh)
            rec.current = fresh
            if was_running and fresh.state == "exited":
                rec.ready = False
                rec.started = False
                prober = self.probers.pop(rec.name, None)
                if prober:
                    prober.stop()

    # ---- sandbox, network, volumes ---------------------------------------------

    async def _ensure_sandbox(self) -> bool:
        if self.sandbox is not None and self.network_ready:
            return True
        spec, m = self._spec(), self.pod["metadata"]
        host_network = bool(spec.get("hostNetwork"))
        if self.start_time is None:
            self.start_time = meta.rfc3339()
        try:
            if self.sandbox is None:
                hostname, _ = hostname_and_domain(self.pod, self.ctx.dns.domain)
                config = SandboxConfig(
                    pod_uid=self.uid, name=m["name"], namespace=m.get("namespace", "default"),
                    hostname=hostname, host_network=host_network, host_ipc=bool(spec.get("hostIPC")),
                    host_pid=bool(spec.get("hostPID")),
                    share_process_namespace=bool(spec.get("shareProcessNamespace")),
                    cgroup_parent=f"k8py/pod{self.uid}",
                    labels={LABEL_POD_UID: self.uid, LABEL_POD_NAME: m["name"],
                            LABEL_POD_NAMESPACE: m.get("namespace", "default")})
                self.sandbox = await self.ctx.runtime.run_sandbox(config)
            if host_network or self.ctx.network is None:
                ip = self.ctx.node_ip if host_network or self.ctx.network is None else None
                self.pod_ips = [self.sandbox.ip or ip] if (self.sandbox.ip or ip) else []
            else:
                ip = await self.ctx.network.setup(self.sandbox, self.pod)
                self.sandbox.ip = ip
                self.pod_ips = [ip]
            self.network_ready = True
        except Exception as e:
            log.warning("pod %s: sandbox failed: %s", pod_description(self.pod), e)
            self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            self.wake(RETRY_SECONDS * 2)
            return False
        return True

    def _has_refreshed_volumes(self) -> bool:
        from k8py.kubelet.volumes import REFRESHED
        return self.ctx.volumes is not None and any(
            any(k in v for k in REFRESHED) for v in self._spec().get("volumes") or [])

    async def _ensure_volumes(self) -> bool:
        if self.ctx.volumes is None:
            self.volume_paths = {v.get("name"): None for v in self._spec().get("volumes") or []}
            return True
        if self.volume_paths is None and time.monotonic() < self._volume_retry_at:
            return False            # a pod update must not turn a failing mount into a busy loop
        try:
            if self.volume_paths is None:
                self.volume_paths = await self.ctx.volumes.setup(self.pod)
                self._next_volume_refresh = time.monotonic() + self.ctx.volume_refresh_seconds
            elif time.monotonic() >= self._next_volume_refresh:
                self._next_volume_refresh = time.monotonic() + self.ctx.volume_refresh_seconds
                await self.ctx.volumes.refresh(self.pod)
            if self.ctx.write_pod_files:
                self.pod_files = write_pod_files(self.ctx.volumes.pod_dir(self.uid), self.pod, self.pod_ips,
                                                 self.ctx.dns)
        except VolumeError as e:
            if self.volume_paths is not None:      # a refresh failed: keep running on the old content
                log.info("pod %s: %s", pod_description(self.pod), e)
                return True
            self._event("Warning", "FailedMount", str(e))
            self._volume_retry_at = time.monotonic() + RETRY_SECONDS
            self.wake(RETRY_SECONDS)
            return False
        return True

    # ---- containers -------------------------------------------------------------

    async def _sync_init_containers(self) -> bool:
        """True once every init container has succeeded (sidecars: started). After that only
        sidecars are looked after: restarted whenever they stop, whatever the pod's policy."""
        policy = self._spec().get("restartPolicy", "Always")
        for c in self._init_containers():
            rec = self.records[c["name"]]
            sidecar = c.get("restartPolicy") == "Always"
            if self.initialized and not sidecar:
                continue
            cur = rec.current
            if cur is None:
                await self._start_container(c, is_init=True)
            elif cur.state in ("running", "created"):
                pass
            elif cur.exit_code == 0 and not sidecar:
                continue
            elif policy == "Never" and not sidecar:
                return False       # the pod fails
            else:
                await self._start_container(c, is_init=True, restart=True)
            if self.initialized:
                continue
            if not (sidecar and self._running(rec) and rec.started):
                return False      # wait for it to finish (a sidecar: to start)
        self.initialized = True
        return True

    @staticmethod
    def _running(rec: ContainerRecord) -> bool:
        return rec.current is not None and rec.current.state == "running" and not rec.waiting_reason

    async def _sync_app_containers(self) -> None:
        policy = self._spec().get("restartPolicy", "Always")
        for c in self._app_containers():
            rec = self.records[c["name"]]
            cur = rec.current
            if c["name"] in self._killing:
                continue
            if cur is None:
                await self._start_container(c, is_init=False)
            elif cur.state == "exited":
                if policy == "Always" or (policy == "OnFailure" and cur.exit_code != 0):
                    await self._start_container(c, is_init=False, restart=True)

    async def _start_container(self, c: dict, is_init: bool, restart: bool = False) -> bool:
        name = c["name"]
        rec = self.records[name]
        key = f"{self.uid}/{name}"
        if restart and rec.current is not None and rec.current.state == "exited":
            finished = rec.current.finished_at or time.time()
            backoff = self.ctx.crash_backoff
            if backoff.in_backoff_since(key, finished):
                delay = backoff.delay(key)
                if rec.waiting_reason != "CrashLoopBackOff":
                    self._event("Warning", "BackOff", f"Back-off restarting failed container {name} in pod "
                                                      f"{pod_description(self.pod)}", name)
                rec.waiting_reason = "CrashLoopBackOff"
                rec.waiting_message = (f"back-off {go_duration(delay)} restarting failed container={name} "
                                       f"pod={pod_description(self.pod)}")
                self.wake(backoff.remaining(key, finished) + 0.01)
                return False
            backoff.next(key)
        try:
            image = await ensure_image(self.ctx, self.pod, c, lambda t, r, m: self._event(t, r, m, name))
        except ImagePullFailed as e:
            rec.waiting_reason, rec.waiting_message = e.reason, e.message
            self.wake(max(e.retry_in, 0.5))
            return False
        self._name_image(rec, image)
        try:
            env = await container_env(self.pod_with_ips(), c, self._env_sources())
            if not any(k == "HOSTNAME" for k, _ in env):
                # Container runtimes set HOSTNAME to the pod's hostname; ours leaves it to us.
                env.insert(0, ("HOSTNAME", hostname_and_domain(self.pod, self.ctx.dns.domain)[0]
                               if not self._spec().get("hostNetwork") else _host_name()))
            command, args = expand_command(c, env)
            mounts = self._mounts(c, env)
        except (ContainerConfigError, VolumeError) as e:
            rec.waiting_reason, rec.waiting_message = "CreateContainerConfigError", str(e)
            self._event("Warning", "Failed", f"Error: {e}", name)
            self.wake(RETRY_SECONDS)
            return False
        restart_count = rec.restart_count + (1 if restart and rec.current is not None else 0)
        labels = {LABEL_POD_UID: self.uid, LABEL_POD_NAME: self.pod["metadata"]["name"],
                  LABEL_POD_NAMESPACE: self.pod["metadata"].get("namespace", "default"),
                  LABEL_CONTAINER_NAME: name, LABEL_RESTART_COUNT: str(restart_count)}
        term_file = self._termination_file(c, restart_count, mounts)
        config = container_config(self.pod, c, image, env, command, args, mounts, labels,
                                  self._log_path(name, restart_count))
        try:
            cid = await self.ctx.runtime.create_container(self.sandbox, config)
        except Exception as e:
            rec.waiting_reason, rec.waiting_message = "CreateContainerError", str(e)
            self._event("Warning", "Failed", f"Error: {e}", name)
            self.wake(RETRY_SECONDS)
            return False
        if term_file is not None:
            self._termination_log[cid] = term_file
        self._event("Normal", "Created", f"Created container: {name}", name)
        try:
            await self.ctx.runtime.start_container(cid)
        except Exception as e:
            rec.waiting_reason, rec.waiting_message = "RunContainerError", str(e)
            self._event("Warning", "Failed", f"Error: failed to start container \"{name}\": {e}", name)
            self.wake(RETRY_SECONDS)
            await self._remove_quietly(cid)
            return False
        self._event("Normal", "Started", f"Started container {name}", name)
        old_previous = rec.previous
        if rec.current is not None:
            rec.previous = rec.current
        rec.current = await self._fetch_status(cid)
        rec.restart_count = restart_count
        rec.waiting_reason = rec.waiting_message = ""
        if old_previous is not None:
            await self._remove_quietly(old_previous.id)   # keep one dead instance, for --previous logs
        await self._after_start(c, rec, is_init)
        return True

    async def _after_start(self, c: dict, rec: ContainerRecord, is_init: bool) -> None:
        name = c["name"]
        post_start = (c.get("lifecycle") or {}).get("postStart")
        if post_start:
            failure = await hooks.run_hook(self.ctx.runtime, post_start, self.pod, c, rec.current.id,
                                           self.pod_ip, self._grace())
            if failure:
                self._event("Warning", "FailedPostStartHook", failure, name)
                self._event("Normal", "Killing", "FailedPostStartHook", name)
                await self.ctx.runtime.stop_container(rec.current.id, self._grace())
                rec.current = await self._fetch_status(rec.current.id)
                self.wake()
                return
        if is_init and c.get("restartPolicy") != "Always":
            rec.started = True
            return
        has_startup, has_readiness = bool(c.get("startupProbe")), bool(c.get("readinessProbe"))
        rec.started = not has_startup or not self.ctx.run_probes
        rec.ready = rec.started and (not has_readiness or not self.ctx.run_probes)
        if self.ctx.run_probes and (has_startup or has_readiness or c.get("livenessProbe")):
            prober = ContainerProbes(self.ctx.runtime, c, rec.current.id, self.pod_ip,
                                     self._on_probe_result,
                                     lambda kind, msg, n=name: self._event("Warning", "Unhealthy", msg, n))
            self.probers[name] = prober
            prober.start()

    def _ensure_probers(self) -> None:
        """Probe running containers that have no prober yet (adopted after a kubelet restart)."""
        if not self.ctx.run_probes:
            return
        for c in self._app_containers() + [i for i in self._init_containers() if i.get("restartPolicy") == "Always"]:
            rec = self.records[c["name"]]
            if c["name"] in self.probers or not self._running(rec):
                continue
            if not (c.get("startupProbe") or c.get("readinessProbe") or c.get("livenessProbe")):
                continue
            prober = ContainerProbes(self.ctx.runtime, c, rec.current.id, self.pod_ip, self._on_probe_result,
                                     lambda kind, msg, n=c["name"]: self._event("Warning", "Unhealthy", msg, n))
            if rec.started:
                prober.started.set()
            self.probers[c["name"]] = prober
            prober.start()

    def _on_probe_result(self, name: str, kind: str, ok: bool, message: str) -> None:
        rec = self.records.get(name)
        if rec is None or rec.current is None or rec.current.state != "running":
            return
        c = self._container(name)
        if kind == "readiness":
            rec.ready = ok and rec.started
        elif kind == "startup" and ok:
            rec.started = True
            rec.ready = not c.get("readinessProbe")
        elif not ok:          # liveness or startup failed: restart the container
            self._event("Normal", "Killing", f"Container {name} failed {kind} probe, will be restarted", name)
            rec.ready = False
            asyncio.create_task(self._kill_for_restart(name))
        self.wake()

    async def _kill_for_restart(self, name: str) -> None:
        rec = self.records[name]
        self._killing.add(name)
        try:
            prober = self.probers.pop(name, None)
            if prober:
                prober.stop()
            await self._kill_container(rec, self._grace(), run_pre_stop=True, reason_message="")
        finally:
            self._killing.discard(name)
            self.wake()

    # ---- helpers for containers ---------------------------------------------------

    @property
    def pod_ip(self) -> str:
        return self.pod_ips[0] if self.pod_ips else ""

    def pod_with_ips(self) -> dict:
        status = dict(self.pod.get("status") or {})
        if self.pod_ips:
            status["podIP"] = self.pod_ips[0]
            status["podIPs"] = [{"ip": ip} for ip in self.pod_ips]
        status["hostIP"] = self.ctx.node_ip
        status["hostIPs"] = [{"ip": self.ctx.node_ip}]
        return {**self.pod, "status": status}

    def _env_sources(self) -> EnvSources:
        return self.ctx.env_sources(self.pod)

    def _mounts(self, c: dict, env) -> list:
        if self.ctx.volumes is None:
            return []
        mounts = self.ctx.volumes.container_mounts(self.pod, c, self.volume_paths or {}, env)
        taken = {m.container_path for m in mounts}
        from k8py.kubelet.runtime.interface import Mount
        for container_path, host_path in self.pod_files.items():
            if container_path not in taken:
                mounts.append(Mount(container_path=container_path, host_path=str(host_path)))
        return mounts

    async def _fetch_status(self, container_id: str) -> ContainerStatus:
        return self._attach_message(await self.ctx.runtime.container_status(container_id))

    def _attach_message(self, cs: ContainerStatus) -> ContainerStatus:
        if cs.state == "exited" and not cs.message:
            name = cs.labels.get(LABEL_CONTAINER_NAME, cs.name)
            cs.message = termination_message(self._container(name), cs, self._termination_log.get(cs.id))
        return cs

    def _termination_file(self, c: dict, restart_count: int, mounts: list) -> Path | None:
        """The file the container may write its termination message to (terminationMessagePath)."""
        if self.ctx.volumes is None:
            return None
        target = c.get("terminationMessagePath") or "/dev/termination-log"
        if any(m.container_path == target for m in mounts):
            return None
        folder = self.ctx.volumes.pod_dir(self.uid) / "containers" / c["name"]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{restart_count}-termination-log"
        path.write_bytes(b"")
        os.chmod(path, 0o666)
        from k8py.kubelet.runtime.interface import Mount
        mounts.append(Mount(container_path=target, host_path=str(path)))
        return path

    def _log_dir(self) -> Path:
        """<data>/pod-logs/<namespace>_<name>_<uid>, as /var/log/pods is laid out."""
        m = self.pod["metadata"]
        return self.ctx.logs_dir / f"{m.get('namespace', 'default')}_{m['name']}_{self.uid}"

    def _log_path(self, name: str, restart_count: int) -> str:
        folder = self._log_dir() / name
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / f"{restart_count}.log")

    def _grace(self) -> float:
        m, spec = self.pod["metadata"], self._spec()
        if m.get("deletionGracePeriodSeconds") is not None:
            return float(m["deletionGracePeriodSeconds"])
        value = spec.get("terminationGracePeriodSeconds")
        return float(DEFAULT_GRACE if value is None else value)

    async def _remove_quietly(self, container_id: str) -> None:
        try:
            await self.ctx.runtime.remove_container(container_id)
        except Exception as e:
            log.debug("removing container %s: %s", container_id, e)

    async def _kill_container(self, rec: ContainerRecord, grace: float, run_pre_stop: bool,
                              reason_message: str | None) -> None:
        """preStop (within the grace period), then SIGTERM and SIGKILL when the rest runs out."""
        cur = rec.current
        if cur is None or cur.state != "running":
            return
        c = self._container(rec.name)
        if reason_message is not None:
            self._event("Normal", "Killing", reason_message or f"Stopping container {rec.name}", rec.name)
        started = time.monotonic()
        pre_stop = (c.get("lifecycle") or {}).get("preStop")
        if run_pre_stop and pre_stop and grace > 0:
            try:
                failure = await asyncio.wait_for(
                    hooks.run_hook(self.ctx.runtime, pre_stop, self.pod, c, cur.id, self.pod_ip, grace), grace)
            except asyncio.TimeoutError:
                failure = None
            if failure:
                self._event("Warning", "FailedPreStopHook", failure, rec.name)
        remaining = max(grace - (time.monotonic() - started), 2.0 if grace > 0 else 0.0)
        try:
            await self.ctx.runtime.stop_container(cur.id, remaining)
            rec.current = await self._fetch_status(cur.id)
        except Exception as e:
            log.warning("stopping container %s: %s", cur.id, e)
        rec.ready = False

    async def _stop_all(self, grace: float, reason_message: str | None) -> None:
        for p in self.probers.values():
            p.stop()
        self.probers.clear()
        running = [r for r in self.records.values() if r.current is not None and r.current.state == "running"]
        await asyncio.gather(*(self._kill_container(r, grace, True, reason_message) for r in running))

    async def _release_network(self) -> None:
        if self.sandbox is not None and self.ctx.network is not None and not self._spec().get("hostNetwork") \
                and self.network_ready:
            try:
                await self.ctx.network.teardown(self.sandbox, self.pod)
            except Exception as e:
                log.warning("pod %s: network teardown failed: %s", pod_description(self.pod), e)

    # ---- termination ------------------------------------------------------------------

    async def terminate(self) -> None:
        grace = self._grace()
        await self._stop_all(grace, reason_message="")
        for rec in self.records.values():
            if rec.waiting_reason and rec.current is None:
                rec.waiting_reason = ""
        if not self.deleted and not self.finished_before:
            try:
                await self.publish_status(terminal=True)
            except Exception as e:
                log.info("pod %s: final status not written: %s", pod_description(self.pod), e)
        await self.release()
        if not self.deleted and not self.static:
            from k8py.client import ApiError
            m = self.pod["metadata"]
            try:
                await self.ctx.client.resource("v1", "pods", namespace=m.get("namespace")).delete(
                    m["name"], grace_period_seconds=0, preconditions={"uid": self.uid})
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
        self.finished = True

    async def release(self) -> None:
        """Give back everything the pod held on this node."""
        await self._release_network()
        self.network_ready = False
        if self.sandbox is not None:
            for rec in self.records.values():
                for cs in (rec.current, rec.previous):
                    if cs is not None:
                        await self._remove_quietly(cs.id)
            try:
                await self.ctx.runtime.remove_sandbox(self.sandbox.id)
            except Exception as e:
                log.warning("pod %s: removing sandbox failed: %s", pod_description(self.pod), e)
            self.sandbox = None
        if self.ctx.volumes is not None:
            await self.ctx.volumes.teardown(self.uid)
        logs = self._log_dir()
        if logs.exists():
            import shutil
            await asyncio.to_thread(shutil.rmtree, logs, True)
        self.ctx.crash_backoff.forget_prefix(f"{self.uid}/")
        self.ctx.image_backoff.forget_prefix(f"{self.uid}/")

    # ---- status --------------------------------------------------------------------------

    def compute_status(self, terminal: bool = False, final: bool = False) -> dict:
        """The pod status to report; `final` gives the phase even while sidecars still run."""
        if self.rejected:
            # A pod the node turned away: only the verdict, as the kubelet writes it.
            reason, message = self.rejected
            status = {"phase": "Failed", "reason": reason, "message": message}
            if (self.pod.get("status") or {}).get("conditions"):
                status["conditions"] = self.pod["status"]["conditions"]
            return status
        rt = self.ctx.runtime_name
        init = [container_status(self.records[c["name"]], rt, c.get("restartPolicy") != "Always")
                for c in self._init_containers()]
        apps = [container_status(self.records[c["name"]], rt, False) for c in self._app_containers()]
        init_pending = any(not ((s["state"].get("terminated") or {}).get("exitCode") == 0) for s in init
                           if not (self._container(s["name"]).get("restartPolicy") == "Always"))
        if init_pending or not self.network_ready:
            # App containers wait for init: PodInitializing (or ContainerCreating before anything ran).
            reason = "PodInitializing" if self._init_containers() and self.network_ready else "ContainerCreating"
            for s in apps:
                if s["state"].get("waiting", {}).get("reason") == "ContainerCreating" \
                        and self.records[s["name"]].current is None:
                    s["state"]["waiting"]["reason"] = reason
        phase = pod_phase(self.pod, init, apps, terminal=terminal)
        if phase in ("Succeeded", "Failed") and not final and \
                any(self._running(r) for r in self.records.values()):
            phase = "Running"      # never terminal while something still runs
        now = meta.rfc3339()
        status = {"phase": phase,
                  "conditions": pod_conditions(self.pod, phase, init, apps, self.network_ready and not terminal,
                                               now),
                  "hostIP": self.ctx.node_ip, "hostIPs": [{"ip": self.ctx.node_ip}],
                  "startTime": self.start_time or now,
                  "qosClass": qos.qos_class(self.pod),
                  "containerStatuses": apps}
        if self.pod_ips:
            status["podIP"] = self.pod_ips[0]
            status["podIPs"] = [{"ip": ip} for ip in self.pod_ips]
        if init:
            status["initContainerStatuses"] = init
        if self.failure:
            status["phase"] = "Failed"
            status["reason"], status["message"] = self.failure
            status["conditions"] = pod_conditions(self.pod, "Failed", init, apps, False, now)
        return status

    async def publish_status(self, terminal: bool = False) -> str:
        status = self.compute_status(terminal)
        if status == self.last_status:
            return status["phase"]
        previous = self.pod.get("status") or {}
        patch = dict(status)
        for key in STATUS_KEYS:
            if key in previous and key not in status:
                patch[key] = None
        from k8py.client import ApiError
        m = self.pod["metadata"]
        pods = self.ctx.client.resource("v1", "pods", namespace=m.get("namespace", "default"))
        try:
            updated = await pods.patch(m["name"], {"status": patch}, subresource="status")
        except ApiError as e:
            if e.code == 404:
                return status["phase"]      # gone (or a mirror pod not created yet)
            raise
        if not self.static and updated["metadata"].get("uid") == self.uid:
            self.pod = updated
        else:
            self.pod = {**self.pod, "status": status}
        self.last_status = status
        return status["phase"]
