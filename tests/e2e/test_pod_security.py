"""Pod Security admission with the real kubectl: what it prints for refused
pods, warnings on pods and workloads, the namespace label check, and the
cluster defaults of an AdmissionConfiguration file."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import start_server, wait_for

PRIVILEGED_POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: c
    image: busybox
    securityContext:
      privileged: true
"""
PLAIN_POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: c
    image: busybox
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: busybox
"""
RESTRICTED_VIOLATIONS = (
    'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
    'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" '
    'or "Localhost")')


def label(server, namespace: str, *labels: str):
    return server.kubectl("label", "namespace", namespace, "--overwrite", *labels)


def test_privileged_pod_in_restricted_namespace_is_forbidden_and_not_created(server, namespace):
    label(server, namespace, "pod-security.kubernetes.io/enforce=restricted")
    result = server.kubectl("create", "-n", namespace, "-f", "-", input=PRIVILEGED_POD.format(name="priv"),
                            check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "priv" is forbidden: violates PodSecurity '
        '"restricted:latest": privileged (container "c" must not set securityContext.privileged=true), '
        + RESTRICTED_VIOLATIONS)
    pods = server.kubectl("get", "pods", "-n", namespace, check=False)
    assert "No resources found" in pods.stderr and pods.stdout == ""


def test_warn_level_makes_kubectl_print_warnings_for_pods_and_deployments(server, namespace):
    label(server, namespace, "pod-security.kubernetes.io/warn=restricted")
    warning = f'Warning: would violate PodSecurity "restricted:latest": {RESTRICTED_VIOLATIONS}'
    result = server.kubectl("apply", "-n", namespace, "-f", "-", input=PLAIN_POD.format(name="plain"))
    assert result.stdout.strip() == "pod/plain created"
    assert result.stderr.strip() == warning
    result = server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    assert result.stdout.strip() == "deployment.apps/web created"
    assert result.stderr.strip() == warning
    assert server.kubectl_json("get", "deployment", "web", "-n", namespace)["metadata"]["name"] == "web"


def test_labelling_a_namespace_warns_about_existing_violating_pods(server, namespace):
    for name in ("first", "second"):
        server.kubectl("create", "-n", namespace, "-f", "-", input=PLAIN_POD.format(name=name))
    server.kubectl("create", "-n", namespace, "-f", "-", input=PRIVILEGED_POD.format(name="priv"))
    result = label(server, namespace, "pod-security.kubernetes.io/enforce=baseline")
    assert result.stdout.strip() == f"namespace/{namespace} labeled"
    assert result.stderr.strip().splitlines() == [
        f'Warning: existing pods in namespace "{namespace}" violate the new PodSecurity enforce level '
        f'"baseline:latest"',
        "Warning: priv: privileged",
    ]
    result = label(server, namespace, "pod-security.kubernetes.io/enforce=restricted")
    reasons = "allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
    assert result.stderr.strip().splitlines() == [
        f'Warning: existing pods in namespace "{namespace}" violate the new PodSecurity enforce level '
        f'"restricted:latest"',
        f"Warning: first (and 1 other pod): {reasons}",
        f"Warning: priv: privileged, {reasons}",
    ]
    # the existing pods stay; a bad label value is refused
    assert len(server.kubectl_json("get", "pods", "-n", namespace)["items"]) == 3
    bad = server.kubectl("label", "namespace", namespace, "--overwrite", "pod-security.kubernetes.io/warn=strict",
                         check=False)
    assert bad.returncode != 0
    assert bad.stderr.strip() == (
        f'The Namespace "{namespace}" is invalid: metadata.labels[pod-security.kubernetes.io'
        f'/warn]: Invalid value: "strict": must be one of privileged, baseline, restricted')


@pytest.fixture(scope="module")
def configured_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("k8py-psa")
    config = data_dir / "admission.yaml"
    config.write_text("""apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: baseline
      enforce-version: latest
      warn: restricted
    exemptions:
      namespaces: [kube-system]
""")
    server = start_server(data_dir, extra=["--admission-control-config-file", str(config)])
    yield server
    server.stop()


def test_admission_configuration_defaults_apply_to_unlabelled_namespaces(configured_server):
    srv = configured_server
    result = srv.kubectl("create", "-n", "default", "-f", "-", input=PRIVILEGED_POD.format(name="priv"), check=False)
    assert result.returncode != 0
    assert 'pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not ' \
           'set securityContext.privileged=true)' in result.stderr
    result = srv.kubectl("create", "-n", "default", "-f", "-", input=PLAIN_POD.format(name="plain"))
    assert result.stderr.strip() == f'Warning: would violate PodSecurity "restricted:latest": {RESTRICTED_VIOLATIONS}'
    # exempt namespace: anything goes, silently
    result = srv.kubectl("create", "-n", "kube-system", "-f", "-", input=PRIVILEGED_POD.format(name="priv"))
    assert result.stdout.strip() == "pod/priv created" and result.stderr == ""
    # a namespace's own labels override the defaults
    srv.kubectl("create", "namespace", "open")
    label(srv, "open", "pod-security.kubernetes.io/enforce=privileged", "pod-security.kubernetes.io/warn=privileged")
    result = srv.kubectl("create", "-n", "open", "-f", "-", input=PRIVILEGED_POD.format(name="priv"))
    assert result.stdout.strip() == "pod/priv created" and result.stderr == ""


def test_a_bad_admission_configuration_stops_the_server(tmp_path):
    config = tmp_path / "admission.yaml"
    config.write_text("""apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults: {enforce: strict}
""")
    with pytest.raises(AssertionError, match="server exited"):
        start_server(tmp_path / "data", extra=["--admission-control-config-file", str(config)])
    assert 'defaults.enforce: Invalid value: "strict"' in (tmp_path / "data" / "server.log").read_text()


def test_pods_a_deployment_makes_in_an_enforcing_namespace_are_refused_with_an_event(server, namespace):
    label(server, namespace, "pod-security.kubernetes.io/enforce=restricted")
    result = server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    # workloads are admitted; warn follows the stricter enforce level
    assert result.stdout.strip() == "deployment.apps/web created"
    assert result.stderr.strip() == f'Warning: would violate PodSecurity "restricted:latest": {RESTRICTED_VIOLATIONS}'

    def refused_event():
        events = server.kubectl_json("get", "events", "-n", namespace)["items"]
        return next((e for e in events if e.get("reason") == "FailedCreate"), None)
    event = wait_for(refused_event, timeout=60, what="a FailedCreate event")
    assert event["involvedObject"]["kind"] == "ReplicaSet"
    assert event["message"].startswith('Error creating: pods "web-')
    assert f'is forbidden: violates PodSecurity "restricted:latest": {RESTRICTED_VIOLATIONS}' in event["message"]
    assert server.kubectl_json("get", "pods", "-n", namespace)["items"] == []
