"""OCI spec building and the CRI log format (pure logic)."""

from __future__ import annotations

import os

import pytest

from k8py.kubelet.runtime.crilog import LineSplitter, RotatingLog, format_line, parse_line, rfc3339nano
from k8py.kubelet.runtime.interface import ContainerConfig, Mount, Sandbox
from k8py.kubelet.runtime.oci_spec import (DEFAULT_CAPABILITIES, SpecError, build_spec, capabilities, command_line,
                                           merged_env, resolve_user)

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["--default"], "Env": ["PATH=/bin", "A=image"], "WorkingDir": "/srv"}


@pytest.mark.parametrize("command,args,expected", [
    ([], [], ["/entry", "--default"]),
    (["/bin/sh", "-c"], [], ["/bin/sh", "-c"]),              # command drops the image CMD too
    ([], ["--flag"], ["/entry", "--flag"]),                  # args keep the ENTRYPOINT
    (["/run"], ["x", "y"], ["/run", "x", "y"]),
])
def test_command_and_args_merge_like_kubernetes(command, args, expected):
    assert command_line(ContainerConfig(name="c", image="i", command=command, args=args), IMAGE) == expected


def test_no_command_at_all_is_an_error():
    with pytest.raises(SpecError):
        command_line(ContainerConfig(name="c", image="i"), {})


def test_env_overrides_image_env_by_name():
    cfg = ContainerConfig(name="c", image="i", env=[("A", "pod"), ("B", "x=y")])
    assert merged_env(cfg, IMAGE) == ["PATH=/bin", "A=pod", "B=x=y"]
    assert merged_env(ContainerConfig(name="c", image="i"), {})[0].startswith("PATH=/usr/local/sbin")


def test_users_resolve_against_the_image(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nnginx:x:101:102::/:/bin/false\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nnginx:x:102:\nweb:x:300:nginx,other\n")
    plain = ContainerConfig(name="c", image="i")
    assert resolve_user(plain, "", tmp_path) == {"uid": 0, "gid": 0}
    assert resolve_user(plain, "nginx", tmp_path) == {"uid": 101, "gid": 102, "additionalGids": [300]}
    assert resolve_user(plain, "1234:web", tmp_path) == {"uid": 1234, "gid": 300}
    pinned = ContainerConfig(name="c", image="i", run_as_user=5, run_as_group=6, supplemental_groups=[7])
    assert resolve_user(pinned, "nginx", tmp_path) == {"uid": 5, "gid": 6, "additionalGids": [7]}
    with pytest.raises(SpecError):
        resolve_user(plain, "ghost", tmp_path)


def test_capabilities_add_drop_and_privileged():
    base = ContainerConfig(name="c", image="i")
    assert capabilities(base) == DEFAULT_CAPABILITIES
    tuned = ContainerConfig(name="c", image="i", capabilities_add=["NET_ADMIN"], capabilities_drop=["KILL"])
    assert "CAP_NET_ADMIN" in capabilities(tuned) and "CAP_KILL" not in capabilities(tuned)
    minimal = ContainerConfig(name="c", image="i", capabilities_add=["NET_BIND_SERVICE"], capabilities_drop=["ALL"])
    assert capabilities(minimal) == ["CAP_NET_BIND_SERVICE"]
    assert "CAP_SYS_ADMIN" in capabilities(ContainerConfig(name="c", image="i", privileged=True))


def test_spec_joins_the_sandbox_and_sets_limits(tmp_path):
    sandbox = Sandbox(id="s", pod_uid="u", netns_path="/ns/net", ipc_ns_path="/ns/ipc", uts_ns_path="/ns/uts",
                      pid_ns_path=None, cgroup_parent="k8py/podu")
    cfg = ContainerConfig(name="c", image="i", args=["x"], memory_limit_bytes=64 << 20, cpu_shares=512,
                          cpu_quota_us=50000, read_only_root_filesystem=True, allow_privilege_escalation=False,
                          mounts=[Mount("/data", "/host/data", read_only=True)], labels={"k": "v"}, tty=True)
    spec = build_spec(cfg, IMAGE, sandbox, rootfs=tmp_path, cgroups_path="/k8py/podu/c1", shm_source="/shm")
    ns = {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}
    assert ns == {"mount": None, "pid": None, "network": "/ns/net", "ipc": "/ns/ipc", "uts": "/ns/uts"}
    res = spec["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 64 << 20}
    assert res["cpu"] == {"shares": 512, "quota": 50000, "period": 100000}
    assert spec["root"]["readonly"] is True and spec["process"]["noNewPrivileges"] is True
    assert spec["process"]["terminal"] is True and spec["process"]["cwd"] == "/srv"
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/data"} <= set(mounts)
    assert mounts["/dev/shm"]["source"] == "/shm" and "ro" in mounts["/data"]["options"]
    assert spec["annotations"] == {"k": "v"} and "/proc/kcore" in spec["linux"]["maskedPaths"]
    host = Sandbox(id="s", pod_uid="u", netns_path=None, ipc_ns_path=None, uts_ns_path=None,
                   pid_ns_path="/proc/9/ns/pid", cgroup_parent="p")
    spec = build_spec(ContainerConfig(name="c", image="i", privileged=True), IMAGE, host, rootfs=tmp_path,
                      cgroups_path="/p/c", shm_source="/dev/shm")
    assert {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]} == {"mount": None,
                                                                               "pid": "/proc/9/ns/pid"}
    assert spec["mounts"][5]["type"] == "bind"          # /sys from the host: no netns of our own
    assert "maskedPaths" not in spec["linux"] and spec["linux"]["resources"]["devices"][0]["allow"] is True


def test_rfc3339nano_drops_trailing_zeros():
    assert rfc3339nano(1_700_000_000_123_400_000) == "2023-11-14T22:13:20.1234Z"
    assert rfc3339nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


def test_lines_split_full_partial_and_at_eof():
    s = LineSplitter(max_line=8)
    assert s.feed(b"ab") == []
    assert s.feed(b"c\r\nde") == [("F", b"abc")]
    assert s.feed(b"fghijklmnop\n") == [("P", b"defghijk"), ("F", b"lmnop")]
    assert s.feed(b"tail") == [] and s.flush() == [("F", b"tail")] and s.flush() == []
    assert format_line("stderr", "P", b"x y", ns=0) == b"1970-01-01T00:00:00Z stderr P x y\n"
    assert parse_line(b"1970-01-01T00:00:00Z stdout F hello world\n") == ("1970-01-01T00:00:00Z", "stdout", "F",
                                                                         b"hello world")
    assert parse_line(b"2024-01-01T00:00:00Z stdout F") == ("2024-01-01T00:00:00Z", "stdout", "F", b"")


def test_logs_rotate_at_the_size_limit_keeping_max_files(tmp_path):
    path = tmp_path / "0.log"
    log = RotatingLog(str(path), max_size=100, max_files=3)
    for i in range(20):
        log.write(format_line("stdout", "F", f"line {i:02d}".encode() * 2))
    log.close()
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 3 and "0.log" in files
    assert os.path.getsize(path) <= 100
    assert b"line 19" in path.read_bytes()
