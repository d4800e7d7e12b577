"""Pure rules of the DaemonSet, StatefulSet, Job, disruption and eviction logic, on plain dicts."""

import datetime

import pytest

from k8py.apimachinery.errors import StatusError
from k8py.apiserver import eviction
from k8py.controllers import daemonset_nodes as dn
from k8py.controllers import disruption
from k8py.controllers import jobpolicy as jp
from k8py.controllers import revisions as rev
from k8py.controllers import statefulset_claims as sc
from k8py.controllers import statefulset_pods as sp
from k8py.controllers.job import new_pod as new_job_pod

UTC = datetime.timezone.utc


def node(name, labels=None, taints=None):
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def template(**spec):
    return {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}


# ---- DaemonSet ----------------------------------------------------------------------

def test_plain_node_runs_the_daemon():
    assert dn.placement(template(), node("n1")) == dn.Placement(True, True)


def test_node_selector_and_affinity_pick_nodes():
    by_selector = template(nodeSelector={"disk": "ssd"})
    assert dn.placement(by_selector, node("n1", {"disk": "ssd"})).should_run
    assert not dn.placement(by_selector, node("n2", {"disk": "hdd"})).should_continue
    affinity = template(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
                              {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]}]}}})
    assert dn.placement(affinity, node("n1", {"zone": "b"})).should_run
    assert dn.placement(affinity, node("special")).should_run  # terms are ORed
    assert not dn.placement(affinity, node("n3", {"zone": "c"})).should_run


def test_taints_and_the_default_daemon_tolerations():
    # tolerated by default: not-ready/unreachable NoExecute, pressure and unschedulable NoSchedule
    for key, effect in (("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                        ("node.kubernetes.io/unschedulable", "NoSchedule")):
        assert dn.placement(template(), node("n", taints=[{"key": key, "effect": effect}])).should_run, key
    network = [{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]
    assert not dn.placement(template(), node("n", taints=network)).should_run
    assert dn.placement(template(hostNetwork=True), node("n", taints=network)).should_run
    # a foreign NoSchedule taint: no new pod, but a running one may stay; NoExecute evicts
    no_schedule = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    assert dn.placement(template(), node("n", taints=no_schedule)) == dn.Placement(False, True)
    no_execute = [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]
    assert dn.placement(template(), node("n", taints=no_execute)) == dn.Placement(False, False)
    tolerant = template(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db"}])
    assert dn.placement(tolerant, node("n", taints=no_execute)).should_run
    assert dn.placement(template(), node("n", taints=[{"key": "x", "effect": "PreferNoSchedule"}])).should_run


def test_daemon_pod_is_pinned_by_node_name_affinity():
    ds = {"metadata": {"name": "agent", "namespace": "ns", "uid": "u", "generation": 3}}
    tmpl = template(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]}}})
    pod = dn.new_pod(ds, tmpl, "node-7", "abc123")
    required = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required == {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["node-7"]}]}]}
    assert "nodeName" not in pod["spec"]  # the scheduler binds it
    assert dn.pinned_node(pod) == "node-7"
    assert pod["metadata"]["labels"] == {"app": "d", "controller-revision-hash": "abc123",
                                         "pod-template-generation": "3"}
    assert pod["metadata"]["generateName"] == "agent-"


def test_rolling_limits_round_like_upstream():
    ds = {"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": "10%", "maxSurge": "25%"}}}}
    assert dn.rolling_limits(ds, 15) == (4, 1)  # surge rounds up, unavailable down
    assert dn.rolling_limits({"spec": {}}, 5) == (0, 1)
    ds0 = {"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": "10%"}}}}
    assert dn.rolling_limits(ds0, 3) == (0, 1)  # never both zero


def _ds_pod(name, new, available):
    return {"name": name, "new": new, "available": available}


def _plan(pods_by_node, surge, unavailable):
    doomed, creates = dn.plan_rollout(pods_by_node, lambda p: p["new"], lambda p: p["available"], surge,
                                      unavailable)
    return sorted(p["name"] for p in doomed), sorted(creates)


