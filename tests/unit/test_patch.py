"""JSON patch, merge patch and strategic merge patch on plain dicts.

Expected results follow upstream (k8s.io/apiserver handlers/patch.go,
evanphx/json-patch v4, k8s.io/apimachinery strategicpatch), including the
shapes kubectl sends for apply, set image, rollout, cordon and taint.
"""

from __future__ import annotations

import copy

import pytest

from k8py.api.schema import schemas
from k8py.apimachinery.errors import StatusError
from k8py.apimachinery.patch import (
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
    go_syntax_error,
)

S = schemas()
DEPLOYMENT = S.for_kind("apps", "v1", "Deployment")
POD = S.for_kind("", "v1", "Pod")
NODE = S.for_kind("", "v1", "Node")
ABSENT = object()

UNPROCESSABLE = "the server rejected our request due to an error in our request"
VERSION_KIND = ('struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
                'Kind string "json:\\"kind,omitempty\\"" }')


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                    {"name": "sidecar", "image": "busybox", "env": [{"name": "A", "value": "1"}]},
                ]},
            },
        },
    }


def paused_deployment() -> dict:
    obj = deployment()
    obj["spec"]["paused"] = True
    return obj


def pod() -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "labels": {"app": "web"}, "finalizers": ["a.example/x", "b.example/y"]},
        "spec": {
            "containers": [
                {"name": "app", "image": "app:1", "args": ["--a", "--b"],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
                 "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}},
                {"name": "log", "image": "busybox"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}],
        },
    }


def node() -> dict:
    return {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1"},
        "spec": {"podCIDR": "10.42.0.0/24", "taints": [{"key": "old", "value": "x", "effect": "NoExecute"}]},
    }


def dig(obj, path: str):
    """obj at a dotted path ("spec.containers.0.image"); ABSENT if missing."""
    for part in path.split("."):
        if isinstance(obj, list) and int(part) < len(obj):
            obj = obj[int(part)]
        elif isinstance(obj, dict) and part in obj:
            obj = obj[part]
        else:
            return ABSENT
    return obj


def assert_paths(result: dict, expected: dict) -> None:
    for path, value in expected.items():
        assert dig(result, path) == value if value is not ABSENT else dig(result, path) is ABSENT, path


def raised(fn, *args) -> StatusError:
    with pytest.raises(StatusError) as info:
        fn(*args)
    return info.value


# --- JSON patch -----------------------------------------------------------------

