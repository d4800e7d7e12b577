"""The whole node-side path with real parts: a runc pod (RuncRuntime, busybox
from the local registry) wired by PodNetwork's CNI plugins, served by the
KubeletServer, reached by the real kubectl through the API server.

The CNI host side lives in a network namespace this test makes, so the
machine's own network is untouched.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess

import pytest

from k8py.apiserver import pki as pki_mod
from k8py.kubelet.network.cni import PodNetwork
from k8py.kubelet.runtime.interface import (LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE,
                                            LABEL_POD_UID, LABEL_RESTART_COUNT, ContainerConfig, SandboxConfig)
from k8py.kubelet.server import KubeletServer
from tests.e2e import test_runc_runtime as runc_runtime_tests
from tests.e2e.test_runc_runtime import wait_state

from .conftest import free_port, kubectl_binary

pytest_plugins = ["tests.e2e.registry"]     # the session's image_registry fixture
# test_runc_runtime's fixtures (a RuncRuntime over the registry's busybox), bound here to be shared.
image_root, runtime = runc_runtime_tests.image_root, runc_runtime_tests.runtime

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runc containers and network namespaces need root")

WEB_SCRIPT = ("mkdir -p /tmp/www && echo 'hello from runc' > /tmp/www/index.html && "
              "httpd -p 8080 -h /tmp/www && echo started && exec sleep 3600")


def run_in_terminal(argv: list[str], rows: int, cols: int) -> str:
    """Run argv on a pseudo-terminal of the given size; returns what it printed."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:      # EIO: the terminal's other side is gone
                break
            if not chunk:
                break
            out += chunk
        proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out.decode(errors="replace")


async def kubectl(server, *args, input: str | None = None, check=True, timeout=60):
    return await asyncio.to_thread(server.kubectl, *args, input=input, check=check, timeout=timeout)


@pytest.fixture
async def host_netns():
    name = f"knrunc-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


