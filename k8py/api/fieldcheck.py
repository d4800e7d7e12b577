"""Decoding checks for typed (built-in) objects, and `fieldValidation`.

Upstream decodes a request body into the Go struct of its kind. Two kinds of
problem come out of that, and this module reproduces both from the schemas:

* type errors (a string where an int32 belongs, an object where a string
  belongs, a Quantity or a Time that does not parse, bad base64 in a `[]byte`):
  always fatal, 400 BadRequest
  `<Kind> in version "<v>" cannot be handled as a <Kind>: <decoder error>`;
* strict errors (unknown fields, and duplicate fields in the raw JSON): what
  happens depends on `?fieldValidation=`: Strict rejects (400, the same prefix,
  then `strict decoding error: unknown field "spec.foo", ...`), Warn (the
  default) accepts and returns one `Warning: 299 - "unknown field \\"spec.foo\\""`
  header per problem, Ignore accepts silently.

The texts follow the Go decoder k8s uses (sigs.k8s.io/json, a fork of
encoding/json): strict paths join struct fields and map keys with "." and
render list indices as "[i]"; type errors name the innermost struct and the
chain of struct fields (no map keys, no indices) - `json: cannot unmarshal
string into Go struct field DeploymentSpec.spec.replicas of type int32`. Only
the first saved type error is reported, except that a custom unmarshaller's
error (IntOrString, Quantity, Time, MicroTime) stops decoding at once and wins.
Strict errors are de-duplicated and capped at 100, and are only reported when
decoding succeeded.

Objects without declared properties (RawExtension, FieldsV1, apiextensions
JSON) keep their raw JSON upstream, so nothing inside them is checked.
"""

from __future__ import annotations

import bisect
import json
import re
import unicodedata

from k8py.apimachinery.errors import Cause, StatusError, bad_request, invalid
from k8py.apimachinery.gostrings import JSONPairs as _Pairs, go_quote, pairs_of as _items
from k8py.apimachinery.patch import patch_error  # noqa: F401 (its home before the patch code moved down)
from k8py.apimachinery.schema import INT_OR_STRING, MICRO_TIME, QUANTITY, TIME, Schemas

MAX_STRICT_ERRORS = 100
UNKNOWN = "unknown field"
DUPLICATE = "duplicate field"
FIELD_VALIDATION_VALUES = ("Ignore", "Strict", "Warn")

# ---- compiled types -----------------------------------------------------------

STRUCT, MAP, ARRAY, STRING, BYTES, INT, FLOAT, BOOL, INT_OR_STR, QUANT, TIME_, MICRO, ANY = range(13)

_INT_RANGES = {"int32": (-(2 ** 31), 2 ** 31 - 1), "int64": (-(2 ** 63), 2 ** 63 - 1)}


class _Type:
    __slots__ = ("kind", "go", "struct", "elem", "preserve", "_node", "_compiler", "_fields")

    def __init__(self, kind: int, go: str, struct: str = "", elem: "_Type | None" = None,
                 preserve: bool = False, node: dict | None = None, compiler: "_Compiler | None" = None):
        self.kind = kind
        self.go = go
        self.struct = struct
        self.elem = elem
        self.preserve = preserve
        self._node = node
        self._compiler = compiler
        self._fields: dict[str, _Type] | None = None

    @property
    def fields(self) -> dict[str, "_Type"]:
        """Struct fields, compiled on first use (definitions may be recursive)."""
        if self._fields is None:
            props = (self._node or {}).get("properties") or {}
            owner = self._compiler.owner_of(self._node) if self._compiler else ""
            self._fields = {name: self._compiler.compile(sub, owner) for name, sub in props.items()}
        return self._fields


def _go_package(definition: str) -> str:
    parts = definition.split(".")
    return parts[-2] if len(parts) >= 2 else ""


_ANY = _Type(ANY, "interface {}")