JSON_PATCH_CASES = [
    ("add label, ~1 escapes a slash", pod,
     [{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "web"}],
     {"metadata.labels": {"app": "web", "app.kubernetes.io/name": "web"}}),
    ("add key, ~0 escapes a tilde", pod,
     [{"op": "add", "path": "/metadata/labels/a~0b", "value": "1"}],
     {"metadata.labels": {"app": "web", "a~b": "1"}}),
    ("add - appends", pod,
     [{"op": "add", "path": "/spec/containers/0/args/-", "value": "--c"}],
     {"spec.containers.0.args": ["--a", "--b", "--c"]}),
    ("add at an index inserts", pod,
     [{"op": "add", "path": "/spec/containers/0/args/0", "value": "--z"}],
     {"spec.containers.0.args": ["--z", "--a", "--b"]}),
    ("add at the end index appends", pod,
     [{"op": "add", "path": "/spec/containers/0/args/2", "value": "--c"}],
     {"spec.containers.0.args": ["--a", "--b", "--c"]}),
    ("add without value adds null", pod,
     [{"op": "add", "path": "/metadata/labels/x"}],
     {"metadata.labels": {"app": "web", "x": None}}),
    ("remove a key", pod,
     [{"op": "remove", "path": "/metadata/labels/app"}],
     {"metadata.labels": {}}),
    ("remove an element", pod,
     [{"op": "remove", "path": "/spec/containers/1"}],
     {"spec.containers.0.name": "app", "spec.containers.1": ABSENT}),
    ("negative index counts from the end", pod,
     [{"op": "remove", "path": "/spec/containers/0/args/-1"}],
     {"spec.containers.0.args": ["--a"]}),
    ("replace a value", pod,
     [{"op": "replace", "path": "/spec/containers/0/image", "value": "app:2"}],
     {"spec.containers.0.image": "app:2"}),
    ("replace of a missing key adds it (v4)", pod,
     [{"op": "replace", "path": "/spec/nodeName", "value": "node1"}],
     {"spec.nodeName": "node1"}),
    ("replace the whole document", pod,
     [{"op": "replace", "path": "", "value": {"kind": "Pod", "metadata": {"name": "other"}}}],
     {"metadata.name": "other", "spec": ABSENT}),
    ("move", pod,
     [{"op": "move", "from": "/metadata/labels/app", "path": "/metadata/annotations"}],
     {"metadata.labels": {}, "metadata.annotations": "web"}),
    ("copy", pod,
     [{"op": "copy", "from": "/spec/containers/0/image", "path": "/metadata/labels/image"}],
     {"metadata.labels.image": "app:1", "spec.containers.0.image": "app:1"}),
    ("copy of a missing key copies null (v4)", pod,
     [{"op": "copy", "from": "/metadata/nope", "path": "/metadata/labels/x"}],
     {"metadata.labels.x": None}),
    ("test then replace", pod,
     [{"op": "test", "path": "/spec/containers/0/image", "value": "app:1"},
      {"op": "replace", "path": "/spec/containers/0/image", "value": "app:2"}],
     {"spec.containers.0.image": "app:2"}),
    ("test of an object", pod,
     [{"op": "test", "path": "/metadata/labels", "value": {"app": "web"}},
      {"op": "add", "path": "/metadata/labels/ok", "value": "1"}],
     {"metadata.labels.ok": "1"}),
    ("test null matches a missing key", pod,
     [{"op": "test", "path": "/spec/nodeName", "value": None},
      {"op": "add", "path": "/spec/nodeName", "value": "n"}],
     {"spec.nodeName": "n"}),
    ("rollout undo shape", deployment,
     [{"op": "replace", "path": "/spec/template",
       "value": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}},
      {"op": "replace", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "3"}}],
     {"spec.template.spec.containers": [{"name": "nginx", "image": "nginx:1.26"}],
      "metadata.annotations": {"deployment.kubernetes.io/revision": "3"}}),
]


