"""Claim expansion against the in-process API server: the PersistentVolumeClaimResize
admission, the shrink validation, the expand controller and a provisioner's resizer."""

from __future__ import annotations

import asyncio

import pytest

from k8py.client import ApiError
from k8py.controllers.volume.binder import PersistentVolumeBinder
from k8py.controllers.volume.expand import ExpandController
from k8py.provisioners.controller import ProvisionController
from k8py.provisioners.shared_folder import Share, SharedFolderProvisioner
from tests.unit.volume_fixtures import eventually, volume_controllers

PROVISIONER = "example.com/folders"


async def _bound_claim(api, name: str, class_name: str) -> dict:
    claims = api.resource("v1", "persistentvolumeclaims", "default")
    await claims.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                         "spec": {"storageClassName": class_name, "accessModes": ["ReadWriteOnce"],
                                  "resources": {"requests": {"storage": "1Mi"}}}})
    return await eventually(lambda: claims.get(name), lambda c: (c.get("status") or {}).get("phase") == "Bound",
                            timeout=30.0, what=f"{name} Bound")


async def _make_class(api, name: str, expandable: bool | None) -> None:
    body = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": PROVISIONER, "parameters": {"archiveOnDelete": "false"}}
    if expandable is not None:
        body["allowVolumeExpansion"] = expandable
    await api.resource("storage.k8s.io/v1", "storageclasses").create(body)


def _provisioner(api, folder) -> ProvisionController:
    return ProvisionController(api, SharedFolderProvisioner(Share(PROVISIONER, folder)))


def _resize(size: str) -> dict:
    return {"spec": {"resources": {"requests": {"storage": size}}}}


async def _events(api, name: str) -> list[tuple[str, str, str, str]]:
    items = (await api.resource("v1", "events", "default").list())["items"]
    return [(e["type"], e["reason"], e["message"], e["source"].get("component", "")) for e in items
            if e["involvedObject"]["name"] == name]


