"""The PersistentVolume binder, reclaim policies and protection controllers against the
in-process API server: phases, annotations and events as upstream's."""

from __future__ import annotations

import pytest

from k8py.client import ApiError
from tests.unit.volume_fixtures import eventually, volume_controllers

NS = "default"


@pytest.fixture
async def env(client):
    async with volume_controllers(client) as (api, _):
        yield api


def pv(name, size="1Gi", modes=("ReadWriteOnce",), policy="Retain", labels=None, sc=None, claim_ref=None,
       source=None):
    spec = {"capacity": {"storage": size}, "accessModes": list(modes), "persistentVolumeReclaimPolicy": policy,
            **(source or {"nfs": {"server": "127.0.0.1", "path": f"/exports/{name}"}})}
    if sc is not None:
        spec["storageClassName"] = sc
    if claim_ref:
        spec["claimRef"] = claim_ref
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec}


def pvc(name, size="1Gi", modes=("ReadWriteOnce",), sc=None, selector=None, volume_name=None):
    spec = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if sc is not None:
        spec["storageClassName"] = sc
    if selector:
        spec["selector"] = selector
    if volume_name:
        spec["volumeName"] = volume_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def pvs(api):
    return api.resource("v1", "persistentvolumes")


def pvcs(api):
    return api.resource("v1", "persistentvolumeclaims", NS)


async def phase_of(resource, name):
    try:
        return ((await resource.get(name)).get("status") or {}).get("phase")
    except ApiError as e:
        if e.not_found:
            return "<gone>"
        raise


async def wait_phase(resource, name, phase, timeout=10.0):
    await eventually(lambda: phase_of(resource, name), lambda p: p == phase, timeout, f"{name} {phase}")
    return await resource.get(name) if phase != "<gone>" else None


async def events_for(api, name):
    listed = await api.resource("v1", "events", NS).list(field_selector=f"involvedObject.name={name}")
    return [(e["type"], e["reason"], e["message"], e["source"].get("component")) for e in listed["items"]]


async def wait_event(api, name, reason, timeout=10.0):
    found = await eventually(lambda: events_for(api, name), lambda evs: any(e[1] == reason for e in evs),
                             timeout, f"{reason} event for {name}")
    return [e for e in found if e[1] == reason][0]


async def test_seed_claim_binds_to_the_nfs_volume_by_its_selector_with_upstreams_annotations(env):
    await pvs(env).create(pv("pv1", labels={"app": "nfs"}, policy="Recycle"))
    await pvs(env).create(pv("decoy", labels={"app": "other"}))
    await pvcs(env).create(pvc("pvc-nfs", selector={"matchLabels": {"app": "nfs"}}))
    claim = await wait_phase(pvcs(env), "pvc-nfs", "Bound")
    volume = await wait_phase(pvs(env), "pv1", "Bound")
    assert claim["spec"]["volumeName"] == "pv1"
    assert claim["metadata"]["annotations"] == {"pv.kubernetes.io/bind-completed": "yes",
                                                "pv.kubernetes.io/bound-by-controller": "yes"}
    assert claim["status"]["capacity"] == {"storage": "1Gi"}
    assert claim["status"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert volume["metadata"]["annotations"] == {"pv.kubernetes.io/bound-by-controller": "yes"}
    assert volume["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    ref = volume["spec"]["claimRef"]
    assert list(ref) == ["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion"]
    assert (ref["kind"], ref["namespace"], ref["name"], ref["uid"]) == \
        ("PersistentVolumeClaim", NS, "pvc-nfs", claim["metadata"]["uid"])
    assert await phase_of(pvs(env), "decoy") == "Available"


async def test_the_smallest_fitting_volume_is_chosen(env):
    for name, size in (("v5", "5Gi"), ("v2", "2Gi"), ("v1", "1Gi"), ("v3", "3Gi")):
        await pvs(env).create(pv(name, size))
    await pvcs(env).create(pvc("want2", "1500Mi"))
    claim = await wait_phase(pvcs(env), "want2", "Bound")
    assert claim["spec"]["volumeName"] == "v2"
    assert claim["status"]["capacity"] == {"storage": "2Gi"}  # the volume's, not the request
    await pvcs(env).create(pvc("want-more", "2Gi"))
    assert (await wait_phase(pvcs(env), "want-more", "Bound"))["spec"]["volumeName"] == "v3"


async def test_mismatches_stay_pending_with_upstreams_events(env):
    await pvs(env).create(pv("rwo", "10Gi"))
    await pvcs(env).create(pvc("wants-rwx", modes=("ReadWriteMany",)))
    event = await wait_event(env, "wants-rwx", "FailedBinding")
    assert event == ("Normal", "FailedBinding",
                     "no persistent volumes available for this claim and no storage class is set",
                     "persistentvolume-controller")
    await pvcs(env).create(pvc("wants-class", sc="fast"))
    event = await wait_event(env, "wants-class", "ProvisioningFailed")
    assert event[:3] == ("Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "fast" not found')
    await env.resource("storage.k8s.io/v1", "storageclasses").create(
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local-storage"},
         "provisioner": "kubernetes.io/no-provisioner"})
    await pvcs(env).create(pvc("wants-local", sc="local-storage"))
    event = await wait_event(env, "wants-local", "ProvisioningFailed")
    assert event[:3] == ("Warning", "ProvisioningFailed", "no volume plugin matched name: kubernetes.io/no-provisioner")
    assert await phase_of(pvcs(env), "wants-rwx") == "Pending"
    assert await phase_of(pvcs(env), "wants-class") == "Pending"
    assert await phase_of(pvcs(env), "wants-local") == "Pending"
    assert await phase_of(pvs(env), "rwo") == "Available"


async def test_a_class_served_by_nobody_waits_for_its_external_provisioner(env):
    await env.resource("storage.k8s.io/v1", "storageclasses").create(
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "course-nfs-storage"},
         "provisioner": "fuseim.pri/ifs"})
    await pvcs(env).create(pvc("test-pvc", sc="course-nfs-storage"))
    event = await wait_event(env, "test-pvc", "ExternalProvisioning")
    assert event[:3] == ("Normal", "ExternalProvisioning",
                         "Waiting for a volume to be created either by the external provisioner 'fuseim.pri/ifs' "
                         "or manually by the system administrator. If volume creation is delayed, please verify "
                         "that the provisioner is running and correctly registered.")
    annotations = (await pvcs(env).get("test-pvc"))["metadata"]["annotations"]
    assert annotations["volume.kubernetes.io/storage-provisioner"] == "fuseim.pri/ifs"
    assert annotations["volume.beta.kubernetes.io/storage-provisioner"] == "fuseim.pri/ifs"
    # A volume made for the class binds as any other.
    await pvs(env).create(pv("made", sc="course-nfs-storage"))
    assert (await wait_phase(pvcs(env), "test-pvc", "Bound", timeout=25))["spec"]["volumeName"] == "made"


