"""Table-driven tests for each scheduler plugin, over plain dict pods and nodes."""

from __future__ import annotations

import pytest

from k8py.scheduler import resources
from k8py.scheduler.plugins.balanced_allocation import BalancedAllocation
from k8py.scheduler.plugins.image_locality import ImageLocality
from k8py.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from k8py.scheduler.plugins.node_affinity import NodeAffinity
from k8py.scheduler.plugins.node_name import NodeName
from k8py.scheduler.plugins.node_ports import NodePorts
from k8py.scheduler.plugins.node_resources_fit import NodeResourcesFit
from k8py.scheduler.plugins.node_unschedulable import NodeUnschedulable
from k8py.scheduler.plugins.pod_topology_spread import PodTopologySpread
from k8py.scheduler.plugins.priority_sort import PrioritySort
from k8py.scheduler.plugins.taint_toleration import TaintToleration
from k8py.scheduler.plugins.volume_binding import VolumeBinding

from .helpers import node, pod, run_filter, run_score, snapshot

GI = 2**30


# ---- requests ---------------------------------------------------------------

@pytest.mark.parametrize("spec, want", [
    ({"containers": [{"resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                     {"resources": {"requests": {"cpu": "200m"}}}]}, {"cpu": 300, "memory": GI}),
    # an init container bigger than the app containers sets the request
    ({"initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
      "containers": [{"resources": {"requests": {"cpu": "500m"}}}]}, {"cpu": 2000}),
    # a sidecar adds to the app containers and runs beside later init containers
    ({"initContainers": [{"restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                         {"resources": {"requests": {"cpu": "1500m"}}}],
      "containers": [{"resources": {"requests": {"cpu": "500m"}}}]}, {"cpu": 2500}),
    ({"containers": [{"resources": {"requests": {"cpu": "1", "example.com/gpu": "2"}}}],
      "overhead": {"cpu": "250m", "memory": "64Mi"}}, {"cpu": 1250, "memory": 64 * 2**20, "example.com/gpu": 2}),
])
def test_pod_requests(spec, want):
    assert resources.pod_requests({"spec": spec}) == want


def test_non_zero_requests_default_for_scoring():
    assert resources.pod_requests({"spec": {"containers": [{}]}}, non_zero=True) == \
        {"cpu": 100, "memory": 200 * 2**20}


# ---- NodeResourcesFit ----------------------------------------------------------

@pytest.mark.parametrize("p, want", [
    (pod("a", cpu="1"), None),
    (pod("a", cpu="3"), ["Insufficient cpu"]),
    (pod("a", cpu="3", memory="7Gi"), ["Insufficient cpu", "Insufficient memory"]),
    (pod("a", spec={"containers": [{"resources": {"requests": {"example.com/gpu": "1"}}}]}),
     ["Insufficient example.com/gpu"]),
])
def test_fit_filter(p, want):
    snap = snapshot([node("n1", cpu="4", memory="8Gi")], [pod("old", cpu="2", memory="2Gi", node_name="n1")])
    assert run_filter(NodeResourcesFit(), p, snap)["n1"] == want


def test_fit_too_many_pods_and_extended_resources_present():
    snap = snapshot([node("n1", pods="1", extra={"example.com/gpu": "2"})],
                    [pod("old", node_name="n1")])
    assert run_filter(NodeResourcesFit(), pod("a"), snap)["n1"] == ["Too many pods"]
    snap = snapshot([node("n1", extra={"example.com/gpu": "2"})])
    gpu = pod("a", spec={"containers": [{"resources": {"requests": {"example.com/gpu": "2"}}}]})
    assert run_filter(NodeResourcesFit(), gpu, snap)["n1"] is None


@pytest.mark.parametrize("strategy, want", [
    (None, 75),
    ({"type": "MostAllocated"}, 25),
    ({"type": "RequestedToCapacityRatio"}, 25),
    ({"type": "RequestedToCapacityRatio",
      "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}]}},
     75),
])
def test_fit_scoring_strategies(strategy, want):
    snap = snapshot([node("n1", cpu="4", memory="8Gi")])
    assert run_score(NodeResourcesFit(strategy), pod("a", cpu="1", memory="2Gi"), snap) == {"n1": want}


def test_least_allocated_prefers_emptier_node():
    snap = snapshot([node("busy"), node("idle")], [pod("old", cpu="2", memory="4Gi", node_name="busy")])
    scores = run_score(NodeResourcesFit(), pod("a", cpu="1", memory="1Gi"), snap)
    assert scores["idle"] > scores["busy"]


# ---- NodeName, NodePorts, NodeUnschedulable ------------------------------------

def test_node_name():
    snap = snapshot([node("n1"), node("n2")])
    assert run_filter(NodeName(), pod("a", spec={"nodeName": "n2"}), snap) == {
        "n1": ["node(s) didn't match the requested node name"], "n2": None}


@pytest.mark.parametrize("existing, wanted, conflict", [
    ({"hostPort": 80}, {"hostPort": 80}, True),
    ({"hostPort": 80}, {"hostPort": 80, "protocol": "UDP"}, False),
    ({"hostPort": 80, "hostIP": "10.0.0.1"}, {"hostPort": 80, "hostIP": "10.0.0.2"}, False),
    ({"hostPort": 80, "hostIP": "10.0.0.1"}, {"hostPort": 80}, True),
    ({"hostPort": 80}, {"hostPort": 81}, False),
])
def test_node_ports(existing, wanted, conflict):
    def with_port(name, port, node_name=None):
        return pod(name, node_name=node_name, spec={"containers": [{"name": "c", "ports": [
            {"containerPort": 8080, **port}]}]})
    snap = snapshot([node("n1")], [with_port("old", existing, "n1")])
    got = run_filter(NodePorts(), with_port("a", wanted), snap)["n1"]
    assert got == (["node(s) didn't have free ports for the requested pod ports"] if conflict else None)


def test_node_unschedulable():
    snap = snapshot([node("n1", unschedulable=True), node("n2")])
    assert run_filter(NodeUnschedulable(), pod("a"), snap) == {"n1": ["node(s) were unschedulable"], "n2": None}
    tolerant = pod("b", spec={"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                                "effect": "NoSchedule"}]})
    assert run_filter(NodeUnschedulable(), tolerant, snap)["n1"] is None


# ---- NodeAffinity ----------------------------------------------------------------

def _required(*exprs, fields=()):
    term = {}
    if exprs:
        term["matchExpressions"] = list(exprs)
    if fields:
        term["matchFields"] = list(fields)
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term]}}}}


MISMATCH = ["node(s) didn't match Pod's node affinity/selector"]


@pytest.mark.parametrize("expr, fits", [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, {"n1": True, "n2": True, "n3": False}),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, {"n1": False, "n2": True, "n3": True}),
    ({"key": "zone", "operator": "Exists"}, {"n1": True, "n2": True, "n3": False}),
    ({"key": "zone", "operator": "DoesNotExist"}, {"n1": False, "n2": False, "n3": True}),
    ({"key": "cores", "operator": "Gt", "values": ["4"]}, {"n1": True, "n2": False, "n3": False}),
    ({"key": "cores", "operator": "Lt", "values": ["8"]}, {"n1": False, "n2": True, "n3": False}),
])
def test_node_affinity_operators(expr, fits):
    snap = snapshot([node("n1", labels={"zone": "a", "cores": "8"}), node("n2", labels={"zone": "b", "cores": "4"}),
                     node("n3", labels={"cores": "many"})])
    got = run_filter(NodeAffinity(), pod("p", spec=_required(expr)), snap)
    assert got == {n: None if ok else MISMATCH for n, ok in fits.items()}


def test_node_selector_and_match_fields():
    snap = snapshot([node("n1", labels={"disk": "ssd"}), node("n2")])
    assert run_filter(NodeAffinity(), pod("p", spec={"nodeSelector": {"disk": "ssd"}}), snap) == {
        "n1": None, "n2": MISMATCH}
    by_name = pod("p", spec=_required(fields=[{"key": "metadata.name", "operator": "In", "values": ["n2"]}]))
    assert run_filter(NodeAffinity(), by_name, snap) == {"n1": MISMATCH, "n2": None}
    state_plugin = NodeAffinity()
    from k8py.scheduler.framework import CycleState
    from k8py.scheduler.podinfo import PodInfo
    result = state_plugin.pre_filter(CycleState(), PodInfo(by_name), snap)
    assert result.node_names == {"n2"}
    assert state_plugin.filter(CycleState(), PodInfo(by_name), snap.by_name["n1"]).reasons == MISMATCH


def test_node_affinity_preferred_score():
    spec = {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 20, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
        {"weight": 80, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]}}}
    snap = snapshot([node("n1", labels={"zone": "a"}), node("n2", labels={"disk": "ssd"}),
                     node("n3", labels={"zone": "a", "disk": "hdd"}), node("n4")])
    assert run_score(NodeAffinity(), pod("p", spec=spec), snap) == {"n1": 20, "n2": 80, "n3": 100, "n4": 0}


