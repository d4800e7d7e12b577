"""Volume types on disk: atomic API-backed volumes, emptyDir, hostPath checks, subPath."""

from __future__ import annotations

import base64
import os
import socket
import stat

import pytest

from k8py.kubelet.volumes import VolumeContext, VolumeError, VolumeManager, atomic_writer, ownership
from k8py.kubelet.volumes.hostpath import check


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_manager(tmp_path, cms=None, secrets=None, token="tok"):
    async def cm(ns, name):
        return (cms or {}).get(name)

    async def sec(ns, name):
        return (secrets or {}).get(name)

    async def sa_token(ns, sa, audiences, expiration, pod):
        return f"{token}:{ns}:{sa}"
    return VolumeManager(tmp_path / "pods", VolumeContext(cm, sec, sa_token, node_allocatable={"memory": "1Gi"}))


def pod_with(volumes, uid="uid-1"):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": uid, "labels": {"a": "1", "b": "two"},
                         "annotations": {"note": "x"}},
            "spec": {"serviceAccountName": "builder", "volumes": volumes,
                     "containers": [{"name": "c", "resources": {"limits": {"memory": "32Mi"}}}]}}


def test_atomic_writer_swaps_the_data_link(tmp_path):
    target = tmp_path / "vol"
    assert atomic_writer.write(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert os.readlink(target / "a") == "..data/a"
    assert (target / "a").read_text() == "1" and (target / "dir" / "b").read_text() == "2"
    first = os.readlink(target / "..data")
    assert not atomic_writer.write(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})   # unchanged
    assert atomic_writer.write(target, {"a": (b"changed", 0o644)})
    assert os.readlink(target / "..data") != first
    assert not (target / first).exists()
    assert (target / "a").read_text() == "changed" and not (target / "dir").exists()


async def test_config_map_items_modes_and_update_in_place(tmp_path):
    cms = {"cfg": {"data": {"app.conf": "v1", "other": "o"}}}
    mgr = make_manager(tmp_path, cms=cms)
    pod = pod_with([{"name": "conf", "configMap": {"name": "cfg", "defaultMode": 0o640,
                                                    "items": [{"key": "app.conf", "path": "sub/app.conf",
                                                               "mode": 0o600}, {"key": "other", "path": "o"}]}}])
    paths = await mgr.setup(pod)
    conf = paths["conf"]
    assert (conf / "sub" / "app.conf").read_text() == "v1"
    assert stat.S_IMODE(os.stat(conf / "sub" / "app.conf").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(conf / "o").st_mode) == 0o640
    cms["cfg"]["data"]["app.conf"] = "v2"
    await mgr.refresh(pod)
    assert (conf / "sub" / "app.conf").read_text() == "v2"


async def test_missing_sources_fail_unless_optional(tmp_path):
    mgr = make_manager(tmp_path)
    with pytest.raises(VolumeError) as e:
        await mgr.setup(pod_with([{"name": "conf", "configMap": {"name": "absent"}}]))
    assert str(e.value) == 'MountVolume.SetUp failed for volume "conf" : configmap "absent" not found'
    paths = await mgr.setup(pod_with([{"name": "s", "secret": {"secretName": "absent", "optional": True}}]))
    assert list(paths["s"].iterdir()) == []


async def test_secret_downward_and_projected(tmp_path):
    secrets = {"creds": {"data": {"password": base64.b64encode(b"s3cret").decode()}}}
    cms = {"kube-root-ca.crt": {"data": {"ca.crt": "CA"}}}
    mgr = make_manager(tmp_path, cms=cms, secrets=secrets)
    pod = pod_with([
        {"name": "sec", "secret": {"secretName": "creds"}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                                 "divisor": "1Mi"}}]}},
        {"name": "api", "projected": {"defaultMode": 0o644, "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
    ])
    paths = await mgr.setup(pod)
    assert (paths["sec"] / "password").read_text() == "s3cret"
    assert (paths["info"] / "labels").read_text() == 'a="1"\nb="two"'
    assert (paths["info"] / "name").read_text() == "p"
    assert (paths["info"] / "mem").read_text() == "32"
    api = paths["api"]
    assert (api / "token").read_text() == "tok:ns:builder"
    assert (api / "ca.crt").read_text() == "CA" and (api / "namespace").read_text() == "ns"
    from k8py.kubelet.runtime.interface import Mount
    mounts = mgr.container_mounts(pod, {"name": "c", "volumeMounts": [
        {"name": "sec", "mountPath": "/etc/secret"}]}, paths, [])
    assert mounts == [Mount("/etc/secret", str(paths["sec"]), read_only=True)]


