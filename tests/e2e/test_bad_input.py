"""Bad input gets upstream's status code and reason, and writes nothing."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest

from tests.e2e.conftest import admin_ssl_context


def call(server, method, path, body=None, content_type="application/json", token=None, admin=True):
    """A raw request as the admin (its client certificate), or with only `token` when admin is False."""
    if admin:
        ctx = admin_ssl_context(server.data_dir)
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    data = body if isinstance(body, (bytes, type(None))) else body.encode()
    request = urllib.request.Request(server.url + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _count_configmaps(server, namespace):
    status, body = call(server, "GET", f"/api/v1/namespaces/{namespace}/configmaps")
    assert status == 200
    # The root-CA publisher adds kube-root-ca.crt to a new namespace whenever it gets to it.
    return len([i for i in body["items"] if i["metadata"]["name"] != "kube-root-ca.crt"])


CM_PATH = "/api/v1/namespaces/{ns}/configmaps"


@pytest.mark.parametrize("case,body,content_type,code,reason,needle", [
    ("malformed json", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {', "application/json",
     400, "BadRequest", "error decoding"),
    ("malformed yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed", "application/yaml",
     400, "BadRequest", "YAML"),
    ("unknown kind", '{"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "g"}}', "application/json",
     400, "BadRequest", "Gadget"),
    ("wrong type", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}, "data": {"a": 1}}',
     "application/json", 400, "BadRequest", "cannot unmarshal number"),
    ("invalid name", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}',
     "application/json", 422, "Invalid", "metadata.name"),
    ("unsupported media type", "a=b", "text/plain", 415, "UnsupportedMediaType", "application/json"),
])
def test_bad_create_bodies(server, namespace, case, body, content_type, code, reason, needle):
    before = _count_configmaps(server, namespace)
    status, result = call(server, "POST", CM_PATH.format(ns=namespace), body, content_type)
    assert (status, result["reason"], result["code"]) == (code, reason, code), result
    assert needle in result["message"]
    assert result["kind"] == "Status" and result["status"] == "Failure"
    assert _count_configmaps(server, namespace) == before


def test_unknown_field_strict_warn_ignore(server, namespace):
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f1"}, "bogus": 1,
                       "data": {"a": "b"}})
    status, result = call(server, "POST", CM_PATH.format(ns=namespace) + "?fieldValidation=Strict", body)
    assert status == 400 and result["reason"] == "BadRequest"
    assert result["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                                 'strict decoding error: unknown field "bogus"')
    status, result = call(server, "POST", CM_PATH.format(ns=namespace) + "?fieldValidation=Ignore", body)
    assert status == 201 and "bogus" not in result


def test_invalid_name_lists_cause(server, namespace):
    status, result = call(server, "POST", CM_PATH.format(ns=namespace),
                          '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}')
    assert status == 422
    assert result["details"]["causes"][0]["field"] == "metadata.name"
    assert result["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')


def test_body_over_3_mib(server, namespace):
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"},
                       "data": {"a": "x" * (3 * 1024 * 1024 + 10)}})
    before = _count_configmaps(server, namespace)
    status, result = call(server, "POST", CM_PATH.format(ns=namespace), body)
    assert status == 413 and result["reason"] == "RequestEntityTooLarge"
    assert _count_configmaps(server, namespace) == before


def test_non_numeric_resource_version(server, namespace):
    status, result = call(server, "GET", CM_PATH.format(ns=namespace) + "?resourceVersion=abc")
    assert status == 400 and result["reason"] == "BadRequest" and "abc" in result["message"]
    status, result = call(server, "GET", CM_PATH.format(ns=namespace) + "?watch=true&resourceVersion=abc")
    assert status == 400 and "abc" in result["message"]


def test_unauthenticated_requests_get_401(server):
    status, result = call(server, "GET", "/api/v1/namespaces", admin=False)
    assert status == 401 and result["reason"] == "Unauthorized"
    status, result = call(server, "GET", "/api/v1/namespaces", token="wrong", admin=False)
    assert status == 401


def test_create_in_missing_namespace_is_404(server):
    status, result = call(server, "POST", CM_PATH.format(ns="does-not-exist"),
                          '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}')
    assert status == 404 and result["message"] == 'namespaces "does-not-exist" not found'


# ---- found by scripts/fuzz_api.py (docs/fuzzing.md) --------------------------

def test_body_over_aiohttp_cap_is_a_status(server, namespace):
    # Past aiohttp's own 32 MiB cap the answer was aiohttp's plain-text 413.
    body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge2"},"data":{"a":"' + \
        b"x" * (33 * 1024 * 1024) + b'"}}'
    status, result = call(server, "POST", CM_PATH.format(ns=namespace), body)
    assert status == 413 and result["kind"] == "Status" and result["reason"] == "RequestEntityTooLarge"


def test_unknown_field_with_control_character_is_stored_once_and_answered(server, namespace):
    # The Warning header naming the field could not be written: the object was
    # stored but the client saw a dropped connection (and retried into a 409).
    body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"nul-key"},"a\\u0000b":1,"c\\nd":2}'
    status, result = call(server, "POST", CM_PATH.format(ns=namespace), body)
    assert status == 201 and result["metadata"]["name"] == "nul-key"
    assert "a\u0000b" not in result and "c\nd" not in result


@pytest.mark.parametrize("body,needle", [
    ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"k1"},"data":{"x":"y"},"a.b":1,"[0]":2,"":3}', None),
    ("?", "metadata.name: Required value"),  # {"null": null}: the endpoint's kind, no name
])
def test_odd_keys_are_not_a_500(server, namespace, body, needle):
    ctype = "application/yaml" if body == "?" else "application/json"
    status, result = call(server, "POST", CM_PATH.format(ns=namespace), body, ctype)
    assert status < 500, result
    if needle:
        assert status == 422 and needle in result["message"]
    else:
        assert status == 201 and set(result) == {"apiVersion", "kind", "metadata", "data"}


def _pod(server, namespace, name):
    status, _ = call(server, "POST", f"/api/v1/namespaces/{namespace}/pods", json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    assert status == 201


@pytest.mark.parametrize("sub,body,needle", [
    ("binding", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": "node-a"},
     "cannot unmarshal string into Go struct field Binding.target of type v1.ObjectReference"),
    ("eviction", {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"},
                  "deleteOptions": {"preconditions": 5}}, "cannot unmarshal number"),
])
def test_pod_subresource_bodies_are_type_checked(server, namespace, sub, body, needle):
    _pod(server, namespace, "typed")
    before = call(server, "GET", f"/api/v1/namespaces/{namespace}/pods/typed")[1]
    status, result = call(server, "POST", f"/api/v1/namespaces/{namespace}/pods/typed/{sub}", json.dumps(body))
    assert status == 400 and result["reason"] == "BadRequest", result
    assert needle in result["message"]
    # Nothing the refused body asked for happened: not bound, not being deleted, the same pod.
    # (The resourceVersion may move: the scheduler writes the pod's PodScheduled condition meanwhile.)
    status, pod = call(server, "GET", f"/api/v1/namespaces/{namespace}/pods/typed")
    assert status == 200 and pod["metadata"]["uid"] == before["metadata"]["uid"]
    assert "nodeName" not in pod["spec"] and "deletionTimestamp" not in pod["metadata"]
    assert pod["spec"] == before["spec"]


def test_token_request_body_is_type_checked(server, namespace):
    call(server, "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts",
         '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sa"}}')
    for spec in ('"x"', '{"audiences": [[[["deep"]]]]}', '{"boundObjectRef": []}'):
        body = '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":' + spec + '}'
        status, result = call(server, "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/sa/token", body)
        assert status == 400 and result["reason"] == "BadRequest", (spec, result)


def test_delete_options_of_the_wrong_type_are_a_400(server, namespace):
    _pod(server, namespace, "del-typed")
    status, result = call(server, "DELETE", f"/api/v1/namespaces/{namespace}/pods/del-typed",
                          '{"preconditions": "x"}')
    assert status == 400 and result["reason"] == "BadRequest"
    assert call(server, "GET", f"/api/v1/namespaces/{namespace}/pods/del-typed")[0] == 200