@pytest.mark.parametrize("name,make,ops,expected", JSON_PATCH_CASES, ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch(name, make, ops, expected):
    doc = make()
    for body in (ops, repr_json(ops)):  # decoded and raw forms agree
        assert_paths(apply_json_patch(doc, body), expected)
    assert doc == make()  # inputs untouched


def repr_json(value) -> bytes:
    import json
    return json.dumps(value).encode()


JSON_PATCH_ERRORS = [
    # (id, body, code, reason, message, underlying library text)
    ("body is an object", b'{"op": "add"}', 400, "BadRequest",
     "json: cannot unmarshal object into Go value of type jsonpatch.Patch", None),
    ("operation is a number", b"[1]", 400, "BadRequest",
     "json: cannot unmarshal number into Go value of type jsonpatch.Operation", None),
    ("truncated body", b'[{"op":', 400, "BadRequest", "unexpected end of JSON input", None),
    ("not JSON", b"[x]", 400, "BadRequest", "invalid character 'x' looking for beginning of value", None),
    ("test fails", b'[{"op":"test","path":"/spec/containers/0/image","value":"app:9"}]', 422, "Invalid",
     UNPROCESSABLE, "testing value /spec/containers/0/image failed: test failed"),
    ("test of a number against a float", b'[{"op":"test","path":"/spec/containers/0/ports/0/containerPort","value":80.0}]',
     422, "Invalid", UNPROCESSABLE, "testing value /spec/containers/0/ports/0/containerPort failed: test failed"),
    ("remove a missing key", b'[{"op":"remove","path":"/metadata/labels/nope"}]', 422, "Invalid", UNPROCESSABLE,
     "error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent key: nope: missing value"),
    ("add under a missing parent", b'[{"op":"add","path":"/metadata/nope/x","value":1}]', 422, "Invalid",
     UNPROCESSABLE, 'add operation does not apply: doc is missing path: "/metadata/nope/x": missing value'),
    ("index past the end", b'[{"op":"add","path":"/spec/containers/0/args/9","value":"x"}]', 422, "Invalid",
     UNPROCESSABLE,
     "error in add for path: '/spec/containers/0/args/9': Unable to access invalid index: 9: invalid index referenced"),
    ("index not a number", b'[{"op":"remove","path":"/spec/containers/0/args/x"}]', 422, "Invalid", UNPROCESSABLE,
     "error in remove for path: '/spec/containers/0/args/x': strconv.Atoi: parsing \"x\": invalid syntax"),
    ("replace past the end", b'[{"op":"replace","path":"/spec/containers/5","value":{}}]', 422, "Invalid",
     UNPROCESSABLE, "replace operation does not apply: doc is missing key: /spec/containers/5: missing value"),
    ("path through a string", b'[{"op":"replace","path":"/metadata/name/x","value":1}]', 422, "Invalid",
     UNPROCESSABLE, "replace operation does not apply: doc is missing path: /metadata/name/x: missing value"),
    ("unknown op", b'[{"op":"frobnicate","path":"/a"}]', 422, "Invalid", UNPROCESSABLE, "Unexpected kind: frobnicate"),
    ("no path", b'[{"op":"add","value":1}]', 422, "Invalid", UNPROCESSABLE,
     "add operation failed to decode path: missing value"),
    ("move from a missing key", b'[{"op":"move","from":"/metadata/nope","path":"/metadata/x"}]', 422, "Invalid",
     UNPROCESSABLE, "error in move for path: 'nope': Unable to remove nonexistent key: nope: missing value"),
    ("result is not an object", b'[{"op":"replace","path":"","value":[1]}]', 422, "Invalid",
     f' "" is invalid: patch: Invalid value: "[1]": couldn\'t get version/kind; json parse error: '
     f"json: cannot unmarshal array into Go value of type {VERSION_KIND}", None),
]


@pytest.mark.parametrize("name,body,code,reason,message,detail", JSON_PATCH_ERRORS,
                         ids=[c[0] for c in JSON_PATCH_ERRORS])
def test_json_patch_errors(name, body, code, reason, message, detail):
    err = raised(apply_json_patch, pod(), body)
    assert (err.code, err.reason, err.message) == (code, reason, message)
    if detail is not None:
        assert err.detail == detail


def test_json_patch_failure_status_has_empty_details():
    # NewGenericServerResponse leaves a non-nil, empty details object.
    err = raised(apply_json_patch, pod(), b'[{"op":"test","path":"/metadata/name","value":"x"}]')
    assert err.to_status() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": UNPROCESSABLE, "reason": "Invalid", "details": {}, "code": 422}


def test_json_patch_non_object_result_names_the_patch_field():
    err = raised(apply_json_patch, pod(), [{"op": "replace", "path": "", "value": [{"a": "<b>"}]}])
    cause = err.to_status()["details"]["causes"][0]
    assert cause["field"] == "patch" and cause["reason"] == "FieldValueInvalid"
    # Go's json.Marshal escapes "<" and ">", and %q then escapes the backslash.
    assert cause["message"].startswith('Invalid value: "[{\\"a\\":\\"\\\\u003cb\\\\u003e\\"}]": ')


def test_json_patch_operation_limit():
    ops = [{"op": "test", "path": "/kind", "value": "Pod"}] * 10001
    err = raised(apply_json_patch, pod(), ops)
    assert (err.code, err.reason) == (413, "RequestEntityTooLarge")
    assert err.message == ("Request entity too large: The allowed maximum operations in a JSON patch "
                           "is 10000, got 10001")
    assert apply_json_patch(pod(), ops[:10000]) == pod()


def test_json_patch_copy_limit():
    doc = {"kind": "ConfigMap", "data": {"big": "x" * (1 << 20)}}
    ops = [{"op": "copy", "from": "/data/big", "path": f"/data/c{i}"} for i in range(4)]
    err = raised(apply_json_patch, doc, ops)
    assert err.code == 422 and "exceeding the limit 3145728" in err.detail
    assert len(apply_json_patch(doc, ops[:2])["data"]) == 3


# --- merge patch ----------------------------------------------------------------

MERGE_PATCH_CASES = [
    ("kubectl label", {"metadata": {"labels": {"tier": "fe"}}}, {"metadata.labels": {"app": "web", "tier": "fe"}}),
    ("null deletes", {"metadata": {"labels": {"app": None}}}, {"metadata.labels": {}}),
    ("null for a missing key is ignored", {"spec": {"nodeName": None}}, {"spec.nodeName": ABSENT}),
    ("nulls inside a new object are dropped", {"spec": {"securityContext": {"runAsUser": 1, "fsGroup": None}}},
     {"spec.securityContext": {"runAsUser": 1}}),
    ("lists are replaced", {"metadata": {"finalizers": ["c"]}}, {"metadata.finalizers": ["c"]}),
    ("nulls inside list items are dropped, null items kept", {"metadata": {"x": [{"a": None, "b": 1}, None]}},
     {"metadata.x": [{"b": 1}, None]}),
    ("scalar replaces an object", {"spec": "gone"}, {"spec": "gone"}),
    ("object replaces a scalar, pruned", {"metadata": {"name": {"a": 1, "b": None}}}, {"metadata.name": {"a": 1}}),
]


@pytest.mark.parametrize("name,patch,expected", MERGE_PATCH_CASES, ids=[c[0] for c in MERGE_PATCH_CASES])
def test_merge_patch(name, patch, expected):
    doc, original_patch = pod(), copy.deepcopy(patch)
    for body in (patch, repr_json(patch)):
        assert_paths(apply_merge_patch(doc, body), expected)
    assert doc == pod() and patch == original_patch


def test_merge_patch_kubectl_scale():
    result = apply_merge_patch({"kind": "Scale", "spec": {"replicas": 1}}, b'{"spec":{"replicas":5}}')
    assert result == {"kind": "Scale", "spec": {"replicas": 5}}


@pytest.mark.parametrize("body", [b"not json", b"{", b"null", b'"x"', b"5", b""])
def test_merge_patch_bad_bodies(body):
    err = raised(apply_merge_patch, pod(), body)
    assert (err.code, err.reason, err.message) == (400, "BadRequest", "Invalid JSON Patch")


def test_merge_patch_array_result_is_invalid():
    err = raised(apply_merge_patch, pod(), b'[{"b":1,"a":null}]')
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == (f' "" is invalid: patch: Invalid value: "[{{\\"b\\":1}}]": couldn\'t get version/kind; '
                           f"json parse error: json: cannot unmarshal array into Go value of type {VERSION_KIND}")


# --- strategic merge patch ------------------------------------------------------

SET_IMAGE = (b'{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],'
             b'"containers":[{"image":"nginx:1.28","name":"nginx"}]}}}}')
CLIENT_SIDE_APPLY = {
    "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
    "spec": {"replicas": 3, "template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
        "containers": [{"image": "nginx:1.27", "name": "nginx", "ports": [{"containerPort": 80}]},
                       {"env": [{"name": "A", "value": "1"}], "image": "busybox", "name": "sidecar"}]}}},
}
DEPLOYMENT_CONTAINERS = deployment()["spec"]["template"]["spec"]["containers"]
POD_APP, POD_LOG = pod()["spec"]["containers"]

