"""JSON objects to Kubernetes protobuf bytes, the way kubectl writes them.

The inverse of `decoder`, driven by the same field tables.  The server never
needs it to answer requests (responses are JSON); benchmarks and the API
fuzzer use it to make protobuf bodies for every kind the decoder knows, in
the shape Go produces: every non-pointer field written even when zero, an
unset Time as an empty message.

Values that do not fit a field's type raise `ValueError`: the encoder is for
well-formed objects, the fuzzer mutates the bytes afterwards.
"""

from __future__ import annotations

import base64
import datetime
import re
import struct

import orjson

from k8py.apimachinery.protobuf import schema
from k8py.apimachinery.protobuf.decoder import MAGIC, PROTOBUF_CONTENT_TYPE
from k8py.apimachinery.protobuf.schema import (
    BOOL, BYTES, DUR, F32, F64, FIELDS, I32, I64, INLINE, IOS, LIST, MAP, MSG, MTIME, ONE, PTR, QTY,
    RAW, STR, STRS, TIME, WIRE_BYTES, WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT, Message,
)

_U64 = (1 << 64) - 1
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                   "m": 60_000_000_000, "h": 3_600_000_000_000}
# How deep zero-filling goes into message fields nobody set (Go writes an
# empty struct for each; recursion through optional pointers stops anyway).
_MAX_ZERO_DEPTH = 8


def _varint(v: int) -> bytes:
    v &= _U64
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _tag(num: int, wire: int) -> bytes:
    return _varint(num << 3 | wire)


def _delimited(num: int, payload: bytes) -> bytes:
    return _tag(num, WIRE_BYTES) + _varint(len(payload)) + payload


def _parse_time(text: str) -> tuple[int, int]:
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    delta = t - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return seconds, delta.microseconds * 1000


def _parse_duration(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    rest = text.lstrip("+-")
    if rest == "0":
        return 0
    total, pos = 0, 0
    for m in _DURATION_PART.finditer(rest):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _DURATION_UNITS[m.group(2)])
        pos = m.end()
    if pos != len(rest) or not rest:
        raise ValueError(f"not a duration: {text!r}")
    return sign * total


def _special(kind: int, value) -> bytes:
    """The message body of a type with its own JSON spelling."""
    if kind in (TIME, MTIME):
        seconds, nanos = _parse_time(value)
        out = _tag(1, WIRE_VARINT) + _varint(seconds)
        return out + (_tag(2, WIRE_VARINT) + _varint(nanos) if kind == MTIME else b"")
    if kind == IOS:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"not an IntOrString: {value!r}")
        if isinstance(value, int):
            return _tag(1, WIRE_VARINT) + _varint(0) + _tag(2, WIRE_VARINT) + _varint(value) + _delimited(3, b"")
        return _tag(1, WIRE_VARINT) + _varint(1) + _tag(2, WIRE_VARINT) + _varint(0) + _delimited(3, value.encode())
    if kind == QTY:
        return _delimited(1, str(value).encode())
    if kind == STRS:
        return b"".join(_delimited(1, _text(v)) for v in value)
    if kind == DUR:
        return _tag(1, WIRE_VARINT) + _varint(_parse_duration(value))
    if kind in (FIELDS, RAW):
        return _delimited(1, orjson.dumps(value))
    raise ValueError(f"kind {kind} has no special form")


def _text(value) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    return value.encode()


def _value(field, value) -> bytes:
    """Tag and bytes of one value of `field` (one list item, or the single value)."""
    kind, num = field.kind, field.num
    if kind == STR:
        return _delimited(num, _text(value))
    if kind == BYTES:
        return _delimited(num, base64.b64decode(value))
    if kind == BOOL:
        if not isinstance(value, bool):
            raise ValueError(f"{field.json}: not a bool: {value!r}")
        return _tag(num, WIRE_VARINT) + _varint(int(value))
    if kind in (I32, I64):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{field.json}: not an integer: {value!r}")
        return _tag(num, WIRE_VARINT) + _varint(value)
    if kind == F64:
        return _tag(num, WIRE_FIXED64) + struct.pack("<d", value)
    if kind == F32:
        return _tag(num, WIRE_FIXED32) + struct.pack("<f", value)
    if kind == MSG:
        if not isinstance(value, dict):
            raise ValueError(f"{field.json}: not an object: {value!r}")
        return _delimited(num, encode_message(value, field.sub))
    return _delimited(num, _special(kind, value))


