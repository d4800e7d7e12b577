"""Two real nodes: the server's and an agent's, each in its own network namespace.

tests/e2e/netns_cluster.py (TwoNodes) runs `k8py server` (with its runc agent,
DNS, kube-proxy and the image registry) in one namespace and `k8py agent` in
another, joined by a veth pair on 192.168.91.0/24: the agent reaches the API
and the registry over it, and pod traffic between the nodes' podCIDRs is routed
over it by the routes each node keeps to the other's slice. Checks are made
from inside busybox pods (nsenter into their namespaces) on either node.
The last test stops the agent and runs `k8py agent --cleanup` in its namespace.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.netns_cluster import LINK, sh, two_nodes_in_namespaces

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="containers and network namespaces need root"),
    pytest.mark.host_network,  # network-namespace clusters
]

SERVER, AGENT = "svcnode", "agentnode"
HTTP_GET = "GET / HTTP/1.0\r\n\r\n"

# Per node: an httpd answering with its node's name, a client, and a Service whose
# only endpoint is that node's httpd.
PODS = """
apiVersion: v1
kind: Pod
metadata: {{name: web-{node}, labels: {{app: web-{node}}}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {node}}}
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox
    command: [sh, -c, 'mkdir /www && echo "hello from $NODE" > /www/index.html && exec httpd -f -p 8080 -h /www']
    env: [{{name: NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}]
    ports: [{{containerPort: 8080, hostPort: 18080}}]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client-{node}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {node}}}
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: sh, image: busybox, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-on-{node}}}
spec:
  selector: {{app: web-{node}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""

DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: every-node}
spec:
  selector: {matchLabels: {app: every-node}}
  template:
    metadata: {labels: {app: every-node}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: sh, image: busybox, command: [sleep, "3600"]}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from two_nodes_in_namespaces(tmp_path_factory)


@pytest.fixture(scope="module")
def pods(cluster):
    """web-<node>, client-<node> and Service web-on-<node> for both nodes, all ready."""
    cluster.kubectl("apply", "-f", "-", input="---".join(PODS.format(node=n) for n in (SERVER, AGENT)))

    def ready(name):
        status = cluster.kubectl_json("get", "pod", name).get("status") or {}
        return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    for node in (SERVER, AGENT):
        for name in (f"web-{node}", f"client-{node}"):
            wait_for(lambda: ready(name), timeout=60, what=f"pod {name} ready")
    return {name: cluster.kubectl_json("get", "pod", name) for node in (SERVER, AGENT)
            for name in (f"web-{node}", f"client-{node}")}


def on(cluster, node):
    """The NodeInNamespace / AgentInNamespace that runs `node`'s pods."""
    return cluster.server if node == SERVER else cluster.agent


def http_from(cluster, node, host, port):
    """What the httpd at host:port answers to a pod on `node`."""
    where = on(cluster, node)
    pid = where.pod_pid(f"client-{node}")
    return where.in_pod(pid, "nc", "-w", "5", host, str(port), input=HTTP_GET).stdout


def namespace_state(cluster) -> dict:
    """What k8py has made in the agent's namespace and data dir."""
    agent = cluster.agent
    links = sh(*agent.enter("ip", "-o", "link", "show")).stdout
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
    rules = sh(*agent.enter("iptables-save")).stdout
    # KUBE-* (kube-proxy), K8PY-* (the pod network), CNI-* (the portmap plugin's hostPort rules)
    ours = ("KUBE-", "K8PY-", "CNI-")
    chains = sorted({line.split()[0][1:] for line in rules.splitlines()
                     if line.startswith(":") and line[1:].startswith(ours)})
    jumps = sorted(line for line in rules.splitlines() if any(f" {prefix}" in line for prefix in ours))
    routes = sh(*agent.enter("ip", "route", "show", "proto", "175")).stdout.strip()
    listing = sh("runc", "--root", str(agent.runc_root), "list", "-q").stdout.split()
    processes = sh("ip", "netns", "pids", agent.ns).stdout.split()     # the agent, container shims
    prefix = str(agent.data.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    # host-local IPAM keeps one file per leased pod IP
    leases = sorted(f.name for f in (agent.data / "cni" / "networks").glob("*/*") if is_ip(f.name))
    return {"links": names, "chains": chains, "jumps": jumps, "routes": routes, "containers": listing,
            "mounts": mounts, "leases": leases, "processes": processes}


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def test_both_nodes_ready_on_their_link_addresses(cluster):
    nodes = {n["metadata"]["name"]: n for n in cluster.kubectl_json("get", "nodes")["items"]}
    assert sorted(nodes) == [AGENT, SERVER]
    for name, address in ((SERVER, f"{LINK}.1"), (AGENT, f"{LINK}.2")):
        status = nodes[name]["status"]
        ready = [c["status"] for c in status["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"], (name, status["conditions"])
        assert {"type": "InternalIP", "address": address} in status["addresses"], (name, status["addresses"])
    table = cluster.kubectl("get", "nodes", "-o", "wide").stdout
    assert [line.split()[1] for line in table.splitlines()[1:]] == ["Ready", "Ready"], table

    # Each node routes the other's podCIDR to the other's link address (k8py's route protocol).
    server_cidr, agent_cidr = nodes[SERVER]["spec"]["podCIDR"], nodes[AGENT]["spec"]["podCIDR"]
    assert server_cidr != agent_cidr
    for where, cidr, via in ((cluster.server, agent_cidr, f"{LINK}.2"), (cluster.agent, server_cidr, f"{LINK}.1")):
        routes = sh(*where.enter("ip", "route", "show", "proto", "175")).stdout
        assert f"{cidr} via {via} dev " in routes, routes


def test_pods_reach_pods_on_the_other_node_by_ip(cluster, pods):
    for node in (SERVER, AGENT):
        assert pods[f"web-{node}"]["spec"]["nodeName"] == node
        assert pods[f"client-{node}"]["spec"]["nodeName"] == node
    agent_ip = pods[f"web-{AGENT}"]["status"]["podIP"]
    server_ip = pods[f"web-{SERVER}"]["status"]["podIP"]
    assert pods[f"web-{AGENT}"]["status"]["hostIP"] == f"{LINK}.2"

    got = http_from(cluster, AGENT, server_ip, 8080)
    assert "200 OK" in got and "hello from svcnode" in got, got
    got = http_from(cluster, SERVER, agent_ip, 8080)
    assert "200 OK" in got and "hello from agentnode" in got, got
    # hostPort: the other node's address answers for its pod
    got = http_from(cluster, SERVER, f"{LINK}.2", 18080)
    assert "hello from agentnode" in got, got
    got = http_from(cluster, AGENT, f"{LINK}.1", 18080)
    assert "hello from svcnode" in got, got


def test_services_whose_only_endpoints_are_on_the_other_node(cluster, pods):
    for client_node, backend_node in ((AGENT, SERVER), (SERVER, AGENT)):
        service = f"web-on-{backend_node}"
        wait_for(lambda: cluster.kubectl("get", "endpoints", service, "-o", "jsonpath={.subsets[*].addresses[*].ip}",
                                         check=False).stdout == pods[f"web-{backend_node}"]["status"]["podIP"],
                 timeout=30, what=f"{service} endpoints")
        cluster_ip = cluster.kubectl_json("get", "service", service)["spec"]["clusterIP"]
        for target in (cluster_ip, f"{service}.default.svc.cluster.local", service):
            got = http_from(cluster, client_node, target, 80)
            assert f"hello from {backend_node}" in got, (client_node, target, got)


def test_cluster_dns_and_the_api_service_from_the_agent_node(cluster, pods):
    # kube-dns is served on the server node only: the agent's pods reach it through their node's kube-proxy.
    endpoints = cluster.kubectl("get", "endpoints", "-n", "kube-system", "kube-dns", "-o",
                                "jsonpath={.subsets[*].addresses[*].nodeName}").stdout
    assert endpoints == SERVER, endpoints
    agent = cluster.agent
    pid = agent.pod_pid(f"client-{AGENT}")
    out = agent.in_pod(pid, "nslookup", "kubernetes.default.svc.cluster.local").stdout
    assert "Address: 10.43.0.1" in out, out
    assert "Server:\t\t10.43.0.10" in out, out
    # The API server's own Service points at the address it listens on, which the agent's pods reach too.
    endpoints = cluster.kubectl("get", "endpoints", "kubernetes", "-o",
                                "jsonpath={.subsets[*].addresses[*].ip}:{.subsets[*].ports[*].port}").stdout
    assert endpoints == f"{LINK}.1:6443", endpoints
    connect = agent.in_pod(pid, "sh", "-c", "nc -w 5 10.43.0.1 443 </dev/null")
    assert connect.returncode == 0, connect


def test_exec_into_a_pod_on_the_agent_node(cluster, pods):
    # The API server relays exec to the agent's kubelet at the agent's InternalIP.
    out = cluster.kubectl("exec", f"client-{AGENT}", "--", "cat", "/etc/hostname").stdout
    assert out.strip() == f"client-{AGENT}"


def test_daemonset_lands_on_both_nodes(cluster):
    cluster.kubectl("apply", "-f", "-", input=DAEMONSET)

    def running_nodes():
        items = cluster.kubectl_json("get", "pods", "-l", "app=every-node")["items"]
        return sorted(p["spec"].get("nodeName", "") for p in items if p["status"].get("phase") == "Running")
    wait_for(lambda: running_nodes() == [AGENT, SERVER], timeout=60, what="a running DaemonSet pod per node")
    wait_for(lambda: cluster.kubectl_json("get", "daemonset", "every-node")["status"].get("numberReady") == 2,
             timeout=30, what="DaemonSet numberReady 2")
    status = cluster.kubectl_json("get", "daemonset", "every-node")["status"]
    assert status["desiredNumberScheduled"] == 2 and status["currentNumberScheduled"] == 2, status


CLAIM_POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  {selector}
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - {{name: c, image: busybox, command: [sh, -c, {command}], volumeMounts: [{{name: data, mountPath: /data}}]}}
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: wffc}}}}]
"""


def _claim_pod(name, command, selector=""):
    return CLAIM_POD.format(name=name, selector=selector, command=json.dumps(command))


def _pod_phase(cluster, name):
    result = cluster.kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}", check=False)
    return result.stdout if result.returncode == 0 else None


def test_wait_for_first_consumer_volume_is_made_on_the_node_the_scheduler_picked(cluster):
    """local-path: the claim waits for its pod; the scheduler puts the pod on the agent node
    (its nodeSelector), writes selected-node, the volume gets node affinity to that node, and a
    second pod on the claim, free to go anywhere, lands there too and reads the first one's data
    after the agent restarted."""
    cluster.kubectl("apply", "-f", "-", input="""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: wffc}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
