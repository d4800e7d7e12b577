"""The node lifecycle controller (`--controllers` name: node-lifecycle; events from node-controller).

Every --node-monitor-period it looks at each Node and its Lease in
kube-node-lease. A node whose kubelet has shown no life (no lease renewal, no
new Ready condition) for --node-monitor-grace-period (--node-startup-grace-period
while it never posted) gets its Ready, MemoryPressure, DiskPressure and
PIDPressure conditions set Unknown ("NodeStatusUnknown", "Kubelet stopped
posting node status."), a NodeNotReady event, and its pods' Ready condition
False, so Services stop sending them traffic.

Taints say the rest (upstream's taint-based eviction):
- NoSchedule taints mirror the conditions (not-ready, unreachable, the
  pressures, network-unavailable) and a cordon (unschedulable), updated on
  every Node change: the scheduler keeps new pods off the node.
- a NoExecute not-ready / unreachable taint follows a Ready condition that is
  False / Unknown, added through each zone's rate-limited queue (zones.py).
  The taint eviction controller then deletes the pods that do not tolerate it,
  after their tolerationSeconds (300 s from DefaultTolerationSeconds admission).
When the node is Ready again, the NoExecute taints go at once.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import defaultdict

from k8py.apimachinery import meta
from k8py.client import ApiError, EventRecorder, Informer
from k8py.controllers.nodelifecycle import health as nh
from k8py.controllers.nodelifecycle.zones import EvictionSettings, Zones, excluded_from_disruption, zone_key

log = logging.getLogger("k8py.controllers.node-lifecycle")

COMPONENT = "node-controller"
LEASE_NAMESPACE = "kube-node-lease"
TAINT_PASS_SECONDS = 0.1        # upstream's nodeEvictionPeriod
CONFLICT_RETRIES = 5


def _timestamp(text: str | None) -> float | None:
    parsed = meta.parse_time(text) if text else None
    return parsed.timestamp() if parsed else None


class NodeLifecycleController:
    def __init__(self, client, monitor_period: float = 5.0, grace_period: float = 50.0,
                 startup_grace_period: float = 60.0, settings: EvictionSettings | None = None, clock=time.time,
                 informer_client=None):
        # `client` writes (as upstream's node-controller account); `informer_client` watches and
        # records events (the controller-manager's own identity, as upstream's shared informers)
        self.client = client
        informer_client = informer_client or client
        self.monitor_period = monitor_period
        self.grace_period = grace_period
        self.startup_grace_period = startup_grace_period
        self.clock = clock
        self.nodes_api = client.resource("v1", "nodes")
        self.nodes = Informer(informer_client, "v1", "nodes")
        self.pods = Informer(informer_client, "v1", "pods")
        self.pods.add_index("node", lambda p: [(p.get("spec") or {}).get("nodeName") or ""])
        self.leases = Informer(informer_client, "coordination.k8s.io/v1", "leases", namespace=LEASE_NAMESPACE)
        self.recorder = EventRecorder(informer_client, component=COMPONENT)
        self.zones = Zones(settings or EvictionSettings())
        self.health: dict[str, nh.NodeHealth] = {}
        self.known: dict[str, dict] = {}          # nodes seen by the last pass (RegisteredNode / RemovingNode)
        self.pods_to_retry: set[str] = set()      # nodes whose pods could not all be marked not Ready
        self._no_schedule_dirty: set[str] = set()
        self._no_schedule_wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    async def run(self) -> None:
        self.nodes.add_handler(lambda n: self._node_changed(n), lambda o, n: self._node_changed(n))
        self.pods.add_handler(lambda p: self._pod_changed(p), lambda o, p: self._pod_changed(p))
        await self.leases.start()
        await self.pods.start()
        await self.nodes.start()
        loops = [asyncio.create_task(self._monitor_loop()), asyncio.create_task(self._taint_loop()),
                 asyncio.create_task(self._no_schedule_loop())]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in [*loops, *self._tasks]:
                task.cancel()
            await asyncio.gather(*loops, *self._tasks, return_exceptions=True)
            await self.nodes.stop()
            await self.pods.stop()
            await self.leases.stop()
            await self.recorder.close()

    # -- loops

    async def _monitor_loop(self) -> None:
        while True:
            try:
                await self.monitor()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("node health pass failed")
            await asyncio.sleep(self.monitor_period)

    async def _taint_loop(self) -> None:
        while True:
            try:
                await self.taint_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("NoExecute tainting pass failed")
            await asyncio.sleep(TAINT_PASS_SECONDS)

    async def _no_schedule_loop(self) -> None:
        while True:
            await self._no_schedule_wake.wait()
            self._no_schedule_wake.clear()
            names, self._no_schedule_dirty = self._no_schedule_dirty, set()
            for name in names:
                try:
                    await self.sync_no_schedule(name)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.warning("NoSchedule taints of node %s: %s; retrying", name, e)
                    self._no_schedule_dirty.add(name)
            if self._no_schedule_dirty:
                await asyncio.sleep(1)
                self._no_schedule_wake.set()

    # -- handlers

    def _node_changed(self, node: dict) -> None:
        self._no_schedule_dirty.add(node["metadata"]["name"])
        self._no_schedule_wake.set()

    def _pod_changed(self, pod: dict) -> None:
        """A pod landing on (or changing on) a node that is not Ready is marked not Ready too."""
        node_name = (pod.get("spec") or {}).get("nodeName")
        known = self.health.get(node_name or "")
        if known is None or known.ready is None or known.ready.get("status") == "True":
            return
        if nh.pod_not_ready_status(pod, meta.rfc3339()) is not None:
            self._spawn(self._mark_pods_not_ready([pod]))

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the monitor pass

    async def monitor(self) -> None:
        nodes = self.nodes.list()
        names = {n["metadata"]["name"] for n in nodes}
        for node in nodes:
            name = node["metadata"]["name"]
            if name not in self.known:
                self._node_event(node, "Normal", "RegisteredNode",
                                 f"Node {name} event: Registered Node {name} in Controller")
                self.zones.queue(zone_key(node))
                await self.mark_reachable(node)
            self.known[name] = node
        for name in [n for n in self.known if n not in names]:
            gone = self.known.pop(name)
            self.health.pop(name, None)
            self.pods_to_retry.discard(name)
            self._node_event(gone, "Normal", "RemovingNode", f"Node {name} event: Removing Node {name} from Controller")

        ready_by_zone: dict[str, list[str | None]] = defaultdict(list)
        for node in nodes:
            try:
                node, observed, current = await self.update_health(node)
            except ApiError as e:
                log.warning("node %s: updating its health failed: %s; no pods will be evicted",
                            node["metadata"]["name"], e)
                continue
            if not excluded_from_disruption(node):
                ready_by_zone[zone_key(node)].append(current.get("status") if current else None)
            if current is None:
                continue
            await self.taint_for_eviction(node, observed)
            name = node["metadata"]["name"]
            mark = False
            if current.get("status") != "True" and observed.get("status") == "True":
                self._node_event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
                mark = True
            elif name in self.pods_to_retry and observed.get("status") != "True":
                mark = True
            if mark and not await self._mark_pods_not_ready(self.pods.by_index("node", name)):
                self.pods_to_retry.add(name)
                continue
            self.pods_to_retry.discard(name)

        change = self.zones.observe(dict(ready_by_zone))
        if change == "enter-full-disruption":
            log.info("every node is not Ready: entering master disruption mode, no node is tainted NoExecute")
            for node in nodes:
                await self.mark_reachable(node)
        elif change == "exit-full-disruption":
            log.info("some nodes are Ready again: leaving master disruption mode")
            now = self.clock()
            for known in self.health.values():
                known.probe = now

    async def update_health(self, node: dict) -> tuple[dict, dict, dict | None]:
        """(node, Ready condition as observed, Ready condition now): conditions go Unknown when the
        kubelet has been silent longer than its grace period."""
        name = node["metadata"]["name"]
        now = self.clock()
        observed = nh.condition(node, "Ready")
        created = _timestamp(node["metadata"].get("creationTimestamp")) or now
        grace = self.grace_period
        if observed is None:
            observed = {"type": "Ready", "status": "Unknown"}
            grace = self.startup_grace_period
        lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}")
        known = self.health[name] = nh.observe(self.health.get(name), node, lease, now, created)
        current = nh.condition(node, "Ready")
        if now <= known.probe + grace:
            return node, observed, current
        stale = nh.stale_conditions(node, meta.rfc3339())
        if stale is None:
            return node, observed, current
        log.info("node %s: kubelet silent for %.0fs; its conditions are now Unknown", name, now - known.probe)
        for attempt in range(CONFLICT_RETRIES):
            body = copy.deepcopy(node)
            body.setdefault("status", {})["conditions"] = stale
            try:
                node = await self.nodes_api.update_status(body)
                break
            except ApiError as e:
                if e.code != 409 or attempt == CONFLICT_RETRIES - 1:
                    raise
                node = await self.nodes_api.get(name)
                stale = nh.stale_conditions(node, meta.rfc3339())
                if stale is None:
                    return node, observed, nh.condition(node, "Ready")
        current = nh.condition(node, "Ready")
        # Our own write is not a heartbeat.
        known.ready = copy.deepcopy(current)
        return node, observed, current

    # -- NoExecute taints

    async def taint_for_eviction(self, node: dict, observed: dict) -> None:
        status = observed.get("status")
        taints = (node.get("spec") or {}).get("taints")
        if status in ("False", "Unknown"):
            wanted, opposite = (nh.NOT_READY, nh.UNREACHABLE) if status == "False" else (nh.UNREACHABLE, nh.NOT_READY)
            if nh.has_taint(taints, opposite, "NoExecute"):
                # The other one is already there: swap at once, outside the rate limit.
                await self.swap_no_execute(node["metadata"]["name"], wanted, opposite)
                return
            queue = self.zones.queue(zone_key(node))
            if not nh.has_taint(taints, wanted, "NoExecute"):
                queue.remove(node["metadata"]["name"])
            if queue.add(node["metadata"]["name"]):
                log.info("node %s is %s: queued for the %s NoExecute taint", node["metadata"]["name"],
                         "NotReady" if status == "False" else "unreachable", wanted)
        elif status == "True":
            await self.mark_reachable(node)

    async def mark_reachable(self, node: dict) -> None:
        name = node["metadata"]["name"]
        taints = (node.get("spec") or {}).get("taints")
        if nh.has_taint(taints, nh.NOT_READY, "NoExecute") or nh.has_taint(taints, nh.UNREACHABLE, "NoExecute"):
            await self.change_taints(name, [], [{"key": nh.NOT_READY, "effect": "NoExecute"},
                                                {"key": nh.UNREACHABLE, "effect": "NoExecute"}])
        self.zones.queue(zone_key(node)).remove(name)

    async def taint_pass(self) -> None:
        """Taint what the zone queues let through now."""
        for zone, queue in list(self.zones.queues.items()):
            while (name := queue.try_next()) is not None:
                ok = await self._taint_queued(name)
                queue.done(name, ok, 0.05)
                if not ok:
                    break

    async def _taint_queued(self, name: str) -> bool:
        node = self.nodes.get(name)
        status = nh.ready_status(node) if node else None
        if status not in ("False", "Unknown"):
            return True          # gone, or Ready again: nothing to do
        wanted, opposite = (nh.NOT_READY, nh.UNREACHABLE) if status == "False" else (nh.UNREACHABLE, nh.NOT_READY)
        try:
            await self.swap_no_execute(name, wanted, opposite)
        except ApiError as e:
            log.warning("node %s: adding the %s taint failed: %s", name, wanted, e)
            return False
        return True

    async def swap_no_execute(self, name: str, add_key: str, remove_key: str) -> None:
        await self.change_taints(name, [{"key": add_key, "effect": "NoExecute", "timeAdded": meta.rfc3339()}],
                                 [{"key": remove_key, "effect": "NoExecute"}])

    # -- NoSchedule taints

    async def sync_no_schedule(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            return
        add, remove = nh.no_schedule_changes(node)
        if add or remove:
            await self.change_taints(name, add, remove)

    async def change_taints(self, name: str, add: list[dict], remove: list[dict]) -> None:
        """Read-modify-write of spec.taints, again on a conflict; a deleted node is left alone."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                node = await self.nodes_api.get(name)
            except ApiError as e:
                if e.not_found:
                    return
                raise
            taints = nh.retainted((node.get("spec") or {}).get("taints"), add, remove)
            if taints is None:
                return
            node.setdefault("spec", {})["taints"] = taints
            if not taints:
                del node["spec"]["taints"]
            try:
                await self.nodes_api.update(node)
                return
            except ApiError as e:
                if e.not_found:
                    return
                if e.code != 409 or attempt == CONFLICT_RETRIES - 1:
                    raise

    # -- pods and events

    async def _mark_pods_not_ready(self, pods: list[dict]) -> bool:
        """Ready=False on each pod (a NodeNotReady warning on it); False if a write failed."""
        ok = True
        for pod in pods:
            status = nh.pod_not_ready_status(pod, meta.rfc3339())
            if status is None:
                continue
            body = copy.deepcopy(pod)
            body["status"] = status
            namespace = pod["metadata"]["namespace"]
            try:
                await self.client.resource("v1", "pods", namespace).update_status(body)
            except ApiError as e:
                if e.not_found:
                    continue
                log.info("pod %s/%s: marking it not Ready failed: %s", namespace, pod["metadata"]["name"], e)
                ok = False
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")
        return ok

    def _node_event(self, node: dict, type_: str, reason: str, message: str) -> None:
        ref = {"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": node["metadata"]["name"], "uid": node["metadata"].get("uid", "")}}
        self.recorder.event(ref, type_, reason, message)