async def test_empty_dir_host_path_and_sub_paths(tmp_path):
    mgr = make_manager(tmp_path)
    host_dir = tmp_path / "host" / "data"
    pod = pod_with([{"name": "scratch", "emptyDir": {}},
                    {"name": "host", "hostPath": {"path": str(host_dir), "type": "DirectoryOrCreate"}}])
    paths = await mgr.setup(pod)
    assert host_dir.is_dir() and paths["host"] == host_dir
    assert stat.S_IMODE(os.stat(paths["scratch"]).st_mode) == 0o777
    container = {"name": "c", "volumeMounts": [
        {"name": "scratch", "mountPath": "/data", "subPath": "one/two"},
        {"name": "host", "mountPath": "/logs", "subPathExpr": "$(POD_NAME)", "readOnly": True}]}
    mounts = mgr.container_mounts(pod, container, paths, [("POD_NAME", "p")])
    assert mounts[0].host_path == str(paths["scratch"] / "one" / "two") and not mounts[0].read_only
    assert mounts[1].host_path == str(host_dir / "p") and mounts[1].read_only
    with pytest.raises(VolumeError):
        mgr.container_mounts(pod, {"name": "c", "volumeMounts": [
            {"name": "scratch", "mountPath": "/x", "subPath": "../escape"}]}, paths, [])
    os.symlink("/etc", paths["scratch"] / "link")
    with pytest.raises(VolumeError):
        mgr.container_mounts(pod, {"name": "c", "volumeMounts": [
            {"name": "scratch", "mountPath": "/x", "subPath": "link"}]}, paths, [])
    await mgr.teardown("uid-1")
    assert not (tmp_path / "pods" / "uid-1").exists() and host_dir.is_dir()