class _Compiler:
    """Schema nodes -> _Type, memoised per definition."""

    def __init__(self, schemas: Schemas):
        self.schemas = schemas
        self.by_name: dict[str, _Type] = {}
        self._owners: dict[int, str] = {}
        self._names = {id(node): name for name, node in schemas.definitions.items()}

    def name_of(self, node: dict) -> str:
        """The definition name of a `$defs` entry (or of a `$ref` to one)."""
        return self._names.get(id(node)) or Schemas.ref_name(node) or ""

    def owner_of(self, node: dict | None) -> str:
        return self._owners.get(id(node), "") if node is not None else ""

    def definition(self, name: str) -> _Type:
        t = self.by_name.get(name)
        if t is not None:
            return t
        node = self.schemas.definitions.get(name)
        go = f"{_go_package(name)}.{name.rsplit('.', 1)[-1]}"
        if name == INT_OR_STRING:
            t = _Type(INT_OR_STR, go)
        elif name == QUANTITY:
            t = _Type(QUANT, go)
        elif name == TIME:
            t = _Type(TIME_, go)
        elif name == MICRO_TIME:
            t = _Type(MICRO, go)
        elif node is None:
            t = _ANY
        elif node.get("properties"):
            self._owners[id(node)] = name
            t = _Type(STRUCT, go, struct=name.rsplit(".", 1)[-1], node=node, compiler=self,
                      preserve=bool(node.get("x-kubernetes-preserve-unknown-fields")))
        else:
            t = self.compile(node, name, named=go)
        self.by_name[name] = t
        return t

    def compile(self, node: dict | None, owner: str = "", named: str = "") -> _Type:
        if not isinstance(node, dict):
            return _ANY
        name = Schemas.ref_name(node)
        if name is None:
            all_of = node.get("allOf")
            if all_of and len(all_of) == 1 and isinstance(all_of[0], dict):
                name = Schemas.ref_name(all_of[0])
        if name is not None:
            return self.definition(name)
        types = Schemas.types(node)
        fmt = node.get("format", "")
        if node.get("properties"):
            self._owners[id(node)] = owner
            return _Type(STRUCT, named or "struct", struct=owner.rsplit(".", 1)[-1], node=node, compiler=self,
                         preserve=bool(node.get("x-kubernetes-preserve-unknown-fields")))
        if node.get("x-kubernetes-preserve-unknown-fields") and not node.get("additionalProperties"):
            # custom resource JSON kept as it came: no fields to check, but still strictly decoded
            return _Type(STRUCT, named or "struct", struct=owner.rsplit(".", 1)[-1], node=node, compiler=self,
                         preserve=True)
        if "array" in types:
            elem = self.compile(node.get("items"), owner)
            return _Type(ARRAY, named or "[]" + elem.go, elem=elem)
        if "object" in types or "additionalProperties" in node:
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                elem = self.compile(extra, owner)
                go = named or "map[string]" + elem.go
                if elem.kind == QUANT and owner.startswith(("io.k8s.api.core.v1.", "io.k8s.api.node.v1.")):
                    go = "v1.ResourceList"
                return _Type(MAP, go, elem=elem)
            return _ANY
        if types == {"string"}:
            if fmt == "byte":
                return _Type(BYTES, named or "[]uint8")
            return _Type(STRING, named or "string")
        if types == {"integer"}:
            return _Type(INT, named or (fmt if fmt in _INT_RANGES else "int64"))
        if types == {"number"}:
            return _Type(FLOAT, named or ("float32" if fmt == "float" else "float64"))
        if types == {"boolean"}:
            return _Type(BOOL, named or "bool")
        return _ANY


_compilers: dict[int, _Compiler] = {}


def _compiler_for(schemas: Schemas) -> _Compiler:
    compiler = _compilers.get(id(schemas))
    if compiler is None or compiler.schemas is not schemas:
        compiler = _compilers[id(schemas)] = _Compiler(schemas)
    return compiler


# ---- raw JSON with duplicate keys ---------------------------------------------

def parse_keeping_duplicates(raw: bytes | str):
    """Parse JSON keeping every key of every object, so duplicates can be reported."""
    return json.loads(raw, object_pairs_hook=_Pairs)


# ---- the walk ---------------------------------------------------------------

class _Abort(Exception):
    """A custom unmarshaller failed: the Go decoder stops right there."""


def _describe(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (dict, _Pairs)):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def _number_text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _std_type_error(value, go: str) -> str:
    """encoding/json's error for a value decoded on its own (no struct context)."""
    return f"json: cannot unmarshal {value} into Go value of type {go}"