async def test_expansion_grows_the_volume_and_the_claim_then_a_shrink_is_refused(client, tmp_path):
    async with volume_controllers(client, controllers=(PersistentVolumeBinder, ExpandController)) as (api, _):
        await _make_class(api, "grows", True)
        task = asyncio.create_task(_provisioner(api, tmp_path).run())
        try:
            claims = api.resource("v1", "persistentvolumeclaims", "default")
            bound = await _bound_claim(api, "data", "grows")
            assert bound["status"]["capacity"]["storage"] == "1Mi"
            await claims.patch("data", _resize("3Mi"))
            grown = await eventually(lambda: claims.get("data"),
                                     lambda c: c["status"].get("capacity", {}).get("storage") == "3Mi",
                                     timeout=30.0, what="the claim's capacity grown")
            assert grown["status"]["allocatedResources"] == {"storage": "3Mi"}
            assert "allocatedResourceStatuses" not in grown["status"]  # finished: no resize in progress
            assert not [c for c in grown["status"].get("conditions") or [] if c["type"] == "Resizing"]
            volume = await api.resource("v1", "persistentvolumes").get(bound["spec"]["volumeName"])
            assert volume["spec"]["capacity"]["storage"] == "3Mi"  # the directory's recorded size limit moved
            pv_name = volume["metadata"]["name"]
            events = await eventually(lambda: _events(api, "data"),
                                      lambda got: any(e[1] == "VolumeResizeSuccessful" for e in got),
                                      what="VolumeResizeSuccessful")
            assert ("Warning", "ExternalExpanding", "waiting for an external controller to expand this PVC",
                    "volume_expand") in events
            assert ("Normal", "Resizing", f"External resizer is resizing volume {pv_name}",
                    f"external-resizer {PROVISIONER}") in events
            assert ("Normal", "VolumeResizeSuccessful", "Resize volume succeeded",
                    f"external-resizer {PROVISIONER}") in events

            for size in ("2Mi", "1Mi"):  # a shrink below what the volume has
                with pytest.raises(ApiError) as refused:
                    await claims.patch("data", _resize(size))
                assert refused.value.code == 422
                assert refused.value.status["message"] == (
                    'PersistentVolumeClaim "data" is invalid: spec.resources.requests.storage: Forbidden: '
                    "field can not be less than status.capacity")
            assert (await claims.get("data"))["spec"]["resources"]["requests"]["storage"] == "3Mi"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_a_class_with_allow_volume_expansion_false_refuses_a_resize(client, tmp_path):
    # (a class without the field: tests/e2e/test_provisioning.py)
    async with volume_controllers(client, controllers=(PersistentVolumeBinder, ExpandController)) as (api, _):
        await _make_class(api, "fixed", False)
        task = asyncio.create_task(_provisioner(api, tmp_path).run())
        try:
            claims = api.resource("v1", "persistentvolumeclaims", "default")
            bound = await _bound_claim(api, "fixed-size", "fixed")
            with pytest.raises(ApiError) as refused:
                await claims.patch("fixed-size", _resize("2Mi"))
            assert refused.value.code == 403 and refused.value.reason == "Forbidden"
            assert refused.value.status["message"] == (
                'persistentvolumeclaims "fixed-size" is forbidden: only dynamically provisioned pvc can be resized '
                "and the storageclass that provisions the pvc must support resize")
            after = await claims.get("fixed-size")
            assert after["spec"]["resources"]["requests"]["storage"] == "1Mi"
            assert after["status"]["capacity"]["storage"] == "1Mi"
            volume = await api.resource("v1", "persistentvolumes").get(bound["spec"]["volumeName"])
            assert volume["spec"]["capacity"]["storage"] == "1Mi"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_a_claim_beyond_its_namespaces_limit_range_is_refused_and_not_made(client):
    """Upstream has no per-class size limit (provisioners make what is asked); the cap on a
    claim is a LimitRange of type PersistentVolumeClaim, enforced by LimitRanger at create
    and update."""
    async with volume_controllers(client, controllers=()) as (api, _):
        await api.resource("v1", "limitranges", "default").create({
            "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "claims"},
            "spec": {"limits": [{"type": "PersistentVolumeClaim", "min": {"storage": "1Mi"},
                                 "max": {"storage": "1024Mi"}}]}})
        claims = api.resource("v1", "persistentvolumeclaims", "default")
        body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "huge"},
                "spec": {"storageClassName": "", "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "5Gi"}}}}
        with pytest.raises(ApiError) as refused:
            await claims.create(body)
        assert refused.value.code == 403
        assert refused.value.status["message"] == ('persistentvolumeclaims "huge" is forbidden: maximum storage usage '
                                                   "per PersistentVolumeClaim is 1Gi, but request is 5Gi")
        with pytest.raises(ApiError) as missing:
            await claims.get("huge")
        assert missing.value.not_found  # nothing half-made
        body["spec"]["resources"]["requests"]["storage"] = "512Ki"
        with pytest.raises(ApiError) as small:
            await claims.create(body)
        assert small.value.status["message"].endswith(
            "minimum storage usage per PersistentVolumeClaim is 1Mi, but request is 512Ki")
        body["spec"]["resources"]["requests"]["storage"] = "1Gi"
        assert (await claims.create(body))["spec"]["resources"]["requests"]["storage"] == "1Gi"


async def test_a_storage_class_quota_caps_its_claims_at_create_and_on_growth(client):
    """The per-class cap upstream has: ResourceQuota `<class>.storageclass.storage.k8s.io/
    requests.storage`; other classes are not charged; a claim's growth is charged its delta."""
    async with volume_controllers(client, controllers=()) as (api, _):
        await api.resource("v1", "resourcequotas", "default").create({
            "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "gold"},
            "spec": {"hard": {"gold.storageclass.storage.k8s.io/requests.storage": "4Mi",
                              "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "2"}}})
        claims = api.resource("v1", "persistentvolumeclaims", "default")

        def claim(name, cls, size):
            return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                    "spec": {"storageClassName": cls, "accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": size}}}}
        with pytest.raises(ApiError) as refused:
            await claims.create(claim("big", "gold", "5Mi"))
        assert refused.value.code == 403
        assert refused.value.status["message"] == (
            'persistentvolumeclaims "big" is forbidden: exceeded quota: gold, requested: '
            "gold.storageclass.storage.k8s.io/requests.storage=5Mi, used: "
            "gold.storageclass.storage.k8s.io/requests.storage=0, limited: "
            "gold.storageclass.storage.k8s.io/requests.storage=4Mi")
        with pytest.raises(ApiError):
            await claims.get("big")
        await claims.create(claim("other-class", "silver", "5Mi"))  # not charged to gold
        await claims.create(claim("small", "gold", "3Mi"))
        with pytest.raises(ApiError) as full:
            await claims.create(claim("second", "gold", "2Mi"))
        assert "requested: gold.storageclass.storage.k8s.io/requests.storage=2Mi, used: " \
               "gold.storageclass.storage.k8s.io/requests.storage=3Mi" in full.value.status["message"]

        # growth is charged: make `small` Bound (as the binder would) and ask for more than is left
        small = await claims.get("small")
        small["status"] = {"phase": "Bound", "capacity": {"storage": "3Mi"}}
        await claims.update_status(small)
        await api.resource("storage.k8s.io/v1", "storageclasses").create({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "gold"},
            "provisioner": "example.com/none", "allowVolumeExpansion": True})
        with pytest.raises(ApiError) as grown:
            await claims.patch("small", _resize("6Mi"))
        assert grown.value.code == 403
        assert "requested: gold.storageclass.storage.k8s.io/requests.storage=3Mi, used: " \
               "gold.storageclass.storage.k8s.io/requests.storage=3Mi, limited: " \
               "gold.storageclass.storage.k8s.io/requests.storage=4Mi" in grown.value.status["message"]
        assert (await claims.patch("small", _resize("4Mi")))["spec"]["resources"]["requests"]["storage"] == "4Mi"