OPTION_NAMES = ("node_monitor_period", "node_monitor_grace_period", "node_startup_grace_period",
                "node_eviction_rate", "secondary_node_eviction_rate", "unhealthy_zone_threshold",
                "large_cluster_size_threshold")


def node_lifecycle_options(args) -> dict:
    """The controller's options from parsed flags (kube-controller-manager's names)."""
    return {name: getattr(args, name) for name in OPTION_NAMES if getattr(args, name, None) is not None}


def _option(value, default: float) -> float:
    """An option's value, or its default when the flag was not given (0 is a value)."""
    return float(value) if value is not None else default


class NodeLifecycleManaged:
    """How the controller-manager runs it, with kube-controller-manager's flags as options."""
    name = "node-lifecycle"

    def __init__(self, ctx):
        self.ctx = ctx

    async def run(self) -> None:
        o = getattr(self.ctx, "options", None) or {}
        defaults = EvictionSettings()
        settings = EvictionSettings(
            node_eviction_rate=_option(o.get("node_eviction_rate"), defaults.node_eviction_rate),
            secondary_node_eviction_rate=_option(o.get("secondary_node_eviction_rate"),
                                                  defaults.secondary_node_eviction_rate),
            unhealthy_zone_threshold=_option(o.get("unhealthy_zone_threshold"), defaults.unhealthy_zone_threshold),
            large_cluster_size_threshold=int(_option(o.get("large_cluster_size_threshold"),
                                                      defaults.large_cluster_size_threshold)))
        controller = NodeLifecycleController(
            self.ctx.client, monitor_period=_option(o.get("node_monitor_period"), 5.0),
            grace_period=_option(o.get("node_monitor_grace_period"), 50.0),
            startup_grace_period=_option(o.get("node_startup_grace_period"), 60.0), settings=settings,
            informer_client=getattr(self.ctx, "informer_client", None))
        await controller.run()
