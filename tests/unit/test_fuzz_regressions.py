"""Regression tests for the bugs scripts/fuzz_api.py found (see docs/fuzzing.md)."""

from __future__ import annotations

import time

import pytest
import yaml

from k8py.api import conversion, fieldcheck
from k8py.api.builtin import builtin_registry
from k8py.api.schema import schemas
from k8py.api.validation import validate_create
from k8py.apimachinery.errors import StatusError
from k8py.apimachinery.protobuf import decode_protobuf_object
from k8py.apimachinery.protobuf.encoder import encode_protobuf_object
from k8py.apiserver.codec import decode_yaml

REGISTRY = builtin_registry()


def _unknown_then_prune(obj: dict, group: str, version: str, kind: str) -> dict:
    unknown, type_errors = fieldcheck.check_fields(obj, schemas().for_kind(group, version, kind), schemas())
    assert not type_errors
    fieldcheck.prune(obj, unknown)
    return obj


@pytest.mark.parametrize("key", ["", "a.b", "x[0]", "[1]", "..", "]", "a\u0000b"])
def test_prune_unknown_keys_with_path_characters(key):
    # Was an IndexError (500) for keys the path parser could not split.
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", key: 1},
           "data": {"a": "b"}, key: {"x": 1}}
    out = _unknown_then_prune(obj, "", "v1", "ConfigMap")
    assert out == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}


def test_prune_keeps_known_fields_that_share_a_prefix():
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i", "bogus": 1}, {"name": "d", "image": "j"}],
                    "specx": 2}}
    out = _unknown_then_prune(obj, "", "v1", "Pod")
    assert out["spec"] == {"containers": [{"name": "c", "image": "i"}, {"name": "d", "image": "j"}]}


def test_warning_with_control_characters_is_dropped():
    # aiohttp refuses to write such a header: the connection dropped after the object was stored.
    headers = fieldcheck.warning_headers(['unknown field "a\u0000b"', 'unknown field "ok"', "line\nbreak"])
    assert headers == ['299 - "unknown field \\"ok\\""']


def test_hpa_v1_with_null_spec_converts():
    out = conversion.to_storage(REGISTRY.lookup("autoscaling", "v1", "horizontalpodautoscalers"),
                                {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                                 "metadata": {"name": "h"}, "spec": None})
    assert out["apiVersion"] == "autoscaling/v2" and out["spec"] == {}


def test_many_controller_owner_references_validate_quickly():
    # Each extra controller re-rendered the whole list: 2000 refs took 96 s.
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u", "controller": True}
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d", "ownerReferences": [ref] * 2000}}
    start = time.monotonic()
    causes = validate_create(REGISTRY.lookup("", "v1", "configmaps"), obj)
    assert time.monotonic() - start < 5
    assert 1 <= len(causes) <= 5
    assert causes[0].field == "metadata.ownerReferences"
    assert "Only one reference can have Controller set to true" in causes[0].message


def test_two_controllers_still_reported_like_upstream():
    refs = [{"apiVersion": "v1", "kind": "Pod", "name": n, "uid": "u", "controller": True} for n in "abc"]
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d", "ownerReferences": refs}}
    causes = validate_create(REGISTRY.lookup("", "v1", "configmaps"), obj)
    assert [c.message.rsplit("Found ", 1)[1] for c in causes] == [
        '"true" in references for Pod/a and Pod/b', '"true" in references for Pod/a and Pod/c']


def test_yaml_keys_and_values_become_json():
    # `?` alone is {None: None}; a None key reached code sorting string paths (500).
    assert decode_yaml(b"?") == {"null": None}
    assert decode_yaml(b"1: a\nd: 2001-12-14\nt: 2001-12-14T21:59:43Z\nb: !!binary aGk=\n") == {
        "1": "a", "d": "2001-12-14", "t": "2001-12-14T21:59:43Z", "b": "aGk="}


def test_yaml_with_unhashable_key_is_a_bad_request():
    with pytest.raises(StatusError) as err:
        decode_yaml(b"? [a]\n: 1\n")
    assert err.value.code == 400


CRD = yaml.safe_load("""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: crontabs.stable.example.com}
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, listKind: CronTabList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object}}
""")
CRDS = REGISTRY.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")


def test_valid_crd_passes():
    assert validate_create(CRDS, CRD) == []


@pytest.mark.parametrize("change,field,message", [
    (lambda c: c["metadata"].update(name="other"), "metadata.name",
     'Invalid value: "other": must be spec.names.plural+"."+spec.group'),
    (lambda c: c["spec"]["versions"][0].pop("name"), "spec.versions[0].name", "Required value"),
    (lambda c: c["spec"]["versions"][0].update(storage=False), "spec.versions",
     "Invalid value: must have exactly one version marked as storage version"),
    (lambda c: c["spec"].update(scope="Everywhere"), "spec.scope",
     'Unsupported value: "Everywhere": supported values: "Cluster", "Namespaced"'),
    (lambda c: c["spec"]["versions"][0].pop("schema"), "spec.versions[0].schema.openAPIV3Schema",
     "Required value: schemas are required"),
    (lambda c: c["spec"]["names"].pop("kind"), "spec.names.kind", "Required value"),
])
def test_crd_that_could_not_be_served_is_invalid(change, field, message):
    # A CRD with a nameless version was stored, then its sync failed with a KeyError.
    import copy
    crd = copy.deepcopy(CRD)
    change(crd)
    causes = validate_create(CRDS, crd)
    assert (field, message) in [(c.field, c.message) for c in causes]


def test_protobuf_encoder_matches_kubectl_bytes():
    """The fuzzer's and bench's encoder writes what kubectl wrote (byte for byte)."""
    from pathlib import Path
    for path in sorted(Path(__file__).resolve().parents[1].glob("data/compat/protobuf/*.bin")):
        raw = path.read_bytes()
        assert encode_protobuf_object(decode_protobuf_object(raw)) == raw, path.name


@pytest.mark.parametrize("image", ["a" * 63 + "-", "a" * 3000 + "-", "registry.local/" + "b" * 80 + "-/x"])
def test_image_names_that_almost_parse_are_quick(image):
    # Docker's path-component pattern with an optional dash separator made
    # Python's regex backtrack exponentially: "a"*63 + "-" hung the server.
    from k8py.api.defaults.core import image_pull_policy
    start = time.monotonic()
    assert image_pull_policy(image) == "IfNotPresent"
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize("image,policy", [("busybox", "Always"), ("a-b--c__d.e/f:1.0", "IfNotPresent"),
                                          ("repo/x---y:latest", "Always"), ("x", "Always")])
def test_image_pull_policy_unchanged(image, policy):
    from k8py.api.defaults.core import image_pull_policy
    assert image_pull_policy(image) == policy


async def test_yaml_flow_bodies_that_are_not_json_are_checked_as_yaml(client):
    """A YAML body in flow style starts with "{" like JSON; YAML escapes JSON lacks must not be a 500."""
    from tests.unit.conftest import HEADERS
    body = b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flow", "namespace": "\\x64efault"}}'
    resp = await client.post("/api/v1/namespaces/default/configmaps", data=body,
                             headers={**HEADERS, "Content-Type": "application/yaml"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["metadata"]["namespace"] == "default"
