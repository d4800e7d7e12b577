"""Kubernetes protobuf request bodies to their JSON wire form.

A body is `k8s\\x00` followed by a runtime.Unknown envelope (1 typeMeta
{1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType); `raw` is the
object's own message.  The Go encoder writes every value field, zero or not,
so turning a message back into what kubectl would have sent as JSON means
applying Go's JSON rules per field: drop zero values of `omitempty` fields,
keep pointers that are present, write Time/IntOrString/Quantity in their JSON
spelling, and merge `json:",inline"` members into their parent.  A zero Time
is JSON null; nulls are left out.
"""

from __future__ import annotations

import base64
import datetime
import struct

import orjson

from k8py.apimachinery import errors
from k8py.apimachinery.protobuf import schema
from k8py.apimachinery.protobuf.schema import (
    BOOL, BYTES, DUR, F32, F64, FIELDS, I32, I64, INLINE, IOS, LIST, MAP, MSG, MTIME, ONE, QTY,
    RAW, STR, STRS, TIME, VARINT_KINDS, WIRE_BYTES, WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT,
    Message,
)

MAGIC = b"k8s\x00"
PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_U64 = (1 << 64) - 1
_EPOCH = datetime.datetime(1970, 1, 1)
# Unix seconds of time.Time{}, Go's zero time: a Time that says so is JSON null.
_GO_ZERO_TIME_SECONDS = -62135596800
_MISSING = object()


class Malformed(Exception):
    """Bytes that are not a valid message; `path` names where, outermost first."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []

    def where(self) -> str:
        out = ""
        for step in self.path:
            out += step if step.startswith("[") or not out else "." + step
        return out


def _varint(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """The rest of a varint whose first byte (already read, high bit set) was `first`."""
    result = first & 0x7F
    shift = 7
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise Malformed("varint longer than 10 bytes")


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    return _varint(buf, pos + 1, b)


def _scalar_from_varint(kind: int, v: int):
    if kind == I64:
        return v - (1 << 64) if v >> 63 else v
    if kind == I32:
        v &= 0xFFFFFFFF  # Go keeps the low 32 bits of an int32 varint
        return v - (1 << 32) if v >> 31 else v
    return v != 0  # BOOL


def _skip(buf: bytes, pos: int, end: int, wire: int) -> int:
    if wire == WIRE_VARINT:
        _, pos = _read_varint(buf, pos)
    elif wire == WIRE_FIXED64:
        pos += 8
    elif wire == WIRE_FIXED32:
        pos += 4
    elif wire == WIRE_BYTES:
        n, pos = _read_varint(buf, pos)
        pos += n
    else:
        raise Malformed(f"unsupported wire type {wire}")
    if pos > end:
        raise Malformed("truncated field")
    return pos


def _fields_of(buf: bytes, pos: int, end: int, wanted: dict[int, int], what: str,
               strict: bool) -> dict[int, object]:
    """A small fixed message (Time, IntOrString, ...): {field number: raw value}.

    `wanted` maps field numbers to the wire type each must have; varints come
    back as unsigned ints, length-delimited fields as bytes.
    """
    found: dict[int, object] = {}
    while pos < end:
        key, pos = _read_varint(buf, pos)
        num, wire = key >> 3, key & 7
        expect = wanted.get(num)
        if expect is None:
            if strict:
                raise Malformed(f"unknown field number {num} in {what}")
            pos = _skip(buf, pos, end, wire)
            continue
        if wire != expect:
            raise Malformed(f"wrong wire type {wire} for field {num} of {what}")
        if wire == WIRE_VARINT:
            found[num], pos = _read_varint(buf, pos)
        else:
            n, pos = _read_varint(buf, pos)
            stop = pos + n
            if stop > end:
                raise Malformed(f"truncated field {num} of {what}")
            found[num] = buf[pos:stop]
            pos = stop
        if pos > end:
            raise Malformed(f"truncated field {num} of {what}")
    return found


_TIMESTAMP = {1: WIRE_VARINT, 2: WIRE_VARINT}


def _timestamp(buf: bytes, pos: int, end: int, strict: bool, micro: bool) -> str | None:
    if pos == end:
        return None  # the zero Time: JSON null
    f = _fields_of(buf, pos, end, _TIMESTAMP, "Time", strict)
    seconds = _scalar_from_varint(I64, f.get(1, 0))
    nanos = _scalar_from_varint(I32, f.get(2, 0)) if micro else 0
    if not 0 <= nanos < 1_000_000_000:
        raise Malformed(f"Time nanos {nanos} out of range")
    micros = nanos // 1000
    if seconds == _GO_ZERO_TIME_SECONDS and micros == 0:
        return None
    try:
        t = _EPOCH + datetime.timedelta(seconds=seconds, microseconds=micros)
    except OverflowError:
        raise Malformed(f"Time seconds {seconds} out of range") from None
    text = (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}")
    return f"{text}.{t.microsecond:06d}Z" if micro else text + "Z"


def format_go_duration(ns: int) -> str:
    """time.Duration.String(): 1h2m3.5s, 1.5ms, 0s."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = -ns if ns < 0 else ns
    if u < 1_000_000_000:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            return f"{sign}{_frac(u, 3)}µs"
        return f"{sign}{_frac(u, 6)}ms"
    text = _frac(u % 60_000_000_000, 9) + "s"
    minutes = u // 60_000_000_000
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes >= 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _frac(v: int, digits: int) -> str:
    whole, part = divmod(v, 10 ** digits)
    if not part:
        return str(whole)
    return f"{whole}.{part:0{digits}d}".rstrip("0")