class _Walker:
    def __init__(self):
        self.strict: list[tuple[str, str]] = []
        self._seen: set[tuple[str, str]] = set()
        self.type_errors: list[str] = []

    def strict_error(self, kind: str, path: str) -> None:
        if len(self.strict) >= MAX_STRICT_ERRORS:
            return
        key = (kind, path)
        if key in self._seen:
            return
        self._seen.add(key)
        self.strict.append(key)

    def type_error(self, value: str, go: str, fields: tuple[str, ...], struct: str) -> None:
        if fields or struct:
            self.type_errors.append(
                f"json: cannot unmarshal {value} into Go struct field {struct}.{'.'.join(fields)} of type {go}")
        else:
            self.type_errors.append(f"json: cannot unmarshal {value} into Go value of type {go}")

    def walk(self, value, t: _Type, path: str, fields: tuple[str, ...], struct: str) -> None:
        if value is None:
            return
        kind = t.kind
        if kind == ANY:
            return
        if kind == STRUCT:
            if isinstance(value, (dict, _Pairs)):
                self.struct(value, t, path, fields)
            else:
                self.type_error(_describe(value), t.go, fields, struct)
        elif kind == MAP:
            if isinstance(value, (dict, _Pairs)):
                seen: set[str] = set()
                check_dups = isinstance(value, _Pairs)
                for key, item in _items(value):
                    child = f"{path}.{key}" if path else key
                    if check_dups:
                        if key in seen:
                            self.strict_error(DUPLICATE, child)
                        seen.add(key)
                    self.walk(item, t.elem, child, fields, struct)
            else:
                self.type_error(_describe(value), t.go, fields, struct)
        elif kind == ARRAY:
            if isinstance(value, list) and not isinstance(value, _Pairs):
                for i, item in enumerate(value):
                    self.walk(item, t.elem, f"{path}[{i}]", fields, struct)
            else:
                self.type_error(_describe(value), t.go, fields, struct)
        elif kind == STRING:
            if not isinstance(value, str):
                self.type_error(_describe(value), t.go, fields, struct)
        elif kind == BYTES:
            if isinstance(value, str):
                problem = base64_error(value)
                if problem:
                    self.type_errors.append(problem)
            else:
                self.type_error(_describe(value), t.go, fields, struct)
        elif kind == INT:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.type_error(_describe(value), t.go, fields, struct)
            else:
                low, high = _INT_RANGES.get(t.go, _INT_RANGES["int64"])
                if isinstance(value, float) or not low <= value <= high:
                    self.type_error("number " + _number_text(value), t.go, fields, struct)
        elif kind == FLOAT:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.type_error(_describe(value), t.go, fields, struct)
        elif kind == BOOL:
            if not isinstance(value, bool):
                self.type_error(_describe(value), t.go, fields, struct)
        elif kind == INT_OR_STR:
            if isinstance(value, str):
                return
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _Abort(_std_type_error(_describe(value), "int32"))
            if isinstance(value, float) or not -(2 ** 31) <= value < 2 ** 31:
                raise _Abort(_std_type_error("number " + _number_text(value), "int32"))
        elif kind == QUANT:
            problem = quantity_error(_quantity_text(value))
            if problem:
                raise _Abort(problem)
        elif kind in (TIME_, MICRO):
            if not isinstance(value, str):
                raise _Abort(_std_type_error(_describe(value), "string"))
            problem = time_error(value, micro=kind == MICRO)
            if problem:
                raise _Abort(problem)

    def duplicates(self, value, path: str) -> None:
        """Duplicate keys anywhere inside preserved, schema-less JSON."""
        if isinstance(value, _Pairs):
            seen: set[str] = set()
            for key, item in _items(value):
                child = f"{path}.{key}" if path else key
                if key in seen:
                    self.strict_error(DUPLICATE, child)
                seen.add(key)
                self.duplicates(item, child)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.duplicates(item, f"{path}[{i}]")

    def struct(self, value, t: _Type, path: str, fields: tuple[str, ...]) -> None:
        known = t.fields
        check_dups = isinstance(value, _Pairs)
        seen: set[str] = set()
        for key, item in _items(value):
            child = f"{path}.{key}" if path else key
            field_type = known.get(key)
            if field_type is None:
                if t.preserve:  # kept as it came, yet decoded strictly (custom resources)
                    if check_dups:
                        if key in seen:
                            self.strict_error(DUPLICATE, child)
                        seen.add(key)
                    self.duplicates(item, child)
                elif not (not path and key in ("apiVersion", "kind")):
                    self.strict_error(UNKNOWN, child)
                continue
            if check_dups:
                if key in seen:
                    self.strict_error(DUPLICATE, child)
                seen.add(key)
            self.walk(item, field_type, child, fields + (key,), t.struct)


