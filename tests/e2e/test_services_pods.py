"""Services with real containers: the seed Deployment behind the seed's 10-services.yaml.

Runs on a whole single-node cluster in its own network namespace
(tests/e2e/netns_cluster.py). Checks are made from inside a busybox pod
(nsenter into its namespaces) and from the node.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.e2e.conftest import SEED, wait_for
from tests.e2e.netns_cluster import node_in_namespace, sh

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="containers and network namespaces need root"),
    pytest.mark.host_network,  # a network-namespace cluster
]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    yield from node_in_namespace(tmp_path_factory)


HTTP_GET = "GET / HTTP/1.0\r\n\r\n"


def test_seed_services_in_front_of_the_seed_deployment(node):
    node.kubectl("apply", "-f", str(SEED / "09-deployment-rolling.yaml"), "-f", str(SEED / "10-services.yaml"))
    node.kubectl("run", "client", "--image=busybox", "--restart=Never", "--", "sleep", "3600")

    def ready_ips():
        ep = node.kubectl_json("get", "endpoints", "myapp-nodeport")
        return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])
    wait_for(lambda: len(ready_ips()) == 3, timeout=90, what="three ready nginx endpoints")
    wait_for(lambda: node.kubectl_json("get", "pod", "client")["status"].get("phase") == "Running", timeout=60,
             what="client pod")
    pid = node.pod_pid("client")

    # Names: the ClusterIP service, the ExternalName CNAME, the headless Service's pod IPs.
    cluster_ip = node.kubectl_json("get", "svc", "myapp-nodeport")["spec"]["clusterIP"]
    out = node.in_pod(pid, "nslookup", "myapp-nodeport.default.svc.cluster.local").stdout
    assert f"Address: {cluster_ip}" in out, out
    out = node.in_pod(pid, "nslookup", "my-service").stdout
    assert "canonical name = my.database.example.com" in out, out
    out = node.in_pod(pid, "nslookup", "nginx-headless.default.svc.cluster.local").stdout
    assert sorted(line.split()[-1] for line in out.splitlines() if line.startswith("Address: ")) == ready_ips()

    # The ClusterIP and the Service name reach nginx, and 300 connections spread over every endpoint.
    assert "200 OK" in node.in_pod(pid, "nc", "myapp-nodeport", "80", input=HTTP_GET).stdout
    for _ in range(300):
        node.in_pod(pid, "nc", cluster_ip, "80", input=HTTP_GET, check=True)
    tracked = sh(*node.enter("conntrack", "-L", "-p", "tcp", "-d", cluster_ip), check=False).stdout
    client_ip = node.kubectl_json("get", "pod", "client")["status"]["podIP"]
    hits = {ip: tracked.count(f"src={ip} dst={client_ip}") for ip in ready_ips()}
    assert all(n > 30 for n in hits.values()), hits

    # NodePort on the node's addresses (and 127.0.0.1), the LoadBalancer ingress answers.
    node_port = node.kubectl_json("get", "svc", "myapp-nodeport")["spec"]["ports"][0]["nodePort"]
    for address in ("192.168.90.1", "127.0.0.1"):
        got = sh(*node.enter("busybox", "nc", address, str(node_port)), input=HTTP_GET, check=False).stdout
        assert "200 OK" in got, (address, got)
    lb = wait_for(lambda: (node.kubectl_json("get", "svc", "myapp-lb").get("status") or {})
                  .get("loadBalancer", {}).get("ingress"), what="LoadBalancer ingress")
    got = sh(*node.enter("busybox", "nc", lb[0]["ip"], "8088"), input=HTTP_GET, check=False).stdout
    assert "200 OK" in got, got

    # Scaling changes the endpoints as soon as the new pods are ready.
    node.kubectl("scale", "deployment", "nginx-deploy", "--replicas=5")
    wait_for(lambda: len(ready_ips()) == 5, timeout=60, what="five endpoints after scaling")


READY_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ready-web
spec:
  replicas: 2
  selector:
    matchLabels: {app: ready-web}
  template:
    metadata:
      labels: {app: ready-web}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          exec: {command: ["cat", "/tmp/ready"]}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata:
  name: ready-web
spec:
  selector: {app: ready-web}
  ports:
  - {name: http, port: 80, targetPort: http}
"""


