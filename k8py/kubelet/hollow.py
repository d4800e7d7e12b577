"""Hollow nodes: many simulated kubelets in one process, for scale tests (like KWOK).

Each node gets its own SimulatedRuntime (runtime/simulated.py) and a
HollowNetwork handing out pod IPs; all share one API client. Each serves the
kubelet API's stats endpoints (/stats/summary, /metrics/resource) on a port of
its own on 127.0.0.1, reported in the Node's daemonEndpoints, with synthetic
usage (synthetic_usage.py) so metrics-server and the autoscalers can be driven.
"""

from __future__ import annotations

import asyncio
import logging

from k8py.kubelet.agent import AgentConfig, Kubelet
from k8py.kubelet.runtime.interface import Sandbox

log = logging.getLogger("k8py.kubelet.hollow")

HOLLOW_CAPACITY = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}


class ContainerlessEvents:
    """The hollow kubelet's recorder for pods: there are no images to pull and no containers to
    create, start or kill, so the Normal events that report those steps (Pulling, Pulled,
    Created, Started, Killing) would describe work that never happened. KWOK's nodes emit none
    either; warnings and pod-level events still go through."""

    def __init__(self, recorder):
        self.recorder = recorder

    def event(self, obj: dict, type_: str, reason: str, message: str, field_path: str | None = None) -> None:
        if type_ == "Normal" and field_path:
            return
        self.recorder.event(obj, type_, reason, message, field_path=field_path)

    async def flush(self) -> None:
        await self.recorder.flush()

    async def close(self) -> None:
        await self.recorder.close()


class HollowNetwork:
    """Pod IPs from the node's podCIDR with no interfaces behind them (KWOK hands out IPs too),
    so Services and EndpointSlices over hollow pods look like real ones."""

    def __init__(self, pod_cidr: str):
        import ipaddress
        self.network = ipaddress.ip_network(pod_cidr, strict=False)
        self._free = iter(self.network.hosts())
        next(self._free, None)               # .1 is the gateway on real nodes
        self._released: list[str] = []
        self._by_sandbox: dict[str, str] = {}

    async def ensure_host_networking(self) -> None:
        return None

    async def setup(self, sandbox: Sandbox, pod: dict) -> str | None:
        if sandbox.id in self._by_sandbox:
            return self._by_sandbox[sandbox.id]
        ip = self._released.pop() if self._released else str(next(self._free, "") or "")
        if not ip:
            raise RuntimeError(f"no pod IPs left in {self.network}")
        self._by_sandbox[sandbox.id] = ip
        return ip

    async def teardown(self, sandbox: Sandbox, pod: dict) -> None:
        ip = self._by_sandbox.pop(sandbox.id, None)
        if ip:
            self._released.append(ip)


def _stats_server_factory(base: AgentConfig, default_usage: tuple[int, int]):
    """A kubelet API per hollow node on its address and a port the OS picks, one self-signed
    certificate for all; callers need a cluster-CA client certificate, checked by RBAC, when the
    agent knows the CA (base.client_ca_file)."""
    from k8py.kubelet.server import KubeletServer
    from k8py.kubelet.serving import ensure_serving_cert
    from k8py.kubelet.synthetic_usage import SyntheticUsage
    address = base.node_ip or "127.0.0.1"          # what run_hollow_nodes gives every node
    cert, key = ensure_serving_cert(base.data_dir / "hollow-tls", base.node_name, [address])

    def build(kubelet: Kubelet) -> KubeletServer:
        def pod_of(namespace: str, name: str) -> dict | None:
            return kubelet.informer.get(f"{namespace}/{name}") if kubelet.informer is not None else None

        kubelet.runtime.usage_model = SyntheticUsage(pod_of, default_usage)
        server = KubeletServer(kubelet.runtime, pod_of, cert, key, 0, bind_address=address,
                               client_ca_file=base.client_ca_file, node_name=kubelet.config.node_name)
        if base.client_ca_file:
            from k8py.kubelet.authz import SubjectAccessReviewer
            server.authorizer = SubjectAccessReviewer(kubelet.client, kubelet.config.node_name)
        return server
    return build


async def run_hollow_nodes(client, base: AgentConfig, count: int, runtime_factory,
                           network_client=None, default_usage: tuple[int, int] = (0, 0)) -> list[Kubelet]:
    """Register `count` simulated nodes named <node-name>-<i>. `client` is one API client for
    all, or an async function giving each node name its own (each node its own identity).
    default_usage: what each container uses without the simulated-usage annotation."""
    kubelets = []
    server_factory = _stats_server_factory(base, default_usage)
    for i in range(count):
        config = AgentConfig(node_name=f"{base.node_name}-{i}" if count > 1 else base.node_name,
                             data_dir=base.data_dir / f"hollow-{i}", node_ip=base.node_ip or "127.0.0.1",
                             cluster_dns=base.cluster_dns, cluster_domain=base.cluster_domain,
                             materialize_volumes=False, run_probes=False,
                             fixed_capacity=dict(HOLLOW_CAPACITY), relist_seconds=2.0,
                             node_labels={"type": "hollow", **base.node_labels},
                             node_lease_duration_seconds=base.node_lease_duration_seconds)
        node_client = await client(config.node_name) if callable(client) else client
        kubelet = Kubelet(node_client, config, runtime_factory(), network_factory=HollowNetwork,
                          server_factory=server_factory)
        kubelet.network_client = network_client or node_client
        kubelet.pod_cidr_wait = 0.0
        kubelet.recorder = ContainerlessEvents(kubelet.recorder)
        kubelets.append(kubelet)
    # Register in small batches: fast, without a thundering herd on the API server.
    for start in range(0, count, 20):
        await asyncio.gather(*(k.start() for k in kubelets[start:start + 20]))
    log.info("%d hollow nodes registered", count)
    return kubelets
