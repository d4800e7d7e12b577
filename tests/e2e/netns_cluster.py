"""A whole single-node k8py cluster inside a network namespace this module makes.

`k8py server` (API, controllers, scheduler, kubelet with runc, kube-proxy, DNS)
runs inside a fresh network namespace, entered with `nsenter --net` (not
`ip netns exec`, which remounts /sys and hides the cgroup mounts runc needs),
with the local image registry (scripts/test_registry.py) inside the same
namespace as the mirror of docker.io. kube-proxy's chains and the pod bridge
live in that namespace, never in the host's tables. Use `node_in_namespace`
as a module-scoped fixture body.

`two_nodes_in_namespaces` adds a second node: `k8py agent` in a namespace of
its own, joined to the server's by a veth pair on LINK.0/24 over which it
reaches the API (the server binds LINK.1), pulls from the registry and routes
pod traffic (docs/node-network-and-streams.md, "Several nodes").
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import REPO, wait_for

LINK = "192.168.91"     # the private subnet between the two nodes' namespaces


def sh(*argv, check=True, input=None, timeout=60):
    result = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {result.stdout}\n{result.stderr}")
    return result


class NodeInNamespace:
    # Set before up(): the API server (and the registry) then listen on this address of the
    # namespace, where a second node's agent reaches them (see TwoNodes).
    api_address: str | None = None
    token = "t"
    node_name = "svcnode"

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
        self.make_namespace()
        self.start_registry()
        self.start_server()
        wait_for(lambda: self.kubectl("get", "nodes", check=False).stdout.count(" Ready") == 1, timeout=60,
                 what="node Ready")
        return self

    def make_namespace(self):
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

    def start_registry(self):
        registry_dir = self.workdir / "registry"
        # With a second node the registry answers on the link between the namespaces too.
        listen = "0.0.0.0" if self.api_address else "127.0.0.1"
        self.registry = self._start(["python", str(REPO / "scripts" / "test_registry.py"), "--port", "5000",
                                     "--dir", str(registry_dir), "--listen-host", listen], "registry.log")
        wait_for(lambda: (registry_dir / "registries.yaml").exists(), timeout=120, what="test registry")
        (self.data / "agent").mkdir(parents=True, exist_ok=True)
        shutil.copy(registry_dir / "registries.yaml", self.data / "agent" / "registries.yaml")

    def start_server(self):
        bind = ["--bind-address", self.api_address] if self.api_address else []
        self.server = self._start(["python", "-m", "k8py", "server", "--data-dir", str(self.data), "--token",
                                   self.token, "--node-name", self.node_name, *bind, *self.server_args],
                                  "server.log")

    @property
    def api_url(self) -> str:
        return f"https://{self.api_address or '127.0.0.1'}:6443"

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
        return pod_pid(self.kubectl_json, self.data / "agent" / "runc" / "runc", name)

    def in_pod(self, pid: int, *argv, input=None, check=False, timeout=20):
        return sh("nsenter", "-t", str(pid), "-a", *argv, input=input, check=check, timeout=timeout)

    def down(self):
        try:
            if getattr(self, "server", None) is not None and self.server.poll() is None:
                delete_workloads(self.kubectl, nodes=(self.node_name,))
        finally:
            stop_processes(self.processes, interrupt=getattr(self, "registry", None))
            self._remove_leftover_containers()
            unmount_under(self.workdir)
            sh("ip", "netns", "del", self.ns, check=False)

    def _remove_leftover_containers(self):
        remove_containers(self.enter, self.data / "agent" / "runc")


def delete_workloads(kubectl, nodes: tuple[str, ...] | None = None) -> None:
    """Delete what tests made and wait (bounded) until the kubelets of `nodes` (None: all)
    have torn their pods down, volumes included; whatever is left after that is removed
    directly (remove_containers, unmount_under)."""
    kubectl("delete", "daemonset,deployment,replicaset,pod,service", "--all", "--grace-period=1", "--wait=false",
            check=False)

    def pods_left():
        out = kubectl("get", "pods", "-o", "jsonpath={.items[*].spec.nodeName}", check=False)
        return out.returncode != 0 or [n for n in out.stdout.split() if nodes is None or n in nodes]
    try:
        wait_for(lambda: not pods_left(), timeout=30, what="pods gone")
    except AssertionError:
        pass    # teardown goes on: containers and mounts are removed directly


def stop_processes(processes: list[subprocess.Popen], interrupt: subprocess.Popen | None = None) -> None:
    """Stop the processes we started, newest first, by their own handles."""
    for p in reversed(processes):
        if p.poll() is None:
            # The registry script stops its docker-registry child on Ctrl-C, not on SIGTERM.
            p.send_signal(signal.SIGINT if p is interrupt else signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


REMOVE_CONTAINERS = """
import asyncio, sys
from pathlib import Path
from k8py.kubelet.runtime.runc import RuncRuntime
async def main():
    rt = RuncRuntime(Path(sys.argv[1]))
    for c in await rt.list_containers():
        await rt.remove_container(c.id)
    for s in await rt.list_sandboxes():
        await rt.remove_sandbox(s.id)
