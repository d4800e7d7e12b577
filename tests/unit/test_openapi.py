"""The /openapi/v3 and /openapi/v2 documents."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import threading

import orjson
import pytest

from k8py.api.builtin import builtin_registry
from k8py.api.openapi import OpenAPI, convert_definition, operation_id
from k8py.api.schema import INT_OR_STRING, QUANTITY, schemas
from tests.kubectl import kubectl_binary

V3_REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI(builtin_registry(), schemas())


def doc(openapi: OpenAPI, path: str) -> dict:
    body = openapi.v3_document(path)
    assert body is not None, path
    return orjson.loads(body)


def resolve(document: dict, node: dict) -> dict:
    """Follow a $ref, possibly wrapped in a one-element allOf, as kubectl explain does."""
    while True:
        if "$ref" in node:
            node = document["components"]["schemas"][node["$ref"][len(V3_REF):]]
        elif "allOf" in node and len(node["allOf"]) == 1 and "properties" not in node:
            node = node["allOf"][0]
        else:
            return node


def field(document: dict, kind_schema: str, dotted: str) -> dict:
    node = document["components"]["schemas"][kind_schema]
    for name in dotted.split("."):
        node = resolve(document, node)
        if "items" in node:
            node = resolve(document, node["items"])
        node = node["properties"][name]
    return resolve(document, node["items"] if "items" in node else node)


def walk_refs(node, found: set[str]) -> None:
    if isinstance(node, dict):
        if "$ref" in node:
            found.add(node["$ref"])
        for value in node.values():
            walk_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            walk_refs(value, found)


# ---- index and caching ------------------------------------------------------

def test_index_lists_every_group_version_with_content_hash(openapi):
    index = openapi.v3_index()
    paths = index["paths"]
    for expected in ("api", "api/v1", "apis", "apis/apps", "apis/apps/v1", "apis/batch/v1",
                     "apis/autoscaling/v1", "apis/autoscaling/v2", "apis/networking.k8s.io/v1", "version"):
        assert expected in paths, expected
    assert ".well-known/openid-configuration" not in paths
    for path, entry in paths.items():
        body = openapi.v3_document(path)
        digest = hashlib.sha512(body).hexdigest().upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{path}?hash={digest}"
        assert openapi.v3_etag(path) == digest
    assert list(paths) == sorted(paths)


def test_documents_are_built_lazily_and_memoised():
    api = OpenAPI(builtin_registry(), schemas())
    assert api._routes is None and not api._v3  # nothing built yet
    first = api.v3_document("apis/apps/v1")
    assert api.v3_document("/apis/apps/v1/") is first
    assert api.v3_document("apis/nope/v1") is None
    assert api.v3_etag("apis/nope/v1") == ""


def test_invalidate_rebuilds_from_the_registry():
    registry = builtin_registry()
    api = OpenAPI(registry, schemas())
    assert "apis/batch/v1" in api.v3_index()["paths"]
    registry.remove_group_version("batch", "v1")
    assert "apis/batch/v1" in api.v3_index()["paths"]  # memoised until told
    api.invalidate()
    assert "apis/batch/v1" not in api.v3_index()["paths"]
    assert api.v3_document("apis/batch/v1") is None


def test_v3_response_follows_handler3(openapi):
    etag = openapi.v3_etag("api/v1")
    status, headers, body = openapi.v3_response("api/v1", etag, "application/json")
    assert status == 200 and body == openapi.v3_document("api/v1")
    assert headers["Etag"] == f'"{etag}"'
    assert headers["Cache-Control"] == "public, immutable"
    assert headers["Content-Type"] == "application/json"
    status, headers, _ = openapi.v3_response("api/v1", "DEADBEEF", "application/json")
    assert status == 301 and headers["Location"] == f"/openapi/v3/api/v1?hash={etag}"
    status, headers, _ = openapi.v3_response("api/v1", None, "application/json")
    assert status == 200 and "Cache-Control" not in headers
    status, _, _ = openapi.v3_response("api/v1", None, "application/com.github.proto-openapi.spec.v3.v1.0+protobuf")
    assert status == 406
    assert openapi.v3_response("apis/nope/v1", None)[0] == 404


# ---- schemas ------------------------------------------------------------------

def test_liveness_probe_resolves_to_probe_with_its_fields(openapi):
    core = doc(openapi, "api/v1")
    probe = field(core, "io.k8s.api.core.v1.Pod", "spec.containers.livenessProbe")
    assert probe is core["components"]["schemas"]["io.k8s.api.core.v1.Probe"] or probe == \
        core["components"]["schemas"]["io.k8s.api.core.v1.Probe"]
    assert {"httpGet", "exec", "tcpSocket", "grpc", "initialDelaySeconds", "periodSeconds",
            "failureThreshold"} <= set(probe["properties"])
    assert probe["properties"]["periodSeconds"] == {
        "description": probe["properties"]["periodSeconds"]["description"], "format": "int32", "type": "integer"}
    port = field(core, "io.k8s.api.core.v1.Pod", "spec.containers.livenessProbe.httpGet.port")
    assert port["format"] == "int-or-string"
    assert port["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert "type" not in port  # kubectl explain then shows <IntOrString>


def test_refs_with_siblings_are_wrapped_in_allof(openapi):
    apps = doc(openapi, "apis/apps/v1")
    spec = apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]
    assert spec["allOf"] == [{"$ref": V3_REF + "io.k8s.api.apps.v1.DeploymentSpec"}]
    assert spec["description"].startswith("Specification of the desired behavior")
    assert "$ref" not in spec
    containers = apps["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"$ref": V3_REF + "io.k8s.api.core.v1.Container"}
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]


def test_types_are_single_strings_and_refs_all_resolve(openapi):
    for path in ("api/v1", "apis/apps/v1", "apis/batch/v1", "apis/rbac.authorization.k8s.io/v1"):
        document = doc(openapi, path)
        text = openapi.v3_document(path)
        assert b'"null"' not in text
        assert b"#/$defs/" not in text
        refs: set[str] = set()
        walk_refs(document, refs)
        for ref in refs:
            assert ref.startswith(V3_REF)
            assert ref[len(V3_REF):] in document["components"]["schemas"], ref
        for schema in document["components"]["schemas"].values():
            assert isinstance(schema.get("type", "object"), str)


def test_kind_schemas_carry_gvk_and_no_pinned_enums(openapi):
    core = doc(openapi, "api/v1")
    pod = core["components"]["schemas"]["io.k8s.api.core.v1.Pod"]
    assert {"group": "", "kind": "Pod", "version": "v1"} in pod["x-kubernetes-group-version-kind"]
    assert "enum" not in pod["properties"]["kind"]
    assert "enum" not in pod["properties"]["apiVersion"]
    assert pod["type"] == "object"


def test_documents_hold_only_reachable_definitions(openapi):
    apps = doc(openapi, "apis/apps/v1")["components"]["schemas"]
    assert "io.k8s.api.apps.v1.Deployment" in apps
    assert "io.k8s.api.autoscaling.v1.Scale" in apps  # deployments/scale
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.Status" in apps
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions" in apps
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent" in apps
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList" in apps
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.Patch" in apps
    assert "io.k8s.api.batch.v1.Job" not in apps
    assert "io.k8s.api.core.v1.Service" not in apps
    core = doc(openapi, "api/v1")["components"]["schemas"]
    assert "io.k8s.api.policy.v1.Eviction" in core  # pods/eviction
    assert "io.k8s.api.authentication.v1.TokenRequest" in core  # serviceaccounts/token
    assert "io.k8s.api.apps.v1.Deployment" not in core


def test_quantity_and_int_or_string_forms():
    defs = schemas().definitions
    assert convert_definition(QUANTITY, defs[QUANTITY], v3=True)["oneOf"] == [{"type": "string"},
                                                                              {"type": "number"}]
    assert convert_definition(QUANTITY, defs[QUANTITY], v3=False) == {"type": "string"}
    assert convert_definition(INT_OR_STRING, defs[INT_OR_STRING], v3=False) == {
        "format": "int-or-string", "type": "string"}


# ---- paths and operations ----------------------------------------------------

def test_deployment_item_path_operations(openapi):
    apps = doc(openapi, "apis/apps/v1")
    item = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert set(item) == {"get", "put", "patch", "delete", "parameters"}
    assert [p["name"] for p in item["parameters"]] == ["name", "namespace", "pretty"]
    assert all(p["in"] == "path" and p["required"] for p in item["parameters"][:2])
    patch = item["patch"]
    gvk = {"group": "apps", "kind": "Deployment", "version": "v1"}
    assert patch["x-kubernetes-group-version-kind"] == gvk
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    assert patch["tags"] == ["apps_v1"]
    params = {p["name"]: p for p in patch["parameters"]}
    assert set(params) == {"dryRun", "fieldManager", "fieldValidation", "force"}
    assert params["fieldValidation"]["in"] == "query"
    assert params["force"]["schema"]["type"] == "boolean"
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
    assert patch["requestBody"]["content"]["application/apply-patch+yaml"]["schema"] == {
        "$ref": V3_REF + "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}
    assert patch["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": V3_REF + "io.k8s.api.apps.v1.Deployment"}
    assert item["put"]["x-kubernetes-action"] == "put"
    assert {p["name"] for p in item["put"]["parameters"]} == {"dryRun", "fieldManager", "fieldValidation"}
    assert item["put"]["requestBody"]["required"] is True
    assert item["delete"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(".Status")
    assert "required" not in item["delete"]["requestBody"]
    assert item["get"]["operationId"] == "readAppsV1NamespacedDeployment"
    assert "parameters" not in item["get"]


def test_collection_paths(openapi):
    apps = doc(openapi, "apis/apps/v1")
    paths = apps["paths"]
    collection = paths["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert set(collection) == {"get", "post", "delete", "parameters"}
    assert collection["get"]["x-kubernetes-action"] == "list"
    assert collection["get"]["responses"]["200"]["content"]["application/json;stream=watch"]["schema"][
        "$ref"].endswith("DeploymentList")
    assert {p["name"] for p in collection["get"]["parameters"]} >= {"labelSelector", "fieldSelector", "watch",
                                                                    "limit", "continue", "resourceVersion"}
    assert collection["post"]["x-kubernetes-action"] == "post"
    assert collection["post"]["operationId"] == "createAppsV1NamespacedDeployment"
    assert collection["delete"]["x-kubernetes-action"] == "deletecollection"
    assert collection["delete"]["operationId"] == "deleteAppsV1CollectionNamespacedDeployment"
    every = paths["/apis/apps/v1/deployments"]
    assert every["get"]["operationId"] == "listAppsV1DeploymentForAllNamespaces"
    assert "/apis/apps/v1/watch/namespaces/{namespace}/deployments/{name}" in paths
    assert paths["/apis/apps/v1/watch/deployments"]["get"]["x-kubernetes-action"] == "watchlist"
    assert paths["/apis/apps/v1/"]["get"]["operationId"] == "getAppsV1APIResources"


def test_status_and_scale_subresources(openapi):
    apps = doc(openapi, "apis/apps/v1")
    status = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]
    assert set(status) == {"get", "put", "patch", "parameters"}
    assert status["patch"]["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment",
                                                                  "version": "v1"}
    assert status["patch"]["operationId"] == "patchAppsV1NamespacedDeploymentStatus"
    assert any(p["name"] == "fieldValidation" for p in status["patch"]["parameters"])
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale",
                                                                 "version": "v1"}
    assert scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "io.k8s.api.autoscaling.v1.Scale")


def test_core_paths(openapi):
    core = doc(openapi, "api/v1")
    paths = core["paths"]
    assert paths["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"
    assert paths["/api/v1/namespaces/{namespace}/pods"]["delete"]["operationId"] == \
        "deleteCoreV1CollectionNamespacedPod"
    nodes = paths["/api/v1/nodes/{name}"]
    assert [p["name"] for p in nodes["parameters"]] == ["name", "pretty"]
    assert nodes["patch"]["x-kubernetes-group-version-kind"] == {"group": "", "kind": "Node", "version": "v1"}
    # pods return the deleted object, most kinds a Status
    pod_delete = paths["/api/v1/namespaces/{namespace}/pods/{name}"]["delete"]
    assert pod_delete["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(".Pod")
    eviction = paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]
    assert eviction["post"]["x-kubernetes-group-version-kind"] == {"group": "policy", "kind": "Eviction",
                                                                   "version": "v1"}
    log = paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]
    assert log["get"]["responses"]["200"]["content"]["text/plain"]["schema"] == {"type": "string"}
    # a path with a single operation carries all its parameters itself
    assert "parameters" not in log["get"]
    assert {p["name"] for p in log["parameters"]} >= {"name", "namespace", "container", "follow", "tailLines"}
    exec_get = paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["get"]
    assert exec_get["x-kubernetes-action"] == "connect"
    assert exec_get["operationId"] == "connectCoreV1GetNamespacedPodExec"
    assert "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}" in paths
    # Binding only supports create
    assert set(paths["/api/v1/namespaces/{namespace}/bindings"]) <= {"post", "parameters"}


def test_operation_ids_follow_upstream_naming():
    assert operation_id("deletecollectionNamespacedPod", "", "v1") == (
        "deleteCoreV1CollectionNamespacedPod", "core_v1")
    assert operation_id("readNamespacedRole", "rbac.authorization.k8s.io", "v1") == (
        "readRbacAuthorizationV1NamespacedRole", "rbacAuthorization_v1")
    assert operation_id("listIngressForAllNamespaces", "networking.k8s.io", "v1") == (
        "listNetworkingV1IngressForAllNamespaces", "networking_v1")


def test_side_documents(openapi):
    assert doc(openapi, "api")["paths"]["/api/"]["get"]["operationId"] == "getCoreAPIVersions"
    assert doc(openapi, "apis")["paths"]["/apis/"]["get"]["operationId"] == "getAPIVersions"
    group = doc(openapi, "apis/rbac.authorization.k8s.io")
    assert group["paths"]["/apis/rbac.authorization.k8s.io/"]["get"]["operationId"] == \
        "getRbacAuthorizationAPIGroup"
    version = doc(openapi, "version")
    assert version["paths"]["/version/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "$ref"].endswith("io.k8s.apimachinery.pkg.version.Info")
    for path in ("api", "apis/apps/v1"):
        document = doc(openapi, path)
        assert document["openapi"] == "3.0.0"
        assert document["info"]["title"] == "Kubernetes"


# ---- swagger 2.0 ----------------------------------------------------------------

def test_v2_document(openapi):
    swagger = orjson.loads(openapi.v2_document())
    assert swagger["swagger"] == "2.0"
    definitions = swagger["definitions"]
    deployment = definitions["io.k8s.api.apps.v1.Deployment"]
    assert deployment["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    assert "allOf" not in deployment["properties"]["spec"]
    assert definitions[INT_OR_STRING]["type"] == "string"
    patch = swagger["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    assert patch["parameters"][0] == {"in": "body", "name": "body", "required": True,
                                      "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}
    assert any(p["name"] == "fieldValidation" and p["type"] == "string" for p in patch["parameters"])
    assert "/api/v1/namespaces/{namespace}/pods" in swagger["paths"]
    assert b"#/$defs/" not in openapi.v2_document()
    assert b"#/components/" not in openapi.v2_document()


# ---- the real kubectl ------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_server(openapi):
    """Just enough of an API server for `kubectl explain`: /version, legacy
    discovery and the OpenAPI documents, over plain HTTP."""
    from aiohttp import web

    from k8py.apiserver import discovery

    registry = builtin_registry()
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        seen.append(request.path_qs)
        if path == "/version":
            return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
        if path == "/openapi/v3":
            return web.Response(body=orjson.dumps(openapi.v3_index()), content_type="application/json")
        if path.startswith("/openapi/v3/"):
            status, headers, body = openapi.v3_response(path[len("/openapi/v3/"):], request.query.get("hash"),
                                                        request.headers.get("Accept"))
            return web.Response(status=status, headers=headers, body=body)
        if path == "/api":
            return web.json_response(discovery.api_versions("127.0.0.1"))
        if path == "/apis":
            return web.json_response(discovery.api_group_list(registry))
        parts = path.strip("/").split("/")
        body = None
        if parts[0] == "api" and len(parts) == 2:
            body = discovery.api_resource_list(registry, "", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            body = discovery.api_resource_list(registry, parts[1], parts[2])
        if body is None:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "NotFound", "code": 404}, status=404)
        return web.json_response(body)

    ready = threading.Event()
    state: dict = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        state["loop"] = loop
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        state["port"] = site._server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield state["port"], seen
    state["loop"].call_soon_threadsafe(state["loop"].stop)
    thread.join(5)


def kubectl_explain(port: int, tmp_path, *args: str) -> str:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n")
    result = subprocess.run([kubectl_binary("1.32"), "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"),
                             "explain", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kubectl_explain_liveness_probe(tiny_server, tmp_path):
    port, seen = tiny_server
    out = kubectl_explain(port, tmp_path, "pod.spec.containers.livenessProbe")
    assert "KIND:       Pod" in out and "VERSION:    v1" in out
    assert "FIELD: livenessProbe <Probe>" in out
    assert "httpGet\t<HTTPGetAction>" in out
    assert "initialDelaySeconds\t<integer>" in out
    assert any(p.startswith("/openapi/v3/api/v1?hash=") for p in seen)
    port_out = kubectl_explain(port, tmp_path, "pod.spec.containers.livenessProbe.httpGet.port")
    assert "FIELD: port <IntOrString>" in port_out


def test_kubectl_explain_recursive_and_api_version(tiny_server, tmp_path):
    port, _ = tiny_server
    out = kubectl_explain(port, tmp_path, "pod.spec", "--recursive")
    assert "containers\t<[]Container> -required-" in out
    assert "      preferredDuringSchedulingIgnoredDuringExecution\t<[]PreferredSchedulingTerm>" in out
    out = kubectl_explain(port, tmp_path, "deployments", "--api-version=apps/v1")
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out
    assert "spec\t<DeploymentSpec>" in out
    out = kubectl_explain(port, tmp_path, "deploy.spec.template.spec.containers.resources.limits")
    assert "FIELD: limits <map[string]Quantity>" in out
