"""`k8py agent --server URL --token T`: the node agent (kubelet) for this machine.

`--runtime simulated --count N` registers N hollow nodes from one process
(pods turn Running without processes), for scale tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from k8py.client.paths import default_data_dir

log = logging.getLogger("k8py.agent")


def add_parser(sub) -> None:
    p = sub.add_parser("agent", help="run the node agent (kubelet)")
    p.add_argument("--server", default=None, help="API server URL, e.g. https://10.0.0.1:6443")
    p.add_argument("--cleanup", action="store_true",
                   help="stop this node's containers and remove every k8py chain, route and interface, then exit")
    p.add_argument("--token", default=None,
                   help="the server's join token (k3s-style; the agent gets its certificates with it)")
    p.add_argument("--ca-file", type=Path, default=None, help="CA bundle to verify the server (else not verified)")
    p.add_argument("--node-name", default=None)
    p.add_argument("--node-ip", default="", help="address other nodes reach this one on")
    p.add_argument("--data-dir", type=Path, default=None, help="state folder (default <k8py data dir>/agent)")
    p.add_argument("--runtime", choices=("runc", "simulated"), default=None,
                   help="runc (default as root) or simulated (pods run no processes)")
    p.add_argument("--count", type=int, default=1, help="simulated runtime: how many hollow nodes to register")
    p.add_argument("--simulated-usage", default="",
                   help="simulated runtime: what each container uses unless its pod's k8py.io/simulated-usage "
                        "annotation says otherwise, e.g. cpu=100m,memory=32Mi")
    p.add_argument("--pod-manifest-path", type=Path, default=None,
                   help="folder of static pod manifests (default <data-dir>/manifests)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16")
    p.add_argument("--service-cidr", default="10.43.0.0/16")
    p.add_argument("--cluster-dns", default="10.43.0.10")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--kubelet-port", type=int, default=int(os.environ.get("K8PY_KUBELET_PORT", 10250)))
    p.add_argument("--cni-bridge", default=os.environ.get("K8PY_CNI_BRIDGE", "k8py0"),
                   help="Linux bridge the pods attach to")
    p.add_argument("--node-lease-duration-seconds", type=int, default=40,
                   help="the node Lease's duration; it is renewed every quarter of it (kubelet's "
                        "nodeLeaseDurationSeconds)")
    p.add_argument("--node-label", action="append", default=[], help="key=value label for the node (repeatable)")
    p.add_argument("--client-cert-seconds", type=int, default=None,
                   help="validity asked for the agent's client certificates (CSR expirationSeconds, min 600)")
    p.add_argument("-v", "--v", type=int, default=0, dest="verbosity", help="log verbosity")


def run(args) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s")
    if args.cleanup:
        asyncio.run(cleanup(args))
        return 0
    if not args.server or not args.token:
        print("k8py agent: --server and --token are required", file=sys.stderr)
        return 2
    runtime = args.runtime or ("runc" if os.geteuid() == 0 else "simulated")
    if runtime == "runc" and os.geteuid() != 0:
        print("k8py agent: the runc runtime needs root; run as root or use --runtime simulated", file=sys.stderr)
        return 2
    if args.count != 1 and runtime != "simulated":
        print("k8py agent: --count needs --runtime simulated", file=sys.stderr)
        return 2
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    try:
        return asyncio.run(serve(args, runtime))
    except KeyboardInterrupt:
        return 0


def agent_config(args, data_dir: Path, control_plane: bool = False):
    from k8py.kubelet.agent import AgentConfig, default_node_name
    labels = dict(item.split("=", 1) for item in getattr(args, "node_label", []) if "=" in item)
    manifests = getattr(args, "pod_manifest_path", None) or data_dir / "manifests"
    return AgentConfig(node_name=(args.node_name or default_node_name()).lower(), data_dir=data_dir,
                       node_ip=getattr(args, "node_ip", "") or "", control_plane=control_plane,
                       cluster_cidr=args.cluster_cidr, service_cidr=args.service_cidr,
                       cluster_dns=args.cluster_dns, cluster_domain=args.cluster_domain,
                       pod_manifest_path=manifests,
                       kubelet_port=getattr(args, "kubelet_port", None)
                       or int(os.environ.get("K8PY_KUBELET_PORT", 10250)),
                       node_labels=labels,
                       node_lease_duration_seconds=getattr(args, "node_lease_duration_seconds", None) or 40,
                       cni_bridge=getattr(args, "cni_bridge", None) or os.environ.get("K8PY_CNI_BRIDGE", "k8py0"))


async def serve(args, runtime: str) -> int:
    from k8py.cli.agent_join import JoinError, join
    from k8py.kubelet.hollow import run_hollow_nodes
    from k8py.kubelet.wiring import build_kubelet, make_runtime

    data_dir = (args.data_dir or default_data_dir() / "agent").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = agent_config(args, data_dir)
    hollow = runtime == "simulated" and args.count > 1
    names = [f"{config.node_name}-{i}" for i in range(args.count)] if hollow else [config.node_name]
    try:
        joined, clients = await join(args.server, args.token, data_dir, names, ca_file=args.ca_file,
                                     cert_seconds=args.client_cert_seconds)
    except JoinError as e:
        print(f"k8py agent: {e}", file=sys.stderr)
        return 1
    background: list[asyncio.Task] = []
    config.client_ca_file = joined.ca_file      # kubelet API callers: cluster-CA certificates, checked by RBAC
    if hollow:
        async def client_for(name: str):
            return clients[name]
        from k8py.kubelet.synthetic_usage import parse_usage
        kubelets = await run_hollow_nodes(client_for, config, args.count,
                                          lambda: make_runtime("simulated", data_dir)[0],
                                          network_client=joined.network,
                                          default_usage=parse_usage(args.simulated_usage))
        print(f"k8py: {args.count} hollow nodes registered ({config.node_name}-0 ...)", flush=True)
    else:
        kubelet = build_kubelet(clients[config.node_name], config, runtime)
        kubelet.network_client = joined.network
        await kubelet.start()
        kubelets = [kubelet]
        if runtime == "runc":   # an agent is kubelet and kube-proxy for its node
            from k8py import proxy
            args.node_name = config.node_name
            background.append(asyncio.create_task(proxy.run_in_agent(args, joined.network), name="kube-proxy"))
        print(f"k8py: node {config.node_name} registered; static pods from {config.pod_manifest_path}",
              flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for task in background:
        task.cancel()
    # Containers keep running: a restarted agent adopts them.
    await asyncio.gather(*(k.stop() for k in kubelets), *background, return_exceptions=True)
    await joined.close()
    return 0


async def cleanup(args) -> None:
    """What k3s-killall.sh does for k3s: this node's containers, pod network and kube-proxy rules go."""
    from k8py import proxy
    from k8py.kubelet.network.cni import PodNetwork
    from k8py.kubelet.wiring import CNI_BIN_DIR
    data_dir = (args.data_dir or default_data_dir() / "agent").resolve()
    network = PodNetwork(data_dir / "etc" / "cni" / "net.d", CNI_BIN_DIR, pod_cidr=args.cluster_cidr,
                         cluster_cidr=args.cluster_cidr, service_cidr=args.service_cidr, bridge=args.cni_bridge)
    if (data_dir / "runc").exists():
        from k8py.kubelet.wiring import make_runtime
        runtime, _ = make_runtime("runc", data_dir)
        for container in await runtime.list_containers():
            await runtime.stop_container(container.id, timeout=0)
            await runtime.remove_container(container.id)
        for sandbox in await runtime.list_sandboxes():
            await release_pod_network(network, sandbox)
            await runtime.remove_sandbox(sandbox.id)
    await network.cleanup()
    await proxy.cleanup()
    print(f"k8py: node cleaned up (containers under {data_dir / 'runc'}, bridge {args.cni_bridge}, "
          "routes, iptables chains)", flush=True)


