"""The Node object: registration, heartbeat Lease, status updates, podCIDR.

Like the kubelet: the Lease in kube-node-lease is the heartbeat (renewed every
quarter of its 40 s duration); the Node's status is reported when it changes
(compared with the Node the API has, so conditions the node lifecycle
controller turned Unknown are put right at once) and at least every 5
minutes, so a steady node writes its Node rarely.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from k8py.apimachinery import meta
from k8py.kubelet import hostinfo

log = logging.getLogger("k8py.kubelet.node")

KUBELET_VERSION = "v1.32.0-k8py"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
STATUS_CHECK_SECONDS = 10.0
STATUS_REPORT_SECONDS = 300.0
NOT_READY_AT_START = "container runtime status check may not have completed yet"

# (condition type) -> (status when fine, reason, message) and the same when under pressure.
PRESSURE_TEXT = {
    "MemoryPressure": (("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                       ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available")),
    "DiskPressure": (("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                     ("KubeletHasDiskPressure", "kubelet has disk pressure")),
    "PIDPressure": (("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    ("KubeletHasInsufficientPID", "kubelet has insufficient PID available")),
}


@dataclass
class NodeConfig:
    name: str
    data_dir: Path
    runtime_version: str = "runc://1.1.5"     # "<runtime>://<version>"
    control_plane: bool = False
    node_ip: str = "127.0.0.1"
    hostname: str = ""
    kubelet_port: int = 10250
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict] = field(default_factory=list)
    max_pods: int = hostinfo.MAX_PODS
    # Hollow nodes report fixed numbers instead of reading the host.
    fixed_capacity: dict | None = None
    lease_duration_seconds: int = LEASE_DURATION_SECONDS


def node_labels(config: NodeConfig) -> dict[str, str]:
    arch = hostinfo.arch()
    labels = {
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": config.hostname or config.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k8py",
    }
    if config.control_plane:
        # k3s marks its server node with both role labels.
        labels["node-role.kubernetes.io/control-plane"] = "true"
        labels["node-role.kubernetes.io/master"] = "true"
    labels.update(config.labels)
    return labels


def node_conditions(ready: bool, not_ready_message: str, pressure: dict[str, bool], previous: list[dict],
                    now: str) -> list[dict]:
    old = {c.get("type"): c for c in previous or []}

    def cond(ctype: str, status: str, reason: str, message: str) -> dict:
        prev = old.get(ctype)
        transition = prev["lastTransitionTime"] if prev and prev.get("status") == status \
            and prev.get("lastTransitionTime") else now
        return {"type": ctype, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": transition,
                "reason": reason, "message": message}

    out = []
    for ctype, (fine, bad) in PRESSURE_TEXT.items():
        under = pressure.get(ctype, False)
        reason, message = bad if under else fine
        out.append(cond(ctype, "True" if under else "False", reason, message))
    if ready:
        out.append(cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"))
    else:
        out.append(cond("Ready", "False", "KubeletNotReady", not_ready_message))
    return out


def node_status(config: NodeConfig, ready: bool, not_ready_message: str, previous: dict | None,
                images: list[dict] | None = None) -> dict:
    now = meta.rfc3339()
    if config.fixed_capacity is not None:
        capacity = dict(config.fixed_capacity)
        allocatable = dict(config.fixed_capacity)
        pressure = {}
    else:
        capacity, allocatable = hostinfo.capacity(config.data_dir, config.max_pods)
        pressure = hostinfo.pressure(config.data_dir)
    status = {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": node_conditions(ready, not_ready_message, pressure,
                                      (previous or {}).get("conditions") or [], now),
        "addresses": [{"type": "InternalIP", "address": config.node_ip},
                      {"type": "Hostname", "address": config.hostname or config.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port}},
        "nodeInfo": _node_info(config),
    }
    if images:
        status["images"] = images
    return status


_NODE_INFO_CACHE: dict[tuple[str, str], dict] = {}


def _node_info(config: NodeConfig) -> dict:
    key = (config.runtime_version, KUBELET_VERSION)
    if key not in _NODE_INFO_CACHE:      # hollow nodes share one copy of the host facts
        _NODE_INFO_CACHE[key] = hostinfo.system_info(config.runtime_version, KUBELET_VERSION)
    return dict(_NODE_INFO_CACHE[key])


def new_node(config: NodeConfig, ready: bool, not_ready_message: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": config.name, "labels": node_labels(config),
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                     "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"taints": list(config.taints)} if config.taints else {},
        "status": node_status(config, ready, not_ready_message, None),
    }


def _comparable(status: dict) -> dict:
    """A status without heartbeat times, to tell a real change from a heartbeat."""
    copy = dict(status)
    copy["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                          for c in status.get("conditions") or []]
    return copy


class NodeManager:
    """Registers the Node, keeps its Lease fresh and its status current."""

    def __init__(self, client, config: NodeConfig, recorder=None, images_fn=None):
        self.client = client
        self.config = config
        self.recorder = recorder
        self.images_fn = images_fn                 # () -> list of node status image entries
        self.nodes = client.resource("v1", "nodes")
        self.leases = client.resource("coordination.k8s.io/v1", "leases", namespace=LEASE_NAMESPACE)
        self.node: dict | None = None
        # Like the kubelet, a node starts NotReady and turns Ready once its runtime,
        # network and pod watch are up (set_ready from the agent).
        self.ready = False
        self.not_ready_message = NOT_READY_AT_START
        self._last_reported: dict | None = None
        self._last_report_time = 0.0
        self._tasks: list[asyncio.Task] = []
        self._wake = asyncio.Event()

    @property
    def pod_cidr(self) -> str | None:
        return ((self.node or {}).get("spec") or {}).get("podCIDR")

    async def register(self) -> dict:
        """Create the Node, or take over the one already there (a restarted kubelet)."""
        from k8py.client import ApiError
        body = new_node(self.config, self.ready, self.not_ready_message)
        try:
            self.node = await self.nodes.create(body)
            if self.recorder:
                self._record("Normal", "Starting", "Starting kubelet.")
                self._record("Normal", "NodeHasSufficientMemory",
                             f"Node {self.config.name} status is now: NodeHasSufficientMemory")
                self._record("Normal", "NodeHasNoDiskPressure",
                             f"Node {self.config.name} status is now: NodeHasNoDiskPressure")
                self._record("Normal", "NodeHasSufficientPID",
                             f"Node {self.config.name} status is now: NodeHasSufficientPID")
        except ApiError as e:
            if e.code != 409:
                raise
            existing = await self.nodes.get(self.config.name)
            labels = {**(existing["metadata"].get("labels") or {}), **node_labels(self.config)}
            self.node = await self.nodes.patch(self.config.name, {"metadata": {"labels": labels}})
            if self.recorder:
                self._record("Normal", "Starting", "Starting kubelet.")
        # The create path drops status: write it through the status subresource.
        await self.report_status(force=True)
        await self.renew_lease()
        return self.node

    def _record(self, type_: str, reason: str, message: str) -> None:
        ref = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.config.name,
                                                                  "uid": self.config.name}}
        self.recorder.event(ref, type_, reason, message)

    def set_ready(self, ready: bool, message: str = "") -> None:
        if (ready, message) != (self.ready, self.not_ready_message):
            self.ready, self.not_ready_message = ready, message
            self._wake.set()

    async def report_status(self, force: bool = False) -> None:
        previous = (self.node or {}).get("status")
        images = self.images_fn() if self.images_fn else None
        status = node_status(self.config, self.ready, self.not_ready_message, previous, images)
        due = time.monotonic() - self._last_report_time >= STATUS_REPORT_SECONDS
        if not force and not due and self._last_reported == _comparable(status) \
                and _condition_statuses(previous) == _condition_statuses(status):
            return
        was_ready = _is_ready(previous)
        self.node = await self.nodes.patch(self.config.name, {"status": status}, subresource="status")
        self._last_reported = _comparable(status)
        self._last_report_time = time.monotonic()
        if self.recorder and self.ready and not was_ready:
            self._record("Normal", "NodeReady", f"Node {self.config.name} status is now: NodeReady")

    async def renew_lease(self) -> None:
        from k8py.client import ApiError
        now = meta.rfc3339_micro()
        spec = {"holderIdentity": self.config.name, "leaseDurationSeconds": self.config.lease_duration_seconds,
                "renewTime": now}
        try:
            await self.leases.patch(self.config.name, {"spec": spec})
        except ApiError as e:
            if e.code != 404:
                raise
            owner = {"apiVersion": "v1", "kind": "Node", "name": self.config.name,
                     "uid": (self.node or {}).get("metadata", {}).get("uid", "")}
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": self.config.name, "namespace": LEASE_NAMESPACE,
                                  "ownerReferences": [owner]},
                     "spec": spec}
            try:
                await self.leases.create(lease)
            except ApiError as e2:
                if e2.code != 409:
                    raise

    async def refresh(self) -> dict:
        self.node = await self.nodes.get(self.config.name)
        return self.node

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._lease_loop()), asyncio.create_task(self._status_loop())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.lease_duration_seconds / 4)
            try:
                await self.renew_lease()
            except Exception as e:          # the API may be briefly away: try again next period
                log.warning("node %s: renewing lease failed: %s", self.config.name, e)

    async def _status_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), STATUS_CHECK_SECONDS)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.refresh()       # the Node as the API has it: someone else may have changed it
                await self.report_status()
            except Exception as e:
                log.warning("node %s: status update failed: %s", self.config.name, e)
                if _is_not_found(e):
                    # Someone deleted our Node: register it again, as the kubelet does.
                    try:
                        await self.register()
                    except Exception as e2:
                        log.warning("node %s: re-registering failed: %s", self.config.name, e2)


def _condition_statuses(status: dict | None) -> dict:
    return {c.get("type"): c.get("status") for c in (status or {}).get("conditions") or []}


def _is_ready(status: dict | None) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (status or {}).get("conditions") or [])


def _is_not_found(e: Exception) -> bool:
    return getattr(e, "code", None) == 404


def pick_pod_cidr(cluster_cidr: str, used: set[str], prefix: int = 24) -> str | None:
    """The first free /24 of the cluster CIDR: used when no node IPAM controller set one."""
    import ipaddress
    net = ipaddress.ip_network(cluster_cidr, strict=False)
    if net.prefixlen > prefix:
        return str(net) if str(net) not in used else None
    for subnet in net.subnets(new_prefix=prefix):
        if str(subnet) not in used:
            return str(subnet)
    return None