def _embedded_json(raw: bytes, what: str, strict: bool):
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return decode_protobuf_object(raw, strict=strict)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise Malformed(f"{what} is not JSON: {err}") from None


def _special(kind: int, buf: bytes, pos: int, end: int, strict: bool):
    """The JSON value of a message with its own JSON spelling."""
    if kind == TIME or kind == MTIME:
        return _timestamp(buf, pos, end, strict, kind == MTIME)
    if kind == IOS:
        f = _fields_of(buf, pos, end, {1: WIRE_VARINT, 2: WIRE_VARINT, 3: WIRE_BYTES},
                       "IntOrString", strict)
        kind_of = _scalar_from_varint(I64, f.get(1, 0))
        if kind_of == 0:
            return _scalar_from_varint(I32, f.get(2, 0))
        if kind_of == 1:
            return f.get(3, b"").decode()
        raise Malformed(f"IntOrString type {kind_of} is neither 0 (int) nor 1 (string)")
    if kind == QTY:
        f = _fields_of(buf, pos, end, {1: WIRE_BYTES}, "Quantity", strict)
        return f.get(1, b"").decode() or "0"
    if kind == STRS:
        items = []
        while pos < end:
            key, pos = _read_varint(buf, pos)
            if key != (1 << 3 | WIRE_BYTES):
                raise Malformed(f"unexpected field {key >> 3} (wire type {key & 7}) in a string list")
            n, pos = _read_varint(buf, pos)
            if pos + n > end:
                raise Malformed("truncated string list")
            items.append(buf[pos:pos + n].decode())
            pos += n
        return items
    if kind == DUR:
        f = _fields_of(buf, pos, end, {1: WIRE_VARINT}, "Duration", strict)
        return format_go_duration(_scalar_from_varint(I64, f.get(1, 0)))
    if kind == FIELDS:
        return _embedded_json(_fields_of(buf, pos, end, {1: WIRE_BYTES}, "FieldsV1", strict).get(1, b""),
                              "fieldsV1", strict)
    if kind == RAW:
        return _embedded_json(_fields_of(buf, pos, end, {1: WIRE_BYTES}, "RawExtension", strict).get(1, b""),
                              "RawExtension", strict)
    raise AssertionError(kind)


def _length_delimited(kind: int, sub: Message | None, buf: bytes, pos: int, stop: int, strict: bool):
    if kind == STR:
        return buf[pos:stop].decode()
    if kind == MSG:
        return _message(buf, pos, stop, sub, strict)
    if kind == BYTES:
        return base64.b64encode(buf[pos:stop]).decode("ascii")
    return _special(kind, buf, pos, stop, strict)


def _fixed(wire: int, buf: bytes, pos: int):
    if wire == WIRE_FIXED64:
        return struct.unpack_from("<d", buf, pos)[0], pos + 8
    return struct.unpack_from("<f", buf, pos)[0], pos + 4


def _zero(kind: int):
    """Go's JSON for a map value that the entry left out."""
    if kind == STR or kind == BYTES:
        return ""
    if kind == QTY:
        return "0"
    if kind in VARINT_KINDS:
        return False if kind == BOOL else 0
    if kind == F32 or kind == F64:
        return 0.0
    if kind == MSG:
        return {}
    if kind == STRS:
        return []
    return None


