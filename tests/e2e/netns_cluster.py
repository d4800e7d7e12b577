"""A whole single-node k8py cluster inside a network namespace this module makes.

`k8py server` (API, controllers, scheduler, kubelet with runc, kube-proxy, DNS)
runs inside a fresh network namespace, entered with `nsenter --net` (not
`ip netns exec`, which remounts /sys and hides the cgroup mounts runc needs),
with the local image registry (scripts/test_registry.py) inside the same
namespace as the mirror of docker.io. kube-proxy's chains and the pod bridge
live in that namespace, never in the host's tables. Use `node_in_namespace`
as a module-scoped fixture body.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, wait_for


def sh(*argv, check=True, input=None, timeout=60):
    result = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {result.stdout}\n{result.stderr}")
    return result


class NodeInNamespace:
    def __init__(self, workdir: Path, server_args: tuple[str, ...] = ()):
        self.server_args = tuple(server_args)  # e.g. ("--disable", "controller-manager")
        self.ns = f"k8pynode{secrets.token_hex(2)}"
        self.nsfile = f"/var/run/netns/{self.ns}"
        self.workdir = workdir
        self.data = workdir / "data"
        self.processes: list[subprocess.Popen] = []

    def enter(self, *argv):
        return ["nsenter", f"--net={self.nsfile}", *argv]

    def up(self):
        sh("ip", "netns", "add", self.ns)
        run = lambda *a: sh(*self.enter(*a))  # noqa: E731
        run("ip", "link", "set", "lo", "up")
        # A routed "uplink" inside the namespace gives the node a default route that goes nowhere.
        run("ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
        run("ip", "addr", "add", "192.168.90.1/24", "dev", "up0")
        run("ip", "addr", "add", "192.168.90.2/24", "dev", "up1")
        run("ip", "link", "set", "up0", "up")
        run("ip", "link", "set", "up1", "up")
        run("ip", "route", "add", "default", "via", "192.168.90.2", "dev", "up0")
        registry_dir = self.workdir / "registry"
        self.registry = self._start(["python", str(REPO / "scripts" / "test_registry.py"), "--port", "5000",
                                     "--dir", str(registry_dir)], "registry.log")
        wait_for(lambda: (registry_dir / "registries.yaml").exists(), timeout=120, what="test registry")
        (self.data / "agent").mkdir(parents=True, exist_ok=True)
        shutil.copy(registry_dir / "registries.yaml", self.data / "agent" / "registries.yaml")
        self.server = self._start(["python", "-m", "k8py", "server", "--data-dir", str(self.data), "--token", "t",
                                   "--node-name", "svcnode", *self.server_args], "server.log")
        wait_for(lambda: self.kubectl("get", "nodes", check=False).stdout.count(" Ready") == 1, timeout=60,
                 what="node Ready")
        return self

    def _start(self, argv, log):
        argv = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
        p = subprocess.Popen(self.enter(*argv), stdout=open(self.workdir / log, "ab"), stderr=subprocess.STDOUT,
                             cwd=REPO)
        self.processes.append(p)
        return p

    def kubectl(self, *args, check=True, input=None):
        return sh(*self.enter("kubectl", f"--kubeconfig={self.data / 'kubeconfig.yaml'}", *args), check=check,
                   input=input)

    def kubectl_json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def pod_pid(self, name: str) -> int:
        status = self.kubectl_json("get", "pod", name)["status"]["containerStatuses"][0]
        container_id = status["containerID"].split("://", 1)[1]
        state = sh("runc", "--root", str(self.data / "agent" / "runc" / "runc"), "state", container_id)
        return json.loads(state.stdout)["pid"]

    def in_pod(self, pid: int, *argv, input=None, check=False, timeout=20):
        return sh("nsenter", "-t", str(pid), "-a", *argv, input=input, check=check, timeout=timeout)

    def down(self):
        self.kubectl("delete", "deployment,replicaset,pod,service", "--all", "--grace-period=1", check=False)
        if getattr(self, "server", None) is not None:
            wait_for(lambda: "Running" not in self.kubectl("get", "pods", check=False).stdout, timeout=30,
                     what="pods gone")
        for p in reversed(self.processes):
            if p.poll() is None:
                # The registry script stops its docker-registry child on Ctrl-C, not on SIGTERM.
                p.send_signal(signal.SIGINT if p is getattr(self, "registry", None) else signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self._remove_leftover_containers()
        sh("ip", "netns", "del", self.ns, check=False)

    def _remove_leftover_containers(self):
        """The agent leaves containers running on purpose (a restart adopts them): remove them here."""
        code = ("import asyncio, sys\nfrom pathlib import Path\nfrom k8py.kubelet.runtime.runc import RuncRuntime\n"
                "async def main():\n    rt = RuncRuntime(Path(sys.argv[1]))\n"
                "    for c in await rt.list_containers():\n        await rt.remove_container(c.id)\n"
                "    for s in await rt.list_sandboxes():\n        await rt.remove_sandbox(s.id)\n"
                "asyncio.run(main())\n")
        if (self.data / "agent" / "runc").exists():
            sh(*self.enter(sys.executable, "-c", code, str(self.data / "agent" / "runc")), check=False)


def node_in_namespace(tmp_path_factory, server_args: tuple[str, ...] = ()):
    """Yield a started NodeInNamespace; always torn down, also when start-up fails."""
    pytest.importorskip("k8py.kubelet.runtime.runc", reason="the runc node agent is not in this tree")
    if not (REPO / "scripts" / "test_registry.py").exists():
        pytest.skip("scripts/test_registry.py (the local image registry) is not in this tree")
    n = NodeInNamespace(tmp_path_factory.mktemp("netnscluster"), server_args)
    try:
        n.up()
    except BaseException:
        n.down()
        raise
    yield n
    n.down()
