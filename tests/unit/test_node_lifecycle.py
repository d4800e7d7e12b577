"""The node lifecycle controller's rules: heartbeats, stale conditions, condition taints, zone
states and tainting rates; its admission plugins (TaintNodesByCondition, DefaultTolerationSeconds)."""

from __future__ import annotations

import argparse
import copy
from types import SimpleNamespace

import pytest

from k8py.apiserver import default_tolerations, node_taint_admission
from k8py.apiserver.strategy import Strategy
from k8py.cli.controller_flags import go_duration
from k8py.client import ApiError
from k8py.controllers.nodelifecycle import health as nh
from k8py.controllers.nodelifecycle.controller import NodeLifecycleController
from k8py.controllers.nodelifecycle.zones import (FULL_DISRUPTION, NORMAL, PARTIAL_DISRUPTION, EvictionSettings,
                                                  TaintQueue, TokenBucket, Zones, tainting_rate, zone_key, zone_state)
from tests.unit.test_defaults import created, resource_of, seed


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def node(name: str, ready: str | None = "True", zone: str = "", taints=None, heartbeat="2026-01-01T00:00:00Z") -> dict:
    labels = {"topology.kubernetes.io/zone": zone} if zone else {}
    conditions = [] if ready is None else [
        {"type": "Ready", "status": ready, "reason": "KubeletReady", "lastHeartbeatTime": heartbeat,
         "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"}]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}", "labels": labels, "resourceVersion": "1",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"taints": list(taints or [])}, "status": {"conditions": conditions}}


# -- zones and rates

def test_zone_key_and_states():
    assert zone_key(node("a")) == ""
    assert zone_key(node("a", zone="z1")) == ":\x00:z1"
    assert zone_state(["True", "True"], 0.55) == (0, NORMAL)
    assert zone_state(["Unknown", None], 0.55) == (2, FULL_DISRUPTION)
    # two of three down: still Normal (a zone needs more than two unhealthy nodes to be unhealthy)
    assert zone_state(["False", "Unknown", "True"], 0.55) == (2, NORMAL)
    assert zone_state(["False", "Unknown", "Unknown", "True"], 0.55) == (3, PARTIAL_DISRUPTION)
    assert zone_state(["False", "Unknown", "Unknown", "True", "True", "True"], 0.55) == (3, NORMAL)


def test_tainting_rates_follow_zone_state_and_cluster_size():
    s = EvictionSettings()
    assert tainting_rate(NORMAL, 10, s) == 0.1
    assert tainting_rate(FULL_DISRUPTION, 10, s) == 0.1
    assert tainting_rate(PARTIAL_DISRUPTION, 50, s) == 0.0      # small clusters stop tainting
    assert tainting_rate(PARTIAL_DISRUPTION, 51, s) == 0.01


def test_token_bucket_and_queue_take_one_node_per_ten_seconds_at_the_default_rate():
    clock = Clock()
    bucket = TokenBucket(0.1, clock=clock)
    assert bucket.try_accept() and not bucket.try_accept()
    clock.now += 9.9
    assert not bucket.try_accept()
    clock.now += 10
    assert bucket.try_accept()

    queue = TaintQueue(0.1, clock=clock)
    assert queue.add("a") and queue.add("b") and not queue.add("a")
    assert queue.try_next() == "a"
    queue.done("a", True)
    assert queue.try_next() is None            # rate-limited
    clock.now += 10
    assert queue.try_next() == "b"
    queue.done("b", False, 0.0)                 # failed: tried again later, not lost
    clock.now += 10
    assert queue.try_next() == "b"
    queue.done("b", True)
    assert not queue.add("a")                   # handled nodes are remembered until removed
    queue.remove("a")
    assert queue.add("a")
    queue.swap_rate(0.0)
    clock.now += 100
    assert queue.try_next() is None


