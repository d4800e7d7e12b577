"""Typed decoding checks and fieldValidation, with upstream's texts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from k8py.api import fieldcheck as fc
from k8py.api.schema import schemas
from k8py.apimachinery import gostrings
from k8py.apimachinery.errors import StatusError

SEED = Path("/work/shared/manifests/seed")
if not SEED.exists():
    SEED = Path(__file__).resolve().parents[1] / "data" / "seed"

S = schemas()
DEPLOYMENT = S.for_kind("apps", "v1", "Deployment")
POD = S.for_kind("", "v1", "Pod")

BASE_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "web", "image": "nginx",
                "ports": [{"containerPort": 80}],
                "resources": {"limits": {"cpu": "500m", "memory": 128974848}, "requests": {"cpu": 0.25}},
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
                "readinessProbe": {"tcpSocket": {"port": 80}},
            }]},
        },
    },
}


def deployment(**changes) -> dict:
    obj = copy.deepcopy(BASE_DEPLOYMENT)
    for dotted, value in changes.items():
        node = obj
        parts = dotted.split("__")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[parts[-1]] = value
    return obj


def seed_documents():
    for path in sorted(SEED.glob("*.yaml")):
        with path.open() as f:
            for i, document in enumerate(yaml.safe_load_all(f)):
                if document:
                    yield pytest.param(document, id=f"{path.name}#{i}-{document['kind']}")


@pytest.mark.parametrize("document", list(seed_documents()))
def test_seed_manifests_have_no_false_positives(document):
    group, _, version = document["apiVersion"].rpartition("/")
    schema = S.for_kind(group, version, document["kind"])
    assert schema is not None
    assert fc.check_fields(document, schema, S) == ([], [])


def test_seed_manifests_exist():
    assert len(list(seed_documents())) >= 18


def test_valid_object_with_every_special_type():
    obj = deployment()
    obj["metadata"].update({
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "deletionTimestamp": None,
        "annotations": None,
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
                           "time": "2024-05-01T10:00:00+02:00", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:spec": {"f:replicas": {}}, "anything": [1, "x"]}}],
    })
    obj["status"] = {"replicas": 2, "conditions": [{"type": "Available", "status": "True",
                                                    "lastUpdateTime": "2024-05-01T10:00:00.5Z"}]}
    assert fc.check_fields(obj, DEPLOYMENT, S) == ([], [])


def test_unknown_fields_paths():
    obj = deployment(spec__foo=1, spec__bar={"nested": True})
    obj["spec"]["template"]["spec"]["containers"][0]["bogus"] = "x"
    obj["spec"]["template"]["spec"]["containers"].append({"name": "b", "image": "b", "imagePullPolicyy": "x"})
    obj["metadata"]["labelz"] = {}
    unknown, type_errors = fc.check_fields(obj, DEPLOYMENT, S)
    assert type_errors == []
    # document order: foo and bar were added to spec after template
    assert unknown == ["metadata.labelz",
                       "spec.template.spec.containers[0].bogus",
                       "spec.template.spec.containers[1].imagePullPolicyy",
                       "spec.foo", "spec.bar"]


def test_strict_message_for_two_unknown_fields():
    unknown, _ = fc.check_fields(deployment(spec__foo=1, spec__bar=2), DEPLOYMENT, S)
    err = fc.strict_error("Deployment", "v1", fc.unknown_field_messages(unknown))
    assert isinstance(err, StatusError)
    assert err.code == 400 and err.reason == "BadRequest"
    assert err.message == ('Deployment in version "v1" cannot be handled as a Deployment: '
                           'strict decoding error: unknown field "spec.foo", unknown field "spec.bar"')
    assert fc.strict_decoding_message(fc.unknown_field_messages(unknown)) == \
        'strict decoding error: unknown field "spec.foo", unknown field "spec.bar"'


def test_apiversion_and_kind_always_allowed():
    schema = S.definitions["io.k8s.api.core.v1.PodSpec"]  # no apiVersion/kind properties
    unknown, _ = fc.check_fields({"apiVersion": "v1", "kind": "X", "containers": []}, schema, S)
    assert unknown == []


def test_unknown_fields_are_deduplicated_and_capped():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    obj.update({f"extra{i}": i for i in range(150)})
    unknown, _ = fc.check_fields(obj, S.for_kind("", "v1", "ConfigMap"), S)
    assert len(unknown) == fc.MAX_STRICT_ERRORS
    assert unknown[0] == "extra0"


def test_duplicate_fields_in_raw_json_in_document_order():
    raw = (b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b",'
           b'"labels":{"x":"1","x":"2"}},"bogus":1,"data":{"k":"v"},"bogus":2,"data":{}}')
    strict, type_errors = fc.check_body(raw, S.for_kind("", "v1", "ConfigMap"), S)
    assert type_errors == []
    assert strict == ['duplicate field "metadata.name"', 'duplicate field "metadata.labels.x"',
                      'unknown field "bogus"', 'duplicate field "data"']


@pytest.mark.parametrize("changes, message", [
    ({"spec__replicas": "3"},
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ({"spec__replicas": 3.5},
     "json: cannot unmarshal number 3.5 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ({"spec__replicas": 2 ** 31},
     "json: cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ({"spec__replicas": True},
     "json: cannot unmarshal bool into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ({"spec": "x"},
     "json: cannot unmarshal string into Go struct field Deployment.spec of type v1.DeploymentSpec"),
    ({"metadata__labels": {"a": 1}},
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
    ({"metadata__labels": ["a"]},
     "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
    ({"spec__template__spec__containers": {"name": "x"}},
     "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers "
     "of type []v1.Container"),
    ({"spec__template__spec__containers__0__image": {"a": 1}},
     "json: cannot unmarshal object into Go struct field Container.spec.template.spec.containers.image "
     "of type string"),
    ({"spec__template__spec__containers__0__ports": [{"containerPort": "80"}]},
     "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports."
     "containerPort of type int32"),
    ({"spec__template__spec__containers__0__resources": {"limits": "1"}},
     "json: cannot unmarshal string into Go struct field ResourceRequirements.spec.template.spec.containers."
     "resources.limits of type v1.ResourceList"),
    ({"spec__paused": "yes"},
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool"),
])
def test_type_errors(changes, message):
    unknown, type_errors = fc.check_fields(deployment(**changes), DEPLOYMENT, S)
    assert type_errors[0] == message


def test_decode_error_status():
    _, type_errors = fc.check_fields(deployment(spec__replicas="3"), DEPLOYMENT, S)
    status = fc.decode_error("Deployment", "v1", type_errors[0]).to_status()
    assert status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
                   "string into Go struct field DeploymentSpec.spec.replicas of type int32",
        "reason": "BadRequest", "code": 400,
    }


def test_first_saved_type_error_is_reported():
    obj = deployment(spec__replicas="3", spec__paused="no")
    _, type_errors = fc.check_fields(obj, DEPLOYMENT, S)
    assert len(type_errors) == 2
    assert "spec.replicas" in type_errors[0]


def test_custom_unmarshaller_error_stops_decoding_and_wins():
    # replicas fails first (a saved error), then the Quantity's own parser fails: Go returns the latter.
    obj = deployment(spec__replicas="3")
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "lots"
    _, type_errors = fc.check_fields(obj, DEPLOYMENT, S)
    assert type_errors == [fc.QUANTITY_FORMAT_ERROR]
    assert fc.QUANTITY_FORMAT_ERROR == ("quantities must match the regular expression "
                                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


@pytest.mark.parametrize("port, message", [
    ("http", None),
    (8080, None),
    (True, "json: cannot unmarshal bool into Go value of type int32"),
    (1.5, "json: cannot unmarshal number 1.5 into Go value of type int32"),
    ({"a": 1}, "json: cannot unmarshal object into Go value of type int32"),
    (2 ** 40, "json: cannot unmarshal number 1099511627776 into Go value of type int32"),
])
def test_int_or_string(port, message):
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = port
    obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = port
    _, type_errors = fc.check_fields(obj, DEPLOYMENT, S)
    assert type_errors == ([message] if message else [])


@pytest.mark.parametrize("quantity, message", [
    ("100m", None), ("1.5Gi", None), (" 2 ", None), ("1e3", None), ("0", None), (1, None), (0.5, None),
    ("-1", None), ("1.", None),
    ("", fc.QUANTITY_FORMAT_ERROR), ("abc", fc.QUANTITY_FORMAT_ERROR), ("1Gb", fc.QUANTITY_FORMAT_ERROR),
    (True, fc.QUANTITY_FORMAT_ERROR), ({"a": 1}, fc.QUANTITY_FORMAT_ERROR),
    ("1GG", "unable to parse quantity's suffix"), ("5e", "unable to parse quantity's suffix"),
])
def test_quantity(quantity, message):
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = quantity
    _, type_errors = fc.check_fields(obj, DEPLOYMENT, S)
    assert type_errors == ([message] if message else [])


@pytest.mark.parametrize("value, message", [
    ("2024-01-01T00:00:00Z", None),
    ("2024-01-01T00:00:00.123456789-07:00", None),
    ("2024-01-01T1:02:03Z", None),
    ("abc", 'parsing time "abc" as "2006-01-02T15:04:05Z07:00": cannot parse "abc" as "2006"'),
    ("2024-01-01", 'parsing time "2024-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T"'),
    ("2024-13-01T00:00:00Z", 'parsing time "2024-13-01T00:00:00Z": month out of range'),
    ("2023-02-29T00:00:00Z", 'parsing time "2023-02-29T00:00:00Z": day out of range'),
    ("2024-01-01T24:00:00Z", 'parsing time "2024-01-01T24:00:00Z": hour out of range'),
    ("2024-01-01T00:00:00+0200",
     'parsing time "2024-01-01T00:00:00+0200" as "2006-01-02T15:04:05Z07:00": cannot parse "+0200" as "Z07:00"'),
    ("2024-01-01T00:00:00Zjunk", 'parsing time "2024-01-01T00:00:00Zjunk": extra text: "junk"'),
    (5, "json: cannot unmarshal number into Go value of type string"),
])
def test_time(value, message):
    obj = deployment(metadata__creationTimestamp=value)
    _, type_errors = fc.check_fields(obj, DEPLOYMENT, S)
    assert type_errors == ([message] if message else [])


def test_micro_time_needs_six_fraction_digits():
    lease = S.for_kind("coordination.k8s.io", "v1", "Lease")
    ok = {"spec": {"renewTime": "2024-01-01T00:00:00.000000Z", "holderIdentity": "a"}}
    assert fc.check_fields(ok, lease, S) == ([], [])
    _, type_errors = fc.check_fields({"spec": {"renewTime": "2024-01-01T00:00:00Z"}}, lease, S)
    assert type_errors == ['parsing time "2024-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": '
                           'cannot parse "Z" as ".000000"']


@pytest.mark.parametrize("data, message", [
    ("aGVsbG8=", None),
    ("aGVs\nbG8=", None),
    ("", None),
    ("aGVsbG8", "illegal base64 data at input byte 4"),
    ("not base64!", "illegal base64 data at input byte 3"),
    ("a", "illegal base64 data at input byte 0"),
    ("aGVsbA==x", "illegal base64 data at input byte 8"),
    (5, "json: cannot unmarshal number into Go struct field Secret.data of type []uint8"),
])
def test_secret_data_is_base64(data, message):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": data}}
    _, type_errors = fc.check_fields(secret, S.for_kind("", "v1", "Secret"), S)
    assert type_errors == ([message] if message else [])


def test_opaque_objects_take_anything():
    revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
                "revision": 1, "data": {"spec": {"whatever": [1, {"x": None}]}, "unknown": "yes"}}
    assert fc.check_fields(revision, S.for_kind("apps", "v1", "ControllerRevision"), S) == ([], [])
    revision["data"] = "a string"
    assert fc.check_fields(revision, S.for_kind("apps", "v1", "ControllerRevision"), S) == ([], [])


def test_preserve_unknown_fields_and_maps():
    schema = {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                                        "properties": {"size": {"type": "integer", "format": "int32"}}},
                                               "tags": {"type": "object", "additionalProperties": {"type": "string"}}}}
    unknown, type_errors = fc.check_fields({"spec": {"size": 1, "other": {"a": 1}}, "tags": {"a": "b"}}, schema, S)
    assert unknown == [] and type_errors == []
    unknown, type_errors = fc.check_fields({"spec": {"size": "1"}, "tags": {"a": 1}, "x": 1}, schema, S)
    assert unknown == ["x"]
    assert len(type_errors) == 2


def test_nulls_are_accepted_everywhere():
    obj = deployment(spec__replicas=None, spec__template=None, metadata__labels=None,
                     metadata__creationTimestamp=None, spec__strategy=None)
    assert fc.check_fields(obj, DEPLOYMENT, S) == ([], [])


def test_pod_with_status_and_every_probe_kind():
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{
            "name": "c", "image": "busybox", "command": ["sh", "-c", "sleep 1"],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
            "startupProbe": {"exec": {"command": ["true"]}},
            "livenessProbe": {"grpc": {"port": 9000}},
            "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}, "runAsUser": 0},
        }], "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}],
            "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 30}],
            "overhead": {"cpu": "10m"}},
        "status": {"phase": "Running", "podIP": "10.42.0.5", "startTime": "2024-01-01T00:00:00Z",
                   "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0, "image": "busybox",
                                          "imageID": "", "state": {"running": {"startedAt": "2024-01-01T00:00:01Z"}}}]},
    }
    assert fc.check_fields(pod, POD, S) == ([], [])


# ---- fieldValidation plumbing ------------------------------------------------

def test_warning_headers():
    headers = fc.warning_headers(fc.unknown_field_messages(["spec.foo", "spec.foo", "spec.bar"]))
    assert headers == ['299 - "unknown field \\"spec.foo\\""', '299 - "unknown field \\"spec.bar\\""']
    assert fc.warning_header('a "quoted" \\ text') == '299 - "a \\"quoted\\" \\\\ text"'


def test_warning_headers_truncate_past_4k():
    texts = [f"unknown field \"{'x' * 300}{i}\"" for i in range(20)]
    headers = fc.warning_headers(texts)
    assert all(len(h) < 300 for h in headers)
    assert len(headers) < 20


def test_validate_directive():
    assert fc.validate_directive(None) == "Warn"
    assert fc.validate_directive("") == "Warn"
    assert fc.validate_directive("Strict") == "Strict"
    with pytest.raises(StatusError) as raised:
        fc.validate_directive("strict", "PatchOptions")
    err = raised.value
    assert err.code == 422
    assert err.message == ('PatchOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
                           '"strict": supported values: "", "Ignore", "Strict", "Warn"')


def test_patch_strict_error():
    err = fc.patch_strict_error('{"spec":{"foo":1}}', ['unknown field "spec.foo"'])
    status = err.to_status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == (' "" is invalid: patch: Invalid value: "{\\"spec\\":{\\"foo\\":1}}": '
                                 'strict decoding error: unknown field "spec.foo"')
    assert status["details"] == {"causes": [{
        "reason": "FieldValueInvalid", "field": "patch",
        "message": 'Invalid value: "{\\"spec\\":{\\"foo\\":1}}": strict decoding error: unknown field "spec.foo"'}]}


def test_go_value_text():
    assert gostrings.go_value_text({"spec": {"replicas": 3, "x": [1.5, "a", None, True]}, "b": 1e21}) == \
        "map[b:1e+21 spec:map[replicas:3 x:[1.5 a <nil> true]]]"
