"""SPDY/3.1 framing: what kubectl's port-forward needs.

kubectl (client-go) tunnels a SPDY session through a WebSocket whose binary
messages carry the raw SPDY byte stream. Frames:
  control: 1 bit C=1 | 15 bit version (3) | 16 bit type | 8 bit flags | 24 bit length | payload
  data:    1 bit C=0 | 31 bit stream id | 8 bit flags | 24 bit length | payload
Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib streams primed with
the SPDY/3 dictionary; each direction keeps one compression context for the
whole session, so blocks must be compressed and decompressed in order.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL = 1, 2, 3, 4, 5
INTERNAL_ERROR, FLOW_CONTROL_ERROR, STREAM_IN_USE, STREAM_ALREADY_CLOSED = 6, 7, 8, 9


def _dictionary() -> bytes:
    """The header compression dictionary from the SPDY/3 specification: the
    usual header names, each with a 32-bit length, then a run of common values."""
    names = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
             "accept-ranges age allow authorization cache-control connection content-base "
             "content-encoding content-language content-length content-location content-md5 "
             "content-range content-type date etag expect expires from host if-match "
             "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
             "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
             "server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
             "method get status 200_OK version HTTP/1.1 url public set-cookie keep-alive origin")
    fixed = [w.replace("_", " ") for w in names.split()]   # "200 OK" is one entry
    head = b"".join(struct.pack(">I", len(w)) + w.encode() for w in fixed)
    tail = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
            "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
            "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
            "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
            "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    return head + tail.encode()


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    pass


# ---- frames -----------------------------------------------------------------

@dataclass
class DataFrame:
    stream_id: int
    data: bytes
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass
class ControlFrame:
    type: int
    flags: int
    payload: bytes


@dataclass
class SynStream:
    stream_id: int
    headers: dict[str, str]
    associated_id: int = 0
    priority: int = 0
    flags: int = 0


@dataclass
class SynReply:
    stream_id: int
    headers: dict[str, str] = field(default_factory=dict)
    flags: int = 0


@dataclass
class RstStream:
    stream_id: int
    status: int


@dataclass
class Ping:
    id: int


@dataclass
class GoAway:
    last_good_stream_id: int
    status: int = 0


@dataclass
class Headers:
    stream_id: int
    headers: dict[str, str]
    flags: int = 0


@dataclass
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass
class Settings:
    entries: list[tuple[int, int, int]]   # (flags, id, value)
    flags: int = 0


def control(frame_type: int, flags: int, payload: bytes) -> bytes:
    if len(payload) >= 1 << 24:
        raise ProtocolError("control frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def encode_header_block(headers: dict[str, str]) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def decode_header_block(block: bytes) -> dict[str, str]:
    try:
        (count,), pos = struct.unpack_from(">I", block, 0), 4
        headers = {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + n]
            pos += 4 + n
            (v,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + v]
            pos += 4 + v
            if len(name) != n or len(value) != v:
                raise ProtocolError("truncated header block")
            headers[name.decode()] = value.decode()
        return headers
    except struct.error:
        raise ProtocolError("truncated header block") from None


class HeaderCompressor:
    """One direction's header compression context."""

    def __init__(self):
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 9,
                                   zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def compress(self, headers: dict[str, str]) -> bytes:
        block = encode_header_block(headers)
        return self._z.compress(block) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    def __init__(self):
        self._z = zlib.decompressobj(15, zdict=DICTIONARY)

    def decompress(self, data: bytes) -> dict[str, str]:
        try:
            return decode_header_block(self._z.decompress(data))
        except zlib.error as err:
            raise ProtocolError(f"bad header block: {err}") from None


