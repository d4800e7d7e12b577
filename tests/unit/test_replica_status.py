"""ReplicaSet status as the controller computes it from its pods (no API calls involved)."""

import datetime

from k8py.client import ApiError, Client
from k8py.controllers.base import ControllerContext
from k8py.controllers.replicaset import ReplicaSetController
from k8py.controllers.replicationcontroller import ReplicationManager


def stamp(seconds_ago: float) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def controller(cls=ReplicaSetController):
    return cls(ControllerContext(Client("https://127.0.0.1:1")))


def owner(replicas=3, min_ready=0, conditions=None):
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "generation": 4},
          "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                   "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": {}}},
          "status": {}}
    if conditions:
        rs["status"]["conditions"] = conditions
    return rs


def pod(labels, ready_for=None):
    p = {"metadata": {"name": "p", "labels": labels}, "status": {"phase": "Running"}}
    if ready_for is not None:
        p["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": stamp(ready_for)}]
    return p


def test_status_counts_labels_readiness_and_availability():
    pods = [pod({"app": "web", "tier": "front"}, ready_for=100), pod({"app": "web"}, ready_for=1),
            pod({"app": "web", "tier": "front"})]
    status = controller().compute_status(owner(min_ready=10), pods, None)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1,
                      "observedGeneration": 4}


def test_zero_counts_are_omitted_and_replicas_kept():
    assert controller().compute_status(owner(), [], None) == {"replicas": 0, "observedGeneration": 4}


def test_replica_failure_condition_comes_and_goes_with_manage_errors():
    c = controller()
    error = ApiError({"code": 403, "reason": "Forbidden", "message": 'pods "web-x" is forbidden: exceeded quota'})
    failed = c.compute_status(owner(), [], error)
    cond = failed["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("ReplicaFailure", "True", "FailedCreate")
    assert cond["message"] == 'pods "web-x" is forbidden: exceeded quota'
    again = c.compute_status(owner(conditions=failed["conditions"]), [], error)
    assert again["conditions"] == failed["conditions"]  # kept as is, transition time included
    healed = c.compute_status(owner(conditions=failed["conditions"]), [], None)
    assert "conditions" not in healed
    too_many = c.compute_status(owner(replicas=0), [pod({"app": "web"})], error)
    assert too_many["conditions"][0]["reason"] == "FailedDelete"


def test_selectors_replica_set_label_selector_and_rc_map():
    rs = controller()
    assert rs.selector_matches(owner(), {"app": "web", "x": "y"})
    assert not rs.selector_matches(owner(), {"app": "db"})
    empty = owner()
    empty["spec"]["selector"] = {}
    assert not rs.selector_matches(empty, {"app": "web"})  # an empty selector never claims everything
    rc = controller(ReplicationManager)
    rc_owner = {"spec": {"selector": {"name": "rc"}}}
    assert rc.selector_matches(rc_owner, {"name": "rc", "other": "1"})
    assert not rc.selector_matches(rc_owner, {"other": "1"})
    assert not rc.selector_matches({"spec": {}}, {"name": "rc"})


def test_pods_from_the_template_carry_labels_owner_and_generate_name():
    made = controller().pod_from_template(owner())
    assert made["metadata"]["generateName"] == "web-"
    assert made["metadata"]["labels"] == {"app": "web", "tier": "front"}
    ref = made["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == ("ReplicaSet", "u1", True, True)