def _map_value(field, value) -> bytes:
    # A map entry is a tiny message {1 key, 2 value}; reuse _value with field 2.
    return _value(_EntryValue(field), value)


class _EntryValue:
    __slots__ = ("kind", "num", "json", "sub")

    def __init__(self, field):
        self.kind, self.num, self.json, self.sub = field.kind, 2, field.json, field.sub


def _zero(field, depth: int) -> bytes:
    """What Go writes for a non-pointer field left at its zero value."""
    kind, num = field.kind, field.num
    if kind in (STR, BYTES):
        return _delimited(num, b"")
    if kind in (BOOL, I32, I64):
        return _tag(num, WIRE_VARINT) + b"\x00"
    if kind == F64:
        return _tag(num, WIRE_FIXED64) + bytes(8)
    if kind == F32:
        return _tag(num, WIRE_FIXED32) + bytes(4)
    if kind == MSG:
        body = encode_message({}, field.sub, depth + 1) if depth < _MAX_ZERO_DEPTH else b""
        return _delimited(num, body)
    if kind == IOS:
        return _delimited(num, _special(IOS, 0))
    if kind == QTY:
        return _delimited(num, b"")
    return _delimited(num, b"")  # Time{}, Duration 0, empty raw/fields


def _wire_order(msg: Message) -> tuple:
    # Go's generated marshallers write fields by ascending number, whatever
    # the declaration (and JSON) order.
    order = _WIRE_ORDER.get(msg.name)
    if order is None:
        order = _WIRE_ORDER[msg.name] = tuple(sorted(msg.order, key=lambda f: f.num))
    return order


_WIRE_ORDER: dict[str, tuple] = {}


def encode_message(obj: dict, msg: Message, depth: int = 0) -> bytes:
    out = bytearray()
    for field in _wire_order(msg):
        if field.mode == INLINE:
            out += _delimited(field.num, encode_message(obj, field.sub, depth + 1))
            continue
        value = obj.get(field.json)
        if value is None:
            if field.card == ONE and field.mode != PTR:
                out += _zero(field, depth)
            continue
        if field.card == LIST:
            if not isinstance(value, list):
                raise ValueError(f"{field.json}: not a list: {value!r}")
            for item in value:
                out += _value(field, item)
        elif field.card == MAP:
            if not isinstance(value, dict):
                raise ValueError(f"{field.json}: not a map: {value!r}")
            for key, item in value.items():
                out += _delimited(field.num, _delimited(1, key.encode()) + _map_value(field, item))
        else:
            out += _value(field, value)
    return bytes(out)


def encode_protobuf_object(obj: dict) -> bytes:
    """`k8s\\x00` + runtime.Unknown{typeMeta, raw, "", ""} for a JSON object of
    a kind the decoder has tables for (ValueError otherwise)."""
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    msg = schema.KIND_TABLES.get((api_version, kind))
    if msg is None:
        if kind != "DeleteOptions":
            raise ValueError(f"no protobuf table for {api_version} {kind}")
        msg = schema.DELETE_OPTIONS
    type_meta = _delimited(1, api_version.encode()) + _delimited(2, kind.encode())
    raw = encode_message(obj, msg)
    envelope = _delimited(1, type_meta) + _delimited(2, raw) + _delimited(3, b"") + _delimited(4, b"")
    return MAGIC + envelope


def protobuf_kinds() -> list[tuple[str, str]]:
    """(apiVersion, kind) of every kind the protobuf codec handles."""
    return sorted(schema.KIND_TABLES)


__all__ = ["encode_protobuf_object", "encode_message", "protobuf_kinds", "PROTOBUF_CONTENT_TYPE"]
