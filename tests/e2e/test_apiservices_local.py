"""Local APIServices, as upstream's kube-aggregator autoregisters them, seen with the real
kubectl: one per built-in group-version (made again on the next start if deleted), and one
per served CRD version (made again at once if deleted, gone with the CRD)."""

from __future__ import annotations

import json

from tests.e2e.conftest import start_server, wait_for

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.apisvc.example.com"},
    "spec": {"group": "apisvc.example.com", "scope": "Namespaced",
             "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object"}}},
                          {"name": "v1beta1", "served": False, "storage": False,
                           "schema": {"openAPIV3Schema": {"type": "object"}}}]}}


def apiservices(server) -> dict[str, dict]:
    return {s["metadata"]["name"]: s for s in server.kubectl_json("get", "apiservices")["items"]}


def available(service: dict) -> tuple | None:
    return next(((c["status"], c["reason"]) for c in (service.get("status") or {}).get("conditions") or []
                 if c["type"] == "Available"), None)


def test_every_builtin_group_version_has_a_local_available_apiservice(server):
    discovery = server.kubectl("api-versions").stdout.split()
    remote = {name for name, s in apiservices(server).items() if s["spec"].get("service")}  # metrics.k8s.io
    expected = {("v1." if gv == "v1" else f"{gv.split('/')[1]}.{gv.split('/')[0]}")
                for gv in discovery if gv != "apiregistration.k8s.io/v1"} - remote
    assert {"v1.", "v1.apps", "v2.autoscaling", "v1.autoscaling", "v1.flowcontrol.apiserver.k8s.io"} <= expected
    wait_for(lambda: all(available(s) == ("True", "Local") for name, s in apiservices(server).items()
                         if name in expected) and expected <= set(apiservices(server)),
             timeout=30, what="every built-in APIService Available")
    listed = apiservices(server)
    assert (listed["v1."]["spec"]["groupPriorityMinimum"], listed["v1."]["spec"]["versionPriority"]) == (18000, 1)
    assert (listed["v1.apps"]["spec"]["groupPriorityMinimum"], listed["v1.apps"]["spec"]["versionPriority"]) == \
        (17800, 15)
    assert listed["v2.autoscaling"]["spec"]["versionPriority"] == 30
    assert listed["v1.apps"]["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "onstart"}
    assert "service" not in listed["v1.apps"]["spec"]
    table = server.kubectl("get", "apiservices").stdout.splitlines()
    assert table[0].split() == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["v1."][1:3] == ["Local", "True"] and rows["v1.apps"][1:3] == ["Local", "True"]


def test_crd_versions_get_apiservices_kept_while_the_crd_serves_them(server):
    server.kubectl("create", "-f", "-", input=json.dumps(CRD))
    try:
        first = wait_for(lambda: apiservices(server).get("v1.apisvc.example.com"), timeout=20,
                         what="the CRD's APIService")
        assert "v1beta1.apisvc.example.com" not in apiservices(server)  # not served
        assert (first["spec"]["groupPriorityMinimum"], first["spec"]["versionPriority"]) == (1000, 100)
        assert first["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "true"}
        wait_for(lambda: available(apiservices(server)["v1.apisvc.example.com"]) == ("True", "Local"),
                 timeout=30, what="the CRD's APIService Available")
        server.kubectl("delete", "apiservice", "v1.apisvc.example.com")
        again = wait_for(lambda: (s := apiservices(server).get("v1.apisvc.example.com")) and
                         s["metadata"]["uid"] != first["metadata"]["uid"] and s, timeout=20,
                         what="the CRD's APIService made again")
        assert again["spec"] == first["spec"]
    finally:
        server.kubectl("delete", "crd", CRD["metadata"]["name"], "--timeout=60s")
    wait_for(lambda: "v1.apisvc.example.com" not in apiservices(server), timeout=20,
             what="the APIService to go with the CRD")


def test_a_deleted_builtin_apiservice_comes_back_on_the_next_start(tmp_path):
    srv = start_server(tmp_path / "data", extra=["--disable", "controller-manager"])
    try:
        original = apiservices(srv)["v1.batch"]
        srv.kubectl("delete", "apiservice", "v1.batch")
        srv.kubectl("patch", "apiservice", "v1.apps", "--type=merge", "-p", '{"spec":{"versionPriority":3}}')
        assert "v1.batch" not in apiservices(srv)  # synced once per start, as upstream
    finally:
        srv.stop()
    srv = start_server(tmp_path / "data", port=srv.port, extra=["--disable", "controller-manager"])
    try:
        listed = apiservices(srv)
        assert listed["v1.batch"]["spec"] == original["spec"]
        assert listed["v1.batch"]["metadata"]["uid"] != original["metadata"]["uid"]
        assert listed["v1.apps"]["spec"]["versionPriority"] == 15  # corrected at start
    finally:
        srv.stop()
