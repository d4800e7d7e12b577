"""The node agent (kubelet): wires the node, the runtime, the network and the pod workers.

Pods come from the API (a watch on `spec.nodeName=<node>`) and from static
manifests; each gets a PodWorker. A relist of the runtime every second (the
kubelet's PLEG) wakes the worker of any pod whose containers changed state.
On start it adopts what a previous run left: containers keep running, and
sandboxes of pods that no longer exist are removed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from k8py.client import ApiError, EventRecorder, Informer
from k8py.kubelet.admission import admit
from k8py.kubelet.context import KubeletContext
from k8py.kubelet.node import NodeConfig, NodeManager, pick_pod_cidr
from k8py.kubelet.pod_dns import ClusterDNS
from k8py.kubelet.pod_worker import PodWorker
from k8py.kubelet.tokens import TokenCache, parse_time
from k8py.kubelet.runtime.interface import LABEL_POD_UID, ContainerStatus, Sandbox
from k8py.kubelet.volumes import VolumeContext, VolumeManager

log = logging.getLogger("k8py.kubelet")

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
RELIST_SECONDS = 1.0
_CIDR_LOCKS: dict[int, asyncio.Lock] = {}
_CLAIMED: set[str] = set()


def _cidr_lock() -> asyncio.Lock:
    return _CIDR_LOCKS.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
POD_CIDR_WAIT_SECONDS = 5.0


@dataclass
class AgentConfig:
    node_name: str = field(default_factory=lambda: socket.gethostname().lower())
    data_dir: Path = Path("/var/lib/k8py/agent")
    node_ip: str = ""
    control_plane: bool = False
    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    cluster_dns: str = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    pod_manifest_path: Path | None = None
    kubelet_port: int = 10250
    ca_dir: Path | None = None            # the cluster CA with its key (only inside `k8py server`)
    client_ca_file: Path | None = None    # who may call the kubelet API: holders of a cluster-CA certificate
    cni_bridge: str = "k8py0"
    materialize_volumes: bool = True
    run_probes: bool = True
    fixed_capacity: dict | None = None        # hollow nodes
    node_labels: dict = field(default_factory=dict)
    node_lease_duration_seconds: int = 40     # the kubelet renews its Lease every quarter of it
    relist_seconds: float = RELIST_SECONDS


class Kubelet:
    def __init__(self, client, config: AgentConfig, runtime, images=None, network_factory=None,
                 server_factory=None):
        self.client = client
        self.config = config
        self.runtime = runtime
        self.images = images
        self.network_factory = network_factory   # (pod_cidr) -> PodNetwork
        self.server_factory = server_factory     # (kubelet) -> object with start()/stop()
        self.recorder = EventRecorder(client, "kubelet", host=config.node_name)
        self.workers: dict[str, PodWorker] = {}   # pod uid -> worker
        self.node_manager = NodeManager(client, NodeConfig(
            name=config.node_name, data_dir=config.data_dir,
            runtime_version=f"{runtime.name}://{runtime.version}" if getattr(runtime, "name", "") else "k8py://0",
            control_plane=config.control_plane, node_ip=config.node_ip or "127.0.0.1",
            kubelet_port=config.kubelet_port, labels=dict(config.node_labels),
            fixed_capacity=config.fixed_capacity,
            lease_duration_seconds=config.node_lease_duration_seconds), recorder=self.recorder,
            images_fn=self._node_images if images is not None else None)
        self.informer: Informer | None = None
        # Our own Node as the API has it now (labels change under us): what admission checks pods against.
        self.node_informer: Informer | None = None
        self.static_pods = None
        self.server = None
        self.peer_routes = None
        self.ctx: KubeletContext | None = None
        self._tasks: list[asyncio.Task] = []
        self._last_states: dict[str, str] = {}
        self.pod_cidr_wait = POD_CIDR_WAIT_SECONDS
        # Who reads every Node (peer routes, a free pod CIDR): a node may read only its own,
        # so an agent passes its network identity's client here (k3s's flannel has its own too).
        self.network_client = client
        self._tokens = TokenCache()

    # ---- start / stop ----------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        if not cfg.node_ip:
            from urllib.parse import urlparse
            from k8py.kubelet.hostinfo import node_ip
            cfg.node_ip = node_ip(urlparse(self.client.server).hostname)
            self.node_manager.config.node_ip = cfg.node_ip
        node = await self.node_manager.register()
        pod_cidr = await self._pod_cidr(node)
        network = self.network_factory(pod_cidr) if self.network_factory and pod_cidr else None
        if network is not None:
            await network.ensure_host_networking()
        if network is not None and hasattr(network, "set_peer_routes"):
            # Pods on other nodes are reached through those nodes (routes follow the Node objects).
            from k8py.kubelet.network.peers import PeerRoutes
            self.peer_routes = PeerRoutes(self.network_client, network, cfg.node_name, cfg.cluster_cidr,
                                          cfg.node_ip)
            await self.peer_routes.start()
        volumes = None
        if cfg.materialize_volumes:
            volumes = VolumeManager(cfg.data_dir / "pods", VolumeContext(
                config_map=self._get("configmaps"), secret=self._get("secrets"),
                service_account_token=self._service_account_token,
                persistent_volume_claim=self._claim,
                node_allocatable=(node.get("status") or {}).get("allocatable") or {}))
        self.ctx = KubeletContext(
            node_name=cfg.node_name, node_ip=cfg.node_ip, data_dir=cfg.data_dir, runtime=self.runtime,
            client=self.client, recorder=self.recorder, images=self.images, network=network, volumes=volumes,
            dns=ClusterDNS(servers=[cfg.cluster_dns] if cfg.cluster_dns else [], domain=cfg.cluster_domain),
            node_allocatable=(node.get("status") or {}).get("allocatable") or {},
            run_probes=cfg.run_probes, write_pod_files=cfg.materialize_volumes)
        leftovers = await self._runtime_inventory()
        self.node_informer = Informer(self.client, "v1", "nodes", field_selector=f"metadata.name={cfg.node_name}")
        await self.node_informer.start()
        self.informer = Informer(self.client, "v1", "pods", field_selector=f"spec.nodeName={cfg.node_name}")
        self._leftovers = leftovers
        self.informer.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                  on_delete=self._pod_deleted)
        await self.informer.start()
        if cfg.pod_manifest_path is not None:
            # Static pods first: their running containers are adopted, not taken for orphans.
            from k8py.kubelet.static_pods import StaticPods
            self.static_pods = StaticPods(self, cfg.pod_manifest_path)
            await self.static_pods.start()
        self._leftovers = {}
        # Whatever ran for a pod neither the API nor a manifest has any more is cleaned up now.
        for uid, (sandbox, containers) in leftovers.items():
            if uid not in self.workers:
                self._tasks.append(asyncio.create_task(self._remove_orphan(uid, sandbox, containers)))
        if self.server_factory is not None:
            self.server = self.server_factory(self)
            await self.server.start()
            self.node_manager.config.kubelet_port = getattr(self.server, "port", cfg.kubelet_port)  # port 0: the OS's
        self.node_manager.set_ready(True)
        await self.node_manager.report_status()
        self.node_manager.start()
        self._tasks.append(asyncio.create_task(self._relist_loop(), name="pleg"))
        log.info("node %s registered (podCIDR %s)", cfg.node_name, pod_cidr)

    async def stop(self) -> None:
        """Stop watching and working; containers keep running (a restart adopts them)."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.static_pods is not None:
            await self.static_pods.stop()
        for informer in (self.informer, self.node_informer):
            if informer is not None:
                await informer.stop()
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())), return_exceptions=True)
        if self.server is not None:
            await self.server.stop()
        if self.peer_routes is not None:
            await self.peer_routes.stop()
        await self.node_manager.stop()
        await self.recorder.close()
        close_runtime = getattr(self.runtime, "close", None)
        if close_runtime is not None:
            close_runtime()         # e.g. the runc shim zygote; running containers stay

    # ---- pod CIDR -----------------------------------------------------------------------

    async def _pod_cidr(self, node: dict) -> str | None:
        """The node's podCIDR: the node IPAM controller's if it sets one in time, else the
        first free block of the cluster CIDR, claimed on the Node (spec.podCIDR is write-once)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.pod_cidr_wait
        while True:
            cidr = (node.get("spec") or {}).get("podCIDR")
            if cidr or loop.time() >= deadline or self.network_factory is None:
                break
            await asyncio.sleep(0.5)
            node = await self.node_manager.refresh()
        if cidr:
            self._check_in_cluster_range(cidr)
            return cidr
        if self.network_factory is None:
            return None
        async with _cidr_lock():       # hollow nodes of one process claim one at a time
            nodes = await self.network_client.resource("v1", "nodes").list()
            used = {(n.get("spec") or {}).get("podCIDR") for n in nodes.get("items") or []} | _CLAIMED
            cidr = pick_pod_cidr(self.config.cluster_cidr, {u for u in used if u})
            if cidr is None:
                log.warning("no free pod CIDR left in %s", self.config.cluster_cidr)
                return None
            _CLAIMED.add(cidr)
        log.info("no node IPAM controller assigned a podCIDR in %.0fs; claiming %s", self.pod_cidr_wait, cidr)
        try:
            node = await self.client.resource("v1", "nodes").patch(
                self.config.node_name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except ApiError:
            # spec.podCIDR is write-once: a controller got there first, so take its choice.
            node = await self.node_manager.refresh()
        self.node_manager.node = node
        return (node.get("spec") or {}).get("podCIDR") or cidr

    def _check_in_cluster_range(self, cidr: str) -> None:
        """Routes and masquerading assume the node's slice lies in --cluster-cidr: say so plainly when
        the server's range (its node IPAM controller's) and this agent's disagree."""
        import ipaddress
        try:
            inside = ipaddress.ip_network(cidr, strict=False).subnet_of(
                ipaddress.ip_network(self.config.cluster_cidr, strict=False))
        except (TypeError, ValueError):
            inside = False
        if not inside:
            log.warning("node %s got podCIDR %s outside this agent's --cluster-cidr %s: give the server and "
                        "every agent the same --cluster-cidr", self.config.node_name, cidr, self.config.cluster_cidr)

    # ---- API lookups for volumes --------------------------------------------------------------

    def _get(self, plural: str):
        async def fetch(namespace: str, name: str) -> dict | None:
            try:
                return await self.client.resource("v1", plural, namespace=namespace).get(name)
            except ApiError as e:
                if e.code == 404:
                    return None
                raise
        return fetch

    async def _claim(self, namespace: str, name: str):
        claim = await self._get("persistentvolumeclaims")(namespace, name)
        if claim is None:
            return None, None
        pv_name = (claim.get("spec") or {}).get("volumeName")
        pv = None
        if pv_name:
            try:
                pv = await self.client.resource("v1", "persistentvolumes").get(pv_name)
            except ApiError:
                pv = None
        return claim, pv

    async def _service_account_token(self, namespace: str, service_account: str, audiences: list[str],
                                     expiration: int, pod: dict) -> str:
        """A token from the TokenRequest API (serviceaccounts/<name>/token) bound to the pod,
        reused until upstream's refresh rule says otherwise (kubelet/tokens.py)."""
        key = (namespace, service_account, tuple(audiences), expiration, pod["metadata"]["uid"])
        cached = self._tokens.get(key)
        if cached is not None:
            return cached
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": audiences, "expirationSeconds": expiration,
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                            "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}}}
        try:
            result = await self.client.resource("v1", "serviceaccounts", namespace=namespace).create_subresource(
                service_account, "token", body)
        except ApiError as e:
            # The server may not issue tokens yet: the pod still starts, with an empty token file.
            log.info("token request for %s/%s failed (%s); writing an empty token", namespace, service_account,
                     e.code)
            return ""
        status = result.get("status") or {}
        token, expires = status.get("token", ""), parse_time(status.get("expirationTimestamp", ""))
        if token and expires is not None:
            self._tokens.put(key, token, expires, (result.get("spec") or {}).get("expirationSeconds") or expiration)
        return token

    def _node_images(self) -> list[dict]:
        out = []
        for info in self.images.list()[:50]:
            out.append({"names": list(info.repo_digests) + list(info.repo_tags), "sizeBytes": info.size})
        return out

    # ---- pods -------------------------------------------------------------------------------

    async def _runtime_inventory(self) -> dict[str, tuple[Sandbox | None, list[ContainerStatus]]]:
        out: dict[str, tuple[Sandbox | None, list[ContainerStatus]]] = {}
        for sb in await self.runtime.list_sandboxes():
            out[sb.pod_uid or sb.labels.get(LABEL_POD_UID, "")] = (sb, [])
        for cs in await self.runtime.list_containers():
            uid = cs.labels.get(LABEL_POD_UID, "")
            sandbox, containers = out.get(uid, (None, []))
            containers.append(cs)
            out[uid] = (sandbox, containers)
        return out

    def _pod_added(self, pod: dict) -> None:
        if (pod["metadata"].get("annotations") or {}).get(MIRROR_ANNOTATION):
            if self.static_pods is not None:
                self.static_pods.mirror_changed(pod)
            return
        uid = pod["metadata"]["uid"]
        if uid in self.workers:
            self.workers[uid].update(pod)
            return
        self.start_worker(pod, adopted=getattr(self, "_leftovers", {}).get(uid))

    def start_worker(self, pod: dict, adopted=None, static: bool = False) -> PodWorker:
        uid = pod["metadata"]["uid"]
        phase = (pod.get("status") or {}).get("phase")
        finished_before = phase in ("Succeeded", "Failed") and not static
        rejected = None
        if not finished_before and not adopted and not static and not pod["metadata"].get("deletionTimestamp"):
            admitted = [w.pod for w in self.workers.values() if not w.terminal and not w.deleted]
            node = (self.node_informer.get(self.config.node_name) if self.node_informer else None) \
                or self.node_manager.node or {}
            rejected = admit(pod, admitted, node)
            if rejected:
                self.recorder.event(pod if pod.get("kind") else {**pod, "kind": "Pod", "apiVersion": "v1"},
                                    "Warning", rejected[0], rejected[1].removeprefix("Pod was rejected: "))
        worker = PodWorker(self.ctx, pod, adopted=adopted, static=static, on_finished=self._worker_finished,
                           finished_before=finished_before, rejected=rejected)
        self.workers[uid] = worker
        worker.start()
        return worker

    def _pod_updated(self, old: dict, new: dict) -> None:
        if (new["metadata"].get("annotations") or {}).get(MIRROR_ANNOTATION):
            if self.static_pods is not None:
                self.static_pods.mirror_changed(new)
            return
        worker = self.workers.get(new["metadata"]["uid"])
        if worker is None:
            self._pod_added(new)
        else:
            worker.update(new)

    def _pod_deleted(self, pod: dict) -> None:
        if (pod["metadata"].get("annotations") or {}).get(MIRROR_ANNOTATION):
            if self.static_pods is not None:
                self.static_pods.mirror_deleted(pod)
            return
        self._tokens.forget_pod(pod["metadata"]["uid"])
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.delete()

    def lookup_pod(self, namespace: str, name: str) -> dict | None:
        """The pod this node runs under that name (API or static), for the streaming server."""
        for worker in self.workers.values():
            m = worker.pod["metadata"]
            if m["name"] == name and m.get("namespace", "default") == namespace and not worker.deleted:
                return worker.pod
        return None

    def _worker_finished(self, worker: PodWorker) -> None:
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]

    async def _remove_orphan(self, uid: str, sandbox: Sandbox | None, containers: list[ContainerStatus]) -> None:
        """A pod deleted while we were away: stop and remove what it left."""
        log.info("removing containers of pod %s, which no longer exists", uid)
        for cs in containers:
            try:
                if cs.state == "running":
                    await self.runtime.stop_container(cs.id, 2.0)
                await self.runtime.remove_container(cs.id)
            except Exception as e:
                log.warning("removing orphan container %s: %s", cs.id, e)
        if sandbox is not None:
            if self.ctx.network is not None and sandbox.netns_path:
                pod = {"metadata": {"uid": uid, "name": sandbox.labels.get("io.kubernetes.pod.name", ""),
                                    "namespace": sandbox.labels.get("io.kubernetes.pod.namespace", "")},
                       "spec": {}}
                try:
                    await self.ctx.network.teardown(sandbox, pod)
                except Exception as e:
                    log.warning("orphan network teardown %s: %s", uid, e)
            try:
                await self.runtime.remove_sandbox(sandbox.id)
            except Exception as e:
                log.warning("removing orphan sandbox %s: %s", sandbox.id, e)
        if self.ctx.volumes is not None:
            await self.ctx.volumes.teardown(uid)

    async def _relist_loop(self) -> None:
        """PLEG: notice containers that changed state and wake their pods' workers."""
        while True:
            await asyncio.sleep(self.config.relist_seconds)
            try:
                containers = await self.runtime.list_containers()
            except Exception as e:
                log.warning("runtime relist failed: %s", e)
                self.node_manager.set_ready(False, f"container runtime is down: {e}")
                continue
            self.node_manager.set_ready(True)
            states = {}
            changed: set[str] = set()
            for cs in containers:
                states[cs.id] = cs.state
                if self._last_states.get(cs.id) != cs.state:
                    changed.add(cs.labels.get(LABEL_POD_UID, ""))
            for cid in set(self._last_states) - set(states):
                changed.add("")    # a container vanished: cheap to wake nobody in particular
            self._last_states = states
            for uid in changed:
                worker = self.workers.get(uid)
                if worker is not None:
                    worker.wake()


def default_node_name() -> str:
    return os.environ.get("K8PY_NODE_NAME") or socket.gethostname().lower()
