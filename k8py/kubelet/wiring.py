"""Build a Kubelet from flags: runtime (runc or simulated), images, CNI network, streaming server."""

from __future__ import annotations

import logging
from pathlib import Path

from k8py.kubelet.agent import AgentConfig, Kubelet

log = logging.getLogger("k8py.kubelet")

CNI_BIN_DIR = Path("/usr/lib/cni")


def make_runtime(kind: str, data_dir: Path):
    """(runtime, image service or None)."""
    if kind == "simulated":
        from k8py.kubelet.runtime.simulated import SimulatedRuntime
        return SimulatedRuntime(), None
    if kind == "runc":
        from k8py.kubelet.images.store import ImageStore
        from k8py.kubelet.runtime.runc import RuncRuntime
        mirrors = data_dir / "registries.yaml"
        images = ImageStore(data_dir / "images", mirrors if mirrors.exists() else None)
        return RuncRuntime(data_dir / "runc", images=images), images
    raise ValueError(f"unknown runtime {kind!r} (runc or simulated)")


def build_kubelet(client, config: AgentConfig, runtime_kind: str, serve_streams: bool = True) -> Kubelet:
    runtime, images = make_runtime(runtime_kind, config.data_dir)
    server_factory = None
    if runtime_kind == "runc":
        network_factory = _cni_network_factory(config)
    else:
        from k8py.kubelet.hollow import HollowNetwork
        network_factory = HollowNetwork
        config.materialize_volumes = False
        config.run_probes = False
    if serve_streams and runtime_kind == "runc":
        server_factory = _server_factory(config)
    return Kubelet(client, config, runtime, images=images, network_factory=network_factory,
                   server_factory=server_factory)


def _cni_network_factory(config: AgentConfig):
    from k8py.kubelet.network.cni import PodNetwork

    def make(pod_cidr: str):
        return PodNetwork(config.data_dir / "etc" / "cni" / "net.d", CNI_BIN_DIR, pod_cidr=pod_cidr,
                          cluster_cidr=config.cluster_cidr, service_cidr=config.service_cidr,
                          bridge=config.cni_bridge)
    return make


def _server_factory(config: AgentConfig):
    """The kubelet API: a serving certificate from the cluster CA when this agent can sign
    (inside `k8py server`), and only clients with a cluster-CA certificate (the API server)
    may use it, so exec and port-forward are not open to whoever reaches the node."""
    from k8py.kubelet.serving import server_factory
    return server_factory(config.data_dir / "tls", ca_dir=config.ca_dir, client_ca_file=config.client_ca_file)