SMP_CASES = [
    ("kubectl set image", deployment, DEPLOYMENT, SET_IMAGE,
     {"spec.template.spec.containers": [
         {"name": "nginx", "image": "nginx:1.28", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
         DEPLOYMENT_CONTAINERS[1]]}),
    ("kubectl apply (client side)", deployment, DEPLOYMENT, CLIENT_SIDE_APPLY,
     {"spec.replicas": 3, "spec.template.spec.containers": DEPLOYMENT_CONTAINERS,
      "metadata.annotations": {"deployment.kubernetes.io/revision": "2",
                               "kubectl.kubernetes.io/last-applied-configuration": "{}\n"}}),
    ("kubectl rollout pause", deployment, DEPLOYMENT, {"spec": {"paused": True}}, {"spec.paused": True}),
    ("kubectl rollout resume: null deletes", paused_deployment, DEPLOYMENT, {"spec": {"paused": None}},
     {"spec.paused": ABSENT, "spec.replicas": 1}),
    ("kubectl rollout restart", deployment, DEPLOYMENT,
     {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}},
     {"spec.template.metadata": {"labels": {"app": "web"},
                                 "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}),
    ("kubectl cordon", node, NODE, {"spec": {"unschedulable": True}},
     {"spec.unschedulable": True, "spec.podCIDR": "10.42.0.0/24"}),
    ("kubectl taint: taints are atomic", node, NODE,
     {"spec": {"taints": [{"effect": "NoSchedule", "key": "k", "value": "v"}]}},
     {"spec.taints": [{"effect": "NoSchedule", "key": "k", "value": "v"}]}),
    ("container patched by name, order kept", pod, POD,
     {"spec": {"containers": [{"name": "log", "image": "busybox:1.36"}]}},
     {"spec.containers": [POD_APP, {"name": "log", "image": "busybox:1.36"}]}),
    ("new container without order goes first", pod, POD,
     {"spec": {"containers": [{"name": "extra", "image": "x"}]}},
     {"spec.containers": [{"name": "extra", "image": "x"}, POD_APP, POD_LOG]}),
    ("ports merge on containerPort, new first", pod, POD,
     {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 8080}]}]}},
     {"spec.containers.0.ports": [{"containerPort": 8080}, {"containerPort": 80, "protocol": "TCP"},
                                  {"containerPort": 443, "protocol": "TCP"}]}),
    ("$patch: delete removes a list item", pod, POD,
     {"spec": {"containers": [{"name": "log", "$patch": "delete"}]}}, {"spec.containers": [POD_APP]}),
    ("$patch: delete of the last env var", deployment, DEPLOYMENT,
     {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "env": [{"name": "A", "$patch": "delete"}]}]}}}},
     {"spec.template.spec.containers.1.env": []}),
    ("$patch: replace replaces the list", pod, POD,
     {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "i"}]}},
     {"spec.containers": [{"name": "only", "image": "i"}]}),
    ("$setElementOrder alone reorders", pod, POD,
     {"spec": {"$setElementOrder/containers": [{"name": "log"}, {"name": "app"}]}},
     {"spec.containers": [POD_LOG, POD_APP]}),
    ("$setElementOrder places a new item", pod, POD,
     {"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "extra"}, {"name": "log"}],
               "containers": [{"name": "extra", "image": "x"}]}},
     {"spec.containers": [POD_APP, {"name": "extra", "image": "x"}, POD_LOG]}),
    ("$retainKeys: RollingUpdate to Recreate", deployment, DEPLOYMENT,
     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}},
     {"spec.strategy": {"type": "Recreate"}}),
    ("$retainKeys in a volume (merge,retainKeys)", pod, POD,
     {"spec": {"volumes": [{"name": "data", "$retainKeys": ["configMap", "name"], "configMap": {"name": "other"}}]}},
     {"spec.volumes": [{"name": "data", "configMap": {"name": "other"}}, {"name": "cfg", "configMap": {"name": "cfg"}}]}),
    ("$patch: replace on a map", pod, POD, {"metadata": {"labels": {"$patch": "replace", "tier": "fe"}}},
     {"metadata.labels": {"tier": "fe"}}),
    ("$patch: delete on a map leaves it empty", deployment, DEPLOYMENT, {"spec": {"strategy": {"$patch": "delete"}}},
     {"spec.strategy": {}}),
    ("$patch: delete on a missing map adds nothing", pod, POD, {"spec": {"securityContext": {"$patch": "delete"}}},
     {"spec.securityContext": ABSENT}),
    ("$deleteFromPrimitiveList", pod, POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/x"]}},
     {"metadata.finalizers": ["b.example/y"]}),
    ("$deleteFromPrimitiveList of a missing list adds nothing", node, NODE,
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}, {"metadata.finalizers": ABSENT}),
    ("merging primitive list is a union, patch order first", pod, POD,
     {"metadata": {"finalizers": ["c.example/z", "a.example/x"]}},
     {"metadata.finalizers": ["c.example/z", "a.example/x", "b.example/y"]}),
    ("labels merge key by key, null deletes", pod, POD, {"metadata": {"labels": {"tier": "fe", "app": None}}},
     {"metadata.labels": {"tier": "fe"}}),
    ("atomic list is replaced", pod, POD, {"spec": {"containers": [{"name": "app", "args": ["--c"]}]}},
     {"spec.containers.0.args": ["--c"]}),
    ("quantity map: a number replaces a string", pod, POD,
     {"spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": 1}}}]}},
     {"spec.containers.0.resources.limits": {"cpu": 1, "memory": "128Mi"}}),
    ("int-or-string: an int replaces a string", deployment, DEPLOYMENT,
     {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}}},
     {"spec.strategy.rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}),
    ("a new map loses its nulls and directives", pod, POD,
     {"spec": {"securityContext": {"runAsUser": 1000, "fsGroup": None, "seLinuxOptions": {"$patch": "delete"}}}},
     {"spec.securityContext": {"runAsUser": 1000}}),
    ("a new field is added", pod, POD, {"spec": {"hostname": "h"}}, {"spec.hostname": "h"}),
]


