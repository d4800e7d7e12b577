"""The scheduler end to end: a real `k8py server`, the real kubectl, Node objects made by hand.

No kubelet runs here, so nodes are plain API objects (Ready, with allocatable)
and deleted pods stay Terminating until we force-delete them, as a kubelet would.
"""

from __future__ import annotations

import json
import re

import pytest

from .conftest import start_server, wait_for
from .fake_nodes import node_manifest, scratch_namespace, server_with_nodes

pytestmark = pytest.mark.simulated_kubelet  # the nodes are API objects the tests keep Ready; no pod runs

NODES = ("sched-n1", "sched-n2", "sched-n3")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from server_with_nodes(tmp_path_factory, "k8py-sched", NODES)


@pytest.fixture
def ns(cluster):
    yield from scratch_namespace(cluster, "sched")


def pod_yaml(name: str, cpu: str = "100m", extra_spec: dict | None = None, labels: dict | None = None) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
                       "spec": {"containers": [{"name": "c", "image": "busybox",
                                                "resources": {"requests": {"cpu": cpu}}}], **(extra_spec or {})}})


def node_of(cluster, ns: str, name: str) -> str:
    return cluster.kubectl_json("get", "pod", name, "-n", ns).get("spec", {}).get("nodeName", "")


def test_node_selector_pods_land_on_the_labelled_node(cluster, ns):
    cluster.kubectl("label", "nodes", "sched-n2", "disk=ssd")
    try:
        for i in range(3):
            cluster.kubectl("create", "-n", ns, "-f", "-",
                            input=pod_yaml(f"ssd-{i}", extra_spec={"nodeSelector": {"disk": "ssd"}}))
        for i in range(3):
            assert wait_for(lambda: node_of(cluster, ns, f"ssd-{i}"), what="binding") == "sched-n2"
        events = cluster.kubectl("get", "events", "-n", ns).stdout
        assert f"Successfully assigned {ns}/ssd-0 to sched-n2" in events
    finally:
        cluster.kubectl("label", "nodes", "sched-n2", "disk-")


def test_tainted_and_cordoned_nodes_are_avoided(cluster, ns):
    cluster.kubectl("taint", "nodes", "sched-n1", "k=v:NoSchedule")
    cluster.kubectl("cordon", "sched-n3")
    try:
        for i in range(4):
            cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_yaml(f"p-{i}"))
        for i in range(4):
            assert wait_for(lambda: node_of(cluster, ns, f"p-{i}"), what="binding") == "sched-n2"
        tolerant = {"tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}],
                    "nodeSelector": {"kubernetes.io/hostname": "sched-n1"}}
        cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_yaml("tolerant", extra_spec=tolerant))
        assert wait_for(lambda: node_of(cluster, ns, "tolerant"), what="binding") == "sched-n1"
    finally:
        cluster.kubectl("taint", "nodes", "sched-n1", "k=v:NoSchedule-")
        cluster.kubectl("uncordon", "sched-n3")


def test_pods_for_another_scheduler_are_left_alone(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_yaml("theirs", extra_spec={"schedulerName": "other"}))
    cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_yaml("ours"))
    wait_for(lambda: node_of(cluster, ns, "ours"), what="our pod bound")
    pod = cluster.kubectl_json("get", "pod", "theirs", "-n", ns)
    assert not pod["spec"].get("nodeName") and not pod["status"].get("conditions")
    assert "theirs" not in cluster.kubectl("get", "events", "-n", ns).stdout


def test_impossible_pod_stays_pending_and_describe_explains(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_yaml("huge", cpu="64"))
    expected = ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
                "3 No preemption victims found for incoming pod.")

    def described():
        out = cluster.kubectl("describe", "pod", "huge", "-n", ns).stdout
        return out if "FailedScheduling" in out else None
    out = wait_for(described, what="FailedScheduling event")
    assert expected in re.sub(r"\s+", " ", out)
    pod = cluster.kubectl_json("get", "pod", "huge", "-n", ns)
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", expected)


