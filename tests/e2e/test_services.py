"""Services end to end on a real `k8py server`: endpoint controllers, ServiceLB and cluster DNS.

The seed's 10-services.yaml is applied with the real kubectl. There is no
node agent here, so "pods" get their IP and readiness by a status patch,
exactly what a kubelet would write. DNS is asked over UDP on the
127.0.0.1 listener the server opens for K8PY_DNS_LISTEN; only cluster
names are asked, so nothing is forwarded.
"""

from __future__ import annotations

import json
import os
import socket

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from tests.e2e.conftest import SEED, free_port, start_server, wait_for, wait_for_default_service_account


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    dns_port = free_port()
    saved = os.environ.get("K8PY_DNS_LISTEN")
    os.environ["K8PY_DNS_LISTEN"] = f"127.0.0.1:{dns_port}"
    try:
        srv = start_server(tmp_path_factory.mktemp("k8py-services"))
    finally:
        if saved is None:
            os.environ.pop("K8PY_DNS_LISTEN")
        else:
            os.environ["K8PY_DNS_LISTEN"] = saved
    srv.dns_port = dns_port
    yield srv
    srv.stop()


def dns(srv, name, qtype="A"):
    q = DNSRecord.question(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(q.pack(), ("127.0.0.1", srv.dns_port))
        return DNSRecord.parse(s.recv(65535))


def answers(reply):
    return sorted(str(rr.rdata) for rr in reply.rr)


def make_ready_pod(srv, ns, name, ip, ready=True):
    srv.kubectl("-n", ns, "create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "nginx-deploy"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}))
    set_ready(srv, ns, name, ip, ready)


def set_ready(srv, ns, name, ip, ready):
    status = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                         "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    srv.kubectl("-n", ns, "patch", "pod", name, "--subresource=status", "--type=merge", "-p", json.dumps(status))


def test_seed_services_get_endpoints_dns_and_load_balancer(cluster):
    ns = "svc-e2e"
    cluster.kubectl("create", "namespace", ns)
    wait_for_default_service_account(cluster, ns)
    cluster.kubectl("-n", ns, "apply", "-f", str(SEED / "10-services.yaml"))
    make_ready_pod(cluster, ns, "web-1", "10.42.0.21")
    make_ready_pod(cluster, ns, "web-2", "10.42.0.22")

    def endpoint_ips(name):
        ep = cluster.kubectl_json("-n", ns, "get", "endpoints", name, check=False) \
            if cluster.kubectl("-n", ns, "get", "endpoints", name, check=False).returncode == 0 else {}
        return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])
    wait_for(lambda: endpoint_ips("myapp-nodeport") == ["10.42.0.21", "10.42.0.22"], what="endpoints")
    ep = cluster.kubectl_json("-n", ns, "get", "endpoints", "myapp-nodeport")
    assert ep["subsets"][0]["ports"] == [{"name": "myapp-http", "port": 80, "protocol": "TCP"}]
    printed = cluster.kubectl("-n", ns, "get", "endpoints", "myapp-nodeport").stdout
    assert "10.42.0.21:80,10.42.0.22:80" in printed

    slices = cluster.kubectl_json("-n", ns, "get", "endpointslices", "-l",
                                  "kubernetes.io/service-name=nginx-headless")["items"]
    assert len(slices) == 1 and len(slices[0]["endpoints"]) == 2
    assert slices[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""

    # Cluster DNS, from the informers.
    domain = f"{ns}.svc.cluster.local"
    cname = dns(cluster, f"my-service.{domain}")
    assert [(rr.rtype, str(rr.rdata)) for rr in cname.rr] == [(QTYPE.CNAME, "my.database.example.com.")]
    wait_for(lambda: answers(dns(cluster, f"nginx-headless.{domain}")) == ["10.42.0.21", "10.42.0.22"],
             what="headless A records")
    cluster_ip = cluster.kubectl_json("-n", ns, "get", "svc", "myapp-nodeport")["spec"]["clusterIP"]
    assert answers(dns(cluster, f"myapp-nodeport.{domain}")) == [cluster_ip]
    srv = dns(cluster, f"_myapp-http._tcp.myapp-nodeport.{domain}", "SRV")
    assert answers(srv) == [f"0 100 80 myapp-nodeport.{domain}."]
    missing = dns(cluster, f"nope.{domain}")
    assert missing.header.rcode == RCODE.NXDOMAIN and missing.auth[0].rtype == QTYPE.SOA

    # A pod failing readiness leaves the endpoints (and the headless answer) within a second.
    set_ready(cluster, ns, "web-2", "10.42.0.22", False)
    wait_for(lambda: endpoint_ips("myapp-nodeport") == ["10.42.0.21"], timeout=1.5, what="not-ready pod removed")
    wait_for(lambda: answers(dns(cluster, f"nginx-headless.{domain}")) == ["10.42.0.21"], timeout=1.5,
             what="headless answer follows readiness")
    ep = cluster.kubectl_json("-n", ns, "get", "endpoints", "myapp-nodeport")
    assert [a["ip"] for s in ep["subsets"] for a in s.get("notReadyAddresses", [])] == ["10.42.0.22"]

    # ServiceLB: the node's InternalIP becomes the LoadBalancer ingress.
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "svc-e2e-node"}}))
    cluster.kubectl("patch", "node", "svc-e2e-node", "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"addresses": [{"type": "InternalIP", "address": "192.168.50.5"}],
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}))
    wait_for(lambda: (cluster.kubectl_json("-n", ns, "get", "svc", "myapp-lb").get("status") or {})
             .get("loadBalancer", {}).get("ingress"), what="LoadBalancer ingress")
    lb = cluster.kubectl("-n", ns, "get", "svc", "myapp-lb").stdout
    assert "192.168.50.5" in lb and "8088:" in lb

    # kube-dns fronts the DNS server at --cluster-dns, as upstream.
    kube_dns = cluster.kubectl_json("-n", "kube-system", "get", "svc", "kube-dns")
    assert kube_dns["spec"]["clusterIP"] == "10.43.0.10"
    assert [p["name"] for p in kube_dns["spec"]["ports"]] == ["dns", "dns-tcp", "metrics"]
    cluster.kubectl("delete", "namespace", ns, "--wait=false")
    cluster.kubectl("delete", "node", "svc-e2e-node")