def _quantity_text(value) -> str:
    """What Quantity.UnmarshalJSON hands to ParseQuantity: the raw JSON, quotes stripped."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number_text(value)
    return json.dumps(value if not isinstance(value, _Pairs) else dict(value), separators=(",", ":"))


def _run(value, schema: dict, schemas: Schemas) -> _Walker:
    compiler = _compiler_for(schemas)
    name = compiler.name_of(schema)
    t = compiler.definition(name) if name else compiler.compile(schema)
    walker = _Walker()
    try:
        walker.walk(value, t, "", (), "")
    except _Abort as abort:
        walker.type_errors = [str(abort)]
    except RecursionError:
        walker.type_errors = walker.type_errors or ["json: exceeded max depth"]
    return walker


# ---- public API ---------------------------------------------------------------

def check_fields(obj: dict, schema: dict, schemas: Schemas) -> tuple[list[str], list[str]]:
    """Unknown-field paths ("spec.foo", "spec.containers[0].bogus") and the
    decoder's type errors (the first one is what upstream reports)."""
    walker = _run(obj, schema, schemas)
    return [path for kind, path in walker.strict if kind == UNKNOWN], walker.type_errors


def check_body(raw: bytes | str, schema: dict, schemas: Schemas) -> tuple[list[str], list[str]]:
    """Like check_fields on the raw JSON body, also finding duplicate keys.
    Returns strict error texts in document order (`unknown field "a.b"`,
    `duplicate field "a.c"`) and the type errors."""
    walker = _run(parse_keeping_duplicates(raw), schema, schemas)
    return [f'{kind} "{path}"' for kind, path in walker.strict], walker.type_errors


def check_raw(raw: bytes | str, schema: dict, schemas: Schemas) -> tuple[list[str], list[str], list[str]]:
    """check_body for a request: (unknown-field paths, to prune; every strict
    error text in document order, duplicates included; type errors)."""
    walker = _run(parse_keeping_duplicates(raw), schema, schemas)
    unknown = [path for kind, path in walker.strict if kind == UNKNOWN]
    return unknown, [f'{kind} "{path}"' for kind, path in walker.strict], walker.type_errors


def unknown_field_messages(paths: list[str]) -> list[str]:
    return [f'{UNKNOWN} "{path}"' for path in paths]


def strict_decoding_message(messages: list[str]) -> str:
    return "strict decoding error: " + ", ".join(messages)


def decode_error(kind: str, version: str, type_error: str, target_kind: str = "") -> StatusError:
    """400 for a body that does not decode into its kind (create and update)."""
    return bad_request(f'{kind} in version "{version}" cannot be handled as a {target_kind or kind}: {type_error}')


def strict_error(kind: str, version: str, messages: list[str], target_kind: str = "") -> StatusError:
    """400 for fieldValidation=Strict on create and update."""
    return decode_error(kind, version, strict_decoding_message(messages), target_kind)


def patch_strict_error(patched: str, messages: list[str]) -> StatusError:
    """422 for fieldValidation=Strict on a JSON or merge patch: upstream reports
    the patched object's JSON as the invalid value of the field "patch" (for a
    strategic merge patch, Go's rendering of the patch map; see go_value_text)."""
    return patch_error(patched, strict_decoding_message(messages))


def validate_directive(value: str | None, options_kind: str = "CreateOptions") -> str:
    """The effective fieldValidation directive ("" means Warn); anything else is 422."""
    if not value:
        return "Warn"
    if value in FIELD_VALIDATION_VALUES:
        return value
    supported = ", ".join(f'"{v}"' for v in ("",) + FIELD_VALIDATION_VALUES)
    cause = Cause("fieldValidation", f"Unsupported value: {go_quote(value)}: supported values: {supported}",
                  reason="FieldValueNotSupported")
    raise invalid(options_kind, "", [cause], group="meta.k8s.io")