@pytest.mark.parametrize("name,make,schema,patch,expected", SMP_CASES, ids=[c[0] for c in SMP_CASES])
def test_strategic_merge_patch(name, make, schema, patch, expected):
    doc = make()
    original_patch = copy.deepcopy(patch)
    result = apply_strategic_merge_patch(doc, patch, schema)
    assert_paths(result, expected)
    assert doc == make() and patch == original_patch  # inputs untouched
    if isinstance(patch, dict):  # the raw form gives the same result
        assert apply_strategic_merge_patch(doc, repr_json(patch), schema) == result


def test_strategic_merge_null_body_changes_nothing():
    assert apply_strategic_merge_patch(pod(), b"null", POD) == pod()


def test_strategic_merge_unsupported_without_schema():
    err = raised(apply_strategic_merge_patch, {"kind": "Widget"}, b"{}", None)
    assert (err.code, err.reason) == (415, "UnsupportedMediaType")
    assert err.message == ("the body of the request was in an unknown format - accepted media types include: "
                           "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")


MAP_OF_CONTAINERS = {"properties": {"things": {"type": "object", "additionalProperties": {
    "$ref": "#/$defs/io.k8s.api.core.v1.Container"}}}}

SMP_ERRORS = [
    # (id, make, schema, patch, code, reason ("" = none), message)
    ("body is an array", pod, POD, b"[1]", 400, "BadRequest",
     "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    ("body is a string", pod, POD, b'"x"', 400, "BadRequest",
     "json: cannot unmarshal string into Go value of type map[string]interface {}"),
    ("body truncated", pod, POD, b'{"spec":', 400, "BadRequest", "unexpected end of JSON input"),
    ("body not JSON", pod, POD, b"{spec: 1}", 400, "BadRequest",
     "invalid character 's' looking for beginning of object key string"),
    ("unknown $patch in a map", deployment, DEPLOYMENT, {"spec": {"strategy": {"$patch": "foo"}}}, 500, "",
     "unknown patch type: foo in map: map[$patch:foo]"),
    ("$patch: merge in a map", deployment, DEPLOYMENT, {"spec": {"$patch": "merge"}}, 500, "",
     "unknown patch type: merge in map: map[$patch:merge]"),
    ("$patch: merge in a list", pod, POD, {"spec": {"containers": [{"name": "app", "$patch": "merge"}]}}, 500, "",
     "merging lists cannot yet be specified in the patch"),
    ("unknown $patch in a list", pod, POD, {"spec": {"containers": [{"name": "app", "$patch": "bogus"}]}}, 500, "",
     "unknown patch type: bogus in map: map[$patch:bogus name:app]"),
    ("non-string $patch", pod, POD, {"spec": {"$patch": 1}}, 500, "",
     "unknown patch type: %!s(int64=1) in map: map[$patch:1]"),
    ("$patch: delete without merge key", pod, POD, {"spec": {"containers": [{"$patch": "delete"}]}}, 500, "",
     "map: map[$patch:delete] does not contain declared merge key: name"),
    ("list item without merge key", pod, POD, {"spec": {"containers": [{"image": "x"}]}}, 500, "",
     "map: map[image:x] does not contain declared merge key: name"),
    ("$retainKeys not a list", deployment, DEPLOYMENT, {"spec": {"strategy": {"$retainKeys": "type"}}}, 400,
     "BadRequest", "invalid patch format of retainKeys"),
    ("$retainKeys missing a patched key", deployment, DEPLOYMENT,
     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
     400, "BadRequest", "invalid patch format of retainKeys"),
    ("bad $setElementOrder prefix", pod, POD, {"spec": {"$setElementOrderX/containers": []}}, 400, "BadRequest",
     "invalid patch format of setElementOrder list"),
    ("bad $deleteFromPrimitiveList key", pod, POD, {"metadata": {"$deleteFromPrimitiveList": ["x"]}}, 400,
     "BadRequest", "invalid patch format of primitive list"),
    ("$setElementOrder not a list", pod, POD, {"spec": {"$setElementOrder/containers": "app"}}, 500, "",
     "expected a []interface {}, but received a string"),
    ("$setElementOrder disagrees with the patch", pod, POD,
     {"spec": {"$setElementOrder/containers": [{"name": "log"}, {"name": "app"}],
               "containers": [{"name": "app"}, {"name": "log"}]}}, 500, "",
     "The order in patch list:\n[map[name:app] map[name:log]]\n doesn't match $setElementOrder list:\n"
     "[map[name:log] map[name:app]]\n"),
    ("$setElementOrder of an unknown field", deployment, DEPLOYMENT, {"spec": {"$setElementOrder/bogus": []}}, 500, "",
     'unable to find api field in struct DeploymentSpec for the json field "bogus"'),
    ("lists of lists", lambda: {"kind": "Pod", "spec": {"containers": []}}, POD,
     {"spec": {"containers": [["a"]]}}, 422, "Invalid", UNPROCESSABLE),
    ("mixed item types", pod, POD, {"spec": {"containers": ["app"]}}, 500, "",
     "list element types are not identical: [[map[args:[--a --b] image:app:1 name:app ports:[map[containerPort:80 "
     "protocol:TCP] map[containerPort:443 protocol:TCP]] resources:map[limits:map[cpu:500m memory:128Mi]]] "
     "map[image:busybox name:log]] [app]]"),
    ("map of objects has no patch metadata", lambda: {"things": {"a": {"name": "a"}}}, MAP_OF_CONTAINERS,
     {"things": {"a": {"image": "x"}}}, 500, "",
     "merging an object in json but data type is not struct, instead is: map"),
]