def test_daemonset_rollout_without_surge_respects_max_unavailable():
    nodes = {f"n{i}": [_ds_pod(f"old{i}", False, True)] for i in range(4)}
    assert _plan(nodes, 0, 1) == (["old0"], [])
    nodes["n0"] = [_ds_pod("new0", True, False)]  # replaced, not yet available: the budget is spent
    assert _plan(nodes, 0, 1) == ([], [])
    nodes["n3"] = [_ds_pod("old3", False, False)]  # an unavailable old pod goes regardless
    assert _plan(nodes, 0, 2) == (["old3"], [])
    nodes["n0"] = [_ds_pod("new0", True, True)]
    assert _plan(nodes, 0, 2) == (["old1", "old3"], [])


def test_daemonset_rollout_with_surge_starts_new_beside_old():
    nodes = {f"n{i}": [_ds_pod(f"old{i}", False, True)] for i in range(3)}
    assert _plan(nodes, 1, 0) == ([], ["n0"])
    nodes["n0"].append(_ds_pod("new0", True, False))
    assert _plan(nodes, 1, 0) == ([], [])  # one surge at a time, the new pod not available yet
    nodes["n0"][1]["available"] = True
    assert _plan(nodes, 1, 0) == (["old0"], [])


# ---- StatefulSet --------------------------------------------------------------------