# ---- TaintToleration --------------------------------------------------------------

@pytest.mark.parametrize("tolerations, tolerated", [
    ([], False),
    ([{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}], True),
    ([{"key": "k", "value": "v"}], True),  # empty effect matches every effect; Equal is the default
    ([{"key": "k", "operator": "Equal", "value": "other", "effect": "NoSchedule"}], False),
    ([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}], True),
    ([{"key": "k", "operator": "Exists", "effect": "NoExecute"}], False),
    ([{"operator": "Exists"}], True),  # empty key + Exists tolerates everything
])
def test_taint_toleration_filter(tolerations, tolerated):
    snap = snapshot([node("n1", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])])
    got = run_filter(TaintToleration(), pod("p", spec={"tolerations": tolerations}), snap)["n1"]
    assert got == (None if tolerated else ["node(s) had untolerated taint {k: v}"])


def test_prefer_no_schedule_only_scores():
    snap = snapshot([node("clean"), node("one", taints=[{"key": "a", "effect": "PreferNoSchedule"}]),
                     node("two", taints=[{"key": "a", "effect": "PreferNoSchedule"},
                                         {"key": "b", "value": "x", "effect": "PreferNoSchedule"}])])
    assert run_filter(TaintToleration(), pod("p"), snap) == {"clean": None, "one": None, "two": None}
    assert run_score(TaintToleration(), pod("p"), snap) == {"clean": 100, "one": 50, "two": 0}
    tolerant = pod("p", spec={"tolerations": [{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}]})
    assert run_score(TaintToleration(), tolerant, snap) == {"clean": 100, "one": 100, "two": 0}


