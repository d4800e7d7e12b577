"""Forwarding names outside the cluster zone to the host's resolvers, with a cache.

The cache is bounded twice: entries live no longer than their records' TTL
(capped at MAX_TTL; negative answers by the SOA minimum, capped at
MAX_NEGATIVE_TTL), and at most `size` entries are kept, least recently used
going first. Cached answers are served with their TTLs counted down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from pathlib import Path

from dnslib import QTYPE, RCODE, DNSRecord

log = logging.getLogger("k8py.dns.forward")

MAX_TTL = 300
MAX_NEGATIVE_TTL = 30
TIMEOUT = 2.0


def resolv_conf_nameservers(path: str = "/etc/resolv.conf", exclude: set[str] = frozenset()) -> list[tuple[str, int]]:
    servers = []
    try:
        for line in Path(path).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in exclude \
                    and not parts[1].startswith("0."):
                servers.append((parts[1], 53))
    except OSError:
        pass
    return servers


class AnswerCache:
    def __init__(self, size: int = 10000):
        self.size = size
        self._entries: OrderedDict[tuple, tuple[float, float, DNSRecord]] = OrderedDict()

    @staticmethod
    def key(request: DNSRecord) -> tuple:
        q = request.q
        return (str(q.qname).lower(), q.qtype, q.qclass)

    def get(self, request: DNSRecord) -> DNSRecord | None:
        key = self.key(request)
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, expires, response = entry
        now = time.monotonic()
        if now >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        elapsed = int(now - stored_at)
        reply = DNSRecord.parse(response.pack())
        reply.header.id = request.header.id
        reply.questions = request.questions  # echo the asker's spelling of the name
        for rr in reply.rr + reply.auth + reply.ar:
            if rr.rtype != QTYPE.OPT:
                rr.ttl = max(0, rr.ttl - elapsed)
        return reply

    def put(self, request: DNSRecord, response: DNSRecord) -> None:
        ttl = self.ttl_of(response)
        if ttl <= 0:
            return
        key = self.key(request)
        now = time.monotonic()
        self._entries[key] = (now, now + ttl, response)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    @staticmethod
    def ttl_of(response: DNSRecord) -> float:
        rcode = response.header.rcode
        if rcode == RCODE.NOERROR and response.rr:
            return min(min(rr.ttl for rr in response.rr), MAX_TTL)
        if rcode in (RCODE.NOERROR, RCODE.NXDOMAIN):
            soas = [rr for rr in response.auth if rr.rtype == QTYPE.SOA]
            if soas:
                return min(soas[0].ttl, soas[0].rdata.times[-1], MAX_NEGATIVE_TTL)
            return 0
        return 0  # never cache failures

    def __len__(self) -> int:
        return len(self._entries)


class _UDPExchange(asyncio.DatagramProtocol):
    def __init__(self, query_id: int):
        self.query_id = query_id
        self.answer: asyncio.Future = asyncio.get_running_loop().create_future()

    def datagram_received(self, data, addr):
        if len(data) >= 2 and int.from_bytes(data[:2], "big") == self.query_id and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc):
        if not self.answer.done():
            self.answer.set_exception(exc)


class Forwarder:
    def __init__(self, upstreams: list[tuple[str, int]], cache_size: int = 10000):
        self.upstreams = upstreams
        self.cache = AnswerCache(cache_size)

    async def resolve(self, request: DNSRecord, tcp: bool = False) -> DNSRecord:
        cached = self.cache.get(request)
        if cached is not None:
            return cached
        wire = request.pack()
        for host, port in self.upstreams:
            try:
                raw = await asyncio.wait_for(
                    self._tcp(wire, host, port) if tcp else self._udp(wire, request.header.id, host, port), TIMEOUT)
                response = DNSRecord.parse(raw)
            except Exception as e:  # a dead or garbled upstream: try the next one
                log.debug("upstream %s:%d failed: %s", host, port, e)
                continue
            if response.header.rcode in (RCODE.SERVFAIL, RCODE.REFUSED):
                continue
            if not response.header.tc:
                self.cache.put(request, response)
            return response
        failure = request.reply()
        failure.header.rcode = RCODE.SERVFAIL
        return failure

    @staticmethod
    async def _udp(wire: bytes, query_id: int, host: str, port: int) -> bytes:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(lambda: _UDPExchange(query_id),
                                                                  remote_addr=(host, port))
        try:
            transport.sendto(wire)
            return await protocol.answer
        finally:
            transport.close()

    @staticmethod
    async def _tcp(wire: bytes, host: str, port: int) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(len(wire).to_bytes(2, "big") + wire)
            await writer.drain()
            length = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(length)
        finally:
            writer.close()
