"""Static provisioning with the real kubectl: the seed's PV and claim bind, `kubectl get pv,pvc`
and `kubectl describe` show what upstream's do, and bad input gets upstream's 422s.

The server runs with `--disable local-storage`, so no StorageClass is the default: with
one (k8py's default, as k3s's), DefaultStorageClass admission gives class-less claims the
default class and they no longer bind to class-less volumes, as upstream (see
test_provisioning.py)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SEED, start_server, wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("k8py-server-no-default-class"), extra=["--disable", "local-storage"])
    yield srv
    srv.stop()


def _get(server, kind, name, namespace=None):
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    result = server.kubectl(*args, check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _phase(server, kind, name, namespace=None):
    obj = _get(server, kind, name, namespace)
    return ((obj or {}).get("status") or {}).get("phase")


def _pv(name, size, labels="", policy="Retain", extra=""):
    return f"""apiVersion: v1
kind: PersistentVolume
metadata:
  name: {name}
  labels: {{{labels}}}
spec:
  capacity: {{storage: {size}}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: {policy}
  nfs: {{server: 127.0.0.1, path: /exports/{name}}}
{extra}"""


def test_seed_pv_and_claim_bind_and_kubectl_shows_them_as_upstream(server, namespace):
    manifest = (SEED / "01-pv-pvc-nfs.yaml").read_text()
    pv_name = "pv1"  # the seed, unchanged; the PV is cluster-wide and removed at the end
    try:
        out = server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest).stdout
        assert f"persistentvolume/{pv_name} created" in out and "persistentvolumeclaim/pvc-nfs created" in out
        wait_for(lambda: _phase(server, "pvc", "pvc-nfs", namespace) == "Bound", timeout=30, what="pvc-nfs Bound")
        wait_for(lambda: _phase(server, "pv", pv_name) == "Bound", timeout=30, what="pv1 Bound")
        claim, volume = _get(server, "pvc", "pvc-nfs", namespace), _get(server, "pv", pv_name)
        assert claim["spec"]["volumeName"] == pv_name
        applied = "kubectl.kubernetes.io/last-applied-configuration"
        assert {k: v for k, v in claim["metadata"]["annotations"].items() if k != applied} == \
            {"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"}
        assert volume["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        assert volume["spec"]["claimRef"]["name"] == "pvc-nfs"
        assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]

        lines = server.kubectl("get", "pv", pv_name).stdout.splitlines()
        assert lines[0].split() == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM",
                                    "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
        cells = lines[1].split()
        assert cells[:6] == [pv_name, "1Gi", "RWO", "Recycle", "Bound", f"{namespace}/pvc-nfs"]
        assert cells[6] == "<unset>"  # VolumeAttributesClass; StorageClass and Reason are empty
        lines = server.kubectl("get", "pvc", "-n", namespace).stdout.splitlines()
        assert lines[0].split() == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS",
                                    "VOLUMEATTRIBUTESCLASS", "AGE"]
        assert lines[1].split()[:6] == ["pvc-nfs", "Bound", pv_name, "1Gi", "RWO", "<unset>"]

        described = server.kubectl("describe", "pvc", "pvc-nfs", "-n", namespace).stdout
        for line in ("Status:        Bound", f"Volume:        {pv_name}",
                     "Annotations:   pv.kubernetes.io/bind-completed: yes",
                     "               pv.kubernetes.io/bound-by-controller: yes",
                     "Finalizers:    [kubernetes.io/pvc-protection]", "Capacity:      1Gi",
                     "Access Modes:  RWO", "VolumeMode:    Filesystem", "Used By:       <none>"):
            assert line in described, (line, described)
        described = server.kubectl("describe", "pv", pv_name).stdout
        for line in ("Status:          Bound", f"Claim:           {namespace}/pvc-nfs",
                     "Reclaim Policy:  Recycle", "Finalizers:      [kubernetes.io/pv-protection]",
                     "    Type:      NFS (an NFS mount that lasts the lifetime of a pod)", "    Server:    127.0.0.1"):
            assert line in described, (line, described)
    finally:
        server.kubectl("delete", "-n", namespace, "-f", "-", "--ignore-not-found", "--timeout=60s",
                       input=manifest, check=False)


def test_a_claim_nothing_fits_stays_pending_and_describe_shows_the_event_and_its_user(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input="""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: lonely}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: ""
  resources: {requests: {storage: 900Ti}}
---
apiVersion: v1
kind: Pod
metadata: {name: waiting-user}
spec:
  containers: [{name: c, image: busybox}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: lonely}}]
""")

    def described():
        text = server.kubectl("describe", "pvc", "lonely", "-n", namespace).stdout
        return text if "FailedBinding" in text else None

    text = wait_for(described, timeout=30, what="FailedBinding in describe")
    assert "Status:        Pending" in text
    assert "Used By:       waiting-user" in text
    event = [line for line in text.splitlines() if "FailedBinding" in line][0]
    assert event.split()[:2] == ["Normal", "FailedBinding"]
    assert "persistentvolume-controller" in event
    assert event.endswith("no persistent volumes available for this claim and no storage class is set")
    assert _phase(server, "pvc", "lonely", namespace) == "Pending"


def test_retain_leaves_the_volume_released_and_unbound_claims_pending(server, namespace):
    name = f"kept-{namespace[-12:]}"
    label = f"keep: k-{namespace[-8:]}"
    claim = f"""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: CLAIM}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
  selector: {{matchLabels: {{keep: k-{namespace[-8:]}}}}}