def test_host_path_type_checks(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    check(str(f), "File")
    check(str(tmp_path), "Directory")
    check(str(tmp_path / "made"), "DirectoryOrCreate")
    assert stat.S_IMODE(os.stat(tmp_path / "made").st_mode) == 0o755 & ~current_umask()
    check(str(tmp_path / "made" / "file"), "FileOrCreate")
    assert (tmp_path / "made" / "file").is_file()
    check("/dev/null", "CharDevice")
    check(str(f), "")                       # no type: no check
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    check(str(tmp_path / "sock"), "Socket")
    sock.close()
    # Upstream's FailedMount wording, for every type and mismatch (and a missing path).
    for path, kind, message in (
            (str(f), "Directory", f"hostPath type check failed: {f} is not a directory"),
            (str(tmp_path), "File", f"hostPath type check failed: {tmp_path} is not a file"),
            (str(tmp_path / "nope"), "Directory", f"hostPath type check failed: {tmp_path / 'nope'} is not a directory"),
            (str(tmp_path / "nope"), "File", f"hostPath type check failed: {tmp_path / 'nope'} is not a file"),
            (str(f), "Socket", f"hostPath type check failed: {f} is not a socket file"),
            (str(f), "CharDevice", f"hostPath type check failed: {f} is not a character device"),
            (str(f), "BlockDevice", f"hostPath type check failed: {f} is not a block device"),
            ("/dev/null", "BlockDevice", "hostPath type check failed: /dev/null is not a block device"),
            (str(f), "DirectoryOrCreate", f"hostPath type check failed: {f} is not a directory"),
            (str(tmp_path), "FileOrCreate", f"hostPath type check failed: {tmp_path} is not a file"),
            (str(f), "Pipe", "Pipe is an invalid volume type")):
        with pytest.raises(VolumeError) as e:
            check(path, kind)
        assert str(e.value) == message
    # FileOrCreate makes the file, never its folder (as upstream): the pod can't start.
    with pytest.raises(VolumeError) as e:
        check(str(tmp_path / "new" / "file"), "FileOrCreate")
    assert str(e.value) == f"open {tmp_path / 'new' / 'file'}: no such file or directory"
    assert not (tmp_path / "new").exists()


async def test_host_path_mismatch_is_a_mount_failure_naming_the_volume(tmp_path):
    mgr = make_manager(tmp_path)
    with pytest.raises(VolumeError) as e:
        await mgr.setup(pod_with([{"name": "sock", "hostPath": {"path": str(tmp_path), "type": "Socket"}}]))
    assert str(e.value) == (f'MountVolume.SetUp failed for volume "sock" : '
                            f"hostPath type check failed: {tmp_path} is not a socket file")


def claim_manager(tmp_path, pv, claim=None):
    claim = claim or {"metadata": {"name": "data", "namespace": "ns"}, "spec": {"volumeName": pv["metadata"]["name"]}}

    async def lookup(namespace, name):
        return (claim, pv) if name == "data" else (None, None)
    mgr = make_manager(tmp_path)
    mgr.ctx.persistent_volume_claim = lookup
    return mgr


async def test_claim_volumes_read_only_as_the_pod_asks_and_sub_paths_into_claims(tmp_path):
    backing = tmp_path / "backing"
    backing.mkdir()
    pv = {"metadata": {"name": "pv-1"}, "spec": {"hostPath": {"path": str(backing), "type": "Directory"},
                                                  "accessModes": ["ReadOnlyMany"]}}
    mgr = claim_manager(tmp_path, pv)
    pod = pod_with([{"name": "rw", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "ro", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}])
    paths = await mgr.setup(pod)
    assert paths == {"rw": backing, "ro": backing}
    container = {"name": "c", "volumeMounts": [
        {"name": "rw", "mountPath": "/rw"}, {"name": "ro", "mountPath": "/ro"},
        {"name": "rw", "mountPath": "/ro-mount", "readOnly": True},
        {"name": "rw", "mountPath": "/sub", "subPathExpr": "$(POD_NAME)/logs"}]}
    mounts = mgr.container_mounts(pod, container, paths, [("POD_NAME", "p")])
    # ReadOnlyMany alone does not make a mount read-only (upstream matches it at binding only).
    assert [(m.container_path, m.read_only) for m in mounts] == [
        ("/rw", False), ("/ro", True), ("/ro-mount", True), ("/sub", False)]
    assert mounts[3].host_path == str(backing / "p" / "logs") and (backing / "p" / "logs").is_dir()
    await mgr.teardown("uid-1")
    assert (backing / "p" / "logs").is_dir()     # teardown never touches a claim's data


async def test_claim_failures_name_the_persistent_volume(tmp_path):
    pv = {"metadata": {"name": "pv-local"}, "spec": {"local": {"path": str(tmp_path / "missing")}}}
    mgr = claim_manager(tmp_path, pv)
    with pytest.raises(VolumeError) as e:
        await mgr.setup(pod_with([{"name": "vol", "persistentVolumeClaim": {"claimName": "data"}}]))
    assert str(e.value) == (f'MountVolume.SetUp failed for volume "pv-local" : '
                            f"stat {tmp_path / 'missing'}: no such file or directory")
    with pytest.raises(VolumeError) as e:
        await mgr.setup(pod_with([{"name": "vol", "persistentVolumeClaim": {"claimName": "other"}}]))
    assert str(e.value) == 'MountVolume.SetUp failed for volume "vol" : persistentvolumeclaim "other" not found'


def test_fs_group_ownership_and_on_root_mismatch(tmp_path, monkeypatch):
    root = tmp_path / "vol"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "file").write_text("x")
    os.chmod(root / "sub" / "file", 0o600)
    os.chmod(root / "sub", 0o700)
    os.chmod(root, 0o755)
    group = os.getgid() if os.geteuid() != 0 else 4321
    pod = {"spec": {"securityContext": {"fsGroup": group}}}
    ownership.apply(pod, root)
    for path, mode in ((root, 0o2775), (root / "sub", 0o2770), (root / "sub" / "file", 0o660)):
        st = os.stat(path)
        assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (group, mode), path
    ownership.apply(pod, root, read_only=False)        # a second time changes nothing
    assert stat.S_IMODE(os.stat(root / "sub" / "file").st_mode) == 0o660
    # OnRootMismatch: a root that already fits means the walk is skipped.
    (root / "late").write_text("y")
    os.chmod(root / "late", 0o600)
    ownership.apply({"spec": {"securityContext": {"fsGroup": group, "fsGroupChangePolicy": "OnRootMismatch"}}}, root)
    assert stat.S_IMODE(os.stat(root / "late").st_mode) == 0o600
    ownership.apply(pod, root)                          # Always walks everything
    assert stat.S_IMODE(os.stat(root / "late").st_mode) == 0o660
    # Read-only volumes get group read, not write.
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "f").write_text("z")
    os.chmod(ro / "f", 0o600)
    ownership.apply(pod, ro, read_only=True)
    assert stat.S_IMODE(os.stat(ro / "f").st_mode) == 0o640
    ownership.apply({"spec": {}}, ro)                   # no fsGroup: nothing to do
    assert stat.S_IMODE(os.stat(ro / "f").st_mode) == 0o640


async def test_empty_dir_gets_the_fs_group(tmp_path):
    mgr = make_manager(tmp_path)
    group = os.getgid() if os.geteuid() != 0 else 4321
    pod = pod_with([{"name": "scratch", "emptyDir": {}}])
    pod["spec"]["securityContext"] = {"fsGroup": group}
    paths = await mgr.setup(pod)
    st = os.stat(paths["scratch"])
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (group, 0o2777)


@pytest.mark.skipif(os.geteuid() != 0, reason="tmpfs mounts need root")
async def test_memory_empty_dir_is_a_sized_tmpfs(tmp_path):
    mgr = make_manager(tmp_path)
    paths = await mgr.setup(pod_with([{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}],
                                     uid="uid-tmpfs"))
    try:
        assert os.path.ismount(paths["mem"])
        st = os.statvfs(paths["mem"])
        assert st.f_blocks * st.f_frsize == 8 * 2**20
    finally:
        await mgr.teardown("uid-tmpfs")
    assert not os.path.exists(paths["mem"])
