"""`k8py server`: the control plane (API server) on this machine.

Flags follow k3s. The server creates its PKI and kubeconfig on first start,
serves HTTPS only, and is ready (/readyz 200) about a second after start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from k8py import metricsserver
from k8py.client.paths import default_data_dir, default_kubeconfig
from k8py.provisioners import shared_folder

log = logging.getLogger("k8py.server")


def add_parser(sub) -> None:
    p = sub.add_parser("server", help="run the control plane")
    p.add_argument("--data-dir", type=Path, default=None, help="state folder (default /var/lib/k8py as root)")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--https-listen-port", type=int, default=6443)
    p.add_argument("--write-kubeconfig", type=Path, default=None, help="where to write the admin kubeconfig")
    p.add_argument("--token", default=None,
                   help="the join token agents present (k3s-style; it becomes a bootstrap token, not an admin "
                        "credential)")
    p.add_argument("--token-file", type=Path, default=None, help="static tokens, CSV: token,user,uid,groups")
    from k8py.cli.datastore_flags import add_cluster_init_flags, add_datastore_flags
    add_datastore_flags(p)
    add_cluster_init_flags(p)
    p.add_argument("--cluster-cidr", default="10.42.0.0/16")
    p.add_argument("--service-cidr", default="10.43.0.0/16")
    p.add_argument("--cluster-dns", default="10.43.0.10")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--node-name", default=None)
    p.add_argument("--node-ip", default="",
                   help="the server node's InternalIP (default: the address the API is reached on, else the "
                        "default route's)")
    p.add_argument("--tls-san", action="append", default=[], help="extra serving-certificate name or IP")
    p.add_argument("--disable", action="append", default=[], help="component to leave out (repeatable)")
    p.add_argument("--disable-agent", action="store_true", help="run the control plane only")
    shared_folder.add_flags(p)
    metricsserver.add_flags(p)
    p.add_argument("--authorization-mode", default="Node,RBAC",
                   help="ordered authorizers: Node, RBAC, AlwaysAllow, AlwaysDeny (default Node,RBAC)")
    p.add_argument("--anonymous-auth", nargs="?", const=True, default=False, type=_flag_bool,
                   help="requests without credentials act as system:anonymous (default: they get 401)")
    p.add_argument("--admission-control-config-file", type=Path, default=None,
                   help="AdmissionConfiguration file with the admission plugins' configuration (e.g. PodSecurity)")
    p.add_argument("-v", "--v", type=int, default=0, dest="verbosity", help="log verbosity")
    from k8py.cli.security_flags import add_security_flags
    add_security_flags(p)
    from k8py.cli import server_snapshots
    server_snapshots.add_flags(p)
    from k8py.cli.controller_flags import add_admission_flags, add_controller_flags
    add_controller_flags(p)
    add_admission_flags(p)


def _flag_bool(text: str) -> bool:
    """Go-style boolean flag values: --anonymous-auth, --anonymous-auth=true|false."""
    if text.lower() in ("true", "1", "t"):
        return True
    if text.lower() in ("false", "0", "f"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def run(args) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s")
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    from k8py.apiserver.authz.modes import parse_modes
    try:
        args.authorization_modes = parse_modes(args.authorization_mode)
    except ValueError as err:
        print(f"k8py: --authorization-mode: {err}", file=sys.stderr)
        return 2
    from k8py.cli import server_snapshots
    if (error := server_snapshots.check_flags(args)) is not None:
        print(f"k8py: {error}", file=sys.stderr)
        return 2
    if args.cluster_reset:
        return server_snapshots.cluster_reset(args)
    from k8py.cli.datastore_flags import datastore_config
    try:
        args.datastore = datastore_config(args)
    except ValueError as err:
        print(f"k8py: --datastore-endpoint: {err}", file=sys.stderr)
        return 2
    from k8py.apiserver.admission_config import ConfigError
    from k8py.apiserver.audit.policy import PolicyError
    from k8py.apiserver.encryptionconfig import ConfigError as EncryptionConfigError
    from k8py.storage.interface import StoreError
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    except (ConfigError, EncryptionConfigError, PolicyError) as err:  # a bad file named on the command line
        print(f"k8py: {err}", file=sys.stderr)
        return 1
    except StoreError as err:  # the datastore cannot be reached
        where = args.datastore_endpoint or ("the --cluster-init etcd" if args.cluster_init else "")
        print(f"k8py: datastore {where}: {err}", file=sys.stderr)
        return 1
    return 0


def _write_secure_token(data_dir: Path, ca_cert: Path, token: str) -> None:
    """k3s's <data-dir>/server/token: K10<sha256 of the CA>::server:<token>, which agents may
    use instead of the bare token to pin the cluster CA."""
    import hashlib
    if token.startswith("K10") and "::" in token:
        return
    path = data_dir / "server" / "token"
    secure = f"K10{hashlib.sha256(ca_cert.read_bytes()).hexdigest()}::server:{token}\n"
    if not path.exists() or path.read_text() != secure:
        path.touch(mode=0o600)
        path.write_text(secure)


async def serve(args) -> None:
    from aiohttp import web

    from k8py.apiserver.authn import Authenticator
    from k8py.apiserver.kubeconfig import write_kubeconfig
    from k8py.apiserver.pki import ensure_pki, ssl_context
    from k8py.apiserver.server import APIServer, ServerConfig
    from k8py.cli.components import start_components, stop_components
    from k8py.cli.controller_flags import admission_config
    from k8py.cli.security_flags import security_config

    data_dir = (args.data_dir or default_data_dir()).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = ServerConfig(data_dir=data_dir, bind_address=args.bind_address, port=args.https_listen_port,
                          token=args.token, token_file=args.token_file, service_cidr=args.service_cidr,
                          cluster_cidr=args.cluster_cidr, cluster_dns=args.cluster_dns,
                          cluster_domain=args.cluster_domain, tls_sans=args.tls_san,
                          authorization_modes=args.authorization_modes, anonymous_auth=args.anonymous_auth,
                          admission_control_config_file=args.admission_control_config_file,
                          datastore=getattr(args, "datastore", None),
                          **security_config(args), **admission_config(args))
    sans = list(args.tls_san)
    if args.bind_address not in ("127.0.0.1", "0.0.0.0"):
        sans.append(args.bind_address)
    pki = ensure_pki(data_dir / "server" / "tls", sans)
    if args.token:
        _write_secure_token(data_dir, pki.ca_cert, args.token)
    from k8py.cli.datastore_flags import start_cluster_init
    member = await start_cluster_init(args, data_dir, pki)
    if member is not None:
        config.datastore = member.config
    api = APIServer(config)
    api.authenticator = Authenticator.from_config(pki, token_file=args.token_file)
    await api.start()
    # Open watches would hold a graceful shutdown for a minute: give them two seconds.
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, args.bind_address, args.https_listen_port, ssl_context=ssl_context(pki),
                       backlog=1024)
    await site.start()
    host = "127.0.0.1" if args.bind_address == "0.0.0.0" else args.bind_address
    kubeconfig = args.write_kubeconfig or default_kubeconfig(data_dir)
    write_kubeconfig(kubeconfig, f"https://{host}:{args.https_listen_port}", pki)
    print(f"k8py: API server ready on https://{host}:{args.https_listen_port}", flush=True)
    print(f"k8py: kubeconfig written to {kubeconfig}", flush=True)
    components = await start_components(args, data_dir, f"https://{host}:{args.https_listen_port}")
    if os.geteuid() != 0 or args.disable_agent:
        print("k8py: no node agent runs in this server: pods stay Pending until an agent runs as root",
              flush=True)

    from k8py.cli.server_snapshots import start_scheduled
    scheduled_snapshots = start_scheduled(args, data_dir)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if scheduled_snapshots is not None:
        scheduled_snapshots.cancel()
    await stop_components(components)
    await runner.cleanup()
    await api.stop()
    if member is not None:
        await member.stop()