"""
    try:
        server.kubectl("apply", "-f", "-", input=_pv(name, "1Gi", label))
        server.kubectl("apply", "-n", namespace, "-f", "-", input=claim.replace("CLAIM", "first"))
        wait_for(lambda: _phase(server, "pvc", "first", namespace) == "Bound", timeout=30, what="first Bound")
        server.kubectl("delete", "pvc", "first", "-n", namespace)
        wait_for(lambda: _phase(server, "pv", name) == "Released", timeout=30, what="Released")
        server.kubectl("apply", "-n", namespace, "-f", "-", input=claim.replace("CLAIM", "second"))
        wait_for(lambda: "FailedBinding" in server.kubectl("describe", "pvc", "second", "-n", namespace).stdout,
                 timeout=30, what="second waits")
        cells = server.kubectl("get", "pv", name, "--no-headers").stdout.split()
        assert cells[4:6] == ["Released", f"{namespace}/first"]
        assert _phase(server, "pvc", "second", namespace) == "Pending"
    finally:
        server.kubectl("delete", "pv", name, "--wait=false", "--ignore-not-found", check=False)


def test_bad_storage_input_gets_upstreams_422s(server, namespace):
    bad_selector = """apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: bad-selector}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
  selector:
    matchExpressions: [{key: app, operator: Sometimes, values: [x]}]
"""
    result = server.kubectl("apply", "-n", namespace, "-f", "-", input=bad_selector, check=False)
    assert result.returncode != 0
    assert 'The PersistentVolumeClaim "bad-selector" is invalid: spec.selector.matchExpressions[0].operator: ' \
           'Invalid value: "Sometimes": not a valid selector operator' in result.stderr, result.stderr

    two_sources = _pv("two-sources", "1Gi", extra="  hostPath: {path: /tmp/x}\n")
    result = server.kubectl("create", "-f", "-", input=two_sources, check=False)
    assert result.returncode != 0
    assert 'The PersistentVolume "two-sources" is invalid: spec.nfs: Forbidden: may not specify more than ' \
           "1 volume type" in result.stderr, result.stderr
    assert server.kubectl("get", "pv", "two-sources", check=False).returncode != 0  # nothing half-made

    server.kubectl("apply", "-n", namespace, "-f", "-", input="""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: shrink}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 2Gi}}
""")
    result = server.kubectl("patch", "pvc", "shrink", "-n", namespace, "-p",
                            '{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}', check=False)
    assert result.returncode != 0
    # Unbound: no size change at all (a bound claim's shrink is refused below its status.capacity: test_expansion.py)
    assert "spec: Forbidden: spec is immutable after creation except resources.requests and " \
           "volumeAttributesClassName for bound claims" in result.stderr, result.stderr
    assert _get(server, "pvc", "shrink", namespace)["spec"]["resources"]["requests"]["storage"] == "2Gi"


def test_seed_dynamic_claim_waits_for_the_external_provisioner_its_beta_annotation_names(server, namespace):
    manifest = (SEED / "02-storageclass-dynamic.yaml").read_text()
    try:
        server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)

        def described():
            text = server.kubectl("describe", "pvc", "test-pvc", "-n", namespace).stdout
            return text if "ExternalProvisioning" in text else None

        text = wait_for(described, timeout=30, what="ExternalProvisioning in describe")
        assert "StorageClass:  course-nfs-storage" in text and "Status:        Pending" in text
        event = [line for line in text.splitlines() if "ExternalProvisioning" in line][0]
        assert event.split()[:2] == ["Normal", "ExternalProvisioning"]
        assert "Waiting for a volume to be created either by the external provisioner 'fuseim.pri/ifs' or " \
               "manually by the system administrator." in " ".join(text.split())
        annotations = _get(server, "pvc", "test-pvc", namespace)["metadata"]["annotations"]
        assert annotations["volume.kubernetes.io/storage-provisioner"] == "fuseim.pri/ifs"
        assert annotations["volume.beta.kubernetes.io/storage-provisioner"] == "fuseim.pri/ifs"
        row = server.kubectl("get", "pvc", "test-pvc", "-n", namespace, "--no-headers").stdout.split()
        assert row[:3] == ["test-pvc", "Pending", "course-nfs-storage"]
    finally:
        server.kubectl("delete", "-n", namespace, "-f", "-", "--ignore-not-found", "--timeout=60s",
                       input=manifest, check=False)


def test_delete_policy_without_a_deleter_fails_and_describe_pv_says_why(server, namespace):
    name = f"nodel-{namespace[-12:]}"
    try:
        server.kubectl("apply", "-f", "-", input=_pv(name, "1Gi", f"del: d-{namespace[-8:]}", policy="Delete"))
        server.kubectl("apply", "-n", namespace, "-f", "-", input=f"""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: short}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
  selector: {{matchLabels: {{del: d-{namespace[-8:]}}}}}
""")
        wait_for(lambda: _phase(server, "pvc", "short", namespace) == "Bound", timeout=30, what="Bound")
        server.kubectl("delete", "pvc", "short", "-n", namespace)
        wait_for(lambda: _phase(server, "pv", name) == "Failed", timeout=30, what="Failed")
        message = f'error getting deleter volume plugin for volume "{name}": no deletable volume plugin matched'
        text = server.kubectl("describe", "pv", name).stdout
        assert "Status:          Failed" in text and f"Message:         {message}" in text, text
        event = [line for line in text.splitlines() if "VolumeFailedDelete" in line][0]
        assert event.split()[:2] == ["Warning", "VolumeFailedDelete"] and event.endswith(message)
        assert server.kubectl("get", "pv", name, "--no-headers").stdout.split()[3:5] == ["Delete", "Failed"]
    finally:
        server.kubectl("delete", "pv", name, "--wait=false", "--ignore-not-found", check=False)
