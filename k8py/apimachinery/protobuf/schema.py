"""Compile the field tables in `messages.py` into lookup structures.

The decoder needs, per message, a map from field number to what that field is
(JSON name, value kind, repeated/map, how JSON treats its zero value), plus the
declaration order so the output keys come out in the order Go's JSON encoder
writes them.
"""

from __future__ import annotations

import re

from k8py.apimachinery.protobuf.messages import KINDS, MESSAGES

# Value kinds.
STR, BYTES, BOOL, I32, I64, F32, F64, MSG = range(8)
TIME, MTIME, DUR, IOS, QTY, RAW, FIELDS, STRS = range(8, 16)

# Cardinality.
ONE, LIST, MAP = range(3)

# How JSON treats the field (see messages.py for the notation).
KEEP, OMIT, PTR, INLINE = range(4)

_SCALARS = {"str": STR, "bytes": BYTES, "bool": BOOL, "i32": I32, "i64": I64, "f32": F32, "f64": F64}
_WELL_KNOWN = {"time": TIME, "mtime": MTIME, "dur": DUR, "ios": IOS, "qty": QTY, "raw": RAW,
               "fields": FIELDS, "strs": STRS}
_MODES = {"": KEEP, "?": OMIT, "*": PTR, "^": INLINE}

# Protobuf wire types.
WIRE_VARINT, WIRE_FIXED64, WIRE_BYTES, WIRE_FIXED32 = 0, 1, 2, 5
VARINT_KINDS = frozenset((BOOL, I32, I64))
# Kinds whose Go zero value `omitempty` drops: scalars, and IntOrString by our
# choice (0 and "" both mean "unset" to upstream defaulting, e.g. targetPort).
_ZERO_DROPPABLE = frozenset((STR, BYTES, BOOL, I32, I64, F32, F64, IOS))


def wire_type_of(kind: int) -> int:
    if kind in VARINT_KINDS:
        return WIRE_VARINT
    if kind == F64:
        return WIRE_FIXED64
    if kind == F32:
        return WIRE_FIXED32
    return WIRE_BYTES


class Field:
    __slots__ = ("num", "json", "kind", "card", "mode", "sub", "wire", "wire_value", "drop_zero")

    def __init__(self, num: int, json: str, kind: int, card: int, mode: int, sub: "Message | None"):
        self.num = num
        self.json = json
        self.kind = kind
        self.card = card
        self.mode = mode
        self.sub = sub
        self.wire_value = wire_type_of(kind)  # of a value, or of a map entry's value
        self.wire = WIRE_BYTES if card == MAP else self.wire_value
        self.drop_zero = mode == OMIT and card == ONE and kind in _ZERO_DROPPABLE

    def __repr__(self) -> str:
        return f"Field({self.num}, {self.json!r})"


class Message:
    __slots__ = ("name", "fields", "order", "fast", "position", "newest")

    def __init__(self, name: str):
        self.name = name
        self.fields: dict[int, Field] = {}
        self.order: tuple[Field, ...] = ()
        # tag (number and wire type) -> field, for the fields the decoder's
        # fast path handles: single or repeated strings, messages and
        # varints arriving with their own wire type (not packed, not maps).
        self.fast: dict[int, Field] = {}
        self.position: dict[int, int] = {}  # field number -> declaration index
        # The highest field number v1.32 declares: numbers past it belong to
        # fields later Kubernetes versions added (field numbers only grow).
        self.newest = 0

    def __repr__(self) -> str:
        return f"Message({self.name!r})"


_HEADER = re.compile(r"^([A-Za-z][\w.]*):$")
_ENTRY = re.compile(r"^(\d+) (\w+) (\[(\w+)\]|\{(\w+)\}|(\w+))([?*^]?)$")


def _parse(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.match(stripped)
        if header and not line.startswith(" "):
            name = header.group(1)
            if name in blocks:
                raise ValueError(f"message {name} declared twice")
            current = blocks[name] = []
            continue
        if current is None:
            raise ValueError(f"field line outside a message: {line!r}")
        current.extend(part.strip() for part in stripped.split(";") if part.strip())
    return blocks


def compile_messages(text: str) -> dict[str, Message]:
    blocks = _parse(text)
    messages = {name: Message(name) for name in blocks}
    for name, entries in blocks.items():
        msg = messages[name]
        order = []
        names = set()
        for entry in entries:
            m = _ENTRY.match(entry)
            if not m:
                raise ValueError(f"{name}: cannot read field {entry!r}")
            num, json = int(m.group(1)), m.group(2)
            type_name = m.group(4) or m.group(5) or m.group(6)
            card = LIST if m.group(4) else MAP if m.group(5) else ONE
            mode = _MODES[m.group(7)]
            sub = None
            if type_name in _SCALARS:
                kind = _SCALARS[type_name]
            elif type_name in _WELL_KNOWN:
                kind = _WELL_KNOWN[type_name]
            elif type_name in messages:
                kind, sub = MSG, messages[type_name]
            else:
                raise ValueError(f"{name}.{json}: unknown type {type_name}")
            if num in msg.fields or json in names:
                raise ValueError(f"{name}: field {num} {json} declared twice")
            if mode == INLINE and (kind != MSG or card != ONE):
                raise ValueError(f"{name}.{json}: only a single message can be inlined")
            field = Field(num, json, kind, card, mode, sub)
            msg.fields[num] = field
            names.add(json)
            order.append(field)
        msg.order = tuple(order)
        msg.position = {f.num: i for i, f in enumerate(order)}
        msg.newest = max(msg.fields, default=0)
        msg.fast = {f.num << 3 | f.wire: f for f in order
                    if f.card != MAP and (f.kind in (STR, MSG) or f.kind in VARINT_KINDS)}
    return messages


MESSAGE_TABLES: dict[str, Message] = compile_messages(MESSAGES)
KIND_TABLES: dict[tuple[str, str], Message] = {key: MESSAGE_TABLES[name] for key, name in KINDS.items()}
DELETE_OPTIONS: Message = MESSAGE_TABLES["DeleteOptions"]