async def test_runc_pod_streams_through_kubectl(server, namespace, runtime, host_netns, tmp_path):
    node_name, port = f"knr-{secrets.token_hex(3)}", free_port()
    pki = pki_mod.pki_paths(server.data_dir / "server" / "tls")
    cert, key = pki_mod.issue_serving_cert(pki, node_name, ["127.0.0.1"])
    (tmp_path / "k.crt").write_bytes(cert)
    (tmp_path / "k.key").write_bytes(key)
    pods: dict = {}
    kubelet = KubeletServer(runtime, lambda ns, n: pods.get((ns, n)), tmp_path / "k.crt", tmp_path / "k.key", port,
                            client_ca_file=pki.ca_cert)
    network = PodNetwork(tmp_path / "agent" / "etc" / "cni" / "net.d", pod_cidr="10.88.3.0/24",
                         cluster_cidr="10.88.0.0/16", service_cidr="10.89.0.0/16", host_netns=host_netns)
    await network.ensure_host_networking()
    await kubelet.start()
    sandbox = None
    try:
        await kubectl(server, "create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name}}))
        await kubectl(server, "patch", "node", node_name, "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}))
        await kubectl(server, "create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": namespace},
             "spec": {"nodeName": node_name, "containers": [{"name": "app", "image": "busybox"},
                                                         {"name": "att", "image": "busybox", "stdin": True}]}}))
        pod = json.loads((await kubectl(server, "get", "pod", "web", "-n", namespace, "-o", "json")).stdout)
        uid = pod["metadata"]["uid"]
        sandbox = await runtime.run_sandbox(SandboxConfig(pod_uid=uid, name="web", namespace=namespace,
                                                          hostname="web",
                                                          cgroup_parent=f"{runtime.test_prefix}/pod{uid}"))
        pod_ip = await network.setup(sandbox, pod)
        labels = {LABEL_POD_UID: uid, LABEL_POD_NAME: "web", LABEL_POD_NAMESPACE: namespace,
                  LABEL_CONTAINER_NAME: "app", LABEL_RESTART_COUNT: "0"}
        cid = await runtime.create_container(sandbox, ContainerConfig(
            name="app", image="busybox", command=["sh", "-c", WEB_SCRIPT],
            log_path=str(tmp_path / "logs" / "app.log"), labels=labels))
        await runtime.start_container(cid)
        await wait_state(runtime, cid, "running")
        att = await runtime.create_container(sandbox, ContainerConfig(
            name="att", image="busybox", command=["sh", "-c", "read line; echo got $line; sleep 1"], stdin=True,
            log_path=str(tmp_path / "logs" / "att.log"), labels={**labels, LABEL_CONTAINER_NAME: "att"}))
        await runtime.start_container(att)
        await wait_state(runtime, att, "running")
        await kubectl(server, "patch", "pod", "web", "-n", namespace, "--subresource=status", "--type=merge", "-p",
                      json.dumps({"status": {"phase": "Running", "podIP": pod_ip}}))
        pods[(namespace, "web")] = pod

        async def logged():
            for _ in range(100):
                out = (await kubectl(server, "logs", "web", "-n", namespace, "-c", "app")).stdout
                if out:
                    return out
                await asyncio.sleep(0.1)
        assert await logged() == "started\n"

        # exec: output, exit codes, stdin
        assert (await kubectl(server, "exec", "web", "-n", namespace, "-c", "app", "--", "hostname")).stdout == "web\n"
        failed = await kubectl(server, "exec", "web", "-n", namespace, "-c", "app", "--", "sh", "-c", "exit 3", check=False)
        assert failed.returncode == 3
        ip_out = (await kubectl(server, "exec", "web", "-n", namespace, "-c", "app", "--", "ip", "-4", "addr", "show", "eth0")).stdout
        assert f"inet {pod_ip}/24" in ip_out

        # a terminal: kubectl sends its window size on the resize channel
        tty_out = await asyncio.to_thread(run_in_terminal, [
            kubectl_binary(), f"--kubeconfig={server.kubeconfig}", f"--cache-dir={server.cache_dir}",
            "exec", "-it", "web", "-n", namespace, "-c", "app", "--", "sh", "-c",
            # the size arrives just after the command starts, as with upstream: wait for it
            "for i in $(seq 50); do [ \"$(stty size 2>/dev/null)\" = '33 101' ] && break; sleep 0.1; done; "
            "stty size; tty"], 33, 101)
        assert "33 101" in tty_out and "/dev/pts/" in tty_out

        # cp both ways (tar inside the container)
        (tmp_path / "up.txt").write_text("to the pod\n")
        await kubectl(server, "cp", "-n", namespace, str(tmp_path / "up.txt"), "web:/tmp/up.txt", "-c", "app")
        assert (await kubectl(server, "exec", "web", "-n", namespace, "-c", "app", "--", "cat", "/tmp/up.txt")).stdout == \
            "to the pod\n"
        await kubectl(server, "cp", "-n", namespace, "web:/tmp/www/index.html", str(tmp_path / "down.html"), "-c", "app")
        assert (tmp_path / "down.html").read_text() == "hello from runc\n"

        # port-forward into the pod's network namespace, served to curl
        local = free_port()
        forward = await asyncio.create_subprocess_exec(
            kubectl_binary(), f"--kubeconfig={server.kubeconfig}", f"--cache-dir={server.cache_dir}",
            "port-forward", "-n", namespace, "pod/web", f"{local}:8080",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert b"Forwarding from" in await asyncio.wait_for(forward.stdout.readline(), 20)
            curl = await asyncio.create_subprocess_exec("curl", "-s", "--max-time", "10",
                                                        f"http://127.0.0.1:{local}/index.html",
                                                        stdout=asyncio.subprocess.PIPE)
            body, _ = await curl.communicate()
            assert body == b"hello from runc\n"
        finally:
            forward.kill()
            await forward.wait()

        # attach to a container reading its stdin
        attached = await kubectl(server, "attach", "-i", "web", "-n", namespace, "-c", "att", input="hello\n",
                                 timeout=30)
        assert "got hello" in attached.stdout
    finally:
        await kubelet.stop()
        if sandbox is not None:
            await network.teardown(sandbox, pods.get((namespace, "web")) or {"metadata": {}})
        await network.cleanup()
        await kubectl(server, "delete", "node", node_name, "--wait=false", check=False)
