"""A pod's containers: start (image, env, mounts, back-off), hooks, probes, stop.

The container half of a PodWorker (mixed into it): it works on the worker's
records, sandbox and pod, and reports through its events and wake-ups.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from k8py.kubelet import hooks
from k8py.kubelet.env import ContainerConfigError, EnvSources, container_env, expand_command
from k8py.kubelet.image_puller import ImagePullFailed, ensure_image
from k8py.kubelet.pod_dns import hostname_and_domain
from k8py.kubelet.probes import ContainerProbes
from k8py.kubelet.resources import container_config
from k8py.kubelet.runtime.interface import (LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE,
                                            LABEL_POD_UID, LABEL_RESTART_COUNT, ContainerStatus, Mount)
from k8py.kubelet.status import ContainerRecord
from k8py.kubelet.volumes import VolumeError

log = logging.getLogger("k8py.kubelet.pod")

RETRY_SECONDS = 2.0
# Not in the shared label set: lets a restarted kubelet tell a changed container spec too.
LABEL_CONTAINER_HASH = "io.kubernetes.container.hash"


def container_hash(c: dict) -> str:
    """A digest of a container's spec; a running container whose spec changed is restarted."""
    import hashlib

    import orjson
    return hashlib.sha256(orjson.dumps(c, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


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



def _needs_pod_ip(c: dict) -> bool:
    """Whether the container's environment names the pod IP (so it is created after the network)."""
    return any(((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
               in ("status.podIP", "status.podIPs") for e in c.get("env") or [])


def pod_description(pod: dict) -> str:
    m = pod.get("metadata") or {}
    return f"{m.get('name', '')}_{m.get('namespace', '')}({m.get('uid', '')})"


class ContainerLifecycle:
    """Mixed into PodWorker, whose ctx, pod, uid, records, sandbox, probers and wake() it uses."""

    def _name_image(self, rec: ContainerRecord, image: str) -> None:
        """Report the image the way a CRI runtime does: full name and repo digest."""
        info = self.ctx.images.get(image) if self.ctx.images is not None else None
        if info is not None:
            rec.image_name = (info.repo_tags or [""])[0]
            rec.image_ref = (info.repo_digests or [info.id])[0]

    async def _start_container(self, c: dict, is_init: bool, restart: bool = False,
                               pid_namespace_of: str | None = None) -> bool:
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
        if _needs_pod_ip(c) and not await self._await_network():
            return False
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
                  LABEL_CONTAINER_NAME: name, LABEL_RESTART_COUNT: str(restart_count),
                  LABEL_CONTAINER_HASH: container_hash(c)}
        term_file = self._termination_file(c, restart_count, mounts)
        config = container_config(self.pod, c, image, env, command, args, mounts, labels,
                                  self._log_path(name, restart_count))
        config.pid_namespace_of = pid_namespace_of
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
        if not await self._await_network():       # no container process runs before its network
            await self._remove_quietly(cid)
            return False
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
            if c["name"] in self.probers or c["name"] in self._killing or not self._running(rec):
                continue          # (a container being killed is not probed again: it gets a new prober)
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
            if name in self._killing:
                return        # already on its way out
            self._event("Normal", "Killing", f"Container {name} failed {kind} probe, will be restarted", name)
            rec.ready = False
            # Marked now, not when the task first runs: a sync in between must neither probe it
            # again nor take it for a container that needs nothing.
            self._killing.add(name)
            asyncio.create_task(self._kill_for_restart(name))
        self.wake()

    async def _kill_for_restart(self, name: str) -> None:
        rec = self.records[name]
        self._killing.add(name)
        try:
            prober = self.probers.pop(name, None)
            if prober:
                prober.stop()
            # The Killing event that says why was already recorded.
            await self._kill_container(rec, self._grace(), run_pre_stop=True, reason_message=None)
        finally:
            self._killing.discard(name)
            self.wake()

    def _env_sources(self) -> EnvSources:
        return self.ctx.env_sources(self.pod)

    def _mounts(self, c: dict, env) -> list:
        if self.ctx.volumes is None:
            return []
        mounts = self.ctx.volumes.container_mounts(self.pod, c, self.volume_paths or {}, env)
        taken = {m.container_path for m in mounts}
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
