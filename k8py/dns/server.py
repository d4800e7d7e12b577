"""The DNS server: UDP and TCP listeners answering from ClusterRecords or the Forwarder.

Cluster answers depend only on the query and the records, so a response is
cached as wire bytes keyed by the query without its ID, until the records
change (their generation moves). That keeps the hot path to a dict lookup
and an ID patch, which is how a Python server reaches thousands of qps.
"""

from __future__ import annotations

import asyncio
import logging

from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from k8py.dns.forward import Forwarder
from k8py.dns.records import ClusterRecords

log = logging.getLogger("k8py.dns.server")

UDP_DEFAULT_PAYLOAD = 512
WIRE_CACHE_SIZE = 20000


class DNSHandler:
    def __init__(self, records: ClusterRecords, forwarder: Forwarder | None):
        self.records = records
        self.forwarder = forwarder
        self.queries = 0
        self._wire_cache: dict[bytes, bytes] = {}
        self._wire_generation = -1

    def answer_local(self, data: bytes, tcp: bool):
        """The response bytes, None to stay silent, or the parsed request when it must be forwarded."""
        self.queries += 1
        if len(data) < 12:
            return None
        if self._wire_generation != self.records.generation:
            self._wire_cache.clear()
            self._wire_generation = self.records.generation
        key = (b"T" if tcp else b"U") + data[2:]
        cached = self._wire_cache.get(key)
        if cached is not None:
            return data[:2] + cached[2:]
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return self._format_error(data)
        if request.header.qr or not request.questions:
            return None
        if not self.records.in_zone(str(request.q.qname)):
            if self.forwarder is None:
                reply = request.reply()
                reply.header.rcode = RCODE.REFUSED
                return reply.pack()
            return request
        try:
            wire = self._truncated(self._answer(request), request, tcp)
        except Exception:  # a bug answering one name must not take the server down
            log.exception("answering %s failed", request.q.qname)
            failure = request.reply()
            failure.header.rcode = RCODE.SERVFAIL
            return failure.pack()
        if len(self._wire_cache) >= WIRE_CACHE_SIZE:
            self._wire_cache.clear()
        self._wire_cache[key] = wire
        return wire

    async def forward(self, request: DNSRecord, tcp: bool) -> bytes:
        response = await self.forwarder.resolve(request, tcp=tcp)
        return self._truncated(response, request, tcp)

    async def handle(self, data: bytes, tcp: bool) -> bytes | None:
        result = self.answer_local(data, tcp)
        if isinstance(result, DNSRecord):
            return await self.forward(result, tcp)
        return result

    def _answer(self, request: DNSRecord) -> DNSRecord:
        reply = request.reply()  # sets QR, AA, RD from the request
        reply.header.ra = 1
        reply.ar = []  # dnslib copies nothing else; EDNS is answered below
        answer = self.records.resolve(str(request.q.qname), request.q.qtype)
        reply.header.rcode = answer.rcode
        for rr in answer.answers:
            reply.add_answer(rr)
        for rr in answer.authority:
            reply.add_auth(rr)
        for rr in answer.additional:
            reply.add_ar(rr)
        opt = _opt(request)
        if opt is not None:
            reply.add_ar(opt)
        return reply

    @staticmethod
    def _truncated(reply: DNSRecord, request: DNSRecord, tcp: bool) -> bytes:
        wire = reply.pack()
        if tcp:
            return wire
        opt = _opt(request)
        limit = max(UDP_DEFAULT_PAYLOAD, opt.edns_len if opt is not None else UDP_DEFAULT_PAYLOAD)
        if len(wire) <= limit:
            return wire
        short = request.reply()
        short.header.ra = 1
        short.header.tc = 1  # the client retries over TCP and gets everything
        short.header.rcode = reply.header.rcode
        return short.pack()

    @staticmethod
    def _format_error(data: bytes) -> bytes:
        header = bytearray(data[:12])
        header[2] = 0x80 | (header[2] & 0x79)  # QR set, opcode and RD kept
        header[3] = RCODE.FORMERR
        header[4:12] = bytes(8)
        return bytes(header)


def _opt(request: DNSRecord):
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            return EDNS0(udp_len=min(max(rr.rclass, 512), 4096))
    return None


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: DNSHandler):
        self.handler = handler
        self.transport = None
        self.pending: set[asyncio.Task] = set()  # forwarding tasks, referenced until they finish

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        # Cluster answers are computed right here; only forwarding needs a task.
        result = self.handler.answer_local(data, tcp=False)
        if isinstance(result, DNSRecord):
            task = asyncio.ensure_future(self.handler.forward(result, tcp=False))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
            task.add_done_callback(lambda t: self._reply(t, addr))
        elif result is not None:
            self.transport.sendto(result, addr)

    def _reply(self, task: asyncio.Task, addr) -> None:
        if not task.cancelled() and task.exception() is None and task.result() is not None:
            self.transport.sendto(task.result(), addr)


class DNSServer:
    """Listens on (host, port) pairs over UDP and TCP; port 0 picks a free one (see `.addresses`)."""

    def __init__(self, handler: DNSHandler):
        self.handler = handler
        self._transports = []
        self._tcp_servers = []
        self.addresses: list[tuple[str, int]] = []

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        tcp = await asyncio.start_server(self._serve_tcp, host, port, reuse_address=True)
        port = tcp.sockets[0].getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(lambda: _UDPProtocol(self.handler),
                                                           local_addr=(host, port))
        self._tcp_servers.append(tcp)
        self._transports.append(transport)
        self.addresses.append((host, port))
        return host, port

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(length)
                response = await self.handler.handle(data, tcp=True)
                if response is None:
                    break
                writer.write(len(response).to_bytes(2, "big") + response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        for transport in self._transports:
            transport.close()
        for server in self._tcp_servers:
            server.close()
            await server.wait_closed()
        self._transports.clear()
        self._tcp_servers.clear()
        self.addresses.clear()