def test_zones_stop_tainting_when_every_zone_is_down_and_resume_after():
    clock = Clock()
    zones = Zones(EvictionSettings(), clock=clock)
    assert zones.observe({"z1": ["True", "True"], "z2": ["True"]}) is None
    assert zones.states == {"z1": NORMAL, "z2": NORMAL}
    # one zone wholly down, the other fine: that zone keeps the normal rate
    assert zones.observe({"z1": ["Unknown", "Unknown"], "z2": ["True"]}) is None
    assert zones.states["z1"] == FULL_DISRUPTION and zones.queues["z1"].limiter.rate == 0.1
    # everything down: the control plane is more likely cut off than every node dead
    assert zones.observe({"z1": ["Unknown", "Unknown"], "z2": ["Unknown"]}) == "enter-full-disruption"
    assert all(q.limiter.rate == 0 for q in zones.queues.values())
    assert zones.observe({"z1": ["Unknown", "Unknown"], "z2": ["Unknown"]}) is None
    assert zones.observe({"z1": ["Unknown", "Unknown"], "z2": ["True"]}) == "exit-full-disruption"
    assert zones.queues["z1"].limiter.rate == 0.1 and zones.queues["z2"].limiter.rate == 0.1
    # a large unhealthy zone is tainted at the secondary rate, a small one not at all
    assert zones.observe({"z1": ["Unknown"] * 3 + ["True"], "z2": ["True"]}) is None
    assert zones.states["z1"] == PARTIAL_DISRUPTION and zones.queues["z1"].limiter.rate == 0.0
    zones.observe({"z1": ["True"] * 4, "z2": ["True"]})
    assert zones.states["z1"] == NORMAL and zones.queues["z1"].limiter.rate == 0.1
    big = ["Unknown"] * 40 + ["True"] * 20      # (rates change with the state, as upstream)
    zones.observe({"z1": big, "z2": ["True"]})
    assert zones.queues["z1"].limiter.rate == 0.01


# -- node health

def test_heartbeats_come_from_lease_renewals_and_ready_changes():
    n = node("a")
    h = nh.observe(None, n, None, now=10, created=0)
    assert h.probe == 10
    h = nh.observe(h, n, None, now=20, created=0)
    assert h.probe == 10                        # nothing new
    lease = {"spec": {"renewTime": "2026-01-01T00:00:05.000000Z"}}
    h = nh.observe(h, n, lease, now=30, created=0)
    assert h.probe == 30
    h = nh.observe(h, n, lease, now=40, created=0)
    assert h.probe == 30                        # same renewal again
    beat = node("a", heartbeat="2026-01-01T00:01:00Z")
    assert nh.observe(h, beat, lease, now=50, created=0).probe == 50
    # a node that never posted is counted from its creation
    assert nh.observe(None, node("b", ready=None), None, now=99, created=7).probe == 7


def test_stale_conditions_turn_unknown_with_upstream_reasons():
    conditions = nh.stale_conditions(node("a"), "2026-01-02T00:00:00Z")
    by_type = {c["type"]: c for c in conditions}
    assert set(by_type) == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert by_type["Ready"]["reason"] == "NodeStatusUnknown"
    assert by_type["Ready"]["message"] == "Kubelet stopped posting node status."
    assert by_type["Ready"]["lastHeartbeatTime"] == "2026-01-01T00:00:00Z"   # kept: the last real one
    assert by_type["Ready"]["lastTransitionTime"] == "2026-01-02T00:00:00Z"
    assert by_type["DiskPressure"]["reason"] == "NodeStatusNeverUpdated"
    assert by_type["DiskPressure"]["message"] == "Kubelet never posted node status."
    assert all(c["status"] == "Unknown" for c in conditions)
    stale = node("a")
    stale["status"]["conditions"] = conditions
    assert nh.stale_conditions(stale, "2026-01-03T00:00:00Z") is None


def test_no_schedule_taints_mirror_conditions_and_cordon():
    n = node("a", ready="False", taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"},
                                         {"key": nh.UNREACHABLE, "effect": "NoSchedule"}])
    n["spec"]["unschedulable"] = True
    add, remove = nh.no_schedule_changes(n)
    assert {t["key"] for t in add} == {nh.NOT_READY, nh.UNSCHEDULABLE}
    assert [t["key"] for t in remove] == [nh.UNREACHABLE]
    taints = nh.retainted(n["spec"]["taints"], add, remove)
    assert [t["key"] for t in taints] == ["dedicated", nh.NOT_READY, nh.UNSCHEDULABLE]
    ok = node("a", taints=[{"key": nh.NOT_READY, "effect": "NoSchedule"}])
    assert nh.no_schedule_changes(ok) == ([], [{"key": nh.NOT_READY, "effect": "NoSchedule"}])
    assert nh.retainted(ok["spec"]["taints"], [{"key": nh.NOT_READY, "effect": "NoSchedule"}], []) is None