async def test_pre_binding_from_the_claim_and_from_the_volume(env):
    await pvs(env).create(pv("small", "1Gi"))
    await pvs(env).create(pv("named", "9Gi"))
    await pvcs(env).create(pvc("by-name", volume_name="named"))
    claim = await wait_phase(pvcs(env), "by-name", "Bound")
    volume = await wait_phase(pvs(env), "named", "Bound")
    # The user chose: the claim is not "bound by controller", the volume (whose claimRef we set) is.
    assert claim["metadata"]["annotations"] == {"pv.kubernetes.io/bind-completed": "yes"}
    assert volume["metadata"]["annotations"] == {"pv.kubernetes.io/bound-by-controller": "yes"}

    await pvs(env).create(pv("reserved", "7Gi", claim_ref={"namespace": NS, "name": "later"}))
    assert (await wait_phase(pvs(env), "reserved", "Available"))["spec"]["claimRef"]["name"] == "later"
    await pvcs(env).create(pvc("someone-else"))   # must not take the reserved volume
    assert (await wait_phase(pvcs(env), "someone-else", "Bound"))["spec"]["volumeName"] == "small"
    await pvcs(env).create(pvc("later"))
    claim = await wait_phase(pvcs(env), "later", "Bound")
    volume = await wait_phase(pvs(env), "reserved", "Bound")
    assert claim["spec"]["volumeName"] == "reserved"
    assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert "pv.kubernetes.io/bound-by-controller" not in (volume["metadata"].get("annotations") or {})
    assert claim["metadata"]["annotations"] == {"pv.kubernetes.io/bind-completed": "yes",
                                                "pv.kubernetes.io/bound-by-controller": "yes"}


async def test_a_named_volume_that_does_not_fit_gives_volume_mismatch(env):
    await pvs(env).create(pv("tiny", "1Gi"))
    await pvcs(env).create(pvc("too-big", "5Gi", volume_name="tiny"))
    event = await wait_event(env, "too-big", "VolumeMismatch")
    assert event[:3] == ("Warning", "VolumeMismatch", 'Cannot bind to requested volume "tiny": requested PV is too small')
    assert await phase_of(pvcs(env), "too-big") == "Pending"
    assert await phase_of(pvs(env), "tiny") == "Available"