def warning_header(text: str, code: int = 299, agent: str = "-") -> str:
    """One `Warning` header value: 299 - "text" with quotes and backslashes escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'{code:03d} {agent or "-"} "{escaped}"'


_WARNING_TOTAL_RUNES = 4 * 1024
_WARNING_ITEM_RUNES = 256


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def warning_headers(texts: list[str]) -> list[str]:
    """Header values for a request's warnings, as the apiserver's recorder writes
    them: duplicates dropped; past 4096 characters in all, each text is cut to
    256 characters and the cut list starts over, stopping at 4096 again."""
    # Like upstream's recorder, a text with control characters is dropped:
    # it cannot travel in a header (a user-chosen unknown field name can
    # carry a NUL or a newline).
    unique = list(dict.fromkeys(t for t in texts if t and not _has_control(t)))
    if sum(len(t) for t in unique) <= _WARNING_TOTAL_RUNES:
        return [warning_header(t) for t in unique]
    out, written = [], 0
    for text in unique:
        if written >= _WARNING_TOTAL_RUNES:
            break
        text = text[:_WARNING_ITEM_RUNES]
        written += len(text)
        out.append(warning_header(text))
    return out


# ---- base64 (Go's encoding/base64 StdEncoding) --------------------------------

_B64 = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def base64_error(text: str) -> str | None:
    """Go's base64 StdEncoding error for a []byte field, or None if it decodes.
    Newlines are skipped, padding is required, trailing garbage is an error."""
    src = text.encode("utf-8", "surrogatepass")
    n = len(src)
    si = 0

    def corrupt(at: int) -> str:
        return f"illegal base64 data at input byte {at}"

    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return corrupt(si - j)
            ch = src[si]
            si += 1
            if ch in _B64:
                j += 1
                continue
            if ch in (0x0A, 0x0D):
                continue
            if ch != 0x3D:  # '='
                return corrupt(si - 1)
            if j in (0, 1):
                return corrupt(si - 1)
            if j == 2:
                while si < n and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    return corrupt(n)
                if src[si] != 0x3D:
                    return corrupt(si - 1)
                si += 1
            while si < n and src[si] in (0x0A, 0x0D):
                si += 1
            if si < n:
                return corrupt(si)
            return None


# ---- resource.Quantity --------------------------------------------------------

QUANTITY_FORMAT_ERROR = ("quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
QUANTITY_SUFFIX_ERROR = "unable to parse quantity's suffix"
_SUFFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"}
_SUFFIX_CHARS = set("eEinumkKMGTP")
_EXPONENT = re.compile(r"[eE][+-]?[0-9]+\Z")


def quantity_error(text: str) -> str | None:
    """ParseQuantity's error for `text`, or None when it is a valid quantity."""
    if not text:
        return QUANTITY_FORMAT_ERROR
    if text == "0":
        return None
    pos, end = 0, len(text)
    if text[0] in "+-":
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return None
    while pos < end and text[pos].isdigit() and text[pos].isascii():
        pos += 1
    if pos >= end:
        return None
    if text[pos] == ".":
        pos += 1
        while pos < end and text[pos].isdigit() and text[pos].isascii():
            pos += 1
        if pos >= end:
            return None
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos].isdigit() and text[pos].isascii():
        pos += 1
    if pos < end:
        return QUANTITY_FORMAT_ERROR
    suffix = text[suffix_start:]
    if suffix in _SUFFIXES:
        return None
    if len(suffix) > 1 and _EXPONENT.match(suffix) and _fits_int64(suffix[1:]):
        return None
    return QUANTITY_SUFFIX_ERROR


def _fits_int64(text: str) -> bool:
    try:
        return -(2 ** 63) <= int(text) < 2 ** 63
    except ValueError:
        return False


# ---- metav1.Time and MicroTime (Go's time.Parse) ------------------------------

RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"
_LAYOUT = [("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05"), ("", "Z07:00")]
_LAYOUT_MICRO = _LAYOUT[:6] + [("", ".000000"), ("", "Z07:00")]
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _go_time_quote(data: bytes) -> str:
    """The time package's own quoting: non-ASCII and control bytes as \\xNN."""
    out = ['"']
    for byte in data:
        if byte < 0x20 or byte >= 0x80:
            out.append(f"\\x{byte:02x}")
        else:
            if byte in (0x22, 0x5C):
                out.append("\\")
            out.append(chr(byte))
    out.append('"')
    return "".join(out)


def _is_digit(data: bytes, i: int) -> bool:
    return i < len(data) and 0x30 <= data[i] <= 0x39


def _getnum(data: bytes, fixed: bool):
    if not _is_digit(data, 0):
        return None, data
    if not _is_digit(data, 1):
        if fixed:
            return None, data
        return data[0] - 0x30, data[1:]
    return (data[0] - 0x30) * 10 + (data[1] - 0x30), data[2:]


def _atoi(data: bytes):
    neg = False
    if data[:1] in (b"-", b"+"):
        neg = data[:1] == b"-"
        data = data[1:]
    if not data or not all(0x30 <= b <= 0x39 for b in data):
        return None
    value = int(data)
    return -value if neg else value


