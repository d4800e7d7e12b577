"""The OpenAPI v2 document in gnostic's protobuf form.

kubectl asks for /openapi/v2 as `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
when it cannot use the v3 documents (validating a `kind: List`, older
kubectls). It reads only the definitions from it, so the paths are sent as
names alone. Field numbers are those of gnostic's openapi_v2 messages;
vendor extensions, defaults and enums travel as YAML text in its `Any`.
"""

from __future__ import annotations

import struct

import yaml

MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

# Schema message: JSON key -> (field number, kind)
SCHEMA_FIELDS = {
    "$ref": (1, "string"), "format": (2, "string"), "title": (3, "string"), "description": (4, "string"),
    "default": (5, "any"), "multipleOf": (6, "double"), "maximum": (7, "double"),
    "exclusiveMaximum": (8, "bool"), "minimum": (9, "double"), "exclusiveMinimum": (10, "bool"),
    "maxLength": (11, "int"), "minLength": (12, "int"), "pattern": (13, "string"), "maxItems": (14, "int"),
    "minItems": (15, "int"), "uniqueItems": (16, "bool"), "maxProperties": (17, "int"),
    "minProperties": (18, "int"), "required": (19, "strings"), "enum": (20, "anys"),
    "discriminator": (26, "string"), "readOnly": (27, "bool"), "example": (30, "any"),
}


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _bytes(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _string(field: int, text: str) -> bytes:
    return _bytes(field, text.encode())


def _any(value) -> bytes:
    """gnostic Any: the value as YAML (field 2)."""
    return _string(2, yaml.safe_dump(value, default_flow_style=False))


def _named(field: int, name: str, value: bytes) -> bytes:
    return _bytes(field, _string(1, name) + _bytes(2, value))


def encode_schema(schema: dict) -> bytes:
    out = bytearray()
    for key, value in schema.items():
        if key in SCHEMA_FIELDS:
            field, kind = SCHEMA_FIELDS[key]
            if kind == "string":
                out += _string(field, str(value))
            elif kind == "double":
                out += _key(field, 1) + struct.pack("<d", float(value))
            elif kind in ("int", "bool"):
                out += _key(field, 0) + _varint(int(value))
            elif kind == "strings":
                for item in value:
                    out += _string(field, item)
            elif kind == "any":
                out += _bytes(field, _any(value))
            elif kind == "anys":
                for item in value:
                    out += _bytes(field, _any(item))
        elif key == "type":
            types = value if isinstance(value, list) else [value]
            out += _bytes(22, b"".join(_string(1, t) for t in types))
        elif key == "items":
            items = value if isinstance(value, list) else [value]
            out += _bytes(23, b"".join(_bytes(1, encode_schema(s)) for s in items))
        elif key == "allOf":
            for item in value:
                out += _bytes(24, encode_schema(item))
        elif key == "properties":
            out += _bytes(25, b"".join(_named(1, name, encode_schema(s)) for name, s in value.items()))
        elif key == "additionalProperties":
            inner = _key(2, 0) + _varint(int(value)) if isinstance(value, bool) else _bytes(1, encode_schema(value))
            out += _bytes(21, inner)
        elif key.startswith("x-"):
            out += _named(31, key, _any(value))
    return bytes(out)


def encode_document(doc: dict) -> bytes:
    info = doc.get("info") or {}
    out = bytearray(_string(1, doc.get("swagger", "2.0")))
    out += _bytes(2, _string(1, info.get("title", "")) + _string(2, info.get("version", "")))
    # Paths by name only (empty PathItems): kubectl reads the definitions.
    out += _bytes(8, b"".join(_named(2, path, b"") for path in doc.get("paths") or {}))
    out += _bytes(9, b"".join(_named(1, name, encode_schema(schema))
                              for name, schema in (doc.get("definitions") or {}).items()))
    return bytes(out)