async def test_retain_releases_the_volume_and_never_rebinds_it_until_the_admin_frees_it(env):
    await pvs(env).create(pv("kept"))
    await pvcs(env).create(pvc("first"))
    await wait_phase(pvcs(env), "first", "Bound")
    await pvcs(env).delete("first")
    volume = await wait_phase(pvs(env), "kept", "Released")
    assert volume["spec"]["claimRef"]["name"] == "first"
    await pvcs(env).create(pvc("second"))
    await wait_event(env, "second", "FailedBinding")
    assert await phase_of(pvcs(env), "second") == "Pending"
    volume = await pvs(env).get("kept")
    del volume["spec"]["claimRef"]
    await pvs(env).update(volume)
    assert (await wait_phase(pvcs(env), "second", "Bound", timeout=25))["spec"]["volumeName"] == "kept"


async def test_delete_policy_fails_without_a_deleter_and_removes_a_tmp_host_path(env, tmp_path):
    await pvs(env).create(pv("nfs-del", policy="Delete"))
    await pvcs(env).create(pvc("c1"))
    await wait_phase(pvcs(env), "c1", "Bound")
    await pvcs(env).delete("c1")
    volume = await wait_phase(pvs(env), "nfs-del", "Failed")
    message = 'error getting deleter volume plugin for volume "nfs-del": no deletable volume plugin matched'
    assert volume["status"]["message"] == message
    # Events are posted after the status write: wait for it rather than race it.
    event = await wait_event(env, "nfs-del", "VolumeFailedDelete")
    assert event == ("Warning", "VolumeFailedDelete", message, "persistentvolume-controller")

    data = tmp_path / "scratch"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "file").write_text("x")
    assert str(data).startswith("/tmp/")
    await pvs(env).create(pv("hp-del", "2Gi", policy="Delete", source={"hostPath": {"path": str(data)}}))
    await pvcs(env).create(pvc("c2", "2Gi"))
    await wait_phase(pvcs(env), "c2", "Bound")
    await pvcs(env).delete("c2")
    await wait_phase(pvs(env), "hp-del", "<gone>")
    assert not data.exists()


async def test_recycle_runs_a_recycler_pod_and_makes_the_volume_available_again(env, tmp_path):
    await pvs(env).create(pv("rec", policy="Recycle", source={"hostPath": {"path": str(tmp_path)}}))
    await pvcs(env).create(pvc("user"))
    await wait_phase(pvcs(env), "user", "Bound")
    await pvcs(env).delete("user")
    pods = env.resource("v1", "pods", NS)
    pod = await eventually(lambda: _maybe_get(pods, "recycler-for-rec"), lambda p: p is not None, 10,
                           "the recycler pod")
    assert pod["spec"]["volumes"][0]["hostPath"]["path"] == str(tmp_path)
    container = pod["spec"]["containers"][0]
    assert container["volumeMounts"][0]["mountPath"] == "/scrub" and "rm -rf /scrub/" in container["args"][1]
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["activeDeadlineSeconds"] == 60
    # No kubelet here: play its part and report the pod done.
    pod["status"] = {"phase": "Succeeded"}
    await pods.update_status(pod)
    volume = await wait_phase(pvs(env), "rec", "Available")
    assert "claimRef" not in volume["spec"]
    assert "pv.kubernetes.io/bound-by-controller" not in (volume["metadata"].get("annotations") or {})
    await eventually(lambda: _maybe_get(pods, "recycler-for-rec"), lambda p: p is None, 10, "recycler pod gone")
    assert ("Normal", "VolumeRecycled", "Volume recycled", "persistentvolume-controller") in \
        await events_for(env, "rec")


async def _maybe_get(resource, name):
    try:
        return await resource.get(name)
    except ApiError as e:
        if e.not_found:
            return None
        raise


async def test_a_claim_in_use_stays_terminating_until_its_pod_is_gone(env):
    await pvs(env).create(pv("used"))
    await pvcs(env).create(pvc("in-use"))
    await wait_phase(pvcs(env), "in-use", "Bound")
    pods = env.resource("v1", "pods", NS)
    await pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
                       "spec": {"nodeName": "somewhere", "containers": [{"name": "c", "image": "busybox"}],
                                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "in-use"}}]}})
    await pvcs(env).delete("in-use")
    claim = await pvcs(env).get("in-use")
    assert claim["metadata"]["deletionTimestamp"] and claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    # The bound volume, deleted too, is held while it is Bound.
    await pvs(env).delete("used")
    await eventually(lambda: pvcs(env).get("in-use"), lambda c: c["metadata"].get("finalizers"), 2, "still held")
    assert await phase_of(pvs(env), "used") == "Bound"
    await pods.delete("user", grace_period_seconds=0)
    await wait_phase(pvcs(env), "in-use", "<gone>")
    await wait_phase(pvs(env), "used", "<gone>")