def _map_entry(field, buf: bytes, pos: int, end: int, strict: bool) -> tuple[str, object]:
    kind = field.kind
    # Fast path for the usual short entry `0A klen key 12 vlen value` of a
    # string or Quantity map (labels, annotations, resources).
    if (kind == STR or kind == QTY) and end - pos >= 4 and buf[pos] == 0x0A and buf[pos + 1] < 0x80:
        key_stop = pos + 2 + buf[pos + 1]
        value_start = key_stop + 2
        if value_start <= end and buf[key_stop] == 0x12 and value_start + buf[key_stop + 1] == end:
            if kind == STR:
                return buf[pos + 2:key_stop].decode(), buf[value_start:end].decode()
            if end - value_start >= 2 and buf[value_start] == 0x0A and value_start + 2 + buf[value_start + 1] == end:
                return buf[pos + 2:key_stop].decode(), buf[value_start + 2:end].decode() or "0"
    key = ""
    value = _MISSING
    while pos < end:
        tag, pos = _read_varint(buf, pos)
        num, wire = tag >> 3, tag & 7
        if num == 1 and wire == WIRE_BYTES:
            n, pos = _read_varint(buf, pos)
            if pos + n > end:
                raise Malformed("truncated map key")
            key = buf[pos:pos + n].decode()
            pos += n
        elif num == 2 and wire == field.wire_value:
            if wire == WIRE_BYTES:
                n, pos = _read_varint(buf, pos)
                stop = pos + n
                if stop > end:
                    raise Malformed("truncated map value")
                value = _length_delimited(kind, field.sub, buf, pos, stop, strict)
                pos = stop
            elif wire == WIRE_VARINT:
                v, pos = _read_varint(buf, pos)
                value = _scalar_from_varint(kind, v)
            else:
                value, pos = _fixed(wire, buf, pos)
        elif num in (1, 2):
            raise Malformed(f"wrong wire type {wire} in a map entry")
        elif strict:
            raise Malformed(f"unknown field number {num} in a map entry")
        else:
            pos = _skip(buf, pos, end, wire)
        if pos > end:
            raise Malformed("truncated map entry")
    if value is _MISSING:
        value = _zero(kind)
    return key, value