def sts(**spec):
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "u"},
            "spec": {"replicas": 3, "serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                     "template": template(), **spec}}


def test_pod_identity_and_claims():
    s = sts(volumeClaimTemplates=[{"metadata": {"name": "www", "labels": {"tier": "db"}}, "spec": {"resources": {}}}])
    pod = sp.new_pod(s, s["spec"]["template"], "web-rev1", 2)
    assert pod["metadata"]["name"] == "web-2"
    assert pod["spec"]["hostname"] == "web-2" and pod["spec"]["subdomain"] == "nginx"
    assert pod["metadata"]["labels"] == {"app": "d", "statefulset.kubernetes.io/pod-name": "web-2",
                                         "apps.kubernetes.io/pod-index": "2", "controller-revision-hash": "web-rev1"}
    assert pod["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}}]
    claim = sc.new_claim(s, s["spec"]["volumeClaimTemplates"][0], 2)
    assert claim["metadata"]["name"] == "www-web-2"
    assert claim["metadata"]["labels"] == {"tier": "db", "app": "web"}  # the set's selector labels added
    assert "ownerReferences" not in claim["metadata"]  # Retain by default
    deleting = sts(volumeClaimTemplates=s["spec"]["volumeClaimTemplates"],
                   persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete"})
    ref = sc.new_claim(deleting, s["spec"]["volumeClaimTemplates"][0], 0)["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("StatefulSet", "u", True)
    assert sp.identity_matches(s, pod, 2) and not sp.identity_matches(s, pod, 1)


def _claim(*refs):
    return {"metadata": {"name": "www-web-0", "ownerReferences": list(refs)}}


def _owners(refs):
    return sorted((r["kind"], r["uid"], r.get("controller")) for r in refs)


POD0 = {"metadata": {"name": "web-0", "uid": "p0"}}
POD4 = {"metadata": {"name": "web-4", "uid": "p4"}}  # beyond replicas=3: scaled down


@pytest.mark.parametrize("when_scaled,when_deleted,in_range,scaled_down", [
    ("Retain", "Retain", [], []),
    ("Retain", "Delete", [("StatefulSet", "u", True)], [("StatefulSet", "u", True)]),
    ("Delete", "Retain", [], [("Pod", "p4", True)]),
    ("Delete", "Delete", [("StatefulSet", "u", True)], [("Pod", "p4", True)]),
])
def test_claim_owner_refs_follow_the_retention_policy(when_scaled, when_deleted, in_range, scaled_down):
    s = sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": when_deleted, "whenScaled": when_scaled})
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "c"}  # not a controller: kept
    for pod, ordinal, wanted in ((POD0, 0, in_range), (POD4, 4, scaled_down)):
        # from every starting point (none, the set's, the pod's, a non-controller ref of ours) to the policy
        for start in ([], [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u",
                            "controller": True}],
                      [{"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}]):
            claim = _claim(other, *start)
            refs = sc.updated_owner_refs(claim, s, pod, ordinal)
            assert _owners(refs) == sorted([("ConfigMap", "c", None)] + wanted)
            assert sc.owner_refs_up_to_date(_claim(*refs), s, pod, ordinal)
            assert sc.owner_refs_up_to_date(claim, s, pod, ordinal) == (_owners(claim["metadata"]["ownerReferences"])
                                                                        == _owners(refs))


def test_claims_of_another_controller_or_a_stale_owner_are_left_alone():
    s = sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"})
    stale = _claim({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "old", "controller": True})
    assert sc.owner_refs_up_to_date(stale, s, POD0, 0)
    foreign = _claim({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "r", "controller": True})
    assert sc.owner_refs_up_to_date(foreign, s, POD0, 0)
    assert sc.updated_owner_refs(foreign, s, POD0, 0) == foreign["metadata"]["ownerReferences"]


def test_ordinals():
    s = sts(ordinals={"start": 5})
    assert list(sp.wanted_ordinals(s)) == [5, 6, 7]
    assert sp.ordinal_of(s, {"metadata": {"name": "web-12"}}) == 12
    assert sp.ordinal_of(s, {"metadata": {"name": "web-x"}}) is None
    assert sp.ordinal_of(s, {"metadata": {"name": "webby-1"}}) is None


def _sts_pod(ordinal, revision, healthy=True):
    return {"metadata": {"name": f"web-{ordinal}", "labels": {"controller-revision-hash": revision}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(healthy)}]}}


def test_rollout_order_and_partition():
    pods = {o: _sts_pod(o, "old") for o in range(4)}
    s = sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    assert sp.rollout_step(s, pods, "new") == 3  # highest first
    pods[3] = _sts_pod(3, "new", healthy=False)
    assert sp.rollout_step(s, pods, "new") is None  # wait for the updated pod to be healthy
    pods[3] = _sts_pod(3, "new")
    assert sp.rollout_step(s, pods, "new") == 2
    pods[2] = _sts_pod(2, "new")
    assert sp.rollout_step(s, pods, "new") is None  # ordinals below the partition keep their revision
    assert sp.revision_for_new_pod(s, 1, "old", "new") == "old"
    assert sp.revision_for_new_pod(s, 2, "old", "new") == "new"
    assert sp.rollout_step(sts(updateStrategy={"type": "OnDelete"}), pods, "new") is None
    assert sp.revision_for_new_pod(sts(updateStrategy={"type": "OnDelete"}), 0, "old", "new") == "new"


# ---- revisions ----------------------------------------------------------------------

def test_revision_names_hash_the_template():
    owner = {"metadata": {"name": "web", "namespace": "ns", "uid": "u"}}
    a = rev.new_revision(owner, "StatefulSet", template(), 1, None, {})
    b = rev.new_revision(owner, "StatefulSet", template(), 2, None, {})
    c = rev.new_revision(owner, "StatefulSet", template(hostNetwork=True), 3, None, {})
    d = rev.new_revision(owner, "StatefulSet", template(), 1, 1, {})
    assert a["metadata"]["name"] == b["metadata"]["name"] != c["metadata"]["name"]
    assert a["metadata"]["name"] != d["metadata"]["name"]  # the collision count changes the name
    assert all(ch in "bcdfghjklmnpqrstvwxz2456789" for ch in a["metadata"]["name"].removeprefix("web-"))
    assert a["data"]["spec"]["template"]["$patch"] == "replace"
    assert rev.template_of(a) == template()
    assert rev.fnv32a(b"") == 0x811C9DC5 and rev.fnv32a(b"a") == 0xE40C292C


# ---- Job ----------------------------------------------------------------------------

def failed_pod(code, container="main", conditions=()):
    return {"metadata": {"name": "p", "namespace": "ns"}, "status": {
        "phase": "Failed", "conditions": list(conditions),
        "containerStatuses": [{"name": container, "state": {"terminated": {"exitCode": code}}}]}}


def test_pod_failure_policy_rules_in_order():
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In",
                                                              "values": [42]}},
                        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}}]}
    assert jp.match_failure_policy(policy, failed_pod(42)).action == "FailJob"
    assert jp.match_failure_policy(policy, failed_pod(42)).message == \
        "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
    assert jp.match_failure_policy(policy, failed_pod(42, container="side")).action == "Count"
    assert jp.match_failure_policy(policy, failed_pod(1)) is None
    disrupted = failed_pod(42, conditions=[{"type": "DisruptionTarget", "status": "True"}])
    assert jp.match_failure_policy(policy, disrupted).action == "Ignore"
    assert jp.match_failure_policy(policy, disrupted).message == \
        "Pod ns/p has condition DisruptionTarget matching Ignore rule at index 0"
    assert jp.match_failure_policy(None, failed_pod(42)) is None