def test_pod_not_ready_status():
    pod = {"status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "t0"}]}}
    status = nh.pod_not_ready_status(pod, "t1")
    assert status["conditions"] == [{"type": "Ready", "status": "False", "lastTransitionTime": "t1"}]
    assert pod["status"]["conditions"][0]["status"] == "True"      # the cached pod is left alone
    assert nh.pod_not_ready_status({"status": {"conditions": status["conditions"]}}, "t2") is None
    assert nh.pod_not_ready_status({"status": {}}, "t2") is None


# -- the controller against a fake API

class FakeNodes:
    """The informer's view and the API of the same nodes."""

    def __init__(self, nodes: list[dict]):
        self.items = {n["metadata"]["name"]: n for n in nodes}
        self.writes: list[str] = []
        self.api = SimpleNamespace(get=self._api_get, update=self._update, update_status=self._update_status)

    def list(self):
        return [copy.deepcopy(n) for n in self.items.values()]

    def get(self, name):
        return copy.deepcopy(self.items.get(name))

    async def _api_get(self, name):
        if name not in self.items:
            raise ApiError({"code": 404, "reason": "NotFound"})
        return copy.deepcopy(self.items[name])

    async def _update(self, obj):
        self.writes.append(f"update {obj['metadata']['name']}")
        self.items[obj["metadata"]["name"]] = copy.deepcopy(obj)
        return obj

    async def _update_status(self, obj):
        self.writes.append(f"status {obj['metadata']['name']}")
        self.items[obj["metadata"]["name"]] = copy.deepcopy(obj)
        return obj


def controller_with(nodes: list[dict], clock: Clock) -> tuple[NodeLifecycleController, FakeNodes]:
    """The controller's passes, without informers or an API server behind them."""
    c = NodeLifecycleController.__new__(NodeLifecycleController)
    store = FakeNodes(nodes)
    c.clock, c.grace_period, c.startup_grace_period = clock, 4.0, 6.0
    c.nodes, c.nodes_api = store, store.api
    c.leases = SimpleNamespace(get=lambda key: None)
    c.pods = SimpleNamespace(by_index=lambda index, value: [])
    c.recorder = SimpleNamespace(event=lambda *a, **k: None)
    c.zones = Zones(EvictionSettings(), clock=clock)
    c.health, c.known, c.pods_to_retry = {}, {}, set()
    return c, store


async def test_a_silent_node_is_marked_unknown_and_tainted_but_not_when_every_node_is_silent():
    clock = Clock(1000.0)
    c, store = controller_with([node("a"), node("b")], clock)
    await c.monitor()
    assert store.writes == []
    clock.now += 5                                  # past the grace period; b's kubelet is alive
    store.items["b"] = node("b", heartbeat="2026-01-01T00:09:00Z")
    await c.monitor()
    assert nh.ready_status(store.items["a"]) == "Unknown" and nh.ready_status(store.items["b"]) == "True"
    await c.monitor()                               # observes Unknown: queued for the NoExecute taint
    await c.taint_pass()
    taints = {(t["key"], t["effect"]) for t in store.items["a"]["spec"]["taints"]}
    assert (nh.UNREACHABLE, "NoExecute") in taints

    # Now both are silent: all zones fully disrupted, so no node keeps (or gets) a NoExecute taint.
    clock.now += 5
    await c.monitor()
    await c.monitor()
    await c.taint_pass()
    assert all(nh.ready_status(n) == "Unknown" for n in store.items.values())
    assert not any(t["effect"] == "NoExecute" for n in store.items.values() for t in n["spec"].get("taints") or [])


# -- admission and flags

def test_taint_nodes_by_condition_admission_marks_new_nodes_not_ready():
    res = resource_of(node("a"))
    new = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "a"}}
    node_taint_admission.admit_create(res, new)
    assert new["spec"]["taints"] == [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    node_taint_admission.admit_create(res, new)
    assert len(new["spec"]["taints"]) == 1


def test_default_toleration_seconds_on_create_and_on_update_with_configured_seconds():
    pod = {"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                     "effect": "NoExecute", "tolerationSeconds": 7}]}}
    default_tolerations.add_default_tolerations(pod, 30, 60)
    assert [(t["key"], t["tolerationSeconds"]) for t in pod["spec"]["tolerations"]] == [
        ("node.kubernetes.io/unreachable", 7), ("node.kubernetes.io/not-ready", 30)]
    # An update that drops them (kubectl apply replaces the list) gets them back before validation.
    api = SimpleNamespace(config=SimpleNamespace(default_not_ready_toleration_seconds=300,
                                                 default_unreachable_toleration_seconds=45))
    old = created(seed("08-scheduling.yaml", 1))
    default_tolerations.admit_pod(api, old)
    new = copy.deepcopy(old)
    new["spec"]["tolerations"] = new["spec"]["tolerations"][:1]
    Strategy(api).before_update(resource_of(old), new, old, "")
    assert [(t.get("key"), t.get("tolerationSeconds")) for t in new["spec"]["tolerations"]] == [
        ("node-role.kubernetes.io/master", None), ("node.kubernetes.io/not-ready", 300),
        ("node.kubernetes.io/unreachable", 45)]


def test_go_durations():
    assert go_duration("50s") == 50 and go_duration("1m0s") == 60 and go_duration("500ms") == 0.5
    assert go_duration("1h30m") == 5400
    with pytest.raises(argparse.ArgumentTypeError):
        go_duration("50")
