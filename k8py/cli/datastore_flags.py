"""`k8py server` datastore flags (k3s's names): empty endpoint = embedded SQLite,
`http(s)://host:2379[,...]` = an external etcd cluster."""

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
    if not args.datastore_endpoint:
        if args.datastore_cafile or args.datastore_certfile or args.datastore_keyfile:
            raise ValueError("--datastore-cafile/certfile/keyfile need --datastore-endpoint")
        return None
    from k8py.storage.etcd import EtcdConfig
    return EtcdConfig.parse(args.datastore_endpoint, args.datastore_cafile, args.datastore_certfile,
                            args.datastore_keyfile)
