"""Resource metrics from end to end without a cluster: the kubelet's sample, its
/metrics/resource text, metrics-server's parse, storage and metrics.k8s.io output,
and the synthetic usage of hollow nodes."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from k8py.kubelet import stats as kubelet_stats
from k8py.kubelet.resource_metrics import render
from k8py.kubelet.runtime.interface import (LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE,
                                            LABEL_POD_UID, ContainerConfig, ContainerStats, SandboxConfig)
from k8py.kubelet.runtime.simulated import SimulatedRuntime
from k8py.kubelet.stats import ContainerSample, Sample, SummaryProvider
from k8py.kubelet.synthetic_usage import ANNOTATION, SyntheticUsage, parse_usage
from k8py.metricsserver import api as metrics_api
from k8py.metricsserver import parse_duration
from k8py.metricsserver.scrape import Point, kubelet_url, parse
from k8py.metricsserver.storage import Storage, usage


def sample_of(t: float, cpu_app: float, cpu_node: float) -> Sample:
    s = Sample(time=t, node_cpu_ns=int(cpu_node * 1e9), node_memory={"working_set": 2 << 30})
    s.containers = [
        ContainerSample('we"ird', "web", "u1", "app", "c1", t - 100, ContainerStats(int(cpu_app * 1e9), 64 << 20)),
        ContainerSample('we"ird', "web", "u1", "side", "c2", t - 100, ContainerStats(10 ** 9, 1000))]
    return s


def test_resource_metrics_text_parses_back_into_the_same_sample():
    text = render(sample_of(1000.0, 2.5, 50.0))
    for name in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                 "container_start_time_seconds", "node_cpu_usage_seconds_total", "node_memory_working_set_bytes",
                 "pod_cpu_usage_seconds_total", "pod_memory_working_set_bytes", "resource_scrape_error"):
        assert f"# TYPE {name} " in text and f"# HELP {name} [STABLE] " in text
    assert 'pod_cpu_usage_seconds_total{namespace="we\\"ird",pod="web"} 3.5 1000000' in text
    assert text.rstrip().endswith("resource_scrape_error 0")
    parsed = parse(text, now=0)
    assert parsed.node == Point(1000.0, 50.0, 2 << 30)
    assert parsed.pods[('we"ird', "web")]["app"] == Point(1000.0, 2.5, 64 << 20, 900.0)
    assert set(parsed.pods[('we"ird', "web")]) == {"app", "side"}


def test_storage_rates_need_two_readings_or_a_start_since_the_last():
    store = Storage()
    store.store("n1", parse(render(sample_of(1000.0, 2.0, 50.0)), 0))
    assert store.node_usage("n1") is None                           # one reading of the node: no rate yet
    [(name, first), _] = store.pod_usage('we"ird', "web")          # started 100 s before: measured from then
    assert name == "app" and first.nanocores == 20_000_000 and first.window == 100
    store.store("n1", parse(render(sample_of(1015.0, 17.0, 65.0)), 0))
    node = store.node_usage("n1")
    assert (node.nanocores, node.window, node.memory_bytes) == (1_000_000_000, 15.0, 2 << 30)
    [(_, app), (_, side)] = store.pod_usage('we"ird', "web")
    assert app.nanocores == 1_000_000_000 and side.nanocores == 0 and app.memory_bytes == 64 << 20
    store.store("n1", parse(render(sample_of(1015.0, 17.0, 65.0)), 0))   # the same reading again
    assert store.node_usage("n1").window == 15.0
    # a restarted container (counter back to near zero, started after the last reading) from its start
    assert usage(Point(1030.0, 1.0, 5, 1025.0), Point(1015.0, 17.0, 5, 900.0)).nanocores == 200_000_000
    assert usage(Point(1030.0, 1.0, 5, 900.0), Point(1015.0, 17.0, 5, 900.0)) is None
    store.store("n1", parse(render(Sample(time=1030.0, node_cpu_ns=80 * 10 ** 9, node_memory={})), 0))
    assert store.pod_usage('we"ird', "web") is None                   # gone from the node
    store.forget_node("n1")
    assert store.node_usage("n1") is None and store.node_names() == set()


def test_quantities_and_windows_are_formatted_as_metrics_server_does():
    assert metrics_api.cpu(137102872) == "137102872n" and metrics_api.cpu(500_000_000) == "500m"
    assert metrics_api.cpu(0) == "0" and metrics_api.cpu(2_000_000_000) == "2"
    assert metrics_api.memory(1290844 * 1024) == "1290844Ki" and metrics_api.memory(123457) == "123457"
    assert [metrics_api.go_duration(s) for s in (15.0, 10.062, 0.5, 90.25, 3600)] == \
        ["15s", "10.062s", "500ms", "1m30.25s", "1h0m0s"]
    assert parse_duration("15s") == 15 and parse_duration("1m30s") == 90 and parse_duration("2") == 2
    for bad in ("fast", "0s", "-1", "15 s"):
        with pytest.raises(Exception):
            parse_duration(bad)


def test_kubelet_url_prefers_internal_ip_and_the_node_status_port():
    node = {"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP",
                                                                           "address": "fd00::5"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 41000}}}}
    assert kubelet_url(node) == "https://[fd00::5]:41000/metrics/resource"
    assert kubelet_url({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}}) == \
        "https://n1:10250/metrics/resource"
    assert kubelet_url({"status": {}}) is None


class FakeInformer:
    def __init__(self, objs):
        self.objs = {(o["metadata"].get("namespace", "") + "/" if o["metadata"].get("namespace") else "")
                     + o["metadata"]["name"]: o for o in objs}

    def get(self, key):
        return self.objs.get(key)

    def list(self):
        return list(self.objs.values())

    def by_index(self, index, value):
        return [o for o in self.objs.values() if o["metadata"].get("namespace") == value]


@pytest.fixture
async def metrics_client(monkeypatch):
    store = Storage()
    store.store("n1", parse(render(sample_of(1000.0, 2.0, 50.0)), 0))
    store.store("n1", parse(render(sample_of(1010.0, 7.0, 60.0)), 0))
    nodes = FakeInformer([{"metadata": {"name": "n1", "labels": {"zone": "a"}}},
                          {"metadata": {"name": "n2"}}])          # n2 never scraped
    pods = FakeInformer([{"metadata": {"name": "web", "namespace": 'we"ird', "labels": {"app": "web"}}},
                         {"metadata": {"name": "new", "namespace": 'we"ird'}}])
    app = metrics_api.MetricsAPI(store, nodes, pods).app()
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, monkeypatch
    await client.close()


async def test_metrics_api_serves_only_the_front_proxy(metrics_client):
    client, monkeypatch = metrics_client
    denied = await client.get(metrics_api.PREFIX + "/nodes")
    assert denied.status == 401 and (await denied.json())["reason"] == "Unauthorized"
    assert (await client.get("/healthz")).status == 200


async def test_metrics_api_lists_gets_selects_and_says_not_found(metrics_client):
    client, monkeypatch = metrics_client
    monkeypatch.setattr(metrics_api, "_from_front_proxy", lambda request: True)
    discovery = await (await client.get(metrics_api.PREFIX)).json()
    assert {r["kind"] for r in discovery["resources"]} == {"NodeMetrics", "PodMetrics"}
    nodes = await (await client.get(metrics_api.PREFIX + "/nodes")).json()
    assert nodes["kind"] == "NodeMetricsList" and nodes["metadata"] == {}
    [n1] = nodes["items"]
    assert n1["metadata"]["labels"] == {"zone": "a"} and n1["usage"] == {"cpu": "1", "memory": "2Gi"}
    assert n1["window"] == "10s" and n1["timestamp"] == "1970-01-01T00:16:50Z"
    assert (await (await client.get(metrics_api.PREFIX + "/nodes?labelSelector=zone%3Db")).json())["items"] == []
    missing = await client.get(metrics_api.PREFIX + "/nodes/n2")
    body = await missing.json()
    assert missing.status == 404 and body["message"] == 'nodemetrics.metrics.k8s.io "n2" not found'
    ns = "we%22ird"
    pods = await (await client.get(f"{metrics_api.PREFIX}/namespaces/{ns}/pods?labelSelector=app%3Dweb")).json()
    [web] = pods["items"]
    assert [c["name"] for c in web["containers"]] == ["app", "side"]
    assert web["containers"][0]["usage"] == {"cpu": "500m", "memory": "64Mi"}
    assert (await (await client.get(metrics_api.PREFIX + "/pods")).json())["items"][0]["metadata"]["name"] == "web"
    new = await client.get(f"{metrics_api.PREFIX}/namespaces/{ns}/pods/new")     # not scraped yet
    assert new.status == 404 and (await new.json())["message"] == \
        'podmetrics.metrics.k8s.io "we"ird/new" not found'
    table = await (await client.get(f"{metrics_api.PREFIX}/namespaces/{ns}/pods",
                                    headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})).json()
    assert table["kind"] == "Table" and table["rows"][0]["cells"] == ["web", "500m", "67109864", "10s"]
    watch = await client.get(metrics_api.PREFIX + "/pods?watch=true")
    assert watch.status == 405


def labels(ns, pod, uid, container):
    return {LABEL_POD_NAMESPACE: ns, LABEL_POD_NAME: pod, LABEL_POD_UID: uid, LABEL_CONTAINER_NAME: container}


async def start(runtime, ns, pod, uid, containers):
    sandbox = await runtime.run_sandbox(SandboxConfig(pod_uid=uid, name=pod, namespace=ns, hostname=pod))
    ids = []
    for name in containers:
        cid = await runtime.create_container(sandbox, ContainerConfig(name=name, image="busybox",
                                                                      labels=labels(ns, pod, uid, name)))
        await runtime.start_container(cid)
        ids.append(cid)
    return ids


def test_synthetic_usage_from_annotation_or_default():
    pods = {("ns", "a"): {"metadata": {"annotations": {ANNOTATION: '{"cpu": "250m", "memory": "64Mi"}'}}},
            ("ns", "b"): {"metadata": {"annotations": {ANNOTATION: '{"app": {"cpu": "1"}, "cpu": "5m"}'}}},
            ("ns", "c"): {"metadata": {"annotations": {ANNOTATION: "not json"}}}}
    model = SyntheticUsage(lambda ns, name: pods.get((ns, name)), default=parse_usage("cpu=100m,memory=1Mi"))

    class Status:
        def __init__(self, pod, container):
            self.labels, self.name = labels("ns", pod, "u", container), container
    assert model(Status("a", "x")) == (250_000_000, 64 << 20)
    assert model(Status("b", "app")) == (1_000_000_000, 0) and model(Status("b", "other")) == (5_000_000, 0)
    assert model(Status("c", "x")) == (100_000_000, 1 << 20)          # unusable annotation: the default
    assert model(Status("gone", "x")) == (100_000_000, 1 << 20)


async def test_simulated_runtime_accumulates_cpu_at_the_model_rate(monkeypatch):
    runtime = SimulatedRuntime()
    runtime.usage_model = lambda status: (500_000_000, 32 << 20)
    clock = [1000.0]
    monkeypatch.setattr("k8py.kubelet.runtime.simulated.time.time", lambda: clock[0])
    [cid] = await start(runtime, "ns", "p", "u1", ["app"])
    clock[0] += 10
    stats = await runtime.stats(cid)
    assert stats.cpu_usage_ns == 5_000_000_000 and stats.memory_working_set_bytes == 32 << 20
    node_ns, memory = await runtime.node_usage()
    assert node_ns == 5_000_000_000 and memory["working_set"] == 32 << 20
    runtime.usage_model = lambda status: (2_000_000_000, 0)
    clock[0] += 1
    assert (await runtime.stats(cid)).cpu_usage_ns == 7_000_000_000
    await runtime.stop_container(cid, 0)
    await runtime.remove_container(cid)
    assert (await runtime.node_usage())[0] == 7_000_000_000            # the node's counter never goes back


async def test_summary_api_shape_for_a_hollow_node(monkeypatch):
    runtime = SimulatedRuntime()
    runtime.usage_model = lambda status: (250_000_000, 10 << 20)
    await start(runtime, "ns", "web", "u1", ["app", "side"])
    provider = SummaryProvider(runtime, "hollow-0")
    first = await provider.summary()
    monkeypatch.setattr(kubelet_stats, "RATE_MIN_SECONDS", 0.0)
    monkeypatch.setattr(kubelet_stats.time, "monotonic", lambda: 10 ** 6)     # as if much later
    second = await provider.summary()
    assert first["node"]["nodeName"] == "hollow-0" and "usageNanoCores" not in first["node"]["cpu"]
    assert second["node"]["cpu"]["usageNanoCores"] >= 0
    [pod] = second["pods"]
    assert pod["podRef"] == {"name": "web", "namespace": "ns", "uid": "u1"}
    assert [c["name"] for c in pod["containers"]] == ["app", "side"]
    assert pod["memory"]["workingSetBytes"] == 20 << 20
    assert set(pod["containers"][0]["memory"]) == {"time", "usageBytes", "workingSetBytes", "rssBytes",
                                                   "pageFaults", "majorPageFaults"}
    json.dumps(second)


async def test_summary_api_on_the_host_has_filesystems_network_and_limits(tmp_path):
    class HostRuntime:           # a runtime without node_usage: the host's figures are the node's
        async def list_containers(self):
            return []
    summary = await SummaryProvider(HostRuntime(), "real", tmp_path).summary()
    node = summary["node"]
    assert node["cpu"]["usageCoreNanoSeconds"] > 0 and node["memory"]["availableBytes"] > 0
    assert node["fs"]["capacityBytes"] >= node["fs"]["usedBytes"] > 0 and node["rlimit"]["maxpid"] > 0
    assert node["runtime"]["imageFs"]["capacityBytes"] == node["fs"]["capacityBytes"]
    assert isinstance(node["network"]["interfaces"], list) and summary["pods"] == []
