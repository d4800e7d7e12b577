"""The built-in metrics-server: `kubectl top`, metrics.k8s.io through the aggregator,
the official Python client, RBAC, and `--disable metrics-server`, over hollow nodes
whose pods report synthetic usage (k8py.io/simulated-usage).

One server (scraping every second) and one hollow agent (two nodes) serve the module.
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import HollowAgent, start_server, wait_for, wait_for_default_service_account

ANNOTATION = "k8py.io/simulated-usage"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    srv = start_server(tmp / "server", extra=["--metric-resolution", "1s", "--disable", "dns",
                                              "--disable", "local-storage"])
    try:
        with HollowAgent(srv, tmp, "mhollow", 2, "--simulated-usage", "cpu=50m,memory=16Mi"):
            srv.kubectl("create", "namespace", "top")
            wait_for_default_service_account(srv, "top")
            for name, labels, usage, containers in (
                    ("busy", {"tier": "busy"}, {"app": {"cpu": "750m", "memory": "100Mi"},
                                               "side": {"cpu": "10m", "memory": "8Mi"}}, ["app", "side"]),
                    ("idle", {"tier": "idle"}, None, ["app"])):
                annotations = {ANNOTATION: json.dumps(usage)} if usage else {}
                srv.kubectl("create", "-n", "top", "-f", "-", input=json.dumps({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "labels": labels, "annotations": annotations},
                    "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers]}}))
            wait_for(lambda: "idle" in srv.kubectl("top", "pods", "-n", "top", check=False).stdout
                     and "busy" in srv.kubectl("top", "pods", "-n", "top", check=False).stdout,
                     timeout=60, interval=0.5, what="both pods in kubectl top")
            yield srv
    finally:
        srv.stop()


def millicores(text: str) -> float:
    if text.endswith("n"):
        return int(text[:-1]) / 1e6
    if text.endswith("m"):
        return float(text[:-1])
    return float(text) * 1000


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()[1:]]


def test_top_pods_shows_each_pods_usage_sorted_and_selected(cluster):
    out = cluster.kubectl("top", "pods", "-n", "top", "--containers").stdout
    assert out.splitlines()[0].split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    by_container = {(r[0], r[1]): (r[2], r[3]) for r in rows(out)}
    assert set(by_container) == {("busy", "app"), ("busy", "side"), ("idle", "app")}
    assert 740 <= millicores(by_container[("busy", "app")][0]) <= 760
    assert by_container[("busy", "app")][1] == "100Mi" and by_container[("busy", "side")][1] == "8Mi"
    assert 45 <= millicores(by_container[("idle", "app")][0]) <= 55        # the agent's default
    assert [r[0] for r in rows(cluster.kubectl("top", "pods", "-n", "top", "--sort-by=cpu").stdout)] == \
        ["busy", "idle"]
    assert [r[0] for r in rows(cluster.kubectl("top", "pods", "-n", "top", "--sort-by=memory").stdout)] == \
        ["busy", "idle"]
    assert [r[0] for r in rows(cluster.kubectl("top", "pods", "-n", "top", "-l", "tier=idle").stdout)] == ["idle"]
    [(name, cpu, memory)] = rows(cluster.kubectl("top", "pod", "busy", "-n", "top").stdout)
    assert name == "busy" and 750 <= millicores(cpu) <= 770 and memory == "108Mi"
    everywhere = cluster.kubectl("top", "pods", "-A").stdout
    assert everywhere.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"] and " busy " in everywhere
    missing = cluster.kubectl("top", "pod", "nosuch", "-n", "top", check=False)
    assert missing.returncode != 0
    assert 'Error from server (NotFound): podmetrics.metrics.k8s.io "top/nosuch" not found' in missing.stderr

    # the usage follows the annotation
    cluster.kubectl("annotate", "pod", "idle", "-n", "top", "--overwrite", f'{ANNOTATION}={{"cpu": "400m"}}')

    def idle_cpu():
        found = rows(cluster.kubectl("top", "pod", "idle", "-n", "top").stdout)
        return 390 <= millicores(found[0][1]) <= 410
    wait_for(idle_cpu, timeout=20, interval=0.5, what="idle's CPU following its annotation")


def test_top_nodes_and_the_raw_api(cluster):
    out = cluster.kubectl("top", "nodes").stdout
    assert out.splitlines()[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    nodes = {r[0]: r for r in rows(out)}
    assert set(nodes) == {"mhollow-0", "mhollow-1"}
    assert sum(millicores(r[1]) for r in nodes.values()) >= 800          # the pods' usage, wherever they run
    listed = json.loads(cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes").stdout)
    assert listed["kind"] == "NodeMetricsList" and listed["apiVersion"] == "metrics.k8s.io/v1beta1"
    item = listed["items"][0]
    assert set(item) == {"metadata", "timestamp", "window", "usage"}
    assert item["metadata"]["labels"]["type"] == "hollow" and item["window"].endswith("s")
    assert item["usage"]["cpu"].endswith(("n", "m")) or item["usage"]["cpu"].isdigit()
    one = json.loads(cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/mhollow-0").stdout)
    assert one["kind"] == "NodeMetrics" and one["metadata"]["name"] == "mhollow-0"
    gone = cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/nosuch", check=False)
    assert 'nodemetrics.metrics.k8s.io "nosuch" not found' in gone.stderr
    table = cluster.kubectl("get", "podmetrics", "-n", "top").stdout
    assert table.splitlines()[0].split() == ["NAME", "CPU", "MEMORY", "WINDOW"]
    apiservice = cluster.kubectl_json("get", "apiservice", "v1beta1.metrics.k8s.io")
    assert apiservice["spec"]["service"]["name"] == "metrics-server"
    assert any(c["type"] == "Available" and c["status"] == "True" for c in apiservice["status"]["conditions"])
    resources = cluster.kubectl("api-resources", "--api-group=metrics.k8s.io").stdout
    assert "NodeMetrics" in resources and "PodMetrics" in resources
    # the kubelet's Summary API of a hollow node, through the API server's node proxy
    summary = json.loads(cluster.kubectl("get", "--raw", "/api/v1/nodes/mhollow-0/proxy/stats/summary").stdout)
    assert summary["node"]["nodeName"] == "mhollow-0" and summary["node"]["cpu"]["usageCoreNanoSeconds"] >= 0


def test_python_client_reads_metrics(cluster):
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    pods = api.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "top", "pods")
    busy = next(p for p in pods["items"] if p["metadata"]["name"] == "busy")
    assert {c["name"] for c in busy["containers"]} == {"app", "side"}
    nodes = api.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
    assert {n["metadata"]["name"] for n in nodes["items"]} == {"mhollow-0", "mhollow-1"}
    one = api.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", "top", "pods", "idle")
    assert one["containers"][0]["usage"]["memory"]
    with pytest.raises(ApiException) as err:
        api.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", "top", "pods", "nosuch")
    assert err.value.status == 404


def test_rbac_guards_metrics(cluster):
    denied = cluster.kubectl("top", "pods", "-n", "top", "--as=metrics-alice", check=False)
    assert denied.returncode != 0
    assert ('pods.metrics.k8s.io is forbidden: User "metrics-alice" cannot list resource "pods" in API group '
            '"metrics.k8s.io" in the namespace "top"') in denied.stderr
    # view (system:aggregated-metrics-reader is aggregated into it) lets her read the namespace's metrics
    cluster.kubectl("create", "rolebinding", "alice-view", "-n", "top", "--clusterrole=view", "--user=metrics-alice")
    wait_for(lambda: cluster.kubectl("top", "pods", "-n", "top", "--as=metrics-alice", check=False).returncode == 0,
             timeout=20, what="alice reading pod metrics as a viewer")
    nodes = cluster.kubectl("top", "nodes", "--as=metrics-alice", check=False)
    assert nodes.returncode != 0 and "Forbidden" in nodes.stderr
    role = cluster.kubectl_json("get", "clusterrole", "system:metrics-server")
    assert {(tuple(r["resources"]), tuple(r["verbs"])) for r in role["rules"]} == {
        (("nodes/metrics",), ("get",)), (("pods", "nodes"), ("get", "list", "watch"))}


def test_disable_metrics_server(tmp_path):
    srv = start_server(tmp_path / "server", extra=["--disable", "metrics-server", "--disable", "dns",
                                                  "--disable", "local-storage", "--disable", "controller-manager"])
    try:
        missing = srv.kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", check=False)
        assert missing.returncode != 0 and "NotFound" in missing.stderr
        top = srv.kubectl("top", "nodes", check=False)
        assert top.returncode != 0 and "Metrics API not available" in top.stderr
    finally:
        srv.stop()