def test_success_policy_rules():
    policy = {"rules": [{"succeededIndexes": "0,2-3"}, {"succeededCount": 3}]}
    assert jp.matched_success_rule(policy, {0, 2}) is None
    assert jp.matched_success_rule(policy, {0, 2, 3}) == 0
    assert jp.matched_success_rule(policy, {1, 4, 5}) == 1
    both = {"rules": [{"succeededIndexes": "0-4", "succeededCount": 2}]}
    assert jp.matched_success_rule(both, {7, 8, 9}) is None and jp.matched_success_rule(both, {1, 4}) == 0
    assert jp.matched_success_rule(None, {0}) is None


def test_indexes_round_trip():
    assert jp.parse_indexes("1,3-5,7") == {1, 3, 4, 5, 7}
    assert jp.format_indexes({7, 1, 3, 4, 5}) == "1,3-5,7"
    assert jp.format_indexes(set()) == "" and jp.parse_indexes(None) == set()


def test_backoff_doubles_to_six_minutes():
    assert [jp.backoff_delay(n) for n in (0, 1, 2, 3, 6, 10)] == [0, 10, 20, 40, 320, 360]
    last = datetime.datetime(2024, 1, 1, tzinfo=UTC)
    assert jp.remaining_backoff(2, last, last + datetime.timedelta(seconds=5)) == 15


def test_failed_pod_counting_depends_on_replacement_policy():
    deleting = {"metadata": {"name": "p", "deletionTimestamp": "x", "finalizers": [jp.TRACKING_FINALIZER]},
                "status": {"phase": "Running"}}
    assert jp.is_failed(deleting, only_failed_phase=False)
    assert not jp.is_failed(deleting, only_failed_phase=True)


def test_wanted_active():
    assert jp.wanted_active({"parallelism": 2, "completions": 5}, 4, None) == 1
    assert jp.wanted_active({"parallelism": 3}, 0, None) == 3
    assert jp.wanted_active({"parallelism": 3}, 1, None) == 0  # work queue: one success ends it
    assert jp.wanted_active({"parallelism": 3, "completions": 5}, 0, 2) == 2


def test_index_failures_accumulate_across_replacements():
    def pod(index, count, phase):
        return {"metadata": {"name": "p", "annotations": {jp.COMPLETION_INDEX: str(index),
                                                          jp.INDEX_FAILURE_COUNT: str(count)}},
                "status": {"phase": phase}}
    pods = [pod(0, 0, "Failed"), pod(0, 1, "Failed"), pod(1, 0, "Running"), pod(2, 0, "Succeeded")]
    assert jp.index_failures(pods, 0, True) == 2
    assert jp.index_failures(pods, 1, True) == 0 and jp.index_failures(pods, 2, True) == 0


