"""The etcd backend of the Store (`k8py server --datastore-endpoint`).

  connection.py  endpoints, TLS and failover between members
  follower.py    etcd's watch turned into the Store's commits and history
  store.py       the Store: transactions, reads, compaction

The etcd protocol comes from aetcd's generated gRPC stubs (`aetcd.rpc`),
driven with grpc.aio directly; docs/etcd.md says why.
"""

from k8py.storage.etcd.connection import EtcdConfig, EtcdUnavailableError
from k8py.storage.etcd.store import EtcdStore, open_etcd_store

__all__ = ["EtcdConfig", "EtcdStore", "EtcdUnavailableError", "open_etcd_store"]