def test_a_pod_failing_readiness_stops_receiving_traffic(node):
    node.kubectl("apply", "-f", "-", input=READY_DEPLOYMENT)
    if node.kubectl("get", "pod", "client", check=False).returncode != 0:
        node.kubectl("run", "client", "--image=busybox", "--restart=Never", "--", "sleep", "3600")

    def ready_pods():
        pods = node.kubectl_json("get", "pods", "-l", "app=ready-web")["items"]
        return sorted(p["metadata"]["name"] for p in pods
                      if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])))
    names = wait_for(lambda: len(ready_pods()) == 2 and ready_pods(), timeout=90, what="two ready web pods")
    wait_for(lambda: node.kubectl_json("get", "pod", "client")["status"].get("phase") == "Running", timeout=60,
             what="client pod")
    client = node.pod_pid("client")

    def answers(count):
        got = {}
        for _ in range(count):
            out = node.in_pod(client, "nc", "ready-web", "80", input=HTTP_GET).stdout
            body = out.replace("\r\n", "\n").rsplit("\n\n", 1)[-1].strip()  # busybox httpd ends lines with \n
            got[body] = got.get(body, 0) + 1
        return got
    wait_for(lambda: set(answers(30)) == set(names), timeout=20, what="traffic to both pods")

    # The first pod's probe starts failing: it leaves the endpoints, and the traffic, within a probe period or two.
    node.in_pod(node.pod_pid(names[0]), "rm", "/tmp/ready", check=True)
    started = time.monotonic()
    wait_for(lambda: ready_pods() == [names[1]], timeout=10, what="the pod turning not ready")
    wait_for(lambda: answers(20) == {names[1]: 20}, timeout=10, what="traffic only to the ready pod")
    assert time.monotonic() - started < 10
    ep = node.kubectl_json("get", "endpoints", "ready-web")
    assert [a["targetRef"]["name"] for s in ep["subsets"] for a in s.get("notReadyAddresses", [])] == [names[0]]


def test_seed_init_container_waits_for_myservice_as_far_as_busybox_allows(node):
    """Seed 07's init loop `until nslookup myservice` runs while the Service is missing.

    Once it exists, cluster DNS answers `myservice` through the pod's search path;
    but busybox's nslookup (1.30+, here Debian's 1.35) also asks the other search
    candidates and exits 1 on their (correct) NXDOMAIN, so that loop never ends
    against a conforming DNS, CoreDNS included. The same wait written with the
    Service's full name ends and the main container starts.
    """
    import copy

    import yaml
    pod_doc, service_doc = [d for d in yaml.safe_load_all((SEED / "07-init-containers.yaml").read_text()) if d]
    node.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod_doc))
    wait_for(lambda: "waiting for myservice" in node.kubectl("logs", "init-demo", "-c", "init-myservice",
                                                             check=False).stdout,
             timeout=60, what="the init container looping")
    assert "Init:0/1" in node.kubectl("get", "pod", "init-demo").stdout

    node.kubectl("apply", "-f", "-", input=yaml.safe_dump(service_doc))
    cluster_ip = node.kubectl_json("get", "svc", "myservice")["spec"]["clusterIP"]
    lookup = node.kubectl("exec", "init-demo", "-c", "init-myservice", "--", "nslookup", "myservice", check=False)
    assert "Name:\tmyservice.default.svc.cluster.local" in lookup.stdout, lookup.stdout
    assert f"Address: {cluster_ip}" in lookup.stdout, lookup.stdout
    assert "server can't find myservice.svc.cluster.local: NXDOMAIN" in lookup.stdout, lookup.stdout
    assert lookup.returncode == 1

    fqdn = copy.deepcopy(pod_doc)
    fqdn["metadata"]["name"] = "init-demo-fqdn"
    fqdn["spec"]["initContainers"][0]["command"][-1] = fqdn["spec"]["initContainers"][0]["command"][-1].replace(
        "nslookup myservice;", "nslookup myservice.default.svc.cluster.local;")
    node.kubectl("apply", "-f", "-", input=yaml.safe_dump(fqdn))
    wait_for(lambda: node.kubectl_json("get", "pod", "init-demo-fqdn")["status"].get("phase") == "Running",
             timeout=60, what="init-demo-fqdn Running")
    assert "started" in node.kubectl("logs", "init-demo-fqdn").stdout
    init_state = node.kubectl_json("get", "pod", "init-demo-fqdn")["status"]["initContainerStatuses"][0]["state"]
    assert init_state["terminated"]["reason"] == "Completed"
    node.kubectl("delete", "pod", "init-demo", "init-demo-fqdn", "--grace-period=1")
    node.kubectl("delete", "service", "myservice")
