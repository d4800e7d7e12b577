"""RuncRuntime with real runc and the busybox image from the local registry (needs root)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from k8py.kubelet.images.store import ImageStore
from k8py.kubelet.runtime import cgroups, namespaces
from k8py.kubelet.runtime.crilog import parse_line
from k8py.kubelet.runtime.interface import ContainerConfig, Mount, SandboxConfig
from k8py.kubelet.runtime.runc import RuncRuntime, RuntimeFailure

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runc containers need root")


pytest_plugins = ["tests.e2e.registry"]     # the session's image_registry fixture


@pytest.fixture(scope="module")
def image_root(tmp_path_factory, image_registry):
    root = tmp_path_factory.mktemp("images")
    store = ImageStore(root, image_registry.mirrors_config)
    asyncio.run(store.pull("busybox"))
    asyncio.run(store.pull("nginx"))
    return root


@pytest.fixture
async def runtime(tmp_path, image_root):
    prefix = f"k8pyrt-{secrets.token_hex(4)}"
    rt = RuncRuntime(tmp_path / "runtime", images=ImageStore(image_root))
    rt.test_prefix = prefix
    yield rt
    rt.close()
    for sandbox in await rt.list_sandboxes():
        await rt.remove_sandbox(sandbox.id)
    for status in await rt.list_containers():
        await rt.remove_container(status.id)
    # Nothing may outlive the test: runc state, mounts, cgroups.
    listed = subprocess.run(["runc", "--root", str(rt.runc_root), "list", "-q"], capture_output=True, text=True)
    assert listed.stdout.strip() == ""
    assert str(tmp_path / "runtime") not in Path("/proc/self/mountinfo").read_text()
    for d in cgroups.controller_dirs(prefix):
        if d.exists():
            d.rmdir()        # fails (and so fails the test) if a pod cgroup was left inside


async def sandbox_for(rt, name="pod", **kw):
    uid = secrets.token_hex(4)
    return await rt.run_sandbox(SandboxConfig(pod_uid=uid, name=name, namespace="default", hostname=name,
                                              cgroup_parent=f"{rt.test_prefix}/pod{uid}", **kw))


async def run(rt, sandbox, tmp_path, command, **kw) -> str:
    log = tmp_path / "logs" / f"{secrets.token_hex(3)}.log"
    cid = await rt.create_container(sandbox, ContainerConfig(name="c", image="busybox", command=command,
                                                             log_path=str(log), **kw))
    await rt.start_container(cid)
    return cid


async def wait_state(rt, cid, state, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await rt.container_status(cid)
        if status.state == state:
            return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"container {cid} never reached {state}: {status}")


def log_lines(status) -> list[tuple[str, str, bytes]]:
    return [(p[1], p[2], p[3]) for p in map(parse_line, Path(status.log_path).read_bytes().splitlines())]


async def test_output_exit_code_and_pod_hostname(runtime, tmp_path):
    sandbox = await sandbox_for(runtime, "web-1")
    cid = await run(runtime, sandbox, tmp_path, ["sh", "-c", "echo hello; hostname; printf partial >&2; exit 3"])
    status = await wait_state(runtime, cid, "exited")
    assert (status.exit_code, status.reason, status.oom_killed) == (3, "Error", False)
    assert status.started_at <= status.finished_at
    assert log_lines(status) == [("stdout", "F", b"hello"), ("stdout", "F", b"web-1"),
                                 ("stderr", "F", b"partial")]
    line = Path(status.log_path).read_text().splitlines()[0]
    assert line.split(" ")[0].endswith("Z") and "T" in line.split(" ")[0]


async def test_image_defaults_env_user_workdir_and_readonly_root(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    data = tmp_path / "data"
    data.mkdir()
    (data / "note").write_text("from the host\n")
    cid = await run(runtime, sandbox, tmp_path,
                    ["sh", "-c", "id -u; id -g; pwd; echo $GREETING; cat /data/note; touch /x || echo ro; "
                                 "touch /data/y || echo ro-mount"],
                    env=[("GREETING", "hi")], run_as_user=1000, run_as_group=2000, working_dir="/tmp/made/for/me",
                    read_only_root_filesystem=True, mounts=[Mount("/data", str(data), read_only=True)])
    status = await wait_state(runtime, cid, "exited")
    out = [c for s, _, c in log_lines(status) if s == "stdout"]
    assert out == [b"1000", b"2000", b"/tmp/made/for/me", b"hi", b"from the host", b"ro", b"ro-mount"]


async def test_memory_limit_is_oom_killed(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    # busybox `tail` keeps the whole (newline-free) last line in memory.
    cid = await run(runtime, sandbox, tmp_path, ["tail", "/dev/zero"], memory_limit_bytes=16 * 1024 * 1024)
    status = await wait_state(runtime, cid, "exited", timeout=30)
    assert (status.exit_code, status.oom_killed, status.reason) == (137, True, "OOMKilled")


async def test_stop_sends_sigterm_then_sigkill(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    polite = await run(runtime, sandbox, tmp_path,
                       ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo trapped; while true; do sleep 0.05; done"])
    stubborn = await run(runtime, sandbox, tmp_path,
                         ["sh", "-c", "trap '' TERM; echo trapped; while true; do sleep 0.05; done"])
    for cid in (polite, stubborn):      # each shell says when its trap is in place
        status = await wait_state(runtime, cid, "running")
        deadline = time.monotonic() + 10
        while ("stdout", "F", b"trapped") not in log_lines(status):
            assert time.monotonic() < deadline, f"{cid} never installed its trap"
            await asyncio.sleep(0.02)
    started = time.monotonic()
    await runtime.stop_container(polite, 10)
    status = await runtime.container_status(polite)
    assert status.exit_code == 7 and time.monotonic() - started < 5
    assert ("stdout", "F", b"got TERM") in log_lines(status)
    started = time.monotonic()
    await runtime.stop_container(stubborn, 0.5)
    assert (await runtime.container_status(stubborn)).exit_code == 137
    assert time.monotonic() - started >= 0.5
    await runtime.stop_container(stubborn, 1)        # idempotent


async def test_exec_sync_and_its_timeout(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    cid = await run(runtime, sandbox, tmp_path, ["sleep", "1000"])
    await wait_state(runtime, cid, "running")
    code, out = await runtime.exec_sync(cid, ["sh", "-c", "echo $((1+2)); echo oops >&2; exit 4"], 10)
    assert code == 4 and sorted(out.splitlines()) == [b"3", b"oops"]    # runc relays the two streams separately
    with pytest.raises(TimeoutError):
        await runtime.exec_sync(cid, ["sleep", "30"], 0.3)
    stats = await runtime.stats(cid)
    assert stats.cpu_usage_ns > 0 and stats.memory_working_set_bytes > 0
    await runtime.stop_container(cid, 0)
    with pytest.raises(RuntimeFailure):
        await runtime.exec_sync(cid, ["true"], 5)


async def test_a_new_runtime_adopts_running_containers(runtime, tmp_path, image_root):
    sandbox = await sandbox_for(runtime)
    cid = await run(runtime, sandbox, tmp_path, ["sh", "-c", "echo before; sleep 1000"])
    pid = (await wait_state(runtime, cid, "running")).pid
    runtime.record_sandbox_ip(sandbox.id, "10.42.0.7")
    restarted = RuncRuntime(runtime.root, images=ImageStore(image_root))
    assert [s.ip for s in await restarted.list_sandboxes()] == ["10.42.0.7"]
    [found] = await restarted.list_containers()
    assert (found.id, found.state, found.pid) == (cid, "running", pid)
    assert restarted.container_pid(cid) == pid
    assert [s.id for s in await restarted.list_sandboxes()] == [sandbox.id]
    await restarted.stop_container(cid, 0.2)
    assert (await runtime.container_status(cid)).exit_code == 137
    await restarted.remove_sandbox(sandbox.id)
    assert await restarted.list_containers() == [] and await runtime.list_sandboxes() == []


def _parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def test_shims_come_from_the_zygote_and_outlive_it(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    first = await run(runtime, sandbox, tmp_path, ["sh", "-c", "echo one; sleep 1000"])
    second = await run(runtime, sandbox, tmp_path, ["sh", "-c", "echo two; sleep 1000"])
    zygote = runtime.shims._zygote
    assert zygote is not None and zygote.poll() is None      # both starts went through one zygote
    shims = [json.loads((runtime.root / "containers" / c / "started.json").read_text())["shim_pid"]
             for c in (first, second)]
    pids = [(await wait_state(runtime, c, "running")).pid for c in (first, second)]
    for shim, pid in zip(shims, pids):
        assert _parent_pid(pid) == shim            # the shim reaps its container (subreaper)
        assert _parent_pid(shim) != zygote.pid     # and was handed away from the zygote
        assert os.getsid(shim) == shim             # in a session of its own
    runtime.close()                                # as the agent does when it stops
    assert zygote.returncode == 0
    assert [(await runtime.container_status(c)).pid for c in (first, second)] == pids
    # A later start brings up a new zygote; the old containers still report their exit.
    third = await run(runtime, sandbox, tmp_path, ["true"])
    assert runtime.shims._zygote.pid != zygote.pid
    assert (await wait_state(runtime, third, "exited")).exit_code == 0
    # Without a zygote (it could not be started) each shim is a fresh interpreter, same behaviour.
    runtime.close()
    runtime.shims._zygote_failed = True
    fresh = await run(runtime, sandbox, tmp_path, ["sh", "-c", "echo fresh"])
    assert runtime.shims._zygote is None
    assert [line for _, _, line in log_lines(await wait_state(runtime, fresh, "exited"))] == [b"fresh"]
    await runtime.stop_container(first, 0.2)      # sh as PID 1 ignores SIGTERM: SIGKILL follows
    status = await runtime.container_status(first)
    assert (status.state, status.exit_code) == ("exited", 137)
    assert [line for _, _, line in log_lines(status)] == [b"one"]


async def test_a_created_container_runs_nothing_until_started(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    log = tmp_path / "created.log"
    cid = await runtime.create_container(sandbox, ContainerConfig(name="c", image="busybox",
                                                                  command=["sh", "-c", "echo hi; sleep 1000"],
                                                                  log_path=str(log)))
    created = await runtime.container_status(cid)
    assert (created.state, created.pid) == ("created", None)
    init = json.loads((runtime.root / "containers" / cid / "created.json").read_text())["pid"]
    # runc's init is parked before exec: it is not the container's command yet.
    assert b"runc" in Path(f"/proc/{init}/cmdline").read_bytes()
    assert not log.exists() or log.read_bytes() == b""
    assert runc_state(runtime, cid) == "created"
    await runtime.start_container(cid)
    status = await wait_state(runtime, cid, "running")
    assert status.pid == init and runc_state(runtime, cid) == "running"     # runc agrees
    assert wait_for_log(log, b"hi")
    with pytest.raises(RuntimeFailure) as err:
        await runtime.start_container(cid)
    assert err.value.reason == "StartError"
    # Removing a container that was created but never started leaves nothing behind.
    never = await runtime.create_container(sandbox, ContainerConfig(name="d", image="busybox", command=["true"],
                                                                    log_path=str(tmp_path / "never.log")))
    never_init = json.loads((runtime.root / "containers" / never / "created.json").read_text())["pid"]
    await runtime.remove_container(never)
    assert not (runtime.root / "containers" / never).exists()
    assert not os.path.exists(f"/proc/{never_init}")


def runc_state(rt, cid: str) -> str:
    out = subprocess.run(["runc", "--root", str(rt.runc_root), "state", cid], capture_output=True, text=True)
    return json.loads(out.stdout)["status"]


def wait_for_log(path: Path, text: bytes, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_bytes():
            return True
        time.sleep(0.02)
    return False


async def test_exec_stream_pipes_and_tty(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    cid = await run(runtime, sandbox, tmp_path, ["sleep", "1000"])
    await wait_state(runtime, cid, "running")
    proc = await runtime.exec_stream(cid, ["sh", "-c", "cat; echo done >&2; exit 5"], tty=False, stdin=True)
    proc.stdin.write(b"through stdin\n")
    await proc.stdin.drain()
    proc.stdin.close()
    assert await proc.stdout.read() == b"through stdin\n"
    assert await proc.stderr.read() == b"done\n"
    assert await proc.wait() == 5
    # kubectl sends the terminal size right after starting, so does this test; the process
    # waits for the size to reach its pty (runc relays it), then reads a line from it.
    tty = await runtime.exec_stream(cid, ["sh", "-c", "[ -t 0 ] && echo is-a-tty; "
                                                      "until [ \"$(stty size)\" = '40 100' ]; do sleep 0.02; done; "
                                                      "echo resized; read x; echo got-$x"], tty=True, stdin=True)
    tty.resize(100, 40)
    assert b"is-a-tty" in await asyncio.wait_for(tty.stdout.readuntil(b"resized"), 10)
    tty.stdin.write(b"go\r")
    rest = await asyncio.wait_for(tty.stdout.read(), 10)
    assert b"got-go" in rest
    assert await tty.wait() == 0
    # A process that never reads its terminal cannot stall the caller's event loop.
    deaf = await runtime.exec_stream(cid, ["sleep", "1"], tty=True, stdin=True)
    started = time.monotonic()
    deaf.stdin.write(b"x" * (1 << 20))
    assert time.monotonic() - started < 0.5
    assert await asyncio.wait_for(deaf.wait(), 10) == 0


async def test_attach_to_a_stdin_container(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    cid = await run(runtime, sandbox, tmp_path, ["sh", "-c", "read line; echo got $line; exit 2"],
                    stdin=True, stdin_once=True)
    await wait_state(runtime, cid, "running")
    proc = await runtime.attach(cid)
    proc.stdin.write(b"hello\n")
    await proc.stdin.drain()
    assert await asyncio.wait_for(proc.stdout.read(), 10) == b"got hello\n"
    assert await proc.wait() == 2
    assert ("stdout", "F", b"got hello") in log_lines(await runtime.container_status(cid))


async def test_shared_process_namespace(runtime, tmp_path):
    sandbox = await sandbox_for(runtime, share_process_namespace=True)
    assert sandbox.pid_ns_path and runtime.sandbox_ready(sandbox.id)
    first = await run(runtime, sandbox, tmp_path, ["sleep", "1000"])
    await wait_state(runtime, first, "running")
    second = await run(runtime, sandbox, tmp_path, ["sleep", "999"])
    await wait_state(runtime, second, "running")
    code, out = await runtime.exec_sync(second, ["ps", "-o", "args"], 10)
    assert code == 0 and b"sleep 1000" in out and b"sleep 999" in out
    # As after a reboot: namespace files without their mounts, no PID namespace holder.
    namespaces.unmount(Path(sandbox.netns_path))
    assert not runtime.sandbox_ready(sandbox.id) and not runtime.sandbox_ready("missing")


async def test_bad_input_is_a_runtime_failure(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    with pytest.raises(RuntimeFailure) as err:
        await runtime.create_container(sandbox, ContainerConfig(name="c", image="busybox", command=["x"],
                                                                mounts=[Mount("/m", "/does/not/exist")]))
    assert err.value.reason == "CreateContainerError"
    cid = await runtime.create_container(sandbox, ContainerConfig(name="c", image="busybox",
                                                                  command=["/no/such/binary"],
                                                                  log_path=str(tmp_path / "x.log")))
    with pytest.raises(RuntimeFailure) as err:
        await runtime.start_container(cid)
    status = await runtime.container_status(cid)
    assert (status.state, status.reason, status.exit_code) == ("exited", "StartError", 128)
    assert status.message.startswith("failed to create containerd task: failed to create shim task: OCI runtime "
                                     "create failed: runc create failed: unable to start container process: ")
    assert "/no/such/binary" in status.message
    with pytest.raises(RuntimeFailure):
        await runtime.container_status("nope")


async def test_the_nginx_image_serves_its_welcome_page(runtime, tmp_path):
    sandbox = await sandbox_for(runtime, "web")
    # No CNI here: bring the pod's loopback up from the host side.
    subprocess.run(["nsenter", f"--net={sandbox.netns_path}", "ip", "link", "set", "lo", "up"], check=True)
    log = tmp_path / "nginx.log"
    web = await runtime.create_container(sandbox, ContainerConfig(name="nginx", image="nginx", log_path=str(log)))
    await runtime.start_container(web)
    await wait_state(runtime, web, "running")
    client = await run(runtime, sandbox, tmp_path, ["sh", "-c", "until wget -qO- http://127.0.0.1/; do sleep 0.05; done"])
    status = await wait_state(runtime, client, "exited", timeout=20)
    assert status.exit_code == 0
    assert any(b"Welcome to nginx!" in c for _, _, c in log_lines(status))
    # The access log is a symlink to stdout, so the request shows up in the container log.
    assert b'"GET / HTTP/1.1" 200' in log.read_bytes()
    await runtime.stop_container(web, 10)          # the image's StopSignal (SIGQUIT) ends nginx gracefully
    assert (await runtime.container_status(web)).exit_code == 0


async def test_container_logs_rotate_by_size(runtime, tmp_path, image_root):
    small = RuncRuntime(runtime.root, images=ImageStore(image_root), log_max_size=2000, log_max_files=3)
    sandbox = await sandbox_for(runtime)
    cid = await run(small, sandbox, tmp_path, ["seq", "1", "500"])
    status = await wait_state(small, cid, "exited")
    log = Path(status.log_path)
    rotated = sorted(p for p in log.parent.iterdir() if p.name.startswith(log.name + "."))
    assert len(rotated) == 2 and log.stat().st_size <= 2000
    assert log_lines(status)[-1] == ("stdout", "F", b"500")
    kept = b"".join(p.read_bytes() for p in rotated) + log.read_bytes()
    assert b" stdout F 499\n" in kept and b" stdout F 1\n" not in kept


async def test_host_network_and_privileged(runtime, tmp_path):
    sandbox = await sandbox_for(runtime, host_network=True, host_ipc=True)
    assert sandbox.netns_path is None and sandbox.uts_ns_path is None and sandbox.ipc_ns_path is None
    cid = await run(runtime, sandbox, tmp_path, ["sh", "-c", "hostname; readlink /proc/self/ns/net; "
                                                             "grep CapEff /proc/self/status"], privileged=True)
    status = await wait_state(runtime, cid, "exited")
    out = [c for s, _, c in log_lines(status) if s == "stdout"]
    assert out[0] == os.uname().nodename.encode() and out[1] == os.readlink("/proc/self/ns/net").encode()
    assert out[2].split()[1] != b"00000000a80425fb"       # more than Docker's default set
    plain = await run(runtime, sandbox, tmp_path, ["sh", "-c", "grep CapEff /proc/self/status"],
                      capabilities_drop=["ALL"])
    status = await wait_state(runtime, plain, "exited")
    assert log_lines(status)[0][2].split()[1] == b"0000000000000000"


async def test_a_shared_cgroup_parent_is_left_alone(runtime, tmp_path):
    shared = f"{runtime.test_prefix}/shared"
    first = await runtime.run_sandbox(SandboxConfig(pod_uid="a", name="a", namespace="d", hostname="a",
                                                    cgroup_parent=shared))
    second = await runtime.run_sandbox(SandboxConfig(pod_uid="b", name="b", namespace="d", hostname="b",
                                                     cgroup_parent=shared))
    survivor = await run(runtime, first, tmp_path, ["sleep", "1000"])
    pid = (await wait_state(runtime, survivor, "running")).pid
    await runtime.remove_sandbox(second.id)        # did not create the parent: must not empty it
    status = await runtime.container_status(survivor)
    assert (status.state, status.pid) == ("running", pid)
    await runtime.remove_sandbox(first.id)         # created it, so removes it (the fixture checks)
    assert await runtime.list_containers() == []


async def test_a_tty_container_logs_and_attaches_through_its_pty(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    cid = await run(runtime, sandbox, tmp_path,
                    ["sh", "-c", "[ -t 1 ] && echo on-a-tty; until [ \"$(stty size)\" = '30 120' ]; "
                                 "do sleep 0.02; done; read x; echo got-$x"],
                    tty=True, stdin=True)
    await wait_state(runtime, cid, "running")
    proc = await runtime.attach(cid)
    proc.resize(120, 30)
    proc.stdin.write(b"hi\r")
    await proc.stdin.drain()
    assert b"got-hi" in await asyncio.wait_for(proc.stdout.read(), 10)
    assert await proc.wait() == 0
    status = await runtime.container_status(cid)
    contents = [c for _, _, c in log_lines(status)]
    # (the terminal echoes "hi" whenever it arrives, maybe before the shell's first line)
    assert b"on-a-tty" in contents and any(c.startswith(b"got-hi") for c in contents)


async def test_attach_input_the_container_does_not_read_never_stalls_its_output(runtime, tmp_path):
    sandbox = await sandbox_for(runtime)
    cid = await run(runtime, sandbox, tmp_path,
                    # ~200 KB of output (more than a pipe holds) before it reads anything
                    ["sh", "-c", "sleep 0.5; for i in $(seq 1 4000); do echo tick-$i-padding-padding-padding-padding; done; "
                                 "head -c 5; echo; exit 0"],
                    stdin=True)
    await wait_state(runtime, cid, "running")
    proc = await runtime.attach(cid)
    proc.stdin.write(b"abcde" + b"z" * (1 << 20))     # far more than a pipe holds, unread for a while
    await proc.stdin.drain()
    out = await asyncio.wait_for(proc.stdout.read(), 15)
    assert b"tick-4000-" in out and b"abcde" in out
    assert await proc.wait() == 0