def test_indexed_pod_template():
    job = {"metadata": {"name": "j", "namespace": "ns", "uid": "u"},
           "spec": {"template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c"}], "initContainers": [{"name": "i"}]}}}}
    pod = new_job_pod(job, 4)
    assert pod["metadata"]["generateName"] == "j-4-"
    assert pod["metadata"]["annotations"][jp.COMPLETION_INDEX] == "4" == pod["metadata"]["labels"][jp.COMPLETION_INDEX]
    assert pod["metadata"]["finalizers"] == [jp.TRACKING_FINALIZER]
    assert pod["spec"]["hostname"] == "j-4"
    for c in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        assert c["env"][0]["name"] == "JOB_COMPLETION_INDEX"
    assert new_job_pod(job, None)["metadata"]["generateName"] == "j-"


# ---- disruption budgets and eviction ----------------------------------------------------

def ready_pod(name, ready=True, phase="Running"):
    return {"metadata": {"name": name, "labels": {"app": "db"}}, "status": {
        "phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_budget_numbers():
    pods = [ready_pod("a"), ready_pod("b"), ready_pod("c", ready=False)]
    assert disruption.budget_numbers({"minAvailable": 2}, pods, lambda: 99) == (3, 2)
    assert disruption.budget_numbers({"minAvailable": "50%"}, pods, lambda: 5) == (5, 3)
    assert disruption.budget_numbers({"maxUnavailable": 1}, pods, lambda: 4) == (4, 3)
    assert disruption.budget_numbers({"maxUnavailable": "30%"}, pods, lambda: 4) == (4, 2)  # 1.2 rounds up
    assert disruption.healthy(pods, {}) == 2 and disruption.healthy(pods, {"a": "t"}) == 1


def test_eviction_spends_the_budget_or_refuses():
    pdb = {"metadata": {"name": "db", "generation": 1},
           "status": {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2}}
    spent = eviction.spend(pdb, ready_pod("a"))
    assert spent["status"]["disruptionsAllowed"] == 0 and "a" in spent["status"]["disruptedPods"]
    with pytest.raises(StatusError) as refused:
        eviction.spend(spent, ready_pod("b"))
    assert refused.value.code == 429 and refused.value.message == eviction.VIOLATION
    assert refused.value.causes[0].message == "The disruption budget db needs 2 healthy pods and has 3 currently"
    stale = {**pdb, "metadata": {"name": "db", "generation": 2}}
    with pytest.raises(StatusError, match="disruption budget"):
        eviction.spend(stale, ready_pod("a"))
    # an unready pod goes without spending while the budget is met
    assert eviction.spend(spent, ready_pod("c", ready=False)) is None
    assert eviction.ignores_budgets(ready_pod("p", phase="Pending"))


def test_evicted_pod_gets_the_disruption_target_condition():
    pod = eviction.with_disruption_target(ready_pod("a"))
    target = [c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert len(target) == 1 and target[0]["reason"] == "EvictionByEvictionAPI"
    done = eviction.with_disruption_target(ready_pod("b", phase="Succeeded"))
    assert not [c for c in done["status"]["conditions"] if c["type"] == "DisruptionTarget"]


async def test_creates_go_in_slow_start_batches_and_stop_at_the_first_failure():
    from k8py.controllers.batches import create_in_batches
    seen = []

    async def create(item):
        seen.append(item)
        if item == 4:
            raise ValueError("quota exceeded")
        return {"item": item}
    result = await create_in_batches(list(range(10)), create)
    # batches 1, 2, 4: the third batch (3..6) fails at 4, so 7..9 are never sent
    assert sorted(seen) == [0, 1, 2, 3, 4, 5, 6]
    assert [item for item, _ in result.created] == [0, 1, 2, 3, 5, 6]
    assert [item for item, _ in result.errors] == [4] and result.unsent == [7, 8, 9]
    everything = await create_in_batches([0, 1, 2], create)
    assert len(everything.created) == 3 and not everything.errors and not everything.unsent