async def release_pod_network(network, sandbox) -> None:
    """CNI DEL for a sandbox, as the kubelet does when a pod goes: its IP lease is released
    and the portmap plugin removes the pod's hostPort rules."""
    from k8py.kubelet.runtime.interface import LABEL_POD_NAME, LABEL_POD_NAMESPACE
    if not sandbox.netns_path or not network.conflist_path.exists():
        return
    pod = {"metadata": {"uid": sandbox.pod_uid, "name": sandbox.labels.get(LABEL_POD_NAME, ""),
                        "namespace": sandbox.labels.get(LABEL_POD_NAMESPACE, "")}, "spec": {}}
    try:
        await network.teardown(sandbox, pod)
    except Exception as e:     # the rest of the cleanup goes on; leftover chains are removed below
        log.warning("network teardown of sandbox %s: %s", sandbox.id, e)


async def run_in_server(args, client) -> None:
    """The server's own node agent (a component of `k8py server`).

    Its kubelet is `system:node:<name>` like any other, with certificates the server signs
    directly (as k3s does for its own agent); `client` (the component's) only adds the
    control-plane role labels, which NodeRestriction keeps kubelets from setting.
    """
    if getattr(args, "disable_agent", False) or os.geteuid() != 0:
        return          # the server already said plainly that pods stay Pending
    from k8py.cli.agent_join import server_node_clients
    from k8py.kubelet.wiring import build_kubelet
    data_dir = ((args.data_dir or default_data_dir()).resolve()) / "agent"
    config = agent_config(args, data_dir)
    config.ca_dir = data_dir.parent / "server" / "tls"
    config.client_ca_file = config.ca_dir / "server-ca.crt"
    node_client, network_client = server_node_clients(client.server, config.ca_dir, config.node_name)
    try:
        try:
            kubelet = build_kubelet(node_client, config, "runc")
        except ImportError as e:
            print(f"k8py: the node agent can't run here ({e}); pods stay Pending until an agent runs", flush=True)
            return
        kubelet.network_client = network_client
        await kubelet.start()
        await label_control_plane(client, config.node_name)
        print(f"k8py: node {config.node_name} registered; static pods from {config.pod_manifest_path}",
              flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await kubelet.stop()
    finally:
        await node_client.close()
        await network_client.close()


async def label_control_plane(client, node_name: str) -> None:
    """k3s marks its server node with both role labels."""
    from k8py.client import ApiError
    labels = {"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"}
    try:
        await client.resource("v1", "nodes").patch(node_name, {"metadata": {"labels": labels}})
    except ApiError as e:
        log.warning("could not label node %s as control plane: %s", node_name, e)
