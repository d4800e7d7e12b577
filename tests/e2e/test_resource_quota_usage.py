"""ResourceQuota usage as the real kubectl shows it: sums keep upstream's Quantity
form (`96Mi`, `1500m`), in status.used, `kubectl get quota` and the exceeded-quota error."""

from __future__ import annotations

import json

from tests.e2e.conftest import wait_for


def sized_pod(name: str, cpu: str, memory: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"containers": [{"name": "c", "image": "busybox",
                                                "resources": {"requests": {"cpu": cpu, "memory": memory},
                                                              "limits": {"cpu": cpu, "memory": memory}}}]}})


def test_quota_usage_keeps_the_quantity_form_of_what_it_adds(server, namespace):
    server.kubectl("create", "quota", "compute", "-n", namespace,
                   "--hard=pods=10,requests.cpu=2,requests.memory=1Gi,limits.memory=2Gi")
    server.kubectl("create", "-n", namespace, "-f", "-", input=sized_pod("small", "500m", "64Mi"))
    server.kubectl("create", "-n", namespace, "-f", "-", input=sized_pod("large", "1", "32Mi"))
    expected = {"pods": "2", "requests.cpu": "1500m", "requests.memory": "96Mi", "limits.memory": "96Mi"}
    wait_for(lambda: server.kubectl_json("get", "quota", "compute", "-n", namespace).get("status", {}).get("used")
             == expected, timeout=30, what=f"status.used == {expected}")
    table = server.kubectl("get", "quota", "compute", "-n", namespace).stdout.splitlines()
    assert "pods: 2/10, requests.cpu: 1500m/2, requests.memory: 96Mi/1Gi" in table[1]
    assert "limits.memory: 96Mi/2Gi" in table[1]
    described = server.kubectl("describe", "quota", "compute", "-n", namespace).stdout
    assert any(line.split() == ["requests.memory", "96Mi", "1Gi"] for line in described.splitlines()), described
    refused = server.kubectl("create", "-n", namespace, "-f", "-", input=sized_pod("huge", "250m", "1Gi"),
                             check=False)
    assert refused.returncode == 1
    # limits.memory would reach 1120Mi of 2Gi: only requests.memory is over.
    assert ('pods "huge" is forbidden: exceeded quota: compute, requested: requests.memory=1Gi, '
            "used: requests.memory=96Mi, limited: requests.memory=1Gi") in refused.stderr, refused.stderr


def test_limitrange_pod_sums_print_in_quantity_form(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "per-pod"},
        "spec": {"limits": [{"type": "Pod", "max": {"memory": "64Mi"}}]}}))
    body = json.loads(sized_pod("pair", "100m", "48Mi"))
    body["spec"]["containers"].append({**body["spec"]["containers"][0], "name": "d"})
    refused = server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    assert refused.returncode == 1
    assert 'pods "pair" is forbidden: maximum memory usage per Pod is 64Mi, but limit is 96Mi' in refused.stderr
