"""Dynamic provisioning with the real kubectl, no pods: the server serves the seed's
`fuseim.pri/ifs` provisioner on a temporary folder (`--shared-folder-provisioner`),
and its `local-path` class is the default, as k3s's."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SEED, start_server, wait_for


@pytest.fixture(scope="module")
def share(tmp_path_factory):
    return tmp_path_factory.mktemp("share")


@pytest.fixture(scope="module")
def server(tmp_path_factory, share):
    srv = start_server(tmp_path_factory.mktemp("k8py-server-provisioning"),
                       extra=["--shared-folder-provisioner", f"fuseim.pri/ifs={share}"])
    yield srv
    srv.stop()


def _get(server, kind, name, namespace=None):
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    result = server.kubectl(*args, check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _phase(server, kind, name, namespace=None):
    return ((_get(server, kind, name, namespace) or {}).get("status") or {}).get("phase")


def _events(server, namespace, name):
    items = server.kubectl_json("get", "events", "-n", namespace, "--field-selector",
                                f"involvedObject.name={name}")["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items]


def test_local_path_is_the_default_class_as_on_k3s(server):
    wait_for(lambda: _get(server, "storageclass", "local-path") is not None, timeout=30, what="local-path class")
    sc = _get(server, "storageclass", "local-path")
    assert sc["provisioner"] == "rancher.io/local-path"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer" and sc["reclaimPolicy"] == "Delete"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    row = server.kubectl("get", "storageclass", "local-path", "--no-headers").stdout.split()
    assert row[:6] == ["local-path", "(default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", "false"]


def test_seed_dynamic_claim_is_provisioned_in_the_share_and_archived_on_delete(server, namespace, share):
    manifest = (SEED / "02-storageclass-dynamic.yaml").read_text()
    try:
        server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
        wait_for(lambda: _phase(server, "pvc", "test-pvc", namespace) == "Bound", timeout=60, what="test-pvc Bound")
        claim = _get(server, "pvc", "test-pvc", namespace)
        pv_name = claim["spec"]["volumeName"]
        assert pv_name == "pvc-" + claim["metadata"]["uid"]
        volume = _get(server, "pv", pv_name)
        directory = share / f"{namespace}-test-pvc-{pv_name}"
        assert directory.is_dir()
        assert volume["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "fuseim.pri/ifs"
        assert volume["spec"]["hostPath"] == {"path": str(directory), "type": "DirectoryOrCreate"}
        assert volume["spec"]["storageClassName"] == "course-nfs-storage"
        assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        assert volume["spec"]["capacity"] == {"storage": "1Mi"} and volume["spec"]["accessModes"] == ["ReadWriteMany"]
        assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
        row = server.kubectl("get", "pvc", "test-pvc", "-n", namespace, "--no-headers").stdout.split()
        assert row[:6] == ["test-pvc", "Bound", pv_name, "1Mi", "RWX", "course-nfs-storage"]
        events = _events(server, namespace, "test-pvc")
        assert ("Normal", "Provisioning",
                f'External provisioner is provisioning volume for claim "{namespace}/test-pvc"') in events, events
        assert ("Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}") in events, events
        described = server.kubectl("describe", "pvc", "test-pvc", "-n", namespace).stdout
        assert "volume.kubernetes.io/storage-provisioner: fuseim.pri/ifs" in described

        # No archiveOnDelete parameter: nfs-subdir's default archives the data.
        server.kubectl("delete", "pvc", "test-pvc", "-n", namespace, "--timeout=60s")
        wait_for(lambda: _get(server, "pv", pv_name) is None, timeout=60, what="the provisioned PV deleted")
        assert not directory.exists()
        assert (share / f"archived-{namespace}-test-pvc-{pv_name}").is_dir()
    finally:
        server.kubectl("delete", "-n", namespace, "-f", "-", "--ignore-not-found", "--timeout=60s",
                       input=manifest, check=False)


def test_archive_on_delete_false_removes_the_subdirectory_and_retain_keeps_volume_and_data(server, namespace, share):
    classes = f"""apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: {namespace}-remove}}
provisioner: fuseim.pri/ifs
parameters: {{archiveOnDelete: "false"}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: {namespace}-retain}}
provisioner: fuseim.pri/ifs
reclaimPolicy: Retain
mountOptions: [nfsvers=4.1]
"""
    claims = "".join(f"""---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {kind}}}
spec:
  storageClassName: {namespace}-{kind}
  accessModes: [ReadWriteMany]
  resources: {{requests: {{storage: 5Mi}}}}