def test_no_execute_taint_evicts(cluster, ns):
    pinned = {"nodeName": "sched-n3"}
    cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_yaml("intolerant", extra_spec=pinned))
    for_a_while = {**pinned, "tolerations": [{"key": "evict", "operator": "Exists", "effect": "NoExecute",
                                              "tolerationSeconds": 2}]}
    cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_yaml("for-a-while", extra_spec=for_a_while))
    forever = {**pinned, "tolerations": [{"key": "evict", "operator": "Exists", "effect": "NoExecute"}]}
    cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_yaml("forever", extra_spec=forever))

    def deleting(name):
        return bool(cluster.kubectl_json("get", "pod", name, "-n", ns)["metadata"].get("deletionTimestamp"))
    cluster.kubectl("taint", "nodes", "sched-n3", "evict=now:NoExecute")
    try:
        wait_for(lambda: deleting("intolerant"), what="intolerant pod evicted")
        assert not deleting("for-a-while")
        wait_for(lambda: deleting("for-a-while"), timeout=15, what="evicted after tolerationSeconds")
        assert not deleting("forever")
        events = cluster.kubectl("get", "events", "-n", ns).stdout
        assert f"Marking for deletion Pod {ns}/intolerant" in events
    finally:
        cluster.kubectl("taint", "nodes", "sched-n3", "evict=now:NoExecute-")


def test_high_priority_pod_preempts_a_low_priority_one(cluster, ns):
    for name, value in ((f"{ns}-low", 10), (f"{ns}-high", 1000)):
        cluster.kubectl("create", "priorityclass", name, f"--value={value}")
    try:
        pinned = {"nodeSelector": {"kubernetes.io/hostname": "sched-n1"}}
        cluster.kubectl("create", "-n", ns, "-f", "-",
                        input=pod_yaml("victim", cpu="1500m", extra_spec={**pinned, "priorityClassName": f"{ns}-low"}))
        assert wait_for(lambda: node_of(cluster, ns, "victim")) == "sched-n1"
        cluster.kubectl("create", "-n", ns, "-f", "-",
                        input=pod_yaml("vip", cpu="1500m", extra_spec={**pinned, "priorityClassName": f"{ns}-high"}))
        victim = wait_for(lambda: (v := cluster.kubectl_json("get", "pod", "victim", "-n", ns))["metadata"].get(
            "deletionTimestamp") and v, what="victim marked for deletion")
        assert any(c["type"] == "DisruptionTarget" and c["reason"] == "PreemptionByScheduler"
                   for c in victim["status"]["conditions"])
        wait_for(lambda: cluster.kubectl_json("get", "pod", "vip", "-n", ns)["status"].get("nominatedNodeName")
                 == "sched-n1", what="nominatedNodeName")
        # The kubelet would now stop the victim; we finish its deletion instead.
        cluster.kubectl("delete", "pod", "victim", "-n", ns, "--force", "--grace-period=0")
        assert wait_for(lambda: node_of(cluster, ns, "vip"), timeout=20, what="preemptor bound") == "sched-n1"
        assert "Preempted by pod" in cluster.kubectl("get", "events", "-n", ns).stdout
    finally:
        for name in (f"{ns}-low", f"{ns}-high"):
            cluster.kubectl("delete", "priorityclass", name, check=False)


def test_restarted_server_takes_its_scheduler_lease_back_at_once(tmp_path):
    """The server's scheduler keeps one identity across restarts (`<host>_k8py-server-<port>`), so a
    restart does not wait out the 15 s lease its previous run left behind."""
    lean = ["--disable", "controller-manager", "--disable", "dns", "--disable", "proxy"]
    srv = start_server(tmp_path / "data", extra=lean)
    try:
        def holder():
            got = srv.kubectl("get", "lease", "kube-scheduler", "-n", "kube-system", "-o", "json", check=False)
            return got.returncode == 0 and json.loads(got.stdout)["spec"].get("holderIdentity")
        identity = wait_for(holder, what="scheduler lease")
        assert identity.endswith(f"_k8py-server-{srv.port}")
    finally:
        srv.stop()  # the lease stays held: nobody releases it on the way down
    srv = start_server(tmp_path / "data", port=srv.port, extra=lean)
    try:
        srv.kubectl("create", "-f", "-", input=node_manifest("restart-n1"))
        # TaintNodesByCondition registers it not-ready; with no node lifecycle controller here to
        # see it Ready, take the taint off as that controller would.
        srv.kubectl("taint", "node", "restart-n1", "node.kubernetes.io/not-ready:NoSchedule-")
        # No controller-manager here: make the account the pod is admitted with.
        srv.kubectl("create", "serviceaccount", "default", "-n", "default")
        srv.kubectl("create", "-n", "default", "-f", "-", input=pod_yaml("after-restart"))
        # Well inside the 15 s a new identity would have to wait for the old lease to expire.
        assert wait_for(lambda: node_of(srv, "default", "after-restart"), timeout=6,
                        what="pod bound soon after the restart") == "restart-n1"
        assert srv.kubectl_json("get", "lease", "kube-scheduler", "-n", "kube-system")["spec"][
            "holderIdentity"] == identity
    finally:
        srv.stop()