""")
    try:
        assert cluster.kubectl_json("get", "pvc", "wffc")["status"]["phase"] == "Pending"
        cluster.kubectl("apply", "-f", "-", input=_claim_pod(
            "wffc-writer", "echo on-agent > /data/file", selector=f"nodeSelector: {{kubernetes.io/hostname: {AGENT}}}"))
        wait_for(lambda: _pod_phase(cluster, "wffc-writer") == "Succeeded", timeout=120, what="writer Succeeded")
        claim = cluster.kubectl_json("get", "pvc", "wffc")
        assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == AGENT
        volume = cluster.kubectl_json("get", "pv", claim["spec"]["volumeName"])
        terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert terms == [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                                "values": [AGENT]}]}]
        # The agent restarts (alone: the server keeps running); the data waits for the next pod.
        cluster.agent.stop_agent()
        cluster.agent.start()
        cluster.kubectl("apply", "-f", "-", input=_claim_pod("wffc-reader", "cat /data/file"))
        wait_for(lambda: _pod_phase(cluster, "wffc-reader") == "Succeeded", timeout=120, what="reader Succeeded")
        assert cluster.kubectl_json("get", "pod", "wffc-reader")["spec"]["nodeName"] == AGENT
        assert cluster.kubectl("logs", "wffc-reader").stdout == "on-agent\n"
    finally:
        cluster.kubectl("delete", "pod", "wffc-writer", "wffc-reader", "--ignore-not-found", "--timeout=60s",
                        check=False)
        cluster.kubectl("delete", "pvc", "wffc", "--ignore-not-found", "--timeout=60s", check=False)


def test_agent_cleanup_leaves_nothing_in_its_namespace(cluster, pods):
    before = namespace_state(cluster)
    assert "k8py0" in before["links"] and any(n.startswith("veth") for n in before["links"]), before["links"]
    assert {"KUBE-SERVICES", "KUBE-NODEPORTS", "K8PY-POSTROUTING", "K8PY-FORWARD",
            "CNI-HOSTPORT-DNAT"} <= set(before["chains"]), before["chains"]
    assert before["routes"] and before["containers"] and before["mounts"] and before["leases"], before
    assert str(cluster.agent.agent.pid) in before["processes"], before["processes"]

    # As k3s-killall.sh after stopping k3s: the agent goes, then its cleanup.
    cluster.agent.stop_agent()
    out = sh(*cluster.agent.enter(*cluster.agent.cleanup_command()), timeout=120).stdout
    assert "cleaned up" in out, out

    after = namespace_state(cluster)
    assert after["links"] == ["k8link1", "lo"], after["links"]
    assert after["chains"] == [] and after["jumps"] == [], after
    assert after["routes"] == ""
    assert after["containers"] == []
    assert after["mounts"] == []
    assert after["processes"] == [], [Path(f"/proc/{pid}/cmdline").read_text() for pid in after["processes"]]
    assert after["leases"] == []        # CNI DEL ran for every sandbox: a restarted agent has its whole range
