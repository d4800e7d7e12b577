"""Talking to an etcd cluster: endpoints, TLS, and failover between members.

One gRPC channel per endpoint, created on first use. Requests go to the
current endpoint; when it cannot be reached the request moves on to the next
one, round the list, until RETRY_WINDOW_S has passed (a member restarting or
a leader election takes a few seconds). The watch stream (follower.py) uses
the same rotation when its stream breaks.

A write is only retried when etcd certainly did not apply it: the member
could not be reached at all, or it said it has no leader. A write whose
answer was lost on the way back ("request timed out", a connection reset
mid-call) is not retried, because a retried create-if-absent or
update-at-revision would then report a conflict with itself; the error
reaches the client as a 5xx Status, as upstream's does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import grpc
from aetcd import rpc

from k8py.storage.interface import CompactedError, StoreError

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0  # one attempt at one member
RETRY_WINDOW_S = 10.0  # how long a request keeps trying other members
CHANNEL_OPTIONS = [
    # A list of 10,000 objects is far above gRPC's 4 MiB default.
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    # Notice a member that died without closing its connections (the watch
    # stream would otherwise wait on it for ever).
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    # Our own rotation moves between members; reconnect fast when one returns.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


class EtcdUnavailableError(StoreError):
    """etcd did not answer or refused (no quorum, timeouts, all members down).
    Carries etcd's own message ("etcdserver: request timed out", ...)."""


@dataclass(frozen=True)
class EtcdConfig:
    endpoints: tuple[str, ...]  # host:port
    secure: bool
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    @classmethod
    def parse(cls, endpoint: str, cafile=None, certfile=None, keyfile=None) -> "EtcdConfig":
        """`http(s)://host:port[,http(s)://host:port...]` as k3s's --datastore-endpoint
        takes it for etcd. ValueError says what is wrong."""
        hosts, schemes = [], set()
        for part in (p.strip() for p in endpoint.split(",")):
            if not part:
                continue
            url = urlsplit(part if "://" in part else f"http://{part}")
            if url.scheme not in ("http", "https"):
                raise ValueError(f"unsupported datastore endpoint {part!r}: only etcd "
                                 f"(http:// or https://) is supported")
            if not url.hostname or url.path not in ("", "/"):
                raise ValueError(f"invalid etcd endpoint {part!r}: expected scheme://host:port")
            host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
            hosts.append(f"{host}:{url.port or 2379}")
            schemes.add(url.scheme)
        if not hosts:
            raise ValueError("empty datastore endpoint")
        if len(schemes) > 1:
            raise ValueError("etcd endpoints mix http:// and https://")
        paths = [Path(p) if p else None for p in (cafile, certfile, keyfile)]
        if (paths[1] is None) != (paths[2] is None):
            raise ValueError("--datastore-certfile and --datastore-keyfile go together")
        for path in paths:
            if path is not None and not path.is_file():
                raise ValueError(f"no such file: {path}")
        return cls(tuple(hosts), "https" in schemes, *paths)

    def credentials(self) -> grpc.ChannelCredentials | None:
        if not self.secure:
            return None
        read = lambda p: p.read_bytes() if p else None  # noqa: E731
        return grpc.ssl_channel_credentials(root_certificates=read(self.cafile),
                                            private_key=read(self.keyfile),
                                            certificate_chain=read(self.certfile))


def _never_applied(err: grpc.aio.AioRpcError) -> bool:
    """True when etcd certainly did not apply the request."""
    if err.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    details = (err.details() or "").lower()
    return ("failed to connect" in details or "connection refused" in details
            or "no leader" in details or "dns resolution failed" in details)


def _transient(err: grpc.aio.AioRpcError) -> bool:
    """Worth retrying a read at another member."""
    return err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                          grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED)


def translate(err: grpc.aio.AioRpcError, compacted: int = 0) -> StoreError:
    details = err.details() or str(err.code())
    if "required revision has been compacted" in details:
        return CompactedError(compacted)
    return EtcdUnavailableError(details)


class Connection:
    def __init__(self, config: EtcdConfig):
        self.config = config
        self._credentials = config.credentials()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[tuple[str, str], object] = {}
        self._current = 0
        self.closed = False

    @property
    def endpoint(self) -> str:
        return self.config.endpoints[self._current]

    def channel(self) -> grpc.aio.Channel:
        endpoint = self.endpoint
        channel = self._channels.get(endpoint)
        if channel is None:
            if self._credentials is None:
                channel = grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.secure_channel(endpoint, self._credentials, options=CHANNEL_OPTIONS)
            self._channels[endpoint] = channel
        return channel

    def stub(self, service: str):
        """The current member's stub for `service`, for streaming calls (no failover)."""
        return self._stub(service)

    def _stub(self, service: str):
        key = (self.endpoint, service)
        stub = self._stubs.get(key)
        if stub is None:
            stub = self._stubs[key] = getattr(rpc, f"{service}Stub")(self.channel())
        return stub

    def failed(self, endpoint: str, err: BaseException) -> None:
        """`endpoint` did not answer: later requests start at the next member."""
        if len(self.config.endpoints) > 1 and endpoint == self.endpoint:
            self._current = (self._current + 1) % len(self.config.endpoints)
            log.warning("etcd member %s failed (%s); switching to %s", endpoint,
                        getattr(err, "details", lambda: err)(), self.endpoint)

    async def call(self, service: str, method: str, request, *, write: bool = False):
        """One unary RPC (service "KV" or "Maintenance"), moving between
        members as described above. Raises grpc.aio.AioRpcError for errors
        that are etcd's answer (compaction, bad request) or that are not safe
        to retry."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_WINDOW_S
        delay = 0.05
        while True:
            endpoint = self.endpoint
            stub = self._stub(service)
            try:
                return await getattr(stub, method)(request, timeout=REQUEST_TIMEOUT_S)
            except grpc.aio.AioRpcError as err:
                retry = _never_applied(err) if write else _transient(err)
                if not retry or self.closed or loop.time() + delay > deadline:
                    raise
                self.failed(endpoint, err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def close(self) -> None:
        self.closed = True
        channels, self._channels, self._stubs = list(self._channels.values()), {}, {}
        for channel in channels:
            await channel.close()