def _message(buf: bytes, pos: int, end: int, msg: Message, strict: bool) -> dict:
    fields = msg.fields
    fast = msg.fast
    values: dict[int, object] = {}
    while pos < end:
        tag = buf[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _varint(buf, pos, tag)
        # Fast path for what Go writes most: strings, nested messages and
        # varints, many of them zero values JSON leaves out anyway.
        field = fast.get(tag)
        if field is not None:
            num = field.num
            if field.wire == WIRE_VARINT:
                value, pos = _read_varint(buf, pos)
                if pos > end:
                    raise Malformed(f"truncated field {field.json}")
                if not value and field.drop_zero:
                    if num in values:  # a later zero still overrides an earlier value
                        del values[num]
                    continue
                value = _scalar_from_varint(field.kind, value)
            else:
                n = buf[pos]
                pos += 1
                if n >= 0x80:
                    n, pos = _varint(buf, pos, n)
                stop = pos + n
                if stop > end:
                    err = Malformed(f"truncated: field needs {n} bytes, {end - pos} left")
                    err.path.insert(0, field.json)
                    raise err
                if field.kind == STR:
                    if not n and field.drop_zero:
                        if num in values:
                            del values[num]
                        continue
                    value = buf[pos:stop].decode()
                else:
                    try:
                        value = _message(buf, pos, stop, field.sub, strict)
                    except Malformed as err:
                        if field.card == LIST:
                            err.path.insert(0, f"[{len(values.get(num, ()))}]")
                        err.path.insert(0, field.json)
                        raise
                pos = stop
            if field.card == ONE:
                values[num] = value
            else:
                values.setdefault(num, []).append(value)
            continue
        num = tag >> 3
        wire = tag & 7
        field = fields.get(num)
        if field is None:
            if strict and num <= msg.newest:
                raise Malformed(f"unknown field number {num} in {msg.name}")
            # Past the last v1.32 number: a field a later Kubernetes added
            # (kubectl 1.33 writes PodStatus.observedGeneration, 17, on every
            # Pod). v1.32 has nowhere to put it; skipped, as upstream does.
            pos = _skip(buf, pos, end, wire)
            continue
        card = field.card
        try:
            if wire == WIRE_BYTES:
                n = buf[pos]
                pos += 1
                if n >= 0x80:
                    n, pos = _varint(buf, pos, n)
                stop = pos + n
                if stop > end:
                    raise Malformed(f"truncated: field needs {n} bytes, {end - pos} left")
                if card == MAP:
                    key, value = _map_entry(field, buf, pos, stop, strict)
                    values.setdefault(num, {})[key] = value
                    pos = stop
                    continue
                if field.wire != WIRE_BYTES:
                    if card != LIST:
                        raise Malformed(f"wrong wire type {wire} for {field.json}")
                    values.setdefault(num, []).extend(_packed(field, buf, pos, stop))
                    pos = stop
                    continue
                kind = field.kind
                if kind == STR:
                    value = buf[pos:stop].decode()
                elif kind == MSG:
                    value = _message(buf, pos, stop, field.sub, strict)
                else:
                    value = _length_delimited(kind, field.sub, buf, pos, stop, strict)
                pos = stop
            elif wire != field.wire or card == MAP:
                raise Malformed(f"wrong wire type {wire} for {field.json}")
            elif wire == WIRE_VARINT:
                value, pos = _read_varint(buf, pos)
                value = _scalar_from_varint(field.kind, value)
            else:
                value, pos = _fixed(wire, buf, pos)
        except Malformed as err:
            if card == LIST:
                err.path.insert(0, f"[{len(values.get(num, ()))}]")
            err.path.insert(0, field.json)
            raise
        if pos > end:
            raise Malformed(f"truncated field {field.json}")
        if card == ONE:
            values[num] = value
        else:
            values.setdefault(num, []).append(value)
    if pos > end:
        raise Malformed(f"truncated {msg.name}")

    out: dict = {}
    # Only the fields that arrived, in declaration (JSON) order.
    for num in sorted(values, key=msg.position.__getitem__) if len(values) > 1 else values:
        value = values[num]
        if value is None:
            continue
        field = fields[num]
        if field.drop_zero and not value:
            continue
        if field.mode == INLINE:
            out.update(value)
        else:
            out[field.json] = value
    return out


def _packed(field, buf: bytes, pos: int, stop: int) -> list:
    kind = field.kind
    out = []
    if field.wire == WIRE_VARINT:
        while pos < stop:
            v, pos = _read_varint(buf, pos)
            out.append(_scalar_from_varint(kind, v))
    else:
        size = 8 if field.wire == WIRE_FIXED64 else 4
        while pos + size <= stop:
            v, pos = _fixed(field.wire, buf, pos)
            out.append(v)
    if pos != stop:
        raise Malformed(f"truncated packed {field.json}")
    return out


_UNKNOWN = {1: WIRE_BYTES, 2: WIRE_BYTES, 3: WIRE_BYTES, 4: WIRE_BYTES}
_TYPE_META = {1: WIRE_BYTES, 2: WIRE_BYTES}


def decode_protobuf_object(raw: bytes, *, strict: bool = True) -> dict:
    """A `application/vnd.kubernetes.protobuf` body as the JSON object kubectl
    would have sent, or a 400 BadRequest StatusError.

    Field numbers above the highest one a v1.32 message declares are fields
    of later Kubernetes versions and are skipped (clients newer than the
    server send them, zero or not). strict: reject the other field numbers
    the v1.32 tables don't know, which no Kubernetes version writes (upstream's
    decoder skips them too; pass strict=False to do the same).
    """
    if not isinstance(raw, bytes):
        raw = bytes(raw)
    if not raw.startswith(MAGIC):
        raise errors.bad_request(
            "the body is not a Kubernetes protobuf object: it does not start with the 'k8s\\x00' prefix")
    what = "the runtime.Unknown envelope"
    try:
        envelope = _fields_of(raw, len(MAGIC), len(raw), _UNKNOWN, "runtime.Unknown", strict)
        type_meta = envelope.get(1, b"")
        meta = _fields_of(type_meta, 0, len(type_meta), _TYPE_META, "runtime.TypeMeta", strict)
        api_version = meta.get(1, b"").decode()
        kind = meta.get(2, b"").decode()
        encoding = envelope.get(3, b"").decode()
        content_type = envelope.get(4, b"").decode()
    except (Malformed, IndexError, UnicodeDecodeError) as err:
        raise errors.bad_request(f"unable to decode {what}: {_reason(err)}") from None
    if not kind:
        raise errors.bad_request("Object 'Kind' is missing in the protobuf body")
    if not api_version:
        raise errors.bad_request(f"Object 'apiVersion' is missing in the protobuf body of kind {kind}")
    if encoding:
        raise errors.bad_request(f"unsupported contentEncoding {encoding!r} in the protobuf envelope")
    if content_type and content_type != PROTOBUF_CONTENT_TYPE:
        raise errors.bad_request(f"unsupported contentType {content_type!r} in the protobuf envelope")
    msg = schema.KIND_TABLES.get((api_version, kind))
    if msg is None and kind == "DeleteOptions":
        msg = schema.DELETE_OPTIONS
    if msg is None:
        raise errors.bad_request(
            f"no kind {kind!r} is registered for version {api_version!r}"
            " that can be decoded from protobuf")
    body = envelope.get(2, b"")
    try:
        decoded = _message(body, 0, len(body), msg, strict)
    except (Malformed, IndexError, UnicodeDecodeError, struct.error, RecursionError) as err:
        where = err.where() if isinstance(err, Malformed) and err.path else ""
        at = f" at {where}" if where else ""
        raise errors.bad_request(f"unable to decode {api_version} {kind} from protobuf{at}: {_reason(err)}") from None
    out = {"apiVersion": api_version, "kind": kind}
    out.update(decoded)
    return out


def _reason(err: Exception) -> str:
    if isinstance(err, Malformed):
        return err.reason
    if isinstance(err, IndexError):
        return "truncated message"
    if isinstance(err, UnicodeDecodeError):
        return "string is not valid UTF-8"
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return "malformed message"
