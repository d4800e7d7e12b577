"""The controller-manager: runs the registered controllers against one API server.

Controllers are known by their upstream names (`--controllers` takes the same
syntax as kube-controller-manager: `*` for every controller that is on by
default, `name` to add one, `-name` to leave one out). Each name maps to a
`module:Class` of a Controller subclass; a module that is not there (a
controller still being written) is skipped with a log line.

With leader election the manager works only while it holds the Lease
kube-system/kube-controller-manager, so several can run side by side. A
small HTTP server on 127.0.0.1 answers /healthz and /metrics (Prometheus
text: work-queue depth and adds, syncs per controller, leader status).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
import uuid
from pathlib import Path

from aiohttp import web

from k8py.client import ApiError, Client, LeaderElector
from k8py.controllers.base import ControllerContext, Metrics
from k8py.controllers.credentials import ServiceAccountCredentials

log = logging.getLogger("k8py.controller-manager")

# name -> "module:Class". Order is start order (cheap ones first).
CONTROLLERS: dict[str, str] = {
    "namespace": "k8py.controllers.namespace:NamespaceController",
    "serviceaccount": "k8py.controllers.serviceaccount:ServiceAccountController",
    "root-ca-cert-publisher": "k8py.controllers.rootcacert:RootCACertPublisher",
    "nodeipam": "k8py.controllers.nodeipam:NodeIpamController",
    "garbage-collector": "k8py.controllers.garbagecollector:GarbageCollector",
    "replicaset": "k8py.controllers.replicaset:ReplicaSetController",
    "replicationcontroller": "k8py.controllers.replicationcontroller:ReplicationManager",
    "deployment": "k8py.controllers.deployment:DeploymentController",
    "podgc": "k8py.controllers.podgc:PodGCController",
    "daemonset": "k8py.controllers.daemonset:DaemonSetController",
    "statefulset": "k8py.controllers.statefulset:StatefulSetController",
    "job": "k8py.controllers.job:JobController",
    "cronjob": "k8py.controllers.cronjob:CronJobController",
    "ttl-after-finished": "k8py.controllers.ttlafterfinished:TTLAfterFinishedController",
    "disruption": "k8py.controllers.disruption:DisruptionController",
    "resourcequota": "k8py.controllers.resourcequota:ResourceQuotaController",
    "endpoint": "k8py.controllers.endpoints:EndpointsController",
    "endpointslice": "k8py.controllers.endpointslice:EndpointSliceController",
    "endpointslicemirroring": "k8py.controllers.endpointslice_mirroring:EndpointSliceMirroringController",
    "service-lb": "k8py.controllers.servicelb:ServiceLBController",
    "node-lifecycle": "k8py.controllers.nodelifecycle.controller:NodeLifecycleManaged",
    "taint-eviction": "k8py.controllers.nodelifecycle.taint_eviction:TaintEvictionManaged",
    "clusterrole-aggregation": "k8py.controllers.clusterroleaggregation:ClusterRoleAggregationController",
    "persistentvolume-binder": "k8py.controllers.volume.binder:PersistentVolumeBinder",
    "persistentvolumeclaim-protection": "k8py.controllers.volume.protection:PVCProtectionController",
    "persistentvolume-protection": "k8py.controllers.volume.protection:PVProtectionController",
    "persistentvolume-expander": "k8py.controllers.volume.expand:ExpandController",
    "csrapproving": "k8py.controllers.certificates.approver:CSRApprovingController",
    "csrsigning": "k8py.controllers.certificates.signer:CSRSigningController",
    "horizontal-pod-autoscaler": "k8py.controllers.podautoscaler.controller:HorizontalController",
}
ALIASES = {"garbagecollector": "garbage-collector", "replication-controller": "replicationcontroller",
           "pvc-protection": "persistentvolumeclaim-protection", "pv-protection": "persistentvolume-protection",
           "horizontalpodautoscaling": "horizontal-pod-autoscaler"}
OFF_BY_DEFAULT: set[str] = set()

LEASE_NAME = "kube-controller-manager"
LEASE_NAMESPACE = "kube-system"


def select_controllers(spec: list[str] | None) -> list[str]:
    """Resolve --controllers (e.g. ["*", "-podgc"]) into names, in start order."""
    items = [part.strip() for entry in (spec or ["*"]) for part in entry.split(",") if part.strip()]
    wanted: set[str] = set()
    unwanted: set[str] = set()
    for item in items:
        negate = item.startswith("-")
        name = item.lstrip("-")
        if name == "*":
            wanted |= set(CONTROLLERS) - OFF_BY_DEFAULT
            continue
        name = ALIASES.get(name, name.removesuffix("-controller"))
        if name not in CONTROLLERS:
            raise ValueError(f'"{item}" is not in the list of known controllers')
        (unwanted if negate else wanted).add(name)
    return [name for name in CONTROLLERS if name in wanted and name not in unwanted]


def load_controller(name: str):
    module_name, _, class_name = CONTROLLERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            return None
        raise
    return getattr(module, class_name)


class ControllerManager:
    def __init__(self, client: Client, controllers: list[str], leader_elect: bool = True,
                 identity: str | None = None, host: str = "127.0.0.1", port: int | None = 10257,
                 port_file: Path | None = None, options: dict | None = None,
                 use_service_account_credentials: bool = False):
        self.client = client
        # kube-controller-manager --use-service-account-credentials: each controller as its own account
        self.use_service_account_credentials = use_service_account_credentials
        self.names = controllers
        self.leader_elect = leader_elect
        self.identity = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        self.host = host
        self.port = port
        self.port_file = port_file
        self.options = options or {}
        self.metrics = Metrics()
        self.is_leader = False
        self.running: list[str] = []
        self._runner: web.AppRunner | None = None
        self.metrics.describe("leader_election_master_status", "gauge",
                              "1 while this controller-manager holds the lease")
        self.metrics.gauge("leader_election_master_status", {"name": LEASE_NAME}, lambda: int(self.is_leader))

    async def run(self) -> None:
        await self._serve_health()
        try:
            if self.leader_elect:
                elector = LeaderElector(self.client, LEASE_NAME, LEASE_NAMESPACE, self.identity)
                try:
                    while True:  # lost leadership: stop everything and compete again
                        await elector.run(self._lead)
                        log.warning("leadership lost; controllers stopped, waiting for the lease again")
                finally:
                    await self._release_lease()
            else:
                await self._lead()
        finally:
            if self._runner is not None:
                await self._runner.cleanup()

    async def _lead(self) -> None:
        self.is_leader = True
        ctx = ControllerContext(self.client, self.metrics)
        ctx.options = dict(self.options)
        credentials = ServiceAccountCredentials(self.client) if self.use_service_account_credentials else None
        tasks = []
        try:
            for name in self.names:
                try:
                    cls = load_controller(name)
                    if cls is None:
                        log.info("controller %s is not built yet; skipped", name)
                        continue
                    own = ctx.with_client(await credentials.client_for(name)) if credentials is not None else ctx
                    controller = cls(own)
                except Exception:  # one broken controller must not keep the others from running
                    log.exception("controller %s could not be set up; skipped", name)
                    continue
                tasks.append(asyncio.create_task(self._run_one(name, controller), name=f"controller {name}"))
                self.running.append(name)
            log.info("started controllers: %s", ", ".join(self.running))
            await asyncio.gather(*tasks)
        finally:
            self.is_leader = False
            self.running = []
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ctx.stop()
            if credentials is not None:
                await credentials.close()

    async def _run_one(self, name: str, controller) -> None:
        backoff = 1.0
        while True:  # a crashing controller is restarted, the others keep working
            try:
                await controller.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller %s failed; restarting in %.0fs", name, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60)

    async def _release_lease(self) -> None:
        """Hand the lease back on a clean stop, so a successor need not wait for it to expire."""
        leases = self.client.resource("coordination.k8s.io/v1", "leases", LEASE_NAMESPACE)
        try:
            lease = await asyncio.wait_for(leases.get(LEASE_NAME), 2)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["leaseDurationSeconds"] = 1
                await asyncio.wait_for(leases.update(lease), 2)
        except (ApiError, asyncio.TimeoutError, asyncio.CancelledError):
            pass

    # -- /healthz and /metrics

    async def _serve_health(self) -> None:
        if self.port is None:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._healthz)
        app.router.add_get("/livez", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.port = bound
        if self.port_file is not None:
            self.port_file.write_text(f"{bound}\n")
        log.info("controller-manager health and metrics on http://%s:%d", self.host, bound)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})


async def run_in_server(args, client: Client) -> None:
    """`k8py server` runs the controller-manager as one of its components."""
    from k8py.client.paths import default_data_dir
    from k8py.controllers.nodelifecycle.controller import node_lifecycle_options
    from k8py.controllers.podautoscaler.controller import hpa_options
    data_dir = (args.data_dir or default_data_dir()).resolve()
    # The server's own controller-manager keeps one identity across restarts,
    # so a restarted server takes its lease back at once.
    identity = f"{socket.gethostname()}_k8py-server-{args.https_listen_port}"
    # k3s spelling: `--disable servicelb` leaves the LoadBalancer controller out.
    wanted = ["*"] + (["-service-lb"] if "servicelb" in (getattr(args, "disable", None) or []) else [])
    manager = ControllerManager(client, select_controllers(wanted), leader_elect=True, identity=identity,
                                port=0, port_file=data_dir / "server" / "controller-manager.port",
                                options={**node_lifecycle_options(args), **hpa_options(args),
                                         "data_dir": str(data_dir), "allocate_node_cidrs": True,
                                         "cluster_cidr": getattr(args, "cluster_cidr", None),
                                         # as kube-controller-manager --cluster-signing-cert-file/-key-file
                                         "cluster_signing_cert_file": str(data_dir / "server/tls/server-ca.crt"),
                                         "cluster_signing_key_file": str(data_dir / "server/tls/server-ca.key")},
                                use_service_account_credentials=True)   # as kubeadm and k3s run it
    await manager.run()
