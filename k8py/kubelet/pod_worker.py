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
import time
from pathlib import Path
from typing import Callable

from k8py.apimachinery import meta
from k8py.kubelet.containers import (LABEL_CONTAINER_HASH, ContainerLifecycle, container_hash, go_duration,
                                     pod_description, termination_message)
from k8py.kubelet.pod_dns import hostname_and_domain, write_pod_files
from k8py.kubelet.pod_status_writer import STATUS_KEYS, PodStatusReporting
from k8py.kubelet.probes import ContainerProbes
from k8py.kubelet.runtime.interface import (LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE,
                                            LABEL_POD_UID, LABEL_RESTART_COUNT, ContainerStatus, Sandbox,
                                            SandboxConfig)
from k8py.kubelet.status import ContainerRecord
from k8py.kubelet.volumes import VolumeError

__all__ = ["PodWorker", "STATUS_KEYS", "go_duration", "pod_description", "termination_message"]

log = logging.getLogger("k8py.kubelet.pod")

DEFAULT_GRACE = 30
RETRY_SECONDS = 2.0
MOUNT_RETRY_SECONDS = 0.5
MOUNT_RETRY_MAX_SECONDS = 122.0


class PodWorker(ContainerLifecycle, PodStatusReporting):
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
        self._network_setup: asyncio.Task | None = None      # CNI ADD under way
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
        self._volume_failures = 0
        self._volume_tick = False
        self._task: asyncio.Task | None = None
        self._killing: set[str] = set()
        self.initialized = False      # init containers done once: app containers may run
        self._definition_changed: set[str] = set()
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

    def _ephemeral_containers(self) -> list[dict]:
        return list(self._spec().get("ephemeralContainers") or [])

    def _all_containers(self) -> list[dict]:
        return self._init_containers() + self._app_containers() + self._ephemeral_containers()

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
                else "ephemeralContainers" if any(c["name"] == container for c in self._ephemeral_containers()) \
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
            await self._fail_pod("DeadlineExceeded", "Pod was active on the node longer than the specified "
                                                     "deadline", "Normal")
            return
        self._ensure_probers()
        if await self._ensure_sandbox() and await self._ensure_volumes():
            over = self._empty_dir_over_limit()
            if over:
                await self._fail_pod("Evicted", over, "Warning")
                return
            if await self._sync_init_containers():
                await self._sync_app_containers()
            await self._sync_ephemeral_containers()     # debugging a pod still in init works too
        await self._await_network()     # whatever happened above, the network is settled first
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

    async def _fail_pod(self, reason: str, message: str, event_type: str) -> None:
        """The kubelet ends the pod as a whole (deadline, eviction): stop everything, report Failed."""
        self.failure = (reason, message)
        self._event(event_type, reason, message)
        self.terminal = True
        await self._stop_all(self._grace(), reason_message="")
        await self.publish_status()
        await self._release_network()

    def _empty_dir_over_limit(self) -> str | None:
        """The eviction message when a disk-backed emptyDir outgrew its sizeLimit (checked on
        each volume refresh tick, not on every sync)."""
        if self.ctx.volumes is None or not self._volume_tick:
            return None
        from k8py.kubelet.volumes import emptydir
        for volume in self._spec().get("volumes") or []:
            path = (self.volume_paths or {}).get(volume.get("name"))
            if "emptyDir" in volume and path is not None and emptydir.size_exceeded(volume, path):
                return (f'Usage of EmptyDir volume "{volume["name"]}" exceeds the limit '
                        f'"{volume["emptyDir"]["sizeLimit"]}". ')
        return None

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
                self.network_ready = True
            elif self._network_setup is None:
                # Wired while the first container is being created (runc create does most of a
                # start's work): _await_network() is where the two meet again, before any
                # container process runs and before any status is written.
                self._network_setup = asyncio.create_task(self.ctx.network.setup(self.sandbox, self.pod))
        except Exception as e:
            log.warning("pod %s: sandbox failed: %s", pod_description(self.pod), e)
            self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            self.wake(RETRY_SECONDS * 2)
            return False
        return True

    async def _await_network(self) -> bool:
        """Whether the pod network is up, waiting for a setup under way."""
        if self.network_ready or self._network_setup is None:
            return self.network_ready
        try:
            ip = await asyncio.shield(self._network_setup)       # a cancelled sync must not abandon a half-wired pod
        except Exception as e:
            self._network_setup = None
            log.warning("pod %s: sandbox failed: %s", pod_description(self.pod), e)
            self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            self.wake(RETRY_SECONDS * 2)
            return False
        self._network_setup = None
        self.sandbox.ip = ip
        self.pod_ips = [ip]
        self.network_ready = True
        if self.pod_files and self.ctx.volumes is not None:
            # /etc/hosts names the pod's own IP: rewritten in place, before any container runs.
            self.pod_files = write_pod_files(self.ctx.volumes.pod_dir(self.uid), self.pod, self.pod_ips,
                                             self.ctx.dns)
        return True

    def _has_refreshed_volumes(self) -> bool:
        """Volumes that need a look now and then: API-backed content, emptyDir size limits."""
        from k8py.kubelet.volumes import REFRESHED
        return self.ctx.volumes is not None and any(
            any(k in v for k in REFRESHED) or (v.get("emptyDir") or {}).get("sizeLimit")
            for v in self._spec().get("volumes") or [])

    async def _ensure_volumes(self) -> bool:
        if self.ctx.volumes is None:
            self.volume_paths = {v.get("name"): None for v in self._spec().get("volumes") or []}
            return True
        if self.volume_paths is None and time.monotonic() < self._volume_retry_at:
            return False            # a pod update must not turn a failing mount into a busy loop
        self._volume_tick = False
        try:
            if self.volume_paths is None:
                self.volume_paths = await self.ctx.volumes.setup(self.pod)
                self._next_volume_refresh = time.monotonic() + self.ctx.volume_refresh_seconds
            elif time.monotonic() >= self._next_volume_refresh:
                self._next_volume_refresh = time.monotonic() + self.ctx.volume_refresh_seconds
                self._volume_tick = True
                await self.ctx.volumes.refresh(self.pod)
            if self.ctx.write_pod_files:
                self.pod_files = write_pod_files(self.ctx.volumes.pod_dir(self.uid), self.pod, self.pod_ips,
                                                 self.ctx.dns)
        except VolumeError as e:
            if self.volume_paths is not None:      # a refresh failed: keep running on the old content
                log.info("pod %s: %s", pod_description(self.pod), e)
                return True
            self._event("Warning", "FailedMount", str(e))
            # Upstream's volume operations back off exponentially (0.5 s doubling to 2m2s).
            delay = min(MOUNT_RETRY_SECONDS * 2 ** self._volume_failures, MOUNT_RETRY_MAX_SECONDS)
            self._volume_failures += 1
            self._volume_retry_at = time.monotonic() + delay
            self.wake(delay)
            return False
        self._volume_failures = 0
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
            cur = await self._drop_never_started(rec)
            if cur is None:
                await self._start_container(c, is_init=True)
            elif cur.state == "running":
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

    async def _drop_never_started(self, rec: ContainerRecord) -> ContainerStatus | None:
        """A container a previous agent created but did not live to start is replaced: what it
        was created from (env, pod IP) may be stale by now."""
        if rec.current is not None and rec.current.state == "created":
            await self._remove_quietly(rec.current.id)
            rec.current = None
        return rec.current

    def restart_owed(self) -> bool:
        """A container is being stopped to be restarted, or must start again with a changed
        definition: the pod is not finished even if nothing runs at this moment."""
        return bool(self._killing or self._definition_changed)

    @staticmethod
    def _running(rec: ContainerRecord) -> bool:
        return rec.current is not None and rec.current.state == "running" and not rec.waiting_reason

    async def _sync_app_containers(self) -> None:
        policy = self._spec().get("restartPolicy", "Always")
        for c in self._app_containers():
            rec = self.records[c["name"]]
            if c["name"] in self._killing:
                continue
            cur = await self._drop_never_started(rec)
            if cur is None:
                await self._start_container(c, is_init=False)
            elif cur.state == "exited":
                # A changed definition restarts the container whatever the policy; it stays owed
                # until a start succeeds (the new image may need pulls and retries first).
                owed = c["name"] in self._definition_changed
                if policy == "Always" or (policy == "OnFailure" and cur.exit_code != 0) or owed:
                    if await self._start_container(c, is_init=False, restart=True):
                        self._definition_changed.discard(c["name"])
            elif cur.state == "running" and cur.labels.get(LABEL_CONTAINER_HASH, container_hash(c)) \
                    != container_hash(c):
                # The pod's spec changed this container (e.g. a new image): replace it.
                self._event("Normal", "Killing", f"Container {c['name']} definition changed, will be restarted",
                            c["name"])
                self._definition_changed.add(c["name"])
                self.ctx.crash_backoff.reset(f"{self.uid}/{c['name']}")
                self._killing.add(c["name"])
                asyncio.create_task(self._kill_for_restart(c["name"]))

    async def _sync_ephemeral_containers(self) -> None:
        """Ephemeral (debug) containers start once and never restart, as upstream's. One
        with targetContainerName joins that container's process namespace, so it waits
        until the target runs; the others share the pod's namespaces like any container."""
        for c in self._ephemeral_containers():
            rec = self.records[c["name"]]
            if rec.current is not None:
                continue
            target = c.get("targetContainerName")
            target_id = None
            if target:
                target_rec = self.records.get(target)
                if target_rec is None or not self._running(target_rec):
                    continue        # its start (a container event) wakes the worker again
                target_id = target_rec.current.id
            await self._start_container(c, is_init=False, pid_namespace_of=target_id)

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

    def _grace(self) -> float:
        m, spec = self.pod["metadata"], self._spec()
        if m.get("deletionGracePeriodSeconds") is not None:
            return float(m["deletionGracePeriodSeconds"])
        value = spec.get("terminationGracePeriodSeconds")
        return float(DEFAULT_GRACE if value is None else value)

    async def _release_network(self) -> None:
        if self._network_setup is not None:
            await self._await_network()         # finish (or fail) first, then undo it
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
