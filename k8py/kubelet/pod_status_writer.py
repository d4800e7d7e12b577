"""The pod status a worker reports: computed from its container records, written as a merge patch."""

from __future__ import annotations

from k8py.apimachinery import meta
from k8py.kubelet import qos
from k8py.kubelet.status import container_status, ephemeral_container_status, pod_conditions, pod_phase

STATUS_KEYS = ("phase", "conditions", "hostIP", "hostIPs", "podIP", "podIPs", "startTime", "qosClass",
               "containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses", "reason", "message")


class PodStatusReporting:
    """Mixed into PodWorker."""

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
        if phase in ("Succeeded", "Failed") and not terminal and self.restart_owed():
            phase = "Running"      # nor while a container is on its way to a restart
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
        ephemeral = [ephemeral_container_status(self.records[c["name"]], rt) for c in self._ephemeral_containers()]
        if ephemeral:
            status["ephemeralContainerStatuses"] = ephemeral
        if self.failure:
            status["phase"] = "Failed"
            status["reason"], status["message"] = self.failure
            status["conditions"] = pod_conditions(self.pod, "Failed", init, apps, False, now)
        return status

    async def publish_status(self, terminal: bool = False) -> str:
        status = self.compute_status(terminal)
        if status == self.last_status and _ready(self.pod.get("status")) == _ready(status):
            # Nothing new, and nobody else (the node lifecycle controller, while this node
            # looked dead) changed the pod's readiness behind our back.
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
        # Only the status is taken from the answer: spec and metadata come from the pod updates
        # (the watch), and an answer that crossed a newer update (kubectl replace) must not put the
        # old spec back, or the change would never be acted on.
        if not self.static and updated["metadata"].get("uid") == self.uid:
            self.pod = {**self.pod, "status": updated.get("status") or status}
        else:
            self.pod = {**self.pod, "status": status}
        self.last_status = status
        return status["phase"]


def _ready(status: dict | None) -> str | None:
    return next((c.get("status") for c in (status or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