def test_service_without_selector_is_mirrored(cluster):
    ns = "svc-mirror"
    cluster.kubectl("create", "namespace", ns)
    for obj in ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
                 "spec": {"ports": [{"port": 5432}]}},
                {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db"},
                 "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]}):
        cluster.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(obj))

    def mirrored():
        items = cluster.kubectl_json("-n", ns, "get", "endpointslices", "-l",
                                     "kubernetes.io/service-name=db")["items"]
        return items if items and items[0].get("endpoints") else None
    (s,) = wait_for(mirrored, what="mirrored slice")
    assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslicemirroring-controller.k8s.io"
    assert s["endpoints"][0]["addresses"] == ["192.0.2.10"]
    cluster.kubectl("delete", "namespace", ns, "--wait=false")


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
async def test_proxy_follows_the_api_into_a_node_namespace(cluster):
    """kube-proxy (informers + iptables) against the real server, programming a namespaced node."""
    import asyncio

    from k8py import proxy
    from k8py.client import Client
    from tests.netns import NetnsNode

    ns = "svc-proxy"
    node = NetnsNode(pods=3, tag="svce").up()
    client = Client.from_kubeconfig(cluster.kubeconfig)
    health_port = free_port()
    task = asyncio.create_task(proxy.run(client, proxy.ProxyConfig(node_name="node-a", cluster_cidr="10.42.0.0/16"),
                                         proxy.Iptables(node.node), health_address=f"127.0.0.1:{health_port}"))
    loop = asyncio.get_running_loop()

    async def kubectl(*args, **kw):
        return await loop.run_in_executor(None, lambda: cluster.kubectl(*args, **kw))

    async def spread(count):
        return await loop.run_in_executor(None, node.requests, node.node, cluster_ip, 80, count)

    async def eventually(check, what, timeout=5.0):
        deadline = loop.time() + timeout
        while True:
            last = await check()
            if last:
                return last
            assert loop.time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.1)
    try:
        await kubectl("create", "namespace", ns)
        await loop.run_in_executor(None, wait_for_default_service_account, cluster, ns)
        await kubectl("-n", ns, "create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "nginx-deploy"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
        cluster_ip = cluster.kubectl_json("-n", ns, "get", "svc", "web")["spec"]["clusterIP"]
        for i, ip in enumerate(node.pod_ips, 1):
            await loop.run_in_executor(None, make_ready_pod, cluster, ns, f"web-{i}", ip)

        async def all_three():
            result = await spread(60)
            return result["error_count"] == 0 and set(result["answers"]) == {"pod1", "pod2", "pod3"}
        await eventually(all_three, "traffic to all three pods through the ClusterIP")
        # A pod failing readiness stops receiving traffic.
        await loop.run_in_executor(None, set_ready, cluster, ns, "web-2", node.pod_ips[1], False)

        async def without_pod2():
            result = await spread(60)
            return result["error_count"] == 0 and set(result["answers"]) == {"pod1", "pod3"}
        await eventually(without_pod2, "pod2 out of rotation", timeout=2.0)

        import aiohttp
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{health_port}/healthz") as resp:
                assert resp.status == 200 and (await resp.json())["nodeEligible"] is True
            async with session.get(f"http://127.0.0.1:{health_port}/metrics") as resp:
                text = await resp.text()
        syncs = int(next(line for line in text.splitlines() if line.startswith("kubeproxy_sync_proxy_rules_total"))
                    .split()[-1])
        assert syncs >= 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
        await proxy.cleanup(node.node)
        node.down()
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