class FrameWriter:
    """Serialises frames; owns the outgoing compression context."""

    def __init__(self):
        self.headers = HeaderCompressor()

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False, priority: int = 0) -> bytes:
        payload = struct.pack(">IIBB", stream_id & 0x7FFFFFFF, 0, (priority & 7) << 5, 0)
        return control(SYN_STREAM, FLAG_FIN if fin else 0, payload + self.headers.compress(headers))

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        payload = struct.pack(">I", stream_id & 0x7FFFFFFF) + self.headers.compress(headers or {})
        return control(SYN_REPLY, FLAG_FIN if fin else 0, payload)

    def headers_frame(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        payload = struct.pack(">I", stream_id & 0x7FFFFFFF) + self.headers.compress(headers)
        return control(HEADERS, FLAG_FIN if fin else 0, payload)

    @staticmethod
    def rst_stream(stream_id: int, status: int) -> bytes:
        return control(RST_STREAM, 0, struct.pack(">II", stream_id & 0x7FFFFFFF, status))

    @staticmethod
    def ping(ping_id: int) -> bytes:
        return control(PING, 0, struct.pack(">I", ping_id))

    @staticmethod
    def goaway(last_good_stream_id: int, status: int = 0) -> bytes:
        return control(GOAWAY, 0, struct.pack(">II", last_good_stream_id & 0x7FFFFFFF, status))

    @staticmethod
    def window_update(stream_id: int, delta: int) -> bytes:
        return control(WINDOW_UPDATE, 0, struct.pack(">II", stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF))

    @staticmethod
    def settings(entries: list[tuple[int, int, int]]) -> bytes:
        payload = struct.pack(">I", len(entries)) + b"".join(
            struct.pack(">II", (flags << 24) | ident, value) for flags, ident, value in entries)
        return control(SETTINGS, 0, payload)

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        return data_frame(stream_id, data, fin)


class FrameReader:
    """Incremental parser: feed bytes as they arrive, take whole frames out.
    Owns the incoming decompression context."""

    def __init__(self):
        self._buf = bytearray()
        self.headers = HeaderDecompressor()

    def feed(self, data: bytes) -> list:
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            word, flags_len = struct.unpack_from(">II", self._buf, 0)
            length = flags_len & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            flags = flags_len >> 24
            if word & 0x80000000:
                version, frame_type = (word >> 16) & 0x7FFF, word & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                frames.append(self._control(frame_type, flags, payload))
            else:
                frames.append(DataFrame(word & 0x7FFFFFFF, payload, flags))
        return frames

    def _control(self, frame_type: int, flags: int, payload: bytes):
        try:
            if frame_type == SYN_STREAM:
                sid, assoc, prio, _slot = struct.unpack_from(">IIBB", payload, 0)
                return SynStream(sid & 0x7FFFFFFF, self.headers.decompress(payload[10:]),
                                 assoc & 0x7FFFFFFF, prio >> 5, flags)
            if frame_type == SYN_REPLY:
                (sid,) = struct.unpack_from(">I", payload, 0)
                return SynReply(sid & 0x7FFFFFFF, self.headers.decompress(payload[4:]), flags)
            if frame_type == HEADERS:
                (sid,) = struct.unpack_from(">I", payload, 0)
                return Headers(sid & 0x7FFFFFFF, self.headers.decompress(payload[4:]), flags)
            if frame_type == RST_STREAM:
                sid, status = struct.unpack_from(">II", payload, 0)
                return RstStream(sid & 0x7FFFFFFF, status)
            if frame_type == PING:
                return Ping(struct.unpack_from(">I", payload, 0)[0])
            if frame_type == GOAWAY:
                last, status = struct.unpack_from(">II", payload, 0) if len(payload) >= 8 else \
                    (struct.unpack_from(">I", payload, 0)[0], 0)
                return GoAway(last & 0x7FFFFFFF, status)
            if frame_type == WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", payload, 0)
                return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
            if frame_type == SETTINGS:
                (count,) = struct.unpack_from(">I", payload, 0)
                entries = []
                for i in range(count):
                    fid, value = struct.unpack_from(">II", payload, 4 + 8 * i)
                    entries.append((fid >> 24, fid & 0xFFFFFF, value))
                return Settings(entries, flags)
        except struct.error:
            raise ProtocolError(f"truncated control frame type {frame_type}") from None
        return ControlFrame(frame_type, flags, payload)
