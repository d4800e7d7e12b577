"""The dynamic provisioners (k8py/provisioners/) and DefaultStorageClass admission:
naming, flags, delete actions, and the external-provisioner round trip against the
in-process API server with the PV binder."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from k8py.api.storageclass import claim_has_class, default_class
from k8py.provisioners.controller import ProvisionController, ProvisionOptions, ProvisioningError, base_volume
from k8py.provisioners.local_path import LocalPathProvisioner, folder_name
from k8py.provisioners.shared_folder import (Share, SharedFolderProvisioner, delete_action, parse_share,
                                             subdirectory_name)
from tests.unit.volume_fixtures import eventually, volume_controllers

CLAIM = {"metadata": {"name": "test-pvc", "namespace": "default", "uid": "1234", "resourceVersion": "7"},
         "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Mi"}}}}
NFS_CLASS = {"metadata": {"name": "course-nfs-storage"}, "provisioner": "fuseim.pri/ifs",
             "mountOptions": ["hard"], "reclaimPolicy": "Retain"}


def _options(claim=CLAIM, storage_class=NFS_CLASS, node=None):
    return ProvisionOptions(storage_class, claim, "pvc-1234", node)


# ---- naming and flags ----------------------------------------------------------------------

def test_volume_directory_names_follow_the_upstream_provisioners():
    assert subdirectory_name(_options()) == "default-test-pvc-pvc-1234"
    assert folder_name("pvc-1234", CLAIM) == "pvc-1234_default_test-pvc"


def test_shared_folder_flag():
    assert parse_share("fuseim.pri/ifs=/srv/share/") == Share("fuseim.pri/ifs", Path("/srv/share"))
    share = parse_share("example.com/nfs=/mnt/nfs,nfs=10.0.0.5:/exports/k8s")
    assert (share.nfs_server, share.nfs_path) == ("10.0.0.5", "/exports/k8s")
    for bad in ("fuseim.pri/ifs", "=/srv", "x=relative/path", "x=/srv,nfs=server-without-path", "x=/srv,cifs=a:/b"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_share(bad)


@pytest.mark.parametrize("parameters, action", [
    ({}, "archive"),                                   # nfs-subdir's default keeps the data
    ({"archiveOnDelete": "true"}, "archive"),
    ({"archiveOnDelete": "false"}, "delete"),
    ({"archiveOnDelete": "0"}, "delete"),
    ({"onDelete": "retain", "archiveOnDelete": "false"}, "retain"),  # onDelete wins
    ({"onDelete": "delete"}, "delete"),
])
def test_shared_folder_delete_action(parameters, action):
    assert delete_action(parameters) == action


def test_shared_folder_delete_action_rejects_a_non_boolean():
    with pytest.raises(ProvisioningError, match='strconv.ParseBool: parsing "maybe": invalid syntax'):
        delete_action({"archiveOnDelete": "maybe"})


# ---- the volumes they make ------------------------------------------------------------------

async def test_shared_folder_volume_is_a_hostpath_subdirectory_or_an_nfs_one(tmp_path):
    volume = await SharedFolderProvisioner(Share("fuseim.pri/ifs", tmp_path)).provision(_options())
    path = tmp_path / "default-test-pvc-pvc-1234"
    assert path.is_dir()
    spec = volume["spec"]
    assert spec["hostPath"] == {"path": str(path), "type": "DirectoryOrCreate"}
    assert volume["metadata"] == {"name": "pvc-1234", "annotations": {"pv.kubernetes.io/provisioned-by": "fuseim.pri/ifs"}}
    assert spec["capacity"] == {"storage": "1Mi"} and spec["accessModes"] == ["ReadWriteMany"]
    assert spec["persistentVolumeReclaimPolicy"] == "Retain" and spec["mountOptions"] == ["hard"]
    assert spec["storageClassName"] == "course-nfs-storage"
    assert spec["claimRef"] == {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "test-pvc",
                                "uid": "1234", "apiVersion": "v1", "resourceVersion": "7"}
    nfs = SharedFolderProvisioner(Share("fuseim.pri/ifs", tmp_path, "10.0.0.5", "/exports"))
    volume = await nfs.provision(_options())
    assert volume["spec"]["nfs"] == {"server": "10.0.0.5", "path": "/exports/default-test-pvc-pvc-1234",
                                     "readOnly": False}
    assert nfs.local_path(volume) == path


async def test_shared_folder_never_deletes_outside_its_share(tmp_path):
    provisioner = SharedFolderProvisioner(Share("fuseim.pri/ifs", tmp_path / "share"))
    outside = {"spec": {"hostPath": {"path": str(tmp_path)}}}
    with pytest.raises(ProvisioningError, match="not a subdirectory of the share"):
        await provisioner.delete(outside, None)
    assert tmp_path.is_dir()


async def test_local_path_volume_has_node_affinity_and_refuses_what_upstream_refuses(tmp_path):
    provisioner = LocalPathProvisioner(tmp_path)
    claim = {**CLAIM, "spec": {**CLAIM["spec"], "accessModes": ["ReadWriteOnce"]}}
    node = {"metadata": {"name": "node-a", "labels": {"kubernetes.io/hostname": "host-a"}}}
    volume = await provisioner.provision(_options(claim, {"metadata": {"name": "local-path"}}, node))
    path = tmp_path / "pvc-1234_default_test-pvc"
    assert path.is_dir()
    assert volume["spec"]["hostPath"] == {"path": str(path), "type": "DirectoryOrCreate"}
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["host-a"]}]}]
    local = await provisioner.provision(_options(claim, {"metadata": {"name": "local-path"},
                                                         "parameters": {"volumeType": "local"}}, node))
    assert local["spec"]["local"] == {"path": str(path)} and "hostPath" not in local["spec"]
    with pytest.raises(ProvisioningError, match="ReadWriteOnce"):
        await provisioner.provision(_options(CLAIM, {"metadata": {"name": "local-path"}}, node))
    with pytest.raises(ProvisioningError, match="claim.Spec.Selector is not supported"):
        await provisioner.provision(_options({**claim, "spec": {**claim["spec"], "selector": {}}},
                                             {"metadata": {"name": "local-path"}}, node))
    await provisioner.delete(volume, None)
    assert not path.exists()


# ---- default class ------------------------------------------------------------------------

def _class(name, default, created):
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"metadata": {"name": name, "annotations": annotations, "creationTimestamp": created}}


def test_default_class_is_the_newest_marked_one():
    assert default_class([_class("a", False, "2024-01-01T00:00:00Z")]) is None
    classes = [_class("old", True, "2024-01-01T00:00:00Z"), _class("new", True, "2024-06-01T00:00:00Z"),
               _class("plain", False, "2025-01-01T00:00:00Z")]
    assert default_class(classes)["metadata"]["name"] == "new"
    tie = [_class("b", True, "2024-01-01T00:00:00Z"), _class("a", True, "2024-01-01T00:00:00Z")]
    assert default_class(tie)["metadata"]["name"] == "a"
    beta = {"metadata": {"name": "beta", "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "true"}}}
    assert default_class([beta])["metadata"]["name"] == "beta"


def test_claim_has_class():
    assert not claim_has_class({"spec": {}})
    assert claim_has_class({"spec": {"storageClassName": ""}})
    assert claim_has_class({"metadata": {"annotations": {"volume.beta.kubernetes.io/storage-class": "x"}}, "spec": {}})


async def _make_default_class(api, name="standard"):
    await api.resource("storage.k8s.io/v1", "storageclasses").create({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "example.com/none"})


async def test_default_storage_class_admission(client):
    async with volume_controllers(client, controllers=()) as (api, _):
        claims = api.resource("v1", "persistentvolumeclaims", "default")
        body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
        before = await claims.create({**body, "metadata": {"name": "before"}})
        assert "storageClassName" not in before["spec"]
        await _make_default_class(api)
        after = await claims.create({**body, "metadata": {"name": "after"}})
        assert after["spec"]["storageClassName"] == "standard"
        empty = await claims.create({**body, "metadata": {"name": "empty"},
                                     "spec": {**body["spec"], "storageClassName": ""}})
        assert empty["spec"]["storageClassName"] == ""
        beta = await claims.create({**body, "metadata": {"name": "beta", "annotations": {
            "volume.beta.kubernetes.io/storage-class": "other"}}})
        assert "storageClassName" not in beta["spec"]


async def test_binder_assigns_the_default_class_retroactively(client):
    async with volume_controllers(client) as (api, _):
        claims = api.resource("v1", "persistentvolumeclaims", "default")
        await claims.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "early"},
                             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        await _make_default_class(api, "late-default")
        got = await eventually(lambda: claims.get("early"),
                               lambda c: c["spec"].get("storageClassName") == "late-default",
                               timeout=30.0, what="the default class assigned")
        assert got["spec"]["storageClassName"] == "late-default"


# ---- the protocol end to end ----------------------------------------------------------------

async def test_external_provisioner_round_trip(client, tmp_path):
    async with volume_controllers(client) as (api, _):
        await api.resource("storage.k8s.io/v1", "storageclasses").create({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "course-nfs-storage"},
            "provisioner": "fuseim.pri/ifs", "parameters": {"archiveOnDelete": "false"}})
        controller = ProvisionController(api, SharedFolderProvisioner(Share("fuseim.pri/ifs", tmp_path)))
        task = asyncio.create_task(controller.run())
        try:
            claims = api.resource("v1", "persistentvolumeclaims", "default")
            claim = await claims.create({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "test-pvc", "annotations": {"volume.beta.kubernetes.io/storage-class":
                                                                 "course-nfs-storage"}},
                "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Mi"}}}})
            pv_name = "pvc-" + claim["metadata"]["uid"]
            bound = await eventually(lambda: claims.get("test-pvc"),
                                     lambda c: (c.get("status") or {}).get("phase") == "Bound",
                                     timeout=30.0, what="test-pvc Bound")
            assert bound["spec"]["volumeName"] == pv_name
            volume = await api.resource("v1", "persistentvolumes").get(pv_name)
            assert volume["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "fuseim.pri/ifs"
            assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
            directory = tmp_path / f"default-test-pvc-{pv_name}"
            assert directory.is_dir()
            events = (await api.resource("v1", "events", "default").list())["items"]
            reasons = {(e["reason"], e["message"]) for e in events if e["involvedObject"]["name"] == "test-pvc"}
            assert ("Provisioning", 'External provisioner is provisioning volume for claim "default/test-pvc"') in reasons
            assert ("ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}") in reasons
            await claims.delete("test-pvc")

            async def volume_gone():
                return [v["metadata"]["name"] for v in (await api.resource("v1", "persistentvolumes").list())["items"]]
            await eventually(volume_gone, lambda names: pv_name not in names, timeout=30.0, what="the PV deleted")
            assert not directory.exists() and not (tmp_path / f"archived-default-test-pvc-{pv_name}").exists()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class _BrokenVolumes:
    """A provisioner whose PVs the API server refuses (two volume sources)."""
    name = "example.com/broken"

    def __init__(self):
        self.deleted = []

    async def provision(self, options):
        volume = base_volume(options, self.name)
        volume["spec"]["hostPath"] = {"path": "/tmp/x"}
        volume["spec"]["nfs"] = {"server": "127.0.0.1", "path": "/x"}
        return volume

    async def delete(self, volume, storage_class):
        self.deleted.append(volume["metadata"]["name"])


async def test_a_refused_volume_is_reported_and_its_storage_undone(client):
    async with volume_controllers(client) as (api, _):
        await api.resource("storage.k8s.io/v1", "storageclasses").create({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "broken"},
            "provisioner": "example.com/broken"})
        provisioner = _BrokenVolumes()
        task = asyncio.create_task(ProvisionController(api, provisioner).run())
        try:
            claims = api.resource("v1", "persistentvolumeclaims", "default")
            claim = await claims.create({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "doomed"},
                "spec": {"storageClassName": "broken", "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Mi"}}}})
            pv_name = "pvc-" + claim["metadata"]["uid"]

            async def failures():
                events = (await api.resource("v1", "events", "default").list())["items"]
                return [e["message"] for e in events
                        if e["involvedObject"]["name"] == "doomed" and e["reason"] == "ProvisioningFailed"]
            messages = await eventually(failures, bool, timeout=30.0, what="ProvisioningFailed")
            assert messages[0].startswith('failed to provision volume with StorageClass "broken": ')
            assert "may not specify more than 1 volume type" in messages[0]
            assert pv_name in provisioner.deleted
            assert (await api.resource("v1", "persistentvolumes").list())["items"] == []
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_local_path_removes_a_remote_nodes_directory_with_a_helper_pod(client, tmp_path):
    """A volume on a node that is not the server's own: after the local removal, a helper pod
    pinned to that node removes the folder there; the delete succeeds when the pod does, fails
    when it fails, and the pod is removed either way (the test plays that node's kubelet)."""
    from k8py.client import Client
    from tests.unit.conftest import TOKEN
    api = Client(str(client.make_url("")), token=TOKEN)
    # What the serviceaccount controller makes in a cluster.
    await api.resource("v1", "serviceaccounts", "kube-system").create({"metadata": {"name": "default"}})
    pods = api.resource("v1", "pods", "kube-system")
    provisioner = LocalPathProvisioner(tmp_path, api, own_node="server-node")
    node = {"metadata": {"name": "far-node", "labels": {"kubernetes.io/hostname": "far-node"}}}
    claim = {**CLAIM, "spec": {**CLAIM["spec"], "accessModes": ["ReadWriteOnce"]}}

    async def kubelet(phase):
        while True:
            try:
                pod = await pods.get("helper-pod-delete-pvc-1234")
            except Exception:
                await asyncio.sleep(0.05)
                continue
            seen.append(pod)
            await pods.update_status({**pod, "status": {"phase": phase}})
            return
    try:
        for phase in ("Failed", "Succeeded"):
            volume = await provisioner.provision(_options(claim, {"metadata": {"name": "local-path"}}, node))
            seen: list = []
            playing = asyncio.create_task(kubelet(phase))
            if phase == "Failed":
                with pytest.raises(ProvisioningError, match="helper pod kube-system/helper-pod-delete-pvc-1234 "
                                                            "failed on node far-node"):
                    await asyncio.wait_for(provisioner.delete(volume, None), 30)
            else:
                await asyncio.wait_for(provisioner.delete(volume, None), 30)
            await playing
            spec = seen[0]["spec"]
            assert spec["nodeName"] == "far-node" and spec["tolerations"] == [{"operator": "Exists"}]
            assert spec["containers"][0]["command"] == ["rm", "-rf", "/data/pvc-1234_default_test-pvc"]
            assert spec["volumes"][0]["hostPath"] == {"path": str(tmp_path), "type": "DirectoryOrCreate"}
            assert (await pods.list())["items"] == [] or all(
                p["metadata"].get("deletionTimestamp") for p in (await pods.list())["items"])
        # The server's own node: no helper pod at all.
        own = {"metadata": {"name": "server-node", "labels": {"kubernetes.io/hostname": "server-node"}}}
        volume = await provisioner.provision(_options(claim, {"metadata": {"name": "local-path"}}, own))
        await provisioner.delete(volume, None)
        assert not (tmp_path / "pvc-1234_default_test-pvc").exists()
        assert (await pods.list())["items"] == [] or all(
            p["metadata"].get("deletionTimestamp") for p in (await pods.list())["items"])
    finally:
        await api.close()
