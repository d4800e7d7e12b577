"""`k8py server` datastore flags (k3s's names): empty endpoint = embedded SQLite,
`http(s)://host:2379[,...]` = an external etcd cluster, `--cluster-init` = an etcd
member the server runs itself (k8py/storage/etcd/member.py)."""

from __future__ import annotations

from pathlib import Path


def add_datastore_flags(p) -> None:
    p.add_argument("--datastore-endpoint", default="",
                   help="etcd endpoints, http(s)://host:2379[,...] (empty = embedded SQLite)")
    p.add_argument("--datastore-cafile", type=Path, default=None, help="CA bundle that signs etcd's certificates")
    p.add_argument("--datastore-certfile", type=Path, default=None, help="client certificate for etcd")
    p.add_argument("--datastore-keyfile", type=Path, default=None, help="client key for etcd")


def datastore_config(args):
    """The EtcdConfig the flags name, or None for SQLite. ValueError says what is wrong."""
    if getattr(args, "cluster_init", False) and args.datastore_endpoint:
        raise ValueError("--cluster-init runs its own etcd: it cannot be used with --datastore-endpoint")
    if not args.datastore_endpoint:
        if args.datastore_cafile or args.datastore_certfile or args.datastore_keyfile:
            raise ValueError("--datastore-cafile/certfile/keyfile need --datastore-endpoint")
        return None
    from k8py.storage.etcd import EtcdConfig
    return EtcdConfig.parse(args.datastore_endpoint, args.datastore_cafile, args.datastore_certfile,
                            args.datastore_keyfile)


def add_cluster_init_flags(p) -> None:
    p.add_argument("--cluster-init", action="store_true",
                   help="run and manage a local etcd member (data in <data-dir>/server/db/etcd) and store in it")
    # k8py's own: k3s always uses 2379/2380; tests and side-by-side servers need others.
    p.add_argument("--etcd-client-port", type=int, default=2379, help="--cluster-init: etcd's client port")
    p.add_argument("--etcd-peer-port", type=int, default=2380, help="--cluster-init: etcd's peer port")


async def start_cluster_init(args, data_dir: Path, pki):
    """The managed etcd member of --cluster-init, started and ready, or None without the flag."""
    if not args.cluster_init:
        return None
    from k8py.apiserver.pki import ensure_client_cert
    from k8py.storage.etcd.member import ManagedMember
    client = ensure_client_cert(pki, "etcd-client", "system:k8py:etcd-client")
    member = ManagedMember(data_dir / "server" / "db" / "etcd", ca=pki.ca_cert,
                           serving=(pki.server_cert, pki.server_key), client=client,
                           client_port=args.etcd_client_port, peer_port=args.etcd_peer_port)
    await member.start()
    return member