def _days_in(month: int, year: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS[month - 1] if 1 <= month <= 12 else 31


def time_error(text: str, micro: bool = False) -> str | None:
    """time.Parse(RFC3339 or metav1.RFC3339Micro, text)'s error, or None."""
    layout = RFC3339_MICRO if micro else RFC3339
    chunks = _LAYOUT_MICRO if micro else _LAYOUT
    whole = text.encode("utf-8", "surrogatepass")
    value = whole
    quoted = _go_time_quote(whole)

    def cannot(rest: bytes, element: str) -> str:
        return f"parsing time {quoted} as \"{layout}\": cannot parse {_go_time_quote(rest)} as \"{element}\""

    year = month = day = 0
    for index, (prefix, std) in enumerate(chunks):
        for ch in prefix.encode():
            if not value or value[0] != ch:
                return cannot(value, prefix)
            value = value[1:]
        hold = value
        bad = False
        out_of_range = ""
        if std == "2006":
            if len(value) < 4 or not _is_digit(value, 0):
                bad = True
            else:
                year = _atoi(value[:4])
                value = value[4:]
                bad = year is None
        elif std in ("01", "02", "04"):
            number, value = _getnum(value, True)
            bad = number is None
            if not bad:
                if std == "01":
                    month = number
                    if not 1 <= number <= 12:
                        out_of_range = "month"
                elif std == "02":
                    day = number
                elif number >= 60:
                    out_of_range = "minute"
        elif std == "15":
            number, value = _getnum(value, False)
            bad = number is None
            if not bad and number >= 24:
                out_of_range = "hour"
        elif std == "05":
            number, value = _getnum(value, True)
            bad = number is None
            if not bad:
                if number >= 60:
                    out_of_range = "second"
                elif (len(value) >= 2 and value[0] in b".," and _is_digit(value, 1)
                      and chunks[index + 1][1] != ".000000"):
                    n = 2
                    while n < len(value) and _is_digit(value, n):
                        n += 1
                    value = value[n:]
        elif std == ".000000":
            if len(value) < 7 or value[0] not in b".,":
                bad = True
            else:
                fraction = _atoi(value[1:7])
                if fraction is None:
                    bad = True
                elif fraction < 0:
                    out_of_range = "fractional second"
                value = value[7:]
        elif std == "Z07:00":
            if value[:1] == b"Z":
                value = value[1:]
            elif len(value) < 6 or value[3:4] != b":":
                bad = True
            else:
                sign, hours, minutes, value = value[:1], value[1:3], value[4:6], value[6:]
                hh, _ = _getnum(hours, True)
                mm, _ = _getnum(minutes, True) if hh is not None else (None, b"")
                if hh is None or mm is None:
                    bad = True
                else:
                    if hh > 24:
                        out_of_range = "time zone offset hour"
                    if mm > 60:
                        out_of_range = "time zone offset minute"
                    if sign not in (b"+", b"-"):
                        bad = True
        if out_of_range:
            return f"parsing time {quoted}: {out_of_range} out of range"
        if bad:
            return cannot(hold, std)
    if value:
        return f"parsing time {quoted}: extra text: {_go_time_quote(value)}"
    if day < 1 or day > _days_in(month, year):
        return f"parsing time {quoted}: day out of range"
    return None


def prune(obj: dict, paths: list[str]) -> None:
    """Drop unknown fields, as decoding into the typed object does.

    `paths` are check_fields' unknown-field paths ("spec.foo",
    "spec.containers[0].bogus"). Keys may themselves hold dots, brackets or
    be empty, so the paths are not parsed: the object is walked building the
    same strings the checker built, descending only where some path goes on.
    """
    wanted = set(paths)
    ordered = sorted(wanted)

    def leads_somewhere(prefix: str) -> bool:
        # Paths that start with `prefix` sort right after it.
        i = bisect.bisect_left(ordered, prefix)
        return i < len(ordered) and ordered[i].startswith(prefix)

    def visit(node, path: str) -> None:
        if isinstance(node, dict):
            for key in list(node):
                child = f"{path}.{key}" if path else key
                if child in wanted:
                    del node[key]
                elif leads_somewhere(child):
                    visit(node[key], child)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                child = f"{path}[{i}]"
                if leads_somewhere(child):
                    visit(item, child)

    if wanted:
        visit(obj, "")