""" for kind in ("remove", "retain"))
    try:
        server.kubectl("apply", "-f", "-", input=classes)
        server.kubectl("apply", "-n", namespace, "-f", "-", input=claims)
        for kind in ("remove", "retain"):
            wait_for(lambda: _phase(server, "pvc", kind, namespace) == "Bound", timeout=60, what=f"{kind} Bound")
        names = {kind: _get(server, "pvc", kind, namespace)["spec"]["volumeName"] for kind in ("remove", "retain")}
        dirs = {kind: share / f"{namespace}-{kind}-{names[kind]}" for kind in names}
        assert all(d.is_dir() for d in dirs.values())
        retained = _get(server, "pv", names["retain"])
        assert retained["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert retained["spec"]["mountOptions"] == ["nfsvers=4.1"]
        (dirs["retain"] / "data").write_text("kept")

        server.kubectl("delete", "pvc", "remove", "retain", "-n", namespace, "--timeout=60s")
        wait_for(lambda: _get(server, "pv", names["remove"]) is None, timeout=60, what="the Delete PV gone")
        assert not dirs["remove"].exists()
        assert not (share / f"archived-{dirs['remove'].name}").exists()
        wait_for(lambda: _phase(server, "pv", names["retain"]) == "Released", timeout=60, what="Retain PV Released")
        assert (dirs["retain"] / "data").read_text() == "kept"
    finally:
        server.kubectl("delete", "-n", namespace, "-f", "-", "--ignore-not-found", "--timeout=60s",
                       input=claims, check=False)
        server.kubectl("delete", "-f", "-", "--ignore-not-found", input=classes, check=False)
        server.kubectl("delete", "pv", "--ignore-not-found", *[n for n in locals().get("names", {}).values()],
                       check=False)


def test_seed_static_claim_gets_the_default_class_and_waits_as_upstream(server, namespace):
    """Upstream v1.32 with a default class: DefaultStorageClass admission sets the seed's
    class-less claim to `local-path` at creation, so it no longer matches the class-less
    `pv1` and waits for a consumer (k3s and kind behave the same). k8py keeps that: seed 01
    binds unchanged only on a server without a default class (test_storage.py)."""
    manifest = (SEED / "01-pv-pvc-nfs.yaml").read_text()
    try:
        server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
        claim = _get(server, "pvc", "pvc-nfs", namespace)
        assert claim["spec"]["storageClassName"] == "local-path"
        wait_for(lambda: ("Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
                 in _events(server, namespace, "pvc-nfs"), timeout=30, what="WaitForFirstConsumer event")
        assert _phase(server, "pvc", "pvc-nfs", namespace) == "Pending"
        assert _phase(server, "pv", "pv1") == "Available"
    finally:
        server.kubectl("delete", "-n", namespace, "-f", "-", "--ignore-not-found", "--timeout=60s",
                       input=manifest, check=False)


def test_expansion_with_kubectl_grows_an_expandable_class_and_refuses_the_rest(server, namespace, share):
    """kubectl patch of a claim's storage request: grown for a class with
    allowVolumeExpansion (events in describe, the PV's capacity), a 403 for a class
    without it, a 422 for a shrink below status.capacity; refused requests change nothing."""
    manifest = f"""apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: {namespace}-grows}}
provisioner: fuseim.pri/ifs
allowVolumeExpansion: true
parameters: {{archiveOnDelete: "false"}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: {namespace}-fixed}}
provisioner: fuseim.pri/ifs
parameters: {{archiveOnDelete: "false"}}
"""
    claims = "".join(f"""---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}}}
spec:
  storageClassName: {namespace}-{cls}
  accessModes: [ReadWriteMany]
  resources: {{requests: {{storage: 1Mi}}}}
""" for name, cls in (("grows", "grows"), ("fixed", "fixed")))
    server.kubectl("apply", "-f", "-", input=manifest)
    try:
        server.kubectl("apply", "-n", namespace, "-f", "-", input=claims)
        for name in ("grows", "fixed"):
            wait_for(lambda: _phase(server, "pvc", name, namespace) == "Bound", timeout=60, what=f"{name} Bound")

        server.kubectl("patch", "pvc", "grows", "-n", namespace, "-p",
                       '{"spec":{"resources":{"requests":{"storage":"4Mi"}}}}')
        wait_for(lambda: server.kubectl("get", "pvc", "grows", "-n", namespace, "--no-headers").stdout.split()[3]
                 == "4Mi", timeout=60, what="the CAPACITY column at 4Mi")
        pv_name = _get(server, "pvc", "grows", namespace)["spec"]["volumeName"]
        assert server.kubectl("get", "pv", pv_name, "--no-headers").stdout.split()[1] == "4Mi"

        def described():
            text = server.kubectl("describe", "pvc", "grows", "-n", namespace).stdout
            return text if "VolumeResizeSuccessful" in text else None
        text = wait_for(described, timeout=30, what="describe with the resize events")
        assert "Capacity:      4Mi" in text
        for line in ("ExternalExpanding", "waiting for an external controller to expand this PVC",
                     f"External resizer is resizing volume {pv_name}", "Resize volume succeeded"):
            assert line in text, text

        shrink = server.kubectl("patch", "pvc", "grows", "-n", namespace, "-p",
                                '{"spec":{"resources":{"requests":{"storage":"2Mi"}}}}', check=False)
        assert shrink.returncode != 0
        assert shrink.stderr.strip() == (
            'The PersistentVolumeClaim "grows" is invalid: spec.resources.requests.storage: Forbidden: '
            "field can not be less than status.capacity")
        refused = server.kubectl("patch", "pvc", "fixed", "-n", namespace, "-p",
                                 '{"spec":{"resources":{"requests":{"storage":"4Mi"}}}}', check=False)
        assert refused.returncode != 0
        assert refused.stderr.strip() == (
            'Error from server (Forbidden): persistentvolumeclaims "fixed" is forbidden: only dynamically '
            "provisioned pvc can be resized and the storageclass that provisions the pvc must support resize")
        assert _get(server, "pvc", "fixed", namespace)["spec"]["resources"]["requests"]["storage"] == "1Mi"
        assert _get(server, "pvc", "grows", namespace)["spec"]["resources"]["requests"]["storage"] == "4Mi"
    finally:
        server.kubectl("delete", "pvc", "grows", "fixed", "-n", namespace, "--ignore-not-found", "--timeout=60s",
                       check=False)
        server.kubectl("delete", "storageclass", f"{namespace}-grows", f"{namespace}-fixed", "--ignore-not-found",
                       check=False)
