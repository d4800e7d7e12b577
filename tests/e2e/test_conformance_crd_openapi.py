"""Upstream 'Custom Resource OpenAPI Publish' behaviours that go through
kubectl: validation of create/apply and `kubectl explain` of CRDs."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import wait_for

GROUP = "crd-publish-openapi-test.example.com"


def crd(kind: str, schema: dict) -> dict:
    plural = kind.lower() + "s"
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": kind + "List"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


VALIDATING = {
    "description": "Foo CRD for Testing", "type": "object",
    "properties": {
        "spec": {"description": "Specification of Foo", "type": "object", "properties": {
            "bars": {"description": "List of Bars and their specs.", "type": "array", "items": {
                "type": "object", "required": ["name"], "properties": {
                    "name": {"description": "Name of Bar.", "type": "string"},
                    "age": {"description": "Age of Bar.", "type": "string"},
                    "bazs": {"description": "List of Bazs.", "type": "array", "items": {"type": "string"}}}}}}},
        "status": {"description": "Status of Foo", "type": "object", "properties": {
            "bars": {"description": "List of Bars and their statuses.", "type": "array", "items": {
                "type": "object", "properties": {
                    "name": {"description": "Name of Bar.", "type": "string"},
                    "available": {"description": "Whether the Bar is installed.", "type": "boolean"},
                    "quxType": {"description": "Indicates to external qux type.", "type": "string",
                                "enum": ["in-tree", "out-of-tree"]}}}}}}}}
PRESERVE_ROOT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
PRESERVE_EMBEDDED = {"type": "object", "properties": {"spec": {
    "type": "object", "description": "Specification of Waldo", "properties": {
        "dummy": {"description": "Dummy property.", "type": "object", "x-kubernetes-embedded-resource": True,
                  "x-kubernetes-preserve-unknown-fields": True}}}}}
PRESERVE_OBJECT = {"type": "object", "properties": {"spec": {"type": "object", "description": "Specification of Waldo",
                                                             "x-kubernetes-preserve-unknown-fields": True}}}


def register(server, kind: str, schema: dict) -> None:
    server.kubectl("apply", "-f", "-", input=json.dumps(crd(kind, schema)))
    # kubectl reads the published schema: wait until explain knows the kind
    wait_for(lambda: server.kubectl("explain", f"{kind.lower()}s.{GROUP}", check=False).returncode == 0,
             timeout=15, what=f"{kind} in OpenAPI")


def cr(kind: str, name: str, **fields) -> str:
    return json.dumps({"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name}, **fields})


@pytest.fixture
def cleanup(server):
    made = []
    yield made
    for kind in made:
        server.kubectl("delete", "crd", f"{kind.lower()}s.{GROUP}", "--wait=false", check=False)


def test_crd_with_validation_schema_validates_and_explains(server, namespace, cleanup):
    register(server, "E2eFoo", VALIDATING)
    cleanup.append("E2eFoo")
    valid = cr("E2eFoo", "test-foo", spec={"bars": [{"name": "test-bar"}]})
    server.kubectl("create", "-n", namespace, "-f", "-", input=valid)
    server.kubectl("delete", "-n", namespace, "e2efoos.crd-publish-openapi-test.example.com", "test-foo")
    server.kubectl("apply", "-n", namespace, "-f", "-", input=valid)
    unknown = cr("E2eFoo", "test-foo-unknown", spec={"foo": True, "bars": [{"name": "b"}]})
    for verb in ("create", "apply"):
        bad = server.kubectl(verb, "-n", namespace, "-f", "-", input=unknown, check=False)
        assert bad.returncode != 0 and 'unknown field "spec.foo"' in bad.stderr, bad.stderr
        missing = server.kubectl(verb, "-n", namespace, "-f", "-",
                                 input=cr("E2eFoo", "test-foo-missing", spec={"bars": [{"age": "10"}]}),
                                 check=False)
        assert missing.returncode != 0 and "spec.bars[0].name: Required value" in missing.stderr, missing.stderr
    explained = server.kubectl("explain", f"e2efoos.{GROUP}").stdout
    assert "KIND:       E2eFoo" in explained and "Foo CRD for Testing" in explained
    assert "spec\t<Object>" in explained and "Specification of Foo" in explained
    nested = server.kubectl("explain", f"e2efoos.{GROUP}.spec.bars").stdout
    assert "List of Bars and their specs." in nested and "name\t<string> -required-" in nested
    assert "Name of Bar." in server.kubectl("explain", f"e2efoos.{GROUP}.spec.bars.name").stdout


def test_crd_preserving_unknown_fields_at_the_root(server, namespace, cleanup):
    register(server, "E2eRoot", PRESERVE_ROOT)
    cleanup.append("E2eRoot")
    body = cr("E2eRoot", "test-cr", spec={"anything": {"nested": True}}, extra="field")
    server.kubectl("create", "-n", namespace, "-f", "-", input=body)
    server.kubectl("apply", "-n", namespace, "-f", "-",
                   input=cr("E2eRoot", "test-cr-2", spec={"anything": 1}, extra="field"))
    assert server.kubectl_json("get", f"e2eroots.{GROUP}", "test-cr", "-n", namespace)["extra"] == "field"
    assert "KIND:       E2eRoot" in server.kubectl("explain", f"e2eroots.{GROUP}").stdout


def test_crd_preserving_unknown_fields_in_an_embedded_object(server, namespace, cleanup):
    register(server, "E2eEmbed", PRESERVE_EMBEDDED)
    cleanup.append("E2eEmbed")
    body = cr("E2eEmbed", "test-cr", spec={"dummy": {"apiVersion": "v1", "kind": "Pod",
                                                     "metadata": {"name": "p"}, "spec": {"anything": True}}})
    server.kubectl("create", "-n", namespace, "-f", "-", input=body)
    server.kubectl("apply", "-n", namespace, "-f", "-", input=body.replace('"test-cr"', '"test-cr-2"'))
    got = server.kubectl_json("get", f"e2eembeds.{GROUP}", "test-cr", "-n", namespace)
    assert got["spec"]["dummy"]["spec"] == {"anything": True}
    explained = server.kubectl("explain", f"e2eembeds.{GROUP}.spec.dummy").stdout
    assert "Dummy property." in explained and "<Object>" in explained


def test_crd_preserving_unknown_fields_in_an_object(server, namespace, cleanup):
    register(server, "E2eWaldo", PRESERVE_OBJECT)
    cleanup.append("E2eWaldo")
    body = cr("E2eWaldo", "test-cr", spec={"whatever": ["goes"]})
    server.kubectl("create", "-n", namespace, "-f", "-", input=body)
    server.kubectl("apply", "-n", namespace, "-f", "-", input=body.replace('"test-cr"', '"test-cr-2"'))
    explained = server.kubectl("explain", f"e2ewaldos.{GROUP}").stdout
    assert "KIND:       E2eWaldo" in explained and "DESCRIPTION:" in explained
    assert "Specification of Waldo" in explained
