"""Liveness, readiness and startup probes: one asyncio task per probe per container.

Results go to a callback (container name, kind, ok); the pod worker turns
them into `ready`/`started` and restarts on liveness/startup failure.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from k8py.kubelet import probe_actions

log = logging.getLogger("k8py.kubelet.probes")

KINDS = ("startup", "liveness", "readiness")
TITLE = {"startup": "Startup", "liveness": "Liveness", "readiness": "Readiness"}


def probe_settings(probe: dict) -> dict:
    return {"initial": float(probe.get("initialDelaySeconds") or 0),
            "period": float(probe.get("periodSeconds") or 10),
            "timeout": float(probe.get("timeoutSeconds") or 1),
            "success": int(probe.get("successThreshold") or 1),
            "failure": int(probe.get("failureThreshold") or 3)}


async def run_probe(runtime, probe: dict, container: dict, container_id: str, pod_ip: str) -> tuple[bool, str]:
    timeout = probe_settings(probe)["timeout"]
    if probe.get("exec"):
        return await probe_actions.run_exec(runtime, container_id, probe["exec"].get("command") or [], timeout)
    if probe.get("httpGet"):
        ok, message, _ = await probe_actions.run_http_get(probe["httpGet"], container, pod_ip, timeout)
        return ok, message
    if probe.get("tcpSocket"):
        return await probe_actions.run_tcp(probe["tcpSocket"], container, pod_ip, timeout)
    if probe.get("grpc"):
        return False, "grpc probes are not supported by this kubelet"
    return True, ""


class ContainerProbes:
    """The probes of one running container instance."""

    def __init__(self, runtime, container: dict, container_id: str, pod_ip: str,
                 on_result: Callable[[str, str, bool, str], None], on_failure_event: Callable[[str, str], None]):
        self.runtime = runtime
        self.container = container
        self.container_id = container_id
        self.pod_ip = pod_ip
        self.on_result = on_result               # (container name, kind, ok, message)
        self.on_failure_event = on_failure_event  # (kind, message) -> Unhealthy event
        self.started = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def has(self, kind: str) -> bool:
        return bool(self.container.get(f"{kind}Probe"))

    def start(self) -> None:
        if not self.has("startup"):
            self.started.set()
        for kind in KINDS:
            if kind == "startup" and self.started.is_set():
                continue          # an adopted container that had already started
            if self.has(kind):
                self._tasks.append(asyncio.create_task(self._loop(kind),
                                                       name=f"probe {kind} {self.container.get('name')}"))

    def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        self._tasks = []

    async def _loop(self, kind: str) -> None:
        probe = self.container[f"{kind}Probe"]
        s = probe_settings(probe)
        name = self.container.get("name", "")
        if kind != "startup":
            await self.started.wait()
        await asyncio.sleep(s["initial"])
        successes = failures = 0
        last: bool | None = None
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                ok, message = await run_probe(self.runtime, probe, self.container, self.container_id, self.pod_ip)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                ok, message = False, str(e)
            if ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
                self.on_failure_event(kind, f"{TITLE[kind]} probe failed: {message.strip()}")
            result = None
            if ok and successes >= (s["success"] if kind == "readiness" else 1):
                result = True
            elif not ok and failures >= s["failure"]:
                result = False
            if result is not None and (result != last or (result is False and kind != "readiness")):
                last = result
                self.on_result(name, kind, result, message)
                if kind == "startup" and result:
                    self.started.set()
                    return
                if kind in ("liveness", "startup") and result is False:
                    return          # the container is being restarted; a new instance gets new probes
            # A ticker, as the kubelet's prober: a probe starts every period however long the last
            # one took; one that ran past the next tick is followed at once (no ticks made up).
            next_at = max(next_at + s["period"], loop.time())
            await asyncio.sleep(next_at - loop.time())