# ---- InterPodAffinity ---------------------------------------------------------------

def _pod_affinity(kind, required=None, preferred=None):
    block = {}
    if required is not None:
        block["requiredDuringSchedulingIgnoredDuringExecution"] = required
    if preferred is not None:
        block["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return {"affinity": {kind: block}}


def _term(key="zone", ns=None, ns_selector=None, **match):
    t = {"topologyKey": key, "labelSelector": {"matchLabels": match}}
    if ns is not None:
        t["namespaces"] = ns
    if ns_selector is not None:
        t["namespaceSelector"] = ns_selector
    return t


ZONES = [node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"}), node("b1", labels={"zone": "b"})]


def test_required_pod_affinity_by_zone():
    snap = snapshot(ZONES, [pod("db", labels={"app": "db"}, node_name="a1")])
    p = pod("web", spec=_pod_affinity("podAffinity", [_term(app="db")]))
    assert run_filter(InterPodAffinity(), p, snap) == {
        "a1": None, "a2": None, "b1": ["node(s) didn't match pod affinity rules"]}


def test_first_pod_affine_to_itself_may_go_anywhere():
    p = pod("web", labels={"app": "web"}, spec=_pod_affinity("podAffinity", [_term(app="web")]))
    assert set(run_filter(InterPodAffinity(), p, snapshot(ZONES)).values()) == {None}


def test_required_anti_affinity_and_symmetry():
    snap = snapshot(ZONES, [pod("db", labels={"app": "db"}, node_name="a1")])
    p = pod("web", spec=_pod_affinity("podAntiAffinity", [_term(app="db")]))
    anti = ["node(s) didn't match pod anti-affinity rules"]
    assert run_filter(InterPodAffinity(), p, snap) == {"a1": anti, "a2": anti, "b1": None}
    # an existing pod's anti-affinity keeps matching newcomers out of its zone
    loner = pod("loner", node_name="b1", spec=_pod_affinity("podAntiAffinity", [_term(app="web")]))
    snap = snapshot(ZONES, [loner])
    got = run_filter(InterPodAffinity(), pod("w", labels={"app": "web"}), snap)
    assert got == {"a1": None, "a2": None, "b1": ["node(s) didn't satisfy existing pods anti-affinity rules"]}


def test_affinity_namespaces_and_namespace_selector():
    snap = snapshot(ZONES, [pod("db", ns="data", labels={"app": "db"}, node_name="a1")],
                    namespaces={"default": {}, "data": {"team": "storage"}})
    same_ns = pod("web", spec=_pod_affinity("podAffinity", [_term(app="db")]))
    assert run_filter(InterPodAffinity(), same_ns, snap)["a1"] == ["node(s) didn't match pod affinity rules"]
    listed = pod("web", spec=_pod_affinity("podAffinity", [_term(app="db", ns=["data"])]))
    assert run_filter(InterPodAffinity(), listed, snap)["a2"] is None
    selected = pod("web", spec=_pod_affinity("podAffinity", [
        _term(app="db", ns_selector={"matchLabels": {"team": "storage"}})]))
    assert run_filter(InterPodAffinity(), selected, snap) == {
        "a1": None, "a2": None, "b1": ["node(s) didn't match pod affinity rules"]}


def test_preferred_affinity_and_anti_affinity_scores():
    snap = snapshot(ZONES, [pod("db", labels={"app": "db"}, node_name="a1")])
    near = pod("web", spec=_pod_affinity("podAffinity", preferred=[
        {"weight": 10, "podAffinityTerm": _term(app="db")}]))
    assert run_score(InterPodAffinity(), near, snap) == {"a1": 100, "a2": 100, "b1": 0}
    far = pod("web", spec=_pod_affinity("podAntiAffinity", preferred=[
        {"weight": 10, "podAffinityTerm": _term(app="db")}]))
    assert run_score(InterPodAffinity(), far, snap) == {"a1": 0, "a2": 0, "b1": 100}


def test_existing_pods_required_affinity_counts_for_score():
    holder = pod("h", node_name="b1", spec=_pod_affinity("podAffinity", [_term(app="web")]))
    snap = snapshot(ZONES, [holder])
    assert run_score(InterPodAffinity(), pod("w", labels={"app": "web"}), snap) == {"a1": 0, "a2": 0, "b1": 100}


# ---- PodTopologySpread ---------------------------------------------------------------

def _spread(max_skew=1, when="DoNotSchedule", key="zone", **extra):
    return {"topologySpreadConstraints": [{"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
                                           "labelSelector": {"matchLabels": {"app": "web"}}, **extra}]}


def _web(name, node_name):
    return pod(name, labels={"app": "web"}, node_name=node_name)


SKEW = ["node(s) didn't match pod topology spread constraints"]


def test_spread_max_skew():
    nodes = ZONES + [node("x")]
    snap = snapshot(nodes, [_web("w1", "a1")])
    got = run_filter(PodTopologySpread(), pod("new", labels={"app": "web"}, spec=_spread()), snap)
    assert got == {"a1": SKEW, "a2": SKEW, "b1": None,
                   "x": ["node(s) didn't match pod topology spread constraints (missing required label)"]}
    assert run_filter(PodTopologySpread(), pod("new", labels={"app": "web"}, spec=_spread(2)), snap)["a1"] is None


def test_spread_min_domains():
    snap = snapshot(ZONES, [_web("w1", "a1"), _web("w2", "b1")])
    p = pod("new", labels={"app": "web"}, spec=_spread(minDomains=3))
    # only two zones exist, so the global minimum counts as 0 and any zone with a pod is skewed
    assert run_filter(PodTopologySpread(), p, snap) == {"a1": SKEW, "a2": SKEW, "b1": SKEW}


def test_spread_node_inclusion_policies():
    tainted = node("b1", labels={"zone": "b"}, taints=[{"key": "k", "effect": "NoSchedule"}])
    snap = snapshot([ZONES[0], tainted], [_web("w1", "a1")])
    honor = pod("new", labels={"app": "web"}, spec=_spread(nodeTaintsPolicy="Honor"))
    # zone b is not counted (its only node is tainted), so zone a is the minimum: no skew there
    assert run_filter(PodTopologySpread(), honor, snap)["a1"] is None
    ignore = pod("new", labels={"app": "web"}, spec=_spread())
    assert run_filter(PodTopologySpread(), ignore, snap)["a1"] == SKEW
    skip_b = pod("new", labels={"app": "web"}, spec={**_spread(), "nodeSelector": {"zone": "a"}})
    assert run_filter(PodTopologySpread(), skip_b, snap)["a1"] is None  # nodeAffinityPolicy Honor


def test_spread_match_label_keys():
    snap = snapshot(ZONES, [pod("old", labels={"app": "web", "rev": "1"}, node_name="a1")])
    p = pod("new", labels={"app": "web", "rev": "2"}, spec=_spread(matchLabelKeys=["rev"]))
    assert set(run_filter(PodTopologySpread(), p, snap).values()) == {None}


def test_spread_scoring_prefers_emptier_domain():
    snap = snapshot(ZONES, [_web("w1", "a1"), _web("w2", "a2")])
    scores = run_score(PodTopologySpread(), pod("n", labels={"app": "web"}, spec=_spread(when="ScheduleAnyway")),
                       snap)
    assert scores["b1"] == 100 and scores["a1"] < 100 and scores["a1"] == scores["a2"]


def test_spread_system_default_constraints_from_service():
    svc = {"metadata": {"name": "s", "namespace": "default"}, "spec": {"selector": {"app": "web"}}}
    nodes = [node("n1"), node("n2")]
    snap = snapshot(nodes, [_web("w1", "n1")], listers={"services": [svc]})
    scores = run_score(PodTopologySpread(), pod("n", labels={"app": "web"}), snap)
    assert scores["n2"] == 100 and scores["n1"] < 100
    # no Service/ReplicaSet selects the pod: no default spreading
    assert run_score(PodTopologySpread(), pod("n", labels={"app": "other"}), snap) == {"n1": 0, "n2": 0}


# ---- the scoring-only plugins, PrioritySort, VolumeBinding ------------------------------

def test_balanced_allocation():
    snap = snapshot([node("n1", cpu="4", memory="8Gi")])
    assert run_score(BalancedAllocation(), pod("p", cpu="1", memory="4Gi"), snap) == {"n1": 87}
    assert run_score(BalancedAllocation(), pod("p", cpu="2", memory="4Gi"), snap) == {"n1": 100}


def test_image_locality():
    img = [{"names": ["docker.io/library/big:1.0", "big:1.0"], "sizeBytes": 500 * 2**20}]
    snap = snapshot([node("has", images=img), node("also", images=img), node("none")])
    scores = run_score(ImageLocality(), pod("p", image="big:1.0"), snap)
    # 500MB spread over 2 of 3 nodes -> 333MB -> 100*(333-23)/(1000-23)
    assert scores == {"has": 31, "also": 31, "none": 0}
    assert run_score(ImageLocality(), pod("p", image="small"), snap) == {"has": 0, "also": 0, "none": 0}


def test_priority_sort():
    assert PrioritySort.less(10, 5.0, 1, 1.0)
    assert PrioritySort.less(1, 1.0, 1, 2.0)
    assert not PrioritySort.less(1, 2.0, 1, 1.0)


def test_volume_binding_passes_pods_without_claims():
    snap = snapshot([node("n1")])
    assert run_filter(VolumeBinding(), pod("p"), snap) == {"n1": None}
    with_claim = pod("p", spec={"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]})
    snap = snapshot([node("n1")], listers=StorageListers([]))
    assert run_filter(VolumeBinding(), with_claim, snap) == {"n1": ['persistentvolumeclaim "data" not found']}


class StorageListers:
    """What the scheduler's Listers answer, from plain lists."""

    def __init__(self, claims, volumes=(), classes=()):
        self.objects = {"persistentvolumeclaims": list(claims), "persistentvolumes": list(volumes),
                        "storageclasses": list(classes)}

    def watches(self, plural):
        return plural in self.objects

    def get(self, plural, default=None):
        return self.objects.get(plural, default)

    def named(self, plural, namespace, name):
        return next((o for o in self.objects.get(plural, []) if o["metadata"]["name"] == name
                     and o["metadata"].get("namespace", "") == namespace), None)


def _claim(name, class_name="local-path", volume_name="", selector=None, annotations=None):
    spec = {"storageClassName": class_name, "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}
    if volume_name:
        spec["volumeName"] = volume_name
    if selector:
        spec["selector"] = selector
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "annotations": annotations or {}}, "spec": spec}


def _volume(name, class_name, node_name=None):
    spec = {"storageClassName": class_name, "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
            "hostPath": {"path": "/tmp/x"}}
    if node_name:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}]}]}}
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": "Available"}}


