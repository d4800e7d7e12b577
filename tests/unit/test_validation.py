"""Write-path validation: upstream's field paths, messages, reasons and order."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from k8py.api import defaults, validation
from k8py.api.builtin import builtin_registry
from k8py.api.validation import cron, names
from k8py.apimachinery import quantity
from k8py.apimachinery.errors import Cause, invalid

SEED = Path("/work/shared/manifests/seed")
if not SEED.exists():
    SEED = Path(__file__).resolve().parents[1] / "data" / "seed"

REG = builtin_registry()
UID = "6b4bd6a3-2b1f-4a8e-9a6f-0c6ec4a4a001"
DNS1123_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                     "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                     "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1123_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                 "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_LABEL = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                 "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                 "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE_REGEX = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                     "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
                     "or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
QUALIFIED_NAME_REGEX = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                        "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
                        "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
CONFIG_KEY_REGEX = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


def resource_of(obj: dict):
    group, _, version = obj["apiVersion"].rpartition("/")
    res = REG.by_kind(group, version, obj["kind"])
    assert res is not None, obj["kind"]
    return REG.storage_resource(res)


def prepared(obj: dict) -> dict:
    """What the store hands to validation: server metadata set, defaulted, prepared."""
    obj = copy.deepcopy(obj)
    res = resource_of(obj)
    m = obj.setdefault("metadata", {})
    if res.namespaced:
        m.setdefault("namespace", "default")
    m.setdefault("uid", UID)
    m.setdefault("creationTimestamp", "2024-05-01T10:00:00Z")
    defaults.apply_defaults(res, obj)
    defaults.prepare_create(res, obj)
    return obj


def create_causes(obj: dict) -> list[tuple[str, str, str]]:
    obj = prepared(obj)
    return [(c.field, c.message, c.reason) for c in validation.validate_create(resource_of(obj), obj)]


def update_causes(old: dict, mutate) -> list[tuple[str, str, str]]:
    old = prepared(old)
    old["metadata"]["resourceVersion"] = "7"
    new = copy.deepcopy(old)
    mutate(new)
    res = resource_of(old)
    defaults.apply_defaults(res, new)
    defaults.prepare_update(res, new, old)
    return [(c.field, c.message, c.reason) for c in validation.validate_update(res, new, old)]


# ---- builders ---------------------------------------------------------------------------

def pod(spec_extra=None, meta_extra=None, container=None) -> dict:
    c = {"name": "app", "image": "nginx"}
    c.update(container or {})
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": [c]}}
    obj["spec"].update(spec_extra or {})
    obj["metadata"].update(meta_extra or {})
    return obj


def template(labels=None, spec_extra=None) -> dict:
    spec = {"containers": [{"name": "app", "image": "nginx"}]}
    spec.update(spec_extra or {})
    return {"metadata": {"labels": {"app": "web"} if labels is None else labels}, "spec": spec}


def deployment(**spec) -> dict:
    body = {"selector": {"matchLabels": {"app": "web"}}, "template": template()}
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": body}


def workload(kind: str, **spec) -> dict:
    obj = deployment(**spec)
    obj["kind"] = kind
    return obj


def service(**spec) -> dict:
    body = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": body}


def job(**spec) -> dict:
    body = {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"}, "spec": body}


def cron_job(**spec) -> dict:
    body = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
        "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"}, "spec": body}


def kind(api_version: str, kind_name: str, name: str = "x", **fields) -> dict:
    obj = {"apiVersion": api_version, "kind": kind_name, "metadata": {"name": name}}
    obj.update(fields)
    return obj


def pvc(**spec) -> dict:
    body = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    body.update(spec)
    return kind("v1", "PersistentVolumeClaim", "data", spec=body)


def pv(**spec) -> dict:
    body = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/srv"}}
    body.update(spec)
    return kind("v1", "PersistentVolume", "vol", spec=body)


REQ, INV, UNS, DUP, FORB, LONG, NOTF = ("FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported",
                                        "FieldValueDuplicate", "FieldValueForbidden", "FieldValueTooLong",
                                        "FieldValueNotFound")


# ---- every seed manifest is valid once defaulted --------------------------------------------

def _seed_objects():
    for path in sorted(SEED.glob("*.yaml")):
        for n, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                yield pytest.param(doc, id=f"{path.stem}-{n}-{doc['kind']}")


@pytest.mark.parametrize("doc", list(_seed_objects()))
def test_seed_manifests_pass_validation(doc):
    assert create_causes(doc) == []
    # an unchanged update of the stored object is valid too
    assert update_causes(doc, lambda new: None) == []


def test_seed_directory_has_manifests():
    assert len(list(_seed_objects())) >= 30


# ---- create: one failing case per rule ------------------------------------------------------

CREATE_CASES = [
    # ObjectMeta
    ("name required", kind("v1", "ConfigMap", ""),
     [("metadata.name", "Required value: name or generateName is required", REQ)]),
    ("name is a DNS subdomain", kind("v1", "ConfigMap", "Bad_Name"),
     [("metadata.name", f'Invalid value: "Bad_Name": {DNS1123_SUBDOMAIN}', INV)]),
    ("generateName is checked as a prefix", {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"generateName": "Web-", "name": "ok"}},
     [("metadata.generateName", f'Invalid value: "Web-": {DNS1123_SUBDOMAIN}', INV)]),
    ("namespace name is a DNS label", kind("v1", "Namespace", "my.ns"),
     [("metadata.name", 'Invalid value: "my.ns": must not contain dots', INV)]),
    ("service name is a DNS-1035 label", service() | {"metadata": {"name": "1web"}},
     [("metadata.name", f'Invalid value: "1web": {DNS1035_LABEL}', INV)]),
    ("statefulset name is a DNS label", workload("StatefulSet") | {"metadata": {"name": "a.b"}},
     [("metadata.name", 'Invalid value: "a.b": must not contain dots', INV)]),
    ("rbac names are path segments", kind("rbac.authorization.k8s.io/v1", "ClusterRole", "a%b"),
     [("metadata.name", "Invalid value: \"a%b\": may not contain '%'", INV)]),
    ("label value too long", kind("v1", "ConfigMap", "c") | {"metadata": {"name": "c", "labels": {"k": "v" * 64}}},
     [("metadata.labels", f'Invalid value: "{"v" * 64}": must be no more than 63 characters', INV)]),
    ("label value characters", kind("v1", "ConfigMap", "c") | {"metadata": {"name": "c", "labels": {"k": "a b"}}},
     [("metadata.labels", f'Invalid value: "a b": {LABEL_VALUE_REGEX}', INV)]),
    ("label key", kind("v1", "ConfigMap", "c") | {"metadata": {"name": "c", "labels": {"-k": "v"}}},
     [("metadata.labels", f'Invalid value: "-k": {QUALIFIED_NAME_REGEX}', INV)]),
    ("annotations total size", kind("v1", "ConfigMap", "c") | {"metadata": {"name": "c",
                                                                          "annotations": {"a": "x" * 262144}}},
     [("metadata.annotations", "Too long: may not be more than 262144 bytes", LONG)]),
    ("finalizer must be qualified", kind("v1", "ConfigMap", "c") | {"metadata": {"name": "c", "finalizers": ["a/b/c"]}},
     [("metadata.finalizers", 'Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '
       "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
       "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
       "subdomain prefix and '/' (e.g. 'example.com/MyName')", INV)]),
    ("built-in finalizer names", kind("v1", "ConfigMap", "c") | {"metadata": {"name": "c", "finalizers": ["keep"]}},
     [("metadata.finalizers[0]", 'Invalid value: "keep": name is neither a standard finalizer name nor is it '
       "fully qualified", INV)]),
    ("owner reference fields", kind("v1", "ConfigMap", "c") | {"metadata": {"name": "c", "ownerReferences": [
        {"apiVersion": "", "kind": "Deployment", "name": "", "uid": ""}]}},
     [("metadata.ownerReferences.apiVersion", 'Invalid value: "": version must not be empty', INV),
      ("metadata.ownerReferences.name", 'Invalid value: "": name must not be empty', INV),
      ("metadata.ownerReferences.uid", 'Invalid value: "": uid must not be empty', INV)]),
    ("namespace forbidden on cluster-scoped kinds", kind("v1", "Namespace", "n") | {"metadata": {"name": "n",
                                                                                                "namespace": "x"}},
     [("metadata.namespace", "Forbidden: not allowed on this type", FORB)]),
    # Pods
    ("pod needs containers", pod() | {"spec": {}}, [("spec.containers", "Required value", REQ)]),
    ("container name and image", pod(container={"name": "", "image": ""}),
     [("spec.containers[0].name", "Required value", REQ), ("spec.containers[0].image", "Required value", REQ)]),
    ("container names unique", pod(spec_extra={"containers": [{"name": "a", "image": "x"},
                                                              {"name": "a", "image": "y"}]}),
     [("spec.containers[1].name", 'Duplicate value: "a"', DUP)]),
    ("init and app container names share one namespace",
     pod(spec_extra={"initContainers": [{"name": "app", "image": "busybox"}]}),
     [("spec.initContainers[0].name", 'Duplicate value: "app"', DUP)]),
    ("container port range", pod(container={"ports": [{"containerPort": 70000}]}),
     [("spec.containers[0].ports[0].containerPort", "Invalid value: 70000: must be between 1 and 65535, inclusive",
       INV)]),
    ("container port required", pod(container={"ports": [{"containerPort": 0}]}),
     [("spec.containers[0].ports[0].containerPort", "Required value", REQ)]),
    ("port names", pod(container={"ports": [{"name": "HTTP", "containerPort": 80}]}),
     [("spec.containers[0].ports[0].name",
       'Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)', INV),
      ("spec.containers[0].ports[0].name", 'Invalid value: "HTTP": must contain at least one letter (a-z)', INV)]),
    ("port protocol values", pod(container={"ports": [{"containerPort": 80, "protocol": "HTTP"}]}),
     [("spec.containers[0].ports[0].protocol",
       'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"', UNS)]),
    ("restartPolicy values", pod(spec_extra={"restartPolicy": "Sometimes"}),
     [("spec.restartPolicy", 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
       UNS)]),
    ("dnsPolicy values", pod(spec_extra={"dnsPolicy": "Google"}),
     [("spec.dnsPolicy", 'Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", '
       '"ClusterFirst", "Default", "None"', UNS)]),
    ("imagePullPolicy values", pod(container={"imagePullPolicy": "Sometimes"}),
     [("spec.containers[0].imagePullPolicy",
       'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"', UNS)]),
    ("probe needs a handler", pod(container={"livenessProbe": {"periodSeconds": 5}}),
     [("spec.containers[0].livenessProbe", "Required value: must specify a handler type", REQ)]),
    ("probe with two handlers", pod(container={"readinessProbe": {"exec": {"command": ["true"]},
                                                                  "tcpSocket": {"port": 80}}}),
     [("spec.containers[0].readinessProbe.tcpSocket", "Forbidden: may not specify more than 1 handler type", FORB)]),
    ("liveness successThreshold", pod(container={"livenessProbe": {"tcpSocket": {"port": 80}, "successThreshold": 2}}),
     [("spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1", INV)]),
    ("probe numbers are non-negative", pod(container={"readinessProbe": {"tcpSocket": {"port": 80},
                                                                         "initialDelaySeconds": -1}}),
     [("spec.containers[0].readinessProbe.initialDelaySeconds",
       "Invalid value: -1: must be greater than or equal to 0", INV)]),
    ("probe port range", pod(container={"livenessProbe": {"httpGet": {"port": 0}}}),
     [("spec.containers[0].livenessProbe.httpGet.port", "Invalid value: 0: must be between 1 and 65535, inclusive",
       INV)]),
    ("probe scheme", pod(container={"livenessProbe": {"httpGet": {"port": 80, "scheme": "FTP"}}}),
     [("spec.containers[0].livenessProbe.httpGet.scheme", 'Unsupported value: "FTP": supported values: "HTTP", '
       '"HTTPS"', UNS)]),
    ("init containers have no probes without restartPolicy Always",
     pod(spec_extra={"initContainers": [{"name": "init", "image": "busybox",
                                         "readinessProbe": {"exec": {"command": ["true"]}}}]}),
     [("spec.initContainers[0].readinessProbe",
       "Forbidden: may not be set for init containers without restartPolicy=Always", FORB)]),
    ("volume names unique", pod(spec_extra={"volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]}),
     [("spec.volumes[1].name", 'Duplicate value: "v"', DUP)]),
    ("one volume source", pod(spec_extra={"volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]}),
     [("spec.volumes[0].hostPath", "Forbidden: may not specify more than 1 volume type", FORB)]),
    ("volume name is a DNS label", pod(spec_extra={"volumes": [{"name": "V", "emptyDir": {}}]}),
     [("spec.volumes[0].name", f'Invalid value: "V": {DNS1123_LABEL}', INV)]),
    ("volume mount must name a volume", pod(container={"volumeMounts": [{"name": "data", "mountPath": "/d"}]}),
     [("spec.containers[0].volumeMounts[0].name", 'Not found: "data"', NOTF)]),
    ("mount paths unique", pod(spec_extra={"volumes": [{"name": "v", "emptyDir": {}}]},
                               container={"volumeMounts": [{"name": "v", "mountPath": "/d"},
                                                           {"name": "v", "mountPath": "/d"}]}),
     [("spec.containers[0].volumeMounts[1].mountPath", 'Invalid value: "/d": must be unique', INV)]),
    ("subPath may not climb", pod(spec_extra={"volumes": [{"name": "v", "emptyDir": {}}]},
                                  container={"volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "../x"}]}),
     [("spec.containers[0].volumeMounts.subPath", "Invalid value: \"../x\": must not contain '..'", INV)]),
    ("secret volume needs a name", pod(spec_extra={"volumes": [{"name": "s", "secret": {}}]}),
     [("spec.volumes[0].secret.secretName", "Required value", REQ)]),
    ("hostPath type values", pod(spec_extra={"volumes": [{"name": "h", "hostPath": {"path": "/x", "type": "Dir"}}]}),
     [("spec.volumes[0].hostPath.type", 'Unsupported value: "Dir": supported values: "", "BlockDevice", '
       '"CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"', UNS)]),
    ("configMap item mode", pod(spec_extra={"volumes": [{"name": "c", "configMap": {"name": "c", "items": [
        {"key": "k", "path": "p", "mode": 1000}]}}]}),
     [("spec.volumes[0].configMap.items[0].mode",
       "Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive", INV)]),
    ("env var names", pod(container={"env": [{"name": "A=B", "value": "x"}]}),
     [("spec.containers[0].env[0].name", 'Invalid value: "A=B": a valid environment variable name must consist '
       "only of printable ASCII characters other than '='", INV)]),
    ("env valueFrom needs a source", pod(container={"env": [{"name": "A", "valueFrom": {}}]}),
     [("spec.containers[0].env[0].valueFrom", 'Invalid value: "": must specify one of: `fieldRef`, '
       "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`", INV)]),
    ("downward API env field paths", pod(container={"env": [{"name": "A", "valueFrom": {"fieldRef": {
        "fieldPath": "metadata.labels"}}}]}),
     [("spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", 'Unsupported value: "metadata.labels": supported '
       'values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", '
       '"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"', UNS)]),
    ("secret key ref key", pod(container={"env": [{"name": "A", "valueFrom": {"secretKeyRef": {
        "name": "s", "key": "a b"}}}]}),
     [("spec.containers[0].env[0].valueFrom.secretKeyRef.key", f'Invalid value: "a b": {CONFIG_KEY_REGEX}', INV)]),
    ("requests may not exceed limits", pod(container={"resources": {"requests": {"cpu": "2"},
                                                                    "limits": {"cpu": "1"}}}),
     [("spec.containers[0].resources.requests", 'Invalid value: "2": must be less than or equal to cpu limit of 1',
       INV)]),
    ("resource names for containers", pod(container={"resources": {"limits": {"pods": "1"}}}),
     [("spec.containers[0].resources.limits[pods]", 'Invalid value: "pods": must be a standard resource for '
       "containers", INV),
      ("spec.containers[0].resources.requests[pods]", 'Invalid value: "pods": must be a standard resource for '
       "containers", INV)]),
    ("negative quantities", pod(container={"resources": {"requests": {"memory": "-1"}}}),
     [("spec.containers[0].resources.requests[memory]", 'Invalid value: "-1": must be greater than or equal to 0',
       INV)]),
    ("tolerations", pod(spec_extra={"tolerations": [{"operator": "Equal", "value": "x"}]}),
     [("spec.tolerations[0].operator", 'Invalid value: "Equal": operator must be Exists when `key` is empty, '
       'which means "match all values and all keys"', INV)]),
    ("node affinity terms", pod(spec_extra={"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}),
     [("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
       "Required value: must have at least one node selector term", REQ)]),
    ("activeDeadlineSeconds range", pod(spec_extra={"activeDeadlineSeconds": 0}),
     [("spec.activeDeadlineSeconds", "Invalid value: 0: must be between 1 and 2147483647, inclusive", INV)]),
    ("hostNetwork ports", pod(spec_extra={"hostNetwork": True},
                              container={"ports": [{"containerPort": 80, "hostPort": 81}]}),
     [("spec.containers[0].ports[0].hostPort", "Invalid value: 81: must match `containerPort` when `hostNetwork` is "
       "true", INV)]),
    ("mirror pods name their node", pod(meta_extra={"annotations": {"kubernetes.io/config.mirror": "x"}}),
     [("metadata.annotations[kubernetes.io/config.mirror]",
       'Invalid value: "x": must set spec.nodeName if mirror pod annotation is set', INV)]),
    ("ephemeral containers only through the subresource",
     pod(spec_extra={"ephemeralContainers": [{"name": "debug", "image": "busybox"}]}),
     [("spec.ephemeralContainers", "Forbidden: cannot be set on create", FORB)]),
    ("image whitespace", pod(container={"image": " nginx"}),
     [("spec.containers[0].image", 'Invalid value: " nginx": must not have leading or trailing whitespace', INV)]),
    # Services
    ("service ports required", service(ports=[]), [("spec.ports", "Required value", REQ)]),
    ("service port range", service(ports=[{"port": 0}]),
     [("spec.ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive", INV),
      ("spec.ports[0].targetPort", "Invalid value: 0: must be between 1 and 65535, inclusive", INV)]),
    ("service port names when several", service(ports=[{"port": 80}, {"port": 81, "name": "b"}]),
     [("spec.ports[0].name", "Required value", REQ)]),
    ("service type values", service(type="Public"),
     [("spec.type", 'Unsupported value: "Public": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
       '"NodePort"', UNS)]),
    ("externalName required", service(type="ExternalName", ports=[]),
     [("spec.externalName", "Required value", REQ)]),
    ("externalName is a DNS name", service(type="ExternalName", externalName="a_b.example.com"),
     [("spec.externalName", f'Invalid value: "a_b.example.com": {DNS1123_SUBDOMAIN}', INV)]),
    ("service selector labels", service(selector={"app": "a b"}),
     [("spec.selector", f'Invalid value: "a b": {LABEL_VALUE_REGEX}', INV)]),
    ("nodePort only for NodePort services", service(ports=[{"port": 80, "nodePort": 30080}]),
     [("spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'", FORB)]),
    ("duplicate service ports", service(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]),
     [("spec.ports[1]", 'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
       'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}', DUP)]),
    ("headless NodePort", service(type="NodePort", clusterIP="None"),
     [("spec.clusterIPs[0]", 'Invalid value: "None": may not be set to \'None\' for NodePort services', INV)]),
    ("sessionAffinity values", service(sessionAffinity="Sticky"),
     [("spec.sessionAffinity", 'Unsupported value: "Sticky": supported values: "ClientIP", "None"', UNS)]),
    # workloads
    ("selector must match template", deployment(template=template({"app": "other"})),
     [("spec.template.metadata.labels", 'Invalid value: map[string]string{"app":"other"}: `selector` does not '
       "match template `labels`", INV)]),
    ("selector required", deployment(selector=None),
     [("spec.selector", "Required value", REQ),
      ("spec.template.metadata.labels", 'Invalid value: map[string]string{"app":"web"}: `selector` does not match '
       "template `labels`", INV)]),
    ("empty selector", deployment(selector={}),
     [("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
       "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment", INV)]),
    ("replicas non-negative", deployment(replicas=-1),
     [("spec.replicas", "Invalid value: -1: must be greater than or equal to 0", INV)]),
    ("deployment template restartPolicy", deployment(template=template(spec_extra={"restartPolicy": "Never"})),
     [("spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"', UNS)]),
    ("deployment template container image", deployment(template=template(spec_extra={"containers": [{"name": "a"}]})),
     [("spec.template.spec.containers[0].image", "Required value", REQ)]),
    ("deployment strategy type", deployment(strategy={"type": "BlueGreen"}),
     [("spec.strategy", 'Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
       'RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"', UNS)]),
    ("rolling update percent", deployment(strategy={"rollingUpdate": {"maxUnavailable": "120%"}}),
     [("spec.strategy.rollingUpdate.maxUnavailable", 'Invalid value: intstr.IntOrString{Type:1, IntVal:0, '
       'StrVal:"120%"}: must not be greater than 100%', INV)]),
    ("progress deadline", deployment(minReadySeconds=700),
     [("spec.progressDeadlineSeconds", "Invalid value: 600: must be greater than minReadySeconds", INV)]),
    ("replicaset selector", workload("ReplicaSet", template=template({"app": "x"})),
     [("spec.template.metadata.labels", 'Invalid value: map[string]string{"app":"x"}: `selector` does not match '
       "template `labels`", INV)]),
    ("statefulset podManagementPolicy", workload("StatefulSet", podManagementPolicy="Random"),
     [("spec.podManagementPolicy", "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'", INV)]),
    ("daemonset template restartPolicy", workload("DaemonSet", template=template(spec_extra={"restartPolicy": "OnFailure"})),
     [("spec.template.spec.restartPolicy", 'Unsupported value: "OnFailure": supported values: "Always"', UNS)]),
    ("replication controller selector", kind("v1", "ReplicationController", "rc", spec={
        "selector": {"app": "a"}, "template": template({"app": "b"})}),
     [("spec.template.metadata.labels", 'Invalid value: map[string]string{"app":"b"}: `selector` does not match '
       "template `labels`", INV)]),
    # batch
    ("job restartPolicy", job(template={"spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
     [("spec.template.spec.restartPolicy", 'Required value: valid values: "OnFailure", "Never"', REQ)]),
    ("job restartPolicy values", job(template={"spec": {"restartPolicy": "Sometimes",
                                                        "containers": [{"name": "c", "image": "busybox"}]}}),
     [("spec.template.spec.restartPolicy", 'Unsupported value: "Sometimes": supported values: "Always", '
       '"OnFailure", "Never"', UNS),
      ("spec.template.spec.restartPolicy", 'Unsupported value: "Sometimes": supported values: "OnFailure", "Never"',
       UNS)]),
    ("job counters", job(backoffLimit=-1),
     [("spec.backoffLimit", "Invalid value: -1: must be greater than or equal to 0", INV)]),
    ("job completion mode", job(completionMode="Sometimes"),
     [("spec.completionMode", 'Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"', UNS)]),
    ("cron schedule range", cron_job(schedule="61 * * * *"),
     [("spec.schedule", 'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61', INV)]),
    ("cron schedule fields", cron_job(schedule="hello"),
     [("spec.schedule", 'Invalid value: "hello": expected exactly 5 fields, found 1: [hello]', INV)]),
    ("cron schedule required", cron_job(schedule=""), [("spec.schedule", "Required value", REQ)]),
    ("cron concurrency policy", cron_job(concurrencyPolicy="Sometimes"),
     [("spec.concurrencyPolicy", 'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
       UNS)]),
    ("cron time zone", cron_job(timeZone="Mars/Olympus"),
     [("spec.timeZone", 'Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus', INV)]),
    ("cron job template selector", cron_job(jobTemplate={"spec": {"selector": {"matchLabels": {"a": "b"}},
                                                                  "template": {"spec": {
                                                                      "restartPolicy": "Never", "containers": [
                                                                          {"name": "c", "image": "busybox"}]}}}}),
     [("spec.jobTemplate.spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"a":"b"}, '
       "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated", INV)]),
    ("cron job name length", cron_job() | {"metadata": {"name": "c" * 53}},
     [("metadata.name", f'Invalid value: "{"c" * 53}": must be no more than 52 characters', INV)]),
    # config and secrets
    ("configmap keys", kind("v1", "ConfigMap", "c", data={"a b": "x"}),
     [("data[a b]", f'Invalid value: "a b": {CONFIG_KEY_REGEX}', INV)]),
    ("configmap key may not be ..", kind("v1", "ConfigMap", "c", data={"..x": "y"}),
     [("data[..x]", "Invalid value: \"..x\": must not start with '..'", INV)]),
    ("secret keys", kind("v1", "Secret", "s", data={"a/b": "eA=="}),
     [("data[a/b]", f'Invalid value: "a/b": {CONFIG_KEY_REGEX}', INV)]),
    ("tls secrets", kind("v1", "Secret", "s", type="kubernetes.io/tls", data={}),
     [("data[tls.crt]", "Required value", REQ), ("data[tls.key]", "Required value", REQ)]),
    # storage
    ("pvc access modes", pvc(accessModes=[]),
     [("spec.accessModes", "Required value: at least 1 access mode is required", REQ)]),
    ("pvc storage request", pvc(resources={"requests": {}}), [("spec.resources[storage]", "Required value", REQ)]),
    ("pvc access mode values", pvc(accessModes=["ReadWriteSometimes"]),
     [("spec.accessModes", 'Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", '
       '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"', UNS)]),
    ("pv capacity", pv(capacity={}),
     [("spec.capacity", "Required value", REQ),
      ("spec.capacity", 'Unsupported value: core.ResourceList(nil): supported values: "storage"', UNS)]),
    ("pv one source", pv(nfs={"server": "10.0.0.1", "path": "/x"}),
     [("spec.nfs", "Forbidden: may not specify more than 1 volume type", FORB)]),
    ("pv needs a source", pv(hostPath=None), [("spec", "Required value: must specify a volume type", REQ)]),
    ("pv reclaim policy", pv(persistentVolumeReclaimPolicy="Shred"),
     [("spec.persistentVolumeReclaimPolicy", 'Unsupported value: "Shred": supported values: "Delete", "Recycle", '
       '"Retain"', UNS)]),
    ("storageclass provisioner", kind("storage.k8s.io/v1", "StorageClass", "sc"),
     [("provisioner", "Required value", REQ)]),
    ("storageclass reclaim policy", kind("storage.k8s.io/v1", "StorageClass", "sc", provisioner="x.io/y",
                                         reclaimPolicy="Recycle"),
     [("reclaimPolicy", 'Unsupported value: "Recycle": supported values: "Delete", "Retain"', UNS)]),
    # quota and limits
    ("quota resource names", kind("v1", "ResourceQuota", "q", spec={"hard": {"gpus": "1"}}),
     [("spec.hard[gpus]", 'Invalid value: "gpus": must be a standard resource type or fully qualified', INV),
      ("spec.hard[gpus]", 'Invalid value: "gpus": must be a standard resource for quota', INV)]),
    ("limit range min above max", kind("v1", "LimitRange", "l", spec={"limits": [
        {"type": "Pod", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}),
     [("spec.limits[0].min[cpu]", 'Invalid value: "2": min value 2 is greater than max value 1', INV)]),
    ("limit range defaults are checked too", kind("v1", "LimitRange", "l", spec={"limits": [
        {"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}),
     [("spec.limits[0].min[cpu]", 'Invalid value: "2": min value 2 is greater than max value 1', INV),
      ("spec.limits[0].defaultRequest[cpu]", 'Invalid value: "1": min value 2 is greater than default request value 1',
       INV),
      ("spec.limits[0].default[cpu]", 'Invalid value: "2": min value 2 is greater than default value 1', INV)]),
    # rbac
    ("rule verbs", kind("rbac.authorization.k8s.io/v1", "Role", "r", rules=[{"apiGroups": [""],
                                                                          "resources": ["pods"]}]),
     [("rules[0].verbs", "Required value: verbs must contain at least one value", REQ)]),
    ("rule resources", kind("rbac.authorization.k8s.io/v1", "ClusterRole", "r", rules=[{"verbs": ["get"]}]),
     [("rules[0].apiGroups", "Required value: resource rules must supply at least one api group", REQ),
      ("rules[0].resources", "Required value: resource rules must supply at least one resource", REQ)]),
    ("binding role kind", kind("rbac.authorization.k8s.io/v1", "RoleBinding", "b", roleRef={
        "kind": "Deployment", "name": "x"}),
     [("roleRef.kind", 'Unsupported value: "Deployment": supported values: "Role", "ClusterRole"', UNS)]),
    ("binding subjects", kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "b", roleRef={
        "kind": "ClusterRole", "name": "view"}, subjects=[{"kind": "ServiceAccount", "name": "sa"}]),
     [("subjects[0].namespace", "Required value", REQ)]),
    # autoscaling
    ("hpa max below min", kind("autoscaling/v2", "HorizontalPodAutoscaler", "h", spec={
        "minReplicas": 5, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment", "name": "web"}}),
     [("spec.maxReplicas", "Invalid value: 2: must be greater than or equal to `minReplicas`", INV)]),
    ("hpa target ref", kind("autoscaling/v2", "HorizontalPodAutoscaler", "h", spec={
        "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment"}}),
     [("spec.scaleTargetRef.name", "Required value", REQ)]),
    ("hpa minReplicas", kind("autoscaling/v2", "HorizontalPodAutoscaler", "h", spec={
        "minReplicas": 0, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment", "name": "web"}}),
     [("spec.minReplicas", "Invalid value: 0: must be greater than or equal to 1", INV),
      ("spec.metrics", "Forbidden: must specify at least one Object or External metric to support scaling to zero "
       "replicas", FORB)]),
    # networking
    ("ingress needs rules or backend", kind("networking.k8s.io/v1", "Ingress", "i", spec={}),
     [("spec", "Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified",
       INV)]),
    ("ingress pathType", kind("networking.k8s.io/v1", "Ingress", "i", spec={"rules": [{"http": {"paths": [
        {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}),
     [("spec.rules[0].http.paths[0].pathType", "Required value: pathType must be specified", REQ)]),
    ("ingress backend port", kind("networking.k8s.io/v1", "Ingress", "i", spec={"rules": [{"http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {}}}}]}}]}),
     [("spec.rules[0].http.paths[0].backend", "Required value: port name or number is required", REQ)]),
    ("ingress host", kind("networking.k8s.io/v1", "Ingress", "i", spec={"rules": [{"host": "10.0.0.1"}]}),
     [("spec.rules[0].host", 'Invalid value: "10.0.0.1": must be a DNS name, not an IP address', INV)]),
    # scheduling, coordination, policy, discovery
    ("priority class value", kind("scheduling.k8s.io/v1", "PriorityClass", "high", value=2000000001),
     [("value", "Forbidden: maximum allowed value of a user defined priority is 1000000000", FORB)]),
    ("system priority class names", kind("scheduling.k8s.io/v1", "PriorityClass", "system-high", value=5),
     [("metadata.name", "Forbidden: priority class names with 'system-' prefix are reserved for system use only. "
       "error: system-high is not a known system priority class", FORB)]),
    ("lease duration", kind("coordination.k8s.io/v1", "Lease", "l", spec={"leaseDurationSeconds": 0}),
     [("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0", INV)]),
    ("pdb both bounds", kind("policy/v1", "PodDisruptionBudget", "p", spec={"minAvailable": 1, "maxUnavailable": 1}),
     [("spec", "Invalid value: policy.PodDisruptionBudgetSpec{...}: minAvailable and maxUnavailable cannot be both "
       "set", INV)]),
    ("pdb names are path segments", kind("policy/v1", "PodDisruptionBudget", "a%b", spec={}),
     [("metadata.name", "Invalid value: \"a%b\": may not contain '%'", INV)]),
    ("endpointslice address type", kind("discovery.k8s.io/v1", "EndpointSlice", "e", addressType="IPv5",
                                        endpoints=[]),
     [("addressType", 'Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"', UNS)]),
    ("node taint effect", kind("v1", "Node", "n1", spec={"taints": [{"key": "k", "effect": "Never"}]}),
     [("metadata.taints[0].effect", 'Unsupported value: "Never": supported values: "NoSchedule", '
       '"PreferNoSchedule", "NoExecute"', UNS)]),
    ("event namespace must match", kind("v1", "Event", "e.1", involvedObject={"kind": "Pod", "namespace": "other"}),
     [("involvedObject.namespace", 'Invalid value: "other": does not match event.namespace', INV)]),
]


@pytest.mark.parametrize("obj,expected", [pytest.param(o, e, id=n) for n, o, e in CREATE_CASES])
def test_create_rules(obj, expected):
    if "spec" in obj and obj["spec"] is not None:
        obj = copy.deepcopy(obj)
        obj["spec"] = {k: v for k, v in obj["spec"].items() if v is not None}
    assert create_causes(obj) == expected


# ---- update rules ------------------------------------------------------------------------------

def _set(path: str, value):
    def mutate(obj):
        keys = path.split(".")
        target = obj
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target.setdefault(k, {})
        if value is _DELETE:
            target.pop(keys[-1], None)
        elif isinstance(target, list):
            target[int(keys[-1])] = value
        else:
            target[keys[-1]] = value
    return mutate


_DELETE = object()
POD_UPDATE_PREFIX = ("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                     "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
                     "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
                     "was previously negative)\n")


def test_pod_update_may_change_image():
    assert update_causes(pod(), _set("spec.containers.0.image", "nginx:1.27")) == []


def test_pod_update_may_add_tolerations_and_shorten_deadline():
    old = pod(spec_extra={"activeDeadlineSeconds": 100})

    def mutate(new):
        new["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
        new["spec"]["activeDeadlineSeconds"] = 50
    assert update_causes(old, mutate) == []


def test_pod_update_other_spec_fields_forbidden():
    causes = update_causes(pod(), _set("spec.containers.0.name", "renamed"))
    assert len(causes) == 1
    field, message, reason = causes[0]
    assert (field, reason) == ("spec", FORB)
    assert message.startswith(POD_UPDATE_PREFIX)
    assert "containers" in message[len(POD_UPDATE_PREFIX):]


def test_pod_update_may_not_add_containers():
    def mutate(new):
        new["spec"]["containers"].append({"name": "two", "image": "x"})
    assert ("spec.containers", "Forbidden: pod updates may not add or remove containers", FORB) in \
        update_causes(pod(), mutate)


def test_pod_update_deadline_may_not_grow():
    assert update_causes(pod(spec_extra={"activeDeadlineSeconds": 10}), _set("spec.activeDeadlineSeconds", 20)) == [
        ("spec.activeDeadlineSeconds", "Invalid value: 20: must be less than or equal to previous value", INV)]


def test_pod_update_existing_tolerations_are_fixed():
    old = pod(spec_extra={"tolerations": [{"key": "a", "operator": "Exists"}]})
    assert update_causes(old, _set("spec.tolerations", [{"key": "b", "operator": "Exists"}])) == [
        ("spec.tolerations", "Forbidden: existing toleration can not be modified except its tolerationSeconds", FORB)]


UPDATE_CASES = [
    ("metadata.name immutable", kind("v1", "ConfigMap", "c"), _set("metadata.name", "d"),
     [("metadata.name", 'Invalid value: "d": field is immutable', INV)]),
    ("metadata.namespace immutable", kind("v1", "ConfigMap", "c"), _set("metadata.namespace", "other"),
     [("metadata.namespace", 'Invalid value: "other": field is immutable', INV)]),
    ("metadata.uid immutable", kind("v1", "ConfigMap", "c"), _set("metadata.uid", "other"),
     [("metadata.uid", 'Invalid value: "other": field is immutable', INV)]),
    ("creationTimestamp immutable", kind("v1", "ConfigMap", "c"), _set("metadata.creationTimestamp",
                                                                       "2030-01-01T00:00:00Z"),
     [("metadata.creationTimestamp", "Invalid value: 2030-01-01 00:00:00 +0000 UTC: field is immutable", INV)]),
    ("labels still validated on update", kind("v1", "ConfigMap", "c"), _set("metadata.labels", {"a": "b c"}),
     [("metadata.labels", f'Invalid value: "b c": {LABEL_VALUE_REGEX}', INV)]),
    ("deployment selector immutable", deployment(), lambda o: (
        o["spec"].__setitem__("selector", {"matchLabels": {"app": "web", "tier": "x"}}),
        o["spec"]["template"]["metadata"]["labels"].__setitem__("tier", "x")),
     [("spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"x"}, '
       "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable", INV)]),
    ("replicaset selector immutable", workload("ReplicaSet"), _set("spec.selector", {"matchLabels": {}}),
     [("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, "
       "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment", INV),
      ("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, "
       "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable", INV)]),
    ("daemonset selector immutable", workload("DaemonSet"), lambda o: (
        o["spec"].__setitem__("selector", {"matchLabels": {"app": "web2"}}),
        o["spec"]["template"]["metadata"].__setitem__("labels", {"app": "web2"})),
     [("spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, '
       "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable", INV)]),
    ("statefulset spec mostly immutable", workload("StatefulSet"), _set("spec.serviceName", "other"),
     [("spec", "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
       "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden", FORB)]),
    ("service clusterIP immutable", service(clusterIP="10.43.0.10"), _set("spec.clusterIP", "10.43.0.11"),
     [("spec.clusterIPs[0]", 'Invalid value: []string{"10.43.0.11"}: may not change once set', INV)]),
    ("job selector immutable", job(), _set("spec.selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": UID,
                                                                              "x": "y"}}),
     [("spec.template.metadata.labels", 'Invalid value: map[string]string{"batch.kubernetes.io/controller-uid":'
       f'"{UID}", "batch.kubernetes.io/job-name":"pi", "controller-uid":"{UID}", "job-name":"pi"}}: `selector` does '
       "not match template `labels`", INV),
      ("spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"batch.kubernetes.io/'
       f'controller-uid":"{UID}", "x":"y"}}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}: field is '
       "immutable", INV)]),
    ("job template immutable", job(), _set("spec.template.spec.containers.0.image", "busybox:1.36"),
     [("spec.template", "Invalid value: core.PodTemplateSpec{...}: field is immutable", INV)]),
    ("job completions immutable", job(), _set("spec.completions", 3),
     [("spec.completions", "Invalid value: 3: field is immutable", INV)]),
    ("immutable configmap data", kind("v1", "ConfigMap", "c", data={"a": "1"}, immutable=True),
     _set("data", {"a": "2"}), [("data", "Forbidden: field is immutable when `immutable` is set", FORB)]),
    ("immutable configmap stays immutable", kind("v1", "ConfigMap", "c", immutable=True), _set("immutable", False),
     [("immutable", "Forbidden: field is immutable when `immutable` is set", FORB)]),
    ("immutable secret data", kind("v1", "Secret", "s", data={"a": "MQ=="}, immutable=True),
     _set("data", {"a": "Mg=="}), [("data", "Forbidden: field is immutable when `immutable` is set", FORB)]),
    ("secret type immutable", kind("v1", "Secret", "s"), _set("type", "example.com/custom"),
     [("type", 'Invalid value: "example.com/custom": field is immutable', INV)]),
    ("pvc spec immutable", pvc(), _set("spec.accessModes", ["ReadWriteMany"]),
     None),  # checked separately: message carries a diff
    ("pv source immutable", pv(), _set("spec.hostPath.path", "/other"), None),
    ("rolebinding roleRef immutable", kind("rbac.authorization.k8s.io/v1", "RoleBinding", "b", roleRef={
        "kind": "Role", "name": "a"}), _set("roleRef.name", "b"),
     [("roleRef", 'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"b"}: '
       "cannot change roleRef", INV)]),
    ("priority class value immutable", kind("scheduling.k8s.io/v1", "PriorityClass", "p", value=10),
     _set("value", 11), [("value", "Forbidden: may not be changed in an update.", FORB)]),
    ("storage class parameters immutable", kind("storage.k8s.io/v1", "StorageClass", "sc", provisioner="x.io/y",
                                                parameters={"a": "1"}),
     _set("parameters", {"a": "2"}), [("parameters", "Forbidden: updates to parameters are forbidden.", FORB)]),
    ("storage class provisioner immutable", kind("storage.k8s.io/v1", "StorageClass", "sc", provisioner="x.io/y"),
     _set("provisioner", "x.io/z"), [("provisioner", "Forbidden: updates to provisioner are forbidden.", FORB)]),
    ("no new finalizers while deleting", kind("v1", "ConfigMap", "c") | {"metadata": {
        "name": "c", "deletionTimestamp": "2024-05-01T11:00:00Z", "deletionGracePeriodSeconds": 0}},
     _set("metadata.finalizers", ["example.com/x"]),
     [("metadata.finalizers", 'Forbidden: no new finalizers can be added if the object is being deleted, found new '
       'finalizers []string{"example.com/x"}', FORB)]),
]


@pytest.mark.parametrize("old,mutate,expected", [pytest.param(o, m, e, id=n) for n, o, m, e in UPDATE_CASES
                                                 if e is not None])
def test_update_rules(old, mutate, expected):
    assert update_causes(old, mutate) == expected


def test_pvc_spec_is_immutable_after_creation():
    causes = update_causes(pvc(), _set("spec.accessModes", ["ReadWriteMany"]))
    assert [(f, r) for f, _, r in causes] == [("spec", FORB)]
    assert causes[0][1].startswith("Forbidden: spec is immutable after creation except resources.requests and "
                                   "volumeAttributesClassName for bound claims\n")


def test_bound_pvc_may_grow():
    old = _bound_pvc("1Gi")
    new = copy.deepcopy(old)
    new["spec"]["resources"]["requests"]["storage"] = "2Gi"
    res = resource_of(old)
    defaults.prepare_update(res, new, old)
    assert validation.validate_update(res, new, old) == []
    new["spec"]["accessModes"] = ["ReadWriteMany"]
    assert [c.field for c in validation.validate_update(res, new, old)] == ["spec"]


def _bound_pvc(storage: str) -> dict:
    obj = prepared(pvc(resources={"requests": {"storage": storage}}))
    obj["status"] = {"phase": "Bound", "capacity": {"storage": storage}}
    obj["metadata"]["resourceVersion"] = "3"
    return obj


def test_bound_pvc_may_not_shrink():
    old = _bound_pvc("2Gi")
    new = copy.deepcopy(old)
    new["spec"]["resources"]["requests"]["storage"] = "1Gi"
    res = resource_of(old)
    defaults.prepare_update(res, new, old)
    assert [(c.field, c.message) for c in validation.validate_update(res, new, old)] == [
        ("spec.resources.requests.storage", "Forbidden: field can not be less than status.capacity")]


def test_bound_pvc_may_take_back_a_failed_expansion_down_to_above_its_capacity():
    # RecoverVolumeExpansionFailure (beta, on by default in v1.32)
    old = _bound_pvc("1Gi")
    old["spec"]["resources"]["requests"]["storage"] = "3Gi"
    res = resource_of(old)
    for size, allowed in (("2Gi", True), ("1Gi", False), ("512Mi", False)):
        new = copy.deepcopy(old)
        new["spec"]["resources"]["requests"]["storage"] = size
        defaults.prepare_update(res, new, old)
        assert (validation.validate_update(res, new, old) == []) == allowed, size


def test_unbound_pvc_may_not_resize_at_all():
    causes = update_causes(pvc(resources={"requests": {"storage": "2Gi"}}), _set("spec.resources.requests.storage",
                                                                                 "3Gi"))
    assert [(f, r) for f, _, r in causes] == [("spec", FORB)]


def test_pv_source_is_immutable():
    causes = update_causes(pv(), _set("spec.hostPath.path", "/other"))
    assert [(f, r) for f, _, r in causes] == [("spec.persistentvolumesource", FORB)]
    assert causes[0][1].startswith("Forbidden: spec.persistentvolumesource is immutable after creation\n")


def test_deployment_update_of_replicas_is_allowed():
    assert update_causes(deployment(), _set("spec.replicas", 5)) == []


def test_namespace_status_update_phase_rule():
    ns = prepared(kind("v1", "Namespace", "team"))
    ns["metadata"]["resourceVersion"] = "2"
    new = copy.deepcopy(ns)
    new["status"]["phase"] = "Terminating"
    res = resource_of(ns)
    defaults.prepare_status_update(res, new, ns)
    causes = validation.validate_update(res, new, ns, subresource="status")
    assert [(c.field, c.message) for c in causes] == [
        ("status.Phase", 'Invalid value: "Terminating": may only be \'Active\' if `deletionTimestamp` is empty')]


# ---- the 422 a client sees ---------------------------------------------------------------------

def test_invalid_status_for_several_causes():
    obj = prepared(deployment(replicas=-1, template=template({"app": "other"})))
    causes = validation.validate_create(resource_of(obj), obj)
    status = invalid("Deployment", "web", causes, "apps").to_status()
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Deployment.apps "web" is invalid: [spec.replicas: Invalid value: -1: must be greater than or '
                   'equal to 0, spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
                   '`selector` does not match template `labels`]',
        "reason": "Invalid",
        "details": {
            "name": "web",
            "group": "apps",
            "kind": "Deployment",
            "causes": [
                {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or equal to 0",
                 "field": "spec.replicas"},
                {"reason": "FieldValueInvalid",
                 "message": 'Invalid value: map[string]string{"app":"other"}: `selector` does not match template '
                            "`labels`",
                 "field": "spec.template.metadata.labels"},
            ],
        },
        "code": 422,
    }
    assert list(status) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]


def test_invalid_status_for_one_cause_has_no_brackets():
    obj = prepared(kind("v1", "ConfigMap", "Bad_Name"))
    message = invalid("ConfigMap", "Bad_Name", validation.validate_create(resource_of(obj), obj)).message
    assert message == f'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {DNS1123_SUBDOMAIN}'


# ---- robustness --------------------------------------------------------------------------------

WRONG_TYPES = ["text", 7, -3, 1.5, True, None, [], {}, ["a", 1], {"k": [1]}]


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for n, v in enumerate(obj):
            yield from _paths(v, prefix + (n,))


@pytest.mark.parametrize("doc", list(_seed_objects()))
def test_wrong_types_never_crash(doc):
    for p in [p for p in _paths(doc) if p and p[0] not in ("apiVersion", "kind", "metadata")]:
        for wrong in WRONG_TYPES:
            bad = copy.deepcopy(doc)
            target = bad
            for k in p[:-1]:
                target = target[k]
            target[p[-1]] = copy.deepcopy(wrong)
            obj = prepared(bad)
            causes = validation.validate_create(resource_of(obj), obj)
            assert all(isinstance(c, Cause) and c.reason != "InternalError" for c in causes), (p, wrong, causes)
            new = copy.deepcopy(obj)
            new["metadata"]["resourceVersion"] = "2"
            causes = validation.validate_update(resource_of(obj), new, obj)
            assert all(c.reason != "InternalError" for c in causes), (p, wrong, causes)


def test_non_dict_object_is_reported_not_raised():
    res = REG.by_kind("", "v1", "ConfigMap")
    causes = validation.validate_create(res, ["not", "an", "object"])
    assert [c.reason for c in causes] == ["InternalError"]


# ---- building blocks ---------------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    ("my-name", []),
    ("a" * 64, ["must be no more than 63 characters"]),
    ("a.b", ["must not contain dots"]),
    ("-x", [DNS1123_LABEL]),
])
def test_dns1123_label(value, expected):
    assert names.is_dns1123_label(value) == expected


@pytest.mark.parametrize("value,expected", [
    ("example.com/My_Name", []),
    ("/x", ["prefix part must be non-empty"]),
    ("a/b/c", None),
    ("", ["name part must be non-empty", QUALIFIED_NAME_REGEX]),
])
def test_qualified_name(value, expected):
    got = names.is_qualified_name(value)
    if expected is None:
        assert len(got) == 1 and got[0].startswith("a qualified name must consist")
    else:
        assert got == expected


@pytest.mark.parametrize("spec,error", [
    ("*/5 * * * *", None),
    ("0 0 * * sun", None),
    ("@hourly", None),
    ("@every 90s", None),
    ("@sometimes", "unrecognized descriptor: @sometimes"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("* * * 13 *", "end of range (13) above maximum (12): 13"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
])
def test_cron_parser(spec, error):
    if error is None:
        cron.parse_standard(spec)
    else:
        with pytest.raises(cron.CronError) as err:
            cron.parse_standard(spec)
        assert str(err.value) == error


@pytest.mark.parametrize("text,canonical", [
    ("1000", "1k"), ("0.5", "500m"), ("1024Mi", "1Gi"), ("1.5Gi", "1536Mi"), ("100m", "100m"), ("1e3", "1e3"),
    ("1536", "1536"), (128974848, "128974848"), ("0", "0"), ("-2Ki", "-2Ki"), ("512Mi", "512Mi"), (0.25, "250m"),
])
def test_quantity_canonical_form(text, canonical):
    assert quantity.canonical(quantity.parse(text)) == canonical


def test_quantity_rejects_garbage():
    with pytest.raises(quantity.QuantityError):
        quantity.parse("ten")


def test_ephemeral_containers_may_be_added_not_changed():
    old = prepared(pod())
    old["metadata"]["resourceVersion"] = "4"
    res = resource_of(old)
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "busybox", "targetContainerName": "app"}]
    new["spec"]["containers"][0]["image"] = "ignored:1"
    defaults.prepare_ephemeral_containers_update(res, new, old)
    assert new["spec"]["containers"] == old["spec"]["containers"]
    assert new["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"] == "File"
    assert validation.validate_update(res, new, old, subresource="ephemeralcontainers") == []
    # through the main resource the same change is refused
    assert [c.field for c in validation.validate_update(res, new, old)] == ["spec"]
    removed = copy.deepcopy(old)
    defaults.prepare_ephemeral_containers_update(res, removed, new)
    assert [(c.field, c.message) for c in validation.validate_update(res, removed, new,
                                                                     subresource="ephemeralcontainers")] == [
        ("spec.ephemeralContainers", 'Forbidden: existing ephemeral containers "debug" may not be removed\n')]
