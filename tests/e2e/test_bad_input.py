"""Bad input gets upstream's status code and reason, and writes nothing."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest

from tests.e2e.conftest import TOKEN


def call(server, method, path, body=None, content_type="application/json", token=TOKEN):
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
    return len(body["items"])


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
    status, result = call(server, "GET", "/api/v1/namespaces", token=None)
    assert status == 401 and result["reason"] == "Unauthorized"
    status, result = call(server, "GET", "/api/v1/namespaces", token="wrong")
    assert status == 401


def test_create_in_missing_namespace_is_404(server):
    status, result = call(server, "POST", CM_PATH.format(ns="does-not-exist"),
                          '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}')
    assert status == 404 and result["message"] == 'namespaces "does-not-exist" not found'