WFFC = {"metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer"}
IMMEDIATE = {"metadata": {"name": "fast"}, "provisioner": "example.com/fast"}
STATIC_WFFC = {"metadata": {"name": "local"}, "provisioner": "kubernetes.io/no-provisioner",
               "volumeBindingMode": "WaitForFirstConsumer"}


def _uses(*claims):
    return pod("p", spec={"volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]})


def _nodes():
    return [node("n1", labels={"kubernetes.io/hostname": "n1"}), node("n2", labels={"kubernetes.io/hostname": "n2"})]


def test_volume_binding_refuses_unbound_immediate_claims():
    snap = snapshot(_nodes(), listers=StorageListers([_claim("data", "fast")], classes=[IMMEDIATE]))
    assert run_filter(VolumeBinding(), _uses("data"), snap) == {
        "n1": ["pod has unbound immediate PersistentVolumeClaims"],
        "n2": ["pod has unbound immediate PersistentVolumeClaims"]}


def test_volume_binding_wait_for_first_consumer_claim_fits_nodes_where_it_can_be_provisioned():
    snap = snapshot(_nodes(), listers=StorageListers([_claim("data")], classes=[WFFC]))
    assert run_filter(VolumeBinding(), _uses("data"), snap) == {"n1": None, "n2": None}
    # a node already chosen for the claim is the only one left
    chosen = _claim("data", annotations={"volume.kubernetes.io/selected-node": "n2"})
    snap = snapshot(_nodes(), listers=StorageListers([chosen], classes=[WFFC]))
    assert run_filter(VolumeBinding(), _uses("data"), snap) == {
        "n1": ["node(s) didn't find available persistent volumes to bind"], "n2": None}


def test_volume_binding_static_wait_for_first_consumer_volumes_follow_their_node_affinity():
    snap = snapshot(_nodes(), listers=StorageListers([_claim("data", "local")], [_volume("pv-n2", "local", "n2")],
                                                     classes=[STATIC_WFFC]))
    assert run_filter(VolumeBinding(), _uses("data"), snap) == {
        "n1": ["node(s) didn't find available persistent volumes to bind"], "n2": None}


def test_volume_binding_bound_claims_keep_pods_on_their_volume_node():
    volumes = [_volume("pv1", "local-path", "n1")]
    snap = snapshot(_nodes(), listers=StorageListers([_claim("data", volume_name="pv1")], volumes, [WFFC]))
    assert run_filter(VolumeBinding(), _uses("data"), snap) == {
        "n1": None, "n2": ["node(s) had volume node affinity conflict"]}
    snap = snapshot(_nodes(), listers=StorageListers([_claim("data", volume_name="gone")], [], [WFFC]))
    assert run_filter(VolumeBinding(), _uses("data"), snap)["n1"] == [
        "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"]


# ---- NoExecute: how long a pod may stay ----------------------------------------------------

@pytest.mark.parametrize("tolerations, want", [
    ([], 0.0),
    ([{"key": "k", "operator": "Exists", "effect": "NoExecute"}], None),
    ([{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}], 30.0),
    ([{"key": "k", "operator": "Equal", "value": "other", "effect": "NoExecute", "tolerationSeconds": 30}], 0.0),
    ([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}], 0.0),
    ([{"operator": "Exists", "tolerationSeconds": -5}], 0.0),
])
def test_no_execute_eviction_delay(tolerations, want):
    from k8py.controllers.nodelifecycle.taint_eviction import eviction_delay
    taints = [{"key": "k", "value": "v", "effect": "NoExecute"}]
    assert eviction_delay({"spec": {"tolerations": tolerations}}, taints) == want
    assert eviction_delay({"spec": {"tolerations": tolerations}}, []) is None


def test_cache_term_index_scores_like_a_node_scan():
    from k8py.scheduler.cache import SchedulerCache
    holders = [pod(f"h{i}", node_name=n, labels={"app": "db"}, spec=_pod_affinity("podAntiAffinity", preferred=[
        {"weight": 7, "podAffinityTerm": _term(key="kubernetes.io/hostname", app="web")}]))
        for i, n in enumerate(["a1", "a1", "b1"])]
    holders.append(pod("r", node_name="a2", spec=_pod_affinity("podAffinity", [_term(app="web")])))
    incoming = pod("w", labels={"app": "web"}, spec=_pod_affinity("podAffinity", preferred=[
        {"weight": 3, "podAffinityTerm": _term(app="db")}]))
    scanned = run_score(InterPodAffinity(), incoming, snapshot(ZONES, holders))
    cache = SchedulerCache()
    for n in ZONES:
        cache.set_node(n)
    for h in holders:
        cache.add_pod(h)
    indexed = cache.snapshot()
    assert indexed.scoring_terms
    assert run_score(InterPodAffinity(), incoming, indexed) == scanned
    assert scanned["a2"] == 100 and scanned["b1"] < scanned["a2"]


def test_incremental_inter_pod_scores_follow_cluster_changes():
    """The cache-fed path revisits only changed nodes; it must agree with a full scan after each change."""
    from k8py.scheduler.cache import SchedulerCache
    nodes = [node(f"n{i}", labels={"zone": "a" if i < 3 else "b"}) for i in range(6)]
    spec = _pod_affinity("podAntiAffinity", preferred=[
        {"weight": 10, "podAffinityTerm": _term(key="kubernetes.io/hostname", app="web")},
        {"weight": 5, "podAffinityTerm": _term(key="zone", app="web")}])
    cache = SchedulerCache()
    for n in nodes:
        cache.set_node(n)
    plugin = InterPodAffinity()
    placed = []
    for i, target in enumerate(["n0", "n0", "n4", "n2", "n5"]):
        incoming = pod(f"w{i}", labels={"app": "web"}, spec=spec)
        got = run_score(plugin, incoming, cache.snapshot())
        assert got == run_score(InterPodAffinity(), incoming, snapshot(nodes, placed))
        placed.append(pod(f"w{i}", labels={"app": "web"}, spec=spec, node_name=target))
        cache.add_pod(placed[-1])
    cache.remove_pod_key("default/w0")
    placed.pop(0)
    incoming = pod("last", labels={"app": "web"}, spec=spec)
    assert run_score(plugin, incoming, cache.snapshot()) == run_score(InterPodAffinity(), incoming,
                                                                       snapshot(nodes, placed))


def test_incremental_spread_counts_follow_cluster_changes():
    from k8py.scheduler.cache import SchedulerCache
    nodes = [node(f"n{i}", labels={"zone": "abc"[i % 3]}) for i in range(6)]
    cache = SchedulerCache()
    for n in nodes:
        cache.set_node(n)
    plugin = PodTopologySpread()
    placed = []
    for i, target in enumerate(["n0", "n1", "n3", "n2", "n0"]):
        incoming = pod(f"w{i}", labels={"app": "web"}, spec=_spread())
        assert run_filter(plugin, incoming, cache.snapshot()) == \
            run_filter(PodTopologySpread(), incoming, snapshot(nodes, placed))
        placed.append(_web(f"w{i}", target))
        cache.add_pod(placed[-1])
    cache.remove_node("n2")  # zone c loses a node (and its pod stays accounted until deleted)
    cache.remove_pod_key("default/w3")
    placed = [p for p in placed if p["metadata"]["name"] != "w3"]
    incoming = pod("last", labels={"app": "web"}, spec=_spread())
    assert run_filter(plugin, incoming, cache.snapshot()) == \
        run_filter(PodTopologySpread(), incoming, snapshot([n for n in nodes if n["metadata"]["name"] != "n2"],
                                                            placed))


def test_default_selector_reads_the_informers_by_namespace_and_owner():
    """The scheduler's Listers answer by namespace index and by key; the result is the one a walk
    over every Service and ReplicaSet gives."""
    from k8py.client import Client, Informer
    from k8py.scheduler.plugins.pod_topology_spread import default_selector
    from k8py.scheduler.podinfo import PodInfo
    from k8py.scheduler.scheduler import Listers
    objects = {
        "services": [{"metadata": {"name": "s", "namespace": ns, "resourceVersion": "1"},
                      "spec": {"selector": {"app": "web", **extra}}}
                     for ns, extra in (("default", {}), ("other", {"tier": "x"}))],
        "replicasets": [{"metadata": {"name": name, "namespace": "default", "resourceVersion": "1"},
                         "spec": {"selector": {"matchLabels": {"rs": name}}}} for name in ("rs1", "rs2")],
    }
    client = Client("https://127.0.0.1:1")
    informers = {}
    for plural, items in objects.items():
        inf = informers[plural] = Informer(client, "v1", plural)
        for obj in items:
            inf._upsert(Informer.key(obj), obj)
    owned = pod("w", labels={"app": "web", "rs": "rs2"})
    owned["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "rs2", "controller": True}]
    for p in (owned, pod("lone", labels={"app": "web"}), pod("none", labels={"app": "db"})):
        info = PodInfo(p)
        via_index, via_walk = default_selector(info, Listers(informers)), default_selector(info, objects)
        assert repr(getattr(via_index, "requirements", None)) == repr(getattr(via_walk, "requirements", None))
    assert default_selector(PodInfo(owned), Listers(informers)).matches({"app": "web", "rs": "rs2"})
    assert not default_selector(PodInfo(owned), Listers(informers)).matches({"app": "web", "rs": "rs1"})
    assert default_selector(PodInfo(pod("none", labels={"app": "db"})), Listers(informers)) is None


def test_inter_pod_affinity_scores_many_nodes_as_one_by_one():
    from k8py.scheduler.framework import CycleState
    from k8py.scheduler.plugins.inter_pod_affinity import InterPodAffinity
    from k8py.scheduler.podinfo import PodInfo
    plugin = InterPodAffinity()
    nodes = [node(f"n{i}", labels={"zone": f"z{i % 2}"} if i % 3 else {}) for i in range(6)]
    snap = snapshot(nodes)
    state = CycleState()
    state[plugin.name + "/score"] = {("zone", "z0"): 4, ("zone", "z1"): -3, ("kubernetes.io/hostname", "n2"): 9}
    state[plugin.name + "/keys"] = {"zone", "kubernetes.io/hostname"}
    info = PodInfo(pod("p"))
    one_by_one = [plugin.score(state, info, n) for n in snap.nodes]
    assert plugin.score_nodes(state, info, snap.nodes) == one_by_one
    assert one_by_one == [0, -3, 13, 0, 4, -3]