@pytest.mark.parametrize("name,make,schema,patch,code,reason,message", SMP_ERRORS, ids=[c[0] for c in SMP_ERRORS])
def test_strategic_merge_errors(name, make, schema, patch, code, reason, message):
    doc = make()
    err = raised(apply_strategic_merge_patch, doc, patch, schema)
    status = err.to_status()
    assert (status["code"], status.get("reason", ""), status["message"]) == (code, reason, message)
    assert doc == make()


def test_strategic_merge_internal_error_has_no_reason():
    # A plain Go error reaches the client through ErrorToAPIStatus: 500, and
    # Go's omitempty leaves out the empty reason.
    err = raised(apply_strategic_merge_patch, pod(), {"spec": {"$patch": "x"}}, POD)
    assert err.to_status() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": "unknown patch type: x in map: map[$patch:x]", "code": 500}


# --- Go's JSON syntax messages ----------------------------------------------------

@pytest.mark.parametrize("body,message", [
    (b"", "unexpected end of JSON input"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a":1 x}', "invalid character 'x' after object key:value pair"),
    (b"[1 2]", "invalid character '2' after array element"),
    (b"{} x", "invalid character 'x' after top-level value"),
    (b"trUe", "invalid character 'U' in literal true (expecting 'u')"),
    (b'"\\q"', "invalid character 'q' in string escape code"),
    (b'"a\nb"', "invalid character '\\n' in string literal"),
    (b"-x", "invalid character 'x' in numeric literal"),
    (b"1.e", "invalid character 'e' after decimal point in numeric literal"),
    (b'{"a":1,}', "invalid character '}' looking for beginning of object key string"),
    (b'{"a": [1, {"b": null}], "c": "\\u00e9"}', None),
])
def test_go_syntax_error(body, message):
    assert go_syntax_error(body) == message


def test_valid_json_orjson_refuses_is_accepted_like_go():
    # Go keeps invalid UTF-8 and lone surrogates as U+FFFD and reads integers
    # past 64 bits as float64; the result must stay storable.
    result = apply_merge_patch({"kind": "ConfigMap"}, b'{"data":{"a":"\xff","b":"\\ud800"},"n":123456789012345678901}')
    assert result == {"kind": "ConfigMap", "data": {"a": "\ufffd", "b": "\ufffd"}, "n": 1.2345678901234568e20}