asyncio.run(main())
"""


def remove_containers(enter, runc_dir: Path) -> None:
    """An agent leaves containers running on purpose (a restart adopts them): remove them here."""
    if runc_dir.exists():
        sh(*enter(sys.executable, "-c", REMOVE_CONTAINERS, str(runc_dir)), check=False, timeout=120)


def unmount_under(folder: Path) -> None:
    """Volume mounts (tmpfs for secrets, emptyDir) a kubelet had no chance to remove."""
    prefix = str(folder.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        sh("umount", "-l", point, check=False)


def node_in_namespace(tmp_path_factory, server_args: tuple[str, ...] = ()):
    """Yield a started NodeInNamespace; always torn down, also when start-up fails."""
    n = NodeInNamespace(tmp_path_factory.mktemp("netnscluster"), server_args)
    try:
        n.up()
    except BaseException:
        n.down()
        raise
    yield n
    n.down()


class AgentInNamespace:
    """A second node: `k8py agent` (runc, kube-proxy) in its own network namespace,
    joined to the server's namespace by a veth pair; its API, registry and pod
    traffic all cross that link."""

    node_name = "agentnode"

    def __init__(self, workdir: Path, server: NodeInNamespace, address: str):
        self.ns = f"k8pyagent{secrets.token_hex(2)}"
        self.nsfile = f"/var/run/netns/{self.ns}"
        self.workdir = workdir
        self.data = workdir / "agent"
        self.server = server
        self.address = address
        self.processes: list[subprocess.Popen] = []
        self.agent: subprocess.Popen | None = None

    def enter(self, *argv):
        return ["nsenter", f"--net={self.nsfile}", *argv]

    def make_namespace(self):
        sh("ip", "netns", "add", self.ns)
        sh(*self.enter("ip", "link", "set", "lo", "up"))

    def start(self):
        """Join the server's cluster, pulling images from the registry in the server's namespace."""
        self.data.mkdir(parents=True, exist_ok=True)
        mirrors = (self.server.data / "agent" / "registries.yaml").read_text()
        (self.data / "registries.yaml").write_text(mirrors.replace("127.0.0.1", self.server.api_address))
        argv = [sys.executable, "-m", "k8py", "agent", "--server", self.server.api_url, "--token",
                self.server.token, "--data-dir", str(self.data), "--node-name", self.node_name]
        self.agent = subprocess.Popen(self.enter(*argv), stdout=open(self.workdir / "agent.log", "ab"),
                                      stderr=subprocess.STDOUT, cwd=REPO)
        self.processes.append(self.agent)

    def stop_agent(self):
        stop_processes(self.processes)

    def cleanup_command(self) -> list[str]:
        return [sys.executable, "-m", "k8py", "agent", "--cleanup", "--data-dir", str(self.data)]

    @property
    def runc_root(self) -> Path:
        return self.data / "runc" / "runc"

    def pod_pid(self, name: str) -> int:
        return pod_pid(self.server.kubectl_json, self.runc_root, name)

    def in_pod(self, pid: int, *argv, input=None, check=False, timeout=20):
        return sh("nsenter", "-t", str(pid), "-a", *argv, input=input, check=check, timeout=timeout)

    def down(self):
        try:
            self.stop_agent()
        finally:
            remove_containers(self.enter, self.data / "runc")
            unmount_under(self.workdir)
            sh("ip", "netns", "del", self.ns, check=False)


class TwoNodes:
    """The server's node (NodeInNamespace) and an agent's node, each in its own namespace,
    joined by the veth pair `k8link0` (server side, LINK.1) -- `k8link1` (agent side, LINK.2)."""

    def __init__(self, workdir: Path):
        self.server = NodeInNamespace(workdir / "server")
        self.server.workdir.mkdir(parents=True, exist_ok=True)
        self.server.api_address = f"{LINK}.1"
        self.agent = AgentInNamespace(workdir / "agent", self.server, f"{LINK}.2")
        self.agent.workdir.mkdir(parents=True, exist_ok=True)

    def kubectl(self, *args, **kw):
        return self.server.kubectl(*args, **kw)

    def kubectl_json(self, *args):
        return self.server.kubectl_json(*args)

    def up(self):
        self.server.make_namespace()
        self.agent.make_namespace()
        self._link()
        self.server.start_registry()
        self.server.start_server()
        # The agent joins as soon as the API answers; the node IPAM controller gives each node its own podCIDR.
        wait_for(lambda: (self.server.data / "kubeconfig.yaml").exists()
                 and self.kubectl("get", "--raw", "/readyz", check=False).returncode == 0, timeout=60,
                 what="the API server")
        self.agent.start()
        wait_for(lambda: self.kubectl("get", "nodes", check=False).stdout.count(" Ready") == 2, timeout=60,
                 what="both nodes Ready")
        return self

    def _link(self):
        sh(*self.server.enter("ip", "link", "add", "k8link0", "type", "veth", "peer", "name", "k8link1",
                              "netns", self.agent.ns))
        sh(*self.server.enter("ip", "addr", "add", f"{self.server.api_address}/24", "dev", "k8link0"))
        sh(*self.server.enter("ip", "link", "set", "k8link0", "up"))
        sh(*self.agent.enter("ip", "addr", "add", f"{self.agent.address}/24", "dev", "k8link1"))
        sh(*self.agent.enter("ip", "link", "set", "k8link1", "up"))

    def down(self):
        try:
            if getattr(self.server, "server", None) is not None and self.server.server.poll() is None:
                delete_workloads(self.kubectl, nodes=(self.server.node_name,))
        finally:
            try:
                self.agent.stop_agent()
            finally:
                try:
                    self.server.down()   # while the link is up: its kubeconfig points at the link address
                finally:
                    self.agent.down()


def pod_pid(kubectl_json, runc_root: Path, name: str) -> int:
    status = kubectl_json("get", "pod", name)["status"]["containerStatuses"][0]
    container_id = status["containerID"].split("://", 1)[1]
    state = sh("runc", "--root", str(runc_root), "state", container_id)
    return json.loads(state.stdout)["pid"]


def two_nodes_in_namespaces(tmp_path_factory):
    """Yield started TwoNodes; always torn down, also when start-up fails."""
    cluster = TwoNodes(tmp_path_factory.mktemp("twonodes"))
    try:
        cluster.up()
    except BaseException:
        cluster.down()
        raise
    yield cluster
    cluster.down()