async def test_objects_made_before_the_admission_get_their_finalizers_from_the_controllers(client):
    async with volume_controllers(client, controllers=()) as (api, _):
        await pvs(api).create(pv("plain"))
        volume = await pvs(api).get("plain")
        volume["metadata"]["finalizers"] = []
        await pvs(api).update(volume)
    from k8py.controllers.volume.protection import PVProtectionController
    async with volume_controllers(client, controllers=(PVProtectionController,)) as (api, _):
        await eventually(lambda: pvs(api).get("plain"),
                         lambda v: v["metadata"].get("finalizers") == ["kubernetes.io/pv-protection"], 10,
                         "finalizer added back")


async def test_a_volume_deleted_while_recycling_takes_its_recycler_pod_with_it(env, tmp_path):
    await pvs(env).create(pv("short-lived", policy="Recycle", source={"hostPath": {"path": str(tmp_path)}}))
    await pvcs(env).create(pvc("brief"))
    await wait_phase(pvcs(env), "brief", "Bound")
    await pvcs(env).delete("brief")
    pods = env.resource("v1", "pods", NS)
    await eventually(lambda: _maybe_get(pods, "recycler-for-short-lived"), lambda p: p is not None, 10,
                     "the recycler pod")
    await pvs(env).delete("short-lived")
    await wait_phase(pvs(env), "short-lived", "<gone>")
    await eventually(lambda: _maybe_get(pods, "recycler-for-short-lived"), lambda p: p is None, 10,
                     "recycler pod removed with its volume")


def test_the_controller_manager_knows_the_volume_controllers_by_upstreams_names():
    from k8py.controllers.manager import load_controller, select_controllers
    names = select_controllers(["*"])
    assert {"persistentvolume-binder", "persistentvolumeclaim-protection", "persistentvolume-protection"} <= set(names)
    assert select_controllers(["persistentvolume-binder-controller", "pvc-protection", "pv-protection"]) == \
        ["persistentvolume-binder", "persistentvolumeclaim-protection", "persistentvolume-protection"]
    assert "pvc-protection" not in select_controllers(["*", "-pvc-protection"])
    assert "persistentvolumeclaim-protection" not in select_controllers(["*", "-pvc-protection"])
    assert load_controller("persistentvolume-binder").__name__ == "PersistentVolumeBinder"


async def test_wait_for_first_consumer_classes_are_left_to_the_scheduler(env):
    await env.resource("storage.k8s.io/v1", "storageclasses").create(
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "late"},
         "provisioner": "example.com/late", "volumeBindingMode": "WaitForFirstConsumer"})
    await pvs(env).create(pv("late-pv", sc="late"))
    await pvcs(env).create(pvc("late-claim", sc="late"))
    event = await wait_event(env, "late-claim", "WaitForFirstConsumer")
    assert event[:3] == ("Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
    assert await phase_of(pvcs(env), "late-claim") == "Pending"
    assert await phase_of(pvs(env), "late-pv") == "Available"
    # Once the scheduler has picked a node, the class's provisioner is asked.
    claim = await pvcs(env).get("late-claim")
    claim["metadata"].setdefault("annotations", {})["volume.kubernetes.io/selected-node"] = "node-a"
    await pvcs(env).update(claim)
    await wait_event(env, "late-claim", "ExternalProvisioning")


async def test_a_bound_claim_whose_volume_is_forced_away_is_lost(env):
    await pvs(env).create(pv("doomed"))
    await pvcs(env).create(pvc("orphan"))
    await wait_phase(pvcs(env), "orphan", "Bound")
    await pvs(env).delete("doomed")
    volume = await pvs(env).get("doomed")   # held by pv-protection while Bound; the admin forces it
    volume["metadata"]["finalizers"] = []
    await pvs(env).update(volume)
    claim = await wait_phase(pvcs(env), "orphan", "Lost")
    assert "capacity" not in claim["status"] and "accessModes" not in claim["status"]
    event = await wait_event(env, "orphan", "ClaimLost")
    assert event[:3] == ("Warning", "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")


async def test_a_volume_pre_bound_to_a_claim_is_taken_whatever_its_class(env):
    # Upstream checks a pre-binding before the class: the admin's claimRef wins.
    await pvs(env).create(pv("classy", sc="gold", claim_ref={"namespace": NS, "name": "plain"}))
    await pvcs(env).create(pvc("plain"))
    assert (await wait_phase(pvcs(env), "plain", "Bound"))["spec"]["volumeName"] == "classy"
