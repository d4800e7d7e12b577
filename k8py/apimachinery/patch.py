"""The three PATCH bodies of the Kubernetes API, applied to plain JSON dicts.

* `apply_json_patch`: RFC 6902 operations, as gopkg.in/evanphx/json-patch.v4
  (v4.12.0, what k8s.io/apiserver v1.32 uses) applies them;
* `apply_merge_patch`: RFC 7386, as that library's `MergePatch` does;
* `apply_strategic_merge_patch`: Kubernetes' strategic merge (strategic.py).

None of them modifies its inputs. Errors are `StatusError`s shaped as
k8s.io/apiserver pkg/endpoints/handlers/patch.go reports them:

* a body that is not JSON, or not the JSON type the patch needs: 400
  BadRequest with Go's decoder message (merge patch: "Invalid JSON Patch");
* more than 10000 JSON patch operations: 413 RequestEntityTooLarge;
* a JSON patch operation that does not apply (missing path, failed `test`,
  bad index...): 422 Invalid with upstream's fixed message "the server
  rejected our request due to an error in our request" (the library's own
  text is dropped by `NewGenericServerResponse`; we keep it on `.detail`);
* a result that is not a JSON object: 422 Invalid, field "patch", as the Go
  decoder of the patched bytes fails;
* strategic merge: the few named errors upstream maps to 400/422, anything
  else a 500 with no reason, the merge error as message (upstream's
  `ErrorToAPIStatus` for errors that are not Status errors);
* strategic merge without a schema (custom resources): 415, see
  `strategic_merge_not_supported`.
"""

from __future__ import annotations

import json

import orjson

from k8py.apimachinery import strategic
from k8py.apimachinery.errors import Cause, StatusError, bad_request, invalid, request_entity_too_large
from k8py.apimachinery.gostrings import go_quote


def patch_error(patched: str, detail: str) -> StatusError:
    """422 for a patched object that does not decode (type errors, strict errors)."""
    return invalid("", "", [Cause("patch", f"Invalid value: {go_quote(patched)}: {detail}")])


MAX_JSON_PATCH_OPERATIONS = 10000     # handlers/patch.go maxJSONPatchOperations
MAX_JSON_PATCH_COPY_BYTES = 3 << 20   # server Config.JSONPatchMaxCopyBytes default

# The media types a custom resource accepts for PATCH, in upstream's order
# (apiextensions-apiserver customresource_handler.go `supportedTypes`).
CUSTOM_RESOURCE_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                               "application/apply-patch+yaml")

_UNPROCESSABLE = "the server rejected our request due to an error in our request"
# What Go's json.Unmarshal says when the patched bytes are not an object: the
# apiserver's decoder first reads apiVersion/kind into this anonymous struct.
_VERSION_KIND_STRUCT = 'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; ' \
                       'Kind string "json:\\"kind,omitempty\\"" }'


class PatchStatusError(StatusError):
    """A Status upstream builds without `errors.StatusError` helpers: it may
    have an empty `details: {}` (NewGenericServerResponse) or no reason at all
    (a plain Go error turned into a 500). `detail` keeps the underlying text."""

    def __init__(self, code: int, reason: str, message: str, *, empty_details: bool = False,
                 detail: str = ""):
        super().__init__(code, reason, message)
        self.empty_details = empty_details
        self.detail = detail or message

    def details(self) -> dict | None:
        details = super().details()
        if details is None and self.empty_details:
            return {}
        return details


def strategic_merge_not_supported() -> StatusError:
    """415 for a strategic merge patch on a kind without a schema.

    Upstream never gets as far as merging: the custom resource handler only
    accepts the patch types above, and the generic PATCH handler rejects any
    other Content-Type with negotiation's UnsupportedMediaType error.
    """
    return StatusError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types include: "
                       + ", ".join(CUSTOM_RESOURCE_PATCH_TYPES))


def unprocessable(detail: str) -> PatchStatusError:
    """422 as upstream's NewGenericServerResponse(422, ...) builds it."""
    return PatchStatusError(422, "Invalid", _UNPROCESSABLE, empty_details=True, detail=detail)


def _internal(message: str) -> PatchStatusError:
    return PatchStatusError(500, "", message)


# --- public API -----------------------------------------------------------------

def apply_json_patch(doc: dict, patch: bytes | str | list) -> dict:
    """Apply an RFC 6902 patch (raw bytes, or already decoded)."""
    ops = _decode(patch) if isinstance(patch, (bytes, bytearray, str)) else patch
    ops = _check_operations(ops)
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise request_entity_too_large(f"Request entity too large: The allowed maximum operations in a JSON "
                                       f"patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    result = _JSONPatch(_copy(doc)).apply(_copy(ops))
    return _require_object(result, sort_keys=False)


def apply_merge_patch(doc: dict, patch: bytes | str | dict) -> dict:
    """Apply an RFC 7386 merge patch (raw bytes, or already decoded)."""
    if isinstance(patch, (bytes, bytearray, str)):
        try:
            patch = _parse(patch)
        except _SyntaxError:
            raise bad_request("Invalid JSON Patch") from None
    if isinstance(patch, dict):
        return _merge_docs(_copy(doc), _copy(patch))
    if isinstance(patch, list):
        # A top-level array replaces the document; the apiserver then fails to
        # decode it as an object.
        return _require_object(_prune_nulls(_copy(patch)), sort_keys=True)
    raise bad_request("Invalid JSON Patch")  # null, a string, a number...


def apply_strategic_merge_patch(doc: dict, patch: bytes | str | dict, schema: dict | None) -> dict:
    """Apply a strategic merge patch to `doc`, whose type is `schema` (the
    kind's top-level definition from `schemas().for_kind`).

    `schema=None` means a kind without patch metadata (a custom resource): we
    raise the 415 of `strategic_merge_not_supported`, which is what upstream
    answers for that Content-Type on a custom resource.
    """
    if schema is None:
        raise strategic_merge_not_supported()
    if isinstance(patch, (bytes, bytearray, str)):
        patch = _decode(patch)
    if patch is None:  # Go decodes `null` into a nil map: nothing to do
        return _copy(doc)
    if not isinstance(patch, dict):
        raise bad_request(_type_error(patch, "map[string]interface {}"))
    try:
        return strategic.merge(_copy(doc), _copy(patch), schema)
    except strategic.MergeError as err:
        if err.reason == strategic.BAD_REQUEST:
            raise bad_request(err.message) from None
        if err.reason == strategic.INVALID:
            raise unprocessable(err.message) from None
        raise _internal(err.message) from None


# --- JSON patch -----------------------------------------------------------------

class _OpFailed(Exception):
    """An operation that does not apply; always reported as a 422."""


_MISSING = object()  # an operation without a "value" member


class _JSONPatch:
    """The document being patched, and the operations on it."""

    def __init__(self, doc):
        self.doc = doc
        self.copied_bytes = 0

    def apply(self, ops: list):
        for op in ops:
            kind = _member_text(op, "op")
            handler = getattr(self, f"_op_{kind}", None) if kind in _OPS else None
            try:
                if handler is None:
                    raise _OpFailed(f"Unexpected kind: {kind if kind is not None else 'unknown'}")
                handler(op or {})
            except _OpFailed as err:
                raise unprocessable(str(err)) from None
        return self.doc

    def _op_add(self, op):
        path = self._path(op, "add")
        parent, key = self._parent(path, f'add operation does not apply: doc is missing path: "{path}"')
        _add(parent, key, _value(op), f"error in add for path: '{path}'")

    def _op_remove(self, op):
        path = self._path(op, "remove")
        parent, key = self._parent(path, f'remove operation does not apply: doc is missing path: "{path}"')
        _remove(parent, key, f"error in remove for path: '{path}'")

    def _op_replace(self, op):
        path = self._path(op, "replace")
        if path == "":
            value = _value(op)
            # v4.12 silently ignores a scalar replacing the whole document.
            if isinstance(value, (dict, list)):
                self.doc = value
            return
        parent, key = self._parent(path, f"replace operation does not apply: doc is missing path: {path}")
        try:
            _get(parent, key, "")
        except _OpFailed:
            raise _OpFailed(f"replace operation does not apply: doc is missing key: {path}: missing value") from None
        # A missing object key is not an error in v4: replace then adds it.
        _set(parent, key, _value(op))

    def _op_move(self, op):
        source = self._path(op, "move", "from")
        parent, key = self._parent(source, f"move operation does not apply: doc is missing from path: {source}")
        value = _get(parent, key, f"error in move for path: '{key}'")
        _remove(parent, key, f"error in move for path: '{key}'")
        path = self._path(op, "move")
        parent, key = self._parent(path, f"move operation does not apply: doc is missing destination path: {path}")
        _add(parent, key, value, f"error in move for path: '{path}'")

    def _op_copy(self, op):
        source = self._path(op, "copy", "from")
        parent, key = self._parent(source, f"copy operation does not apply: doc is missing from path: {source}")
        value = _copy(_get(parent, key, f"error in copy for from: '{source}'"))
        path = self._path(op, "copy")
        parent, key = self._parent(path, f"copy operation does not apply: doc is missing destination path: {path}")
        # Copies are how a tiny patch could build a huge object; upstream caps them.
        self.copied_bytes += len(orjson.dumps(value)) if value is not None else 0
        if self.copied_bytes > MAX_JSON_PATCH_COPY_BYTES:
            raise _OpFailed(f"Unable to complete the copy, the accumulated size increase of copy is "
                            f"{self.copied_bytes}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}")
        _add(parent, key, value, "error while adding value during copy")

    def _op_test(self, op):
        path = self._path(op, "test")
        expected = op.get("value", _MISSING)
        if path == "":
            actual = self.doc
        else:
            parent, key = self._parent(path, f"test operation does not apply: is missing path: {path}")
            actual = _get(parent, key, f"error in test for path: '{path}'")
            if actual is None:  # a missing key and a null both match null or no value
                if expected is _MISSING or expected is None:
                    return
                raise _OpFailed(f"testing value {path} failed: test failed")
        if expected is _MISSING or not _json_equal(actual, expected):
            raise _OpFailed(f"testing value {path} failed: test failed")

    @staticmethod
    def _path(op: dict, kind: str, member: str = "path") -> str:
        text = _member_text(op, member)
        if not isinstance(text, str):
            raise _OpFailed(f"{kind} operation failed to decode {member}: missing value")
        return text

    def _parent(self, path: str, missing: str):
        """The container holding the last token of `path`, and that token.

        Like the library, the first token is skipped unread (paths should
        start with "/"), and a null on the way counts as missing."""
        tokens = path.split("/")
        if len(tokens) < 2:
            raise _OpFailed(f"{missing}: missing value")
        node = self.doc
        for token in tokens[1:-1]:
            try:
                node = _get(node, _unescape(token), "")
            except _OpFailed:
                node = None
            if not isinstance(node, (dict, list)):
                raise _OpFailed(f"{missing}: missing value")
        return node, _unescape(tokens[-1])


_OPS = ("add", "remove", "replace", "move", "copy", "test")


def _check_operations(ops) -> list:
    """Go decodes the body into []map[string]RawMessage: anything else is 400."""
    if ops is None:
        return []
    if not isinstance(ops, list):
        raise bad_request(_type_error(ops, "jsonpatch.Patch"))
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise bad_request(_type_error(op, "jsonpatch.Operation"))
    return ops


def _member_text(op: dict | None, member: str):
    """A string member of an operation; None when absent, null or not a string."""
    value = (op or {}).get(member)
    return value if isinstance(value, str) else None


def _value(op: dict):
    value = op.get("value", _MISSING)
    return None if value is _MISSING else value  # no value adds a null, as upstream


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _index(token: str, size: int, *, inserting: bool = False) -> int:
    """An array index as the library reads it: strconv.Atoi, negative counting
    from the end, and one past the end allowed only when inserting."""
    text = token[1:] if token[:1] in "+-" else token
    if not text or not text.isascii() or not text.isdigit():
        raise _OpFailed(f'strconv.Atoi: parsing {go_quote(token)}: invalid syntax')
    index = int(token)
    limit = size + 1 if inserting else size
    if index >= limit or index < -limit:
        raise _OpFailed(f"Unable to access invalid index: {index}: invalid index referenced")
    return index + limit if index < 0 else index


def _get(node, key: str, context: str):
    if isinstance(node, dict):
        return node.get(key)
    try:
        return node[_index(key, len(node))]
    except _OpFailed as err:
        raise _OpFailed(f"{context}: {err}" if context else str(err)) from None


def _set(node, key: str, value) -> None:
    if isinstance(node, dict):
        node[key] = value
        return
    node[_index(key, len(node))] = value


def _add(node, key: str, value, context: str) -> None:
    if isinstance(node, dict):
        node[key] = value
        return
    if key == "-":
        node.append(value)
        return
    try:
        node.insert(_index(key, len(node), inserting=True), value)
    except _OpFailed as err:
        raise _OpFailed(f"{context}: {err}") from None


def _remove(node, key: str, context: str) -> None:
    if isinstance(node, dict):
        if key not in node:
            raise _OpFailed(f"{context}: Unable to remove nonexistent key: {key}: missing value")
        del node[key]
        return
    try:
        del node[_index(key, len(node))]
    except _OpFailed as err:
        raise _OpFailed(f"{context}: {err}") from None


def _json_equal(a, b) -> bool:
    """Structural equality; scalars must match in type too (the library
    compares their JSON text, so 1 and 1.0 differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# --- merge patch ----------------------------------------------------------------

def _merge_docs(doc: dict, patch: dict) -> dict:
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
        elif doc.get(key) is None:
            doc[key] = _prune_nulls(value)
        else:
            doc[key] = _merge_value(doc[key], value)
    return doc


def _merge_value(current, patch):
    if not isinstance(current, dict):
        return _prune_nulls(patch)
    if not isinstance(patch, dict):
        return patch
    return _merge_docs(current, patch)


def _prune_nulls(value):
    """Drop null members of objects, however deep; nulls inside arrays stay."""
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


# --- decoding and results -------------------------------------------------------

class _SyntaxError(Exception):
    pass


def _decode(raw: bytes | str):
    try:
        return _parse(raw)
    except _SyntaxError as err:
        raise bad_request(str(err)) from None


def _parse(raw: bytes | str):
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    problem = go_syntax_error(data)
    if problem:
        raise _SyntaxError(problem)
    # Valid JSON orjson refuses (invalid UTF-8, lone surrogates, integers past
    # 64 bits): Go accepts it, turning the bad text into U+FFFD and the big
    # numbers into float64. Keep it storable the same way.
    return _storable(json.loads(data.decode("utf-8", "replace"), parse_int=_go_int))


def _go_int(text: str):
    number = int(text)
    return number if -(1 << 63) <= number < (1 << 63) else float(text)


def _storable(value):
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _type_error(value, go_type: str) -> str:
    json_kind = {dict: "object", list: "array", str: "string", bool: "bool"}.get(type(value), "number")
    return f"json: cannot unmarshal {json_kind} into Go value of type {go_type}"


def _require_object(result, *, sort_keys: bool) -> dict:
    if isinstance(result, dict):
        return result
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)  # Go's json.Marshal escapes these
    kind = "array" if isinstance(result, list) else "value"
    raise patch_error(text, f"couldn't get version/kind; json parse error: json: cannot unmarshal {kind} "
                            f"into Go value of type {_VERSION_KIND_STRUCT}")


def _copy(value):
    """A deep copy of a JSON value (faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# --- Go's JSON syntax errors ----------------------------------------------------

class _Invalid(Exception):
    pass


def go_syntax_error(data: bytes) -> str | None:
    """The message Go's encoding/json gives for malformed JSON, None if valid.

    Clients see these texts in 400 responses, so they follow Go's scanner:
    "invalid character 'x' <where>" or "unexpected end of JSON input".
    """
    try:
        _GoScanner(data).document()
    except _Invalid as err:
        return str(err)
    except IndexError:
        return "unexpected end of JSON input"
    return None


class _GoScanner:
    SPACE = b" \t\r\n"

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def document(self) -> None:
        self.value()
        self.skip_space()
        if self.pos < len(self.data):
            self.fail("after top-level value")

    def peek(self) -> int:
        return self.data[self.pos]  # IndexError at the end: "unexpected end"

    def fail(self, where: str):
        raise _Invalid(f"invalid character {_quote_char(self.data[self.pos])} {where}")

    def skip_space(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in self.SPACE:
            self.pos += 1

    def value(self) -> None:
        self.skip_space()
        c = self.peek()
        if c == ord("{"):
            self.object()
        elif c == ord("["):
            self.array()
        elif c == ord('"'):
            self.string()
        elif c == ord("-") or ord("0") <= c <= ord("9"):
            self.number()
        elif c in b"tfn":
            self.literal({ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}[c])
        else:
            self.fail("looking for beginning of value")

    def object(self) -> None:
        self.pos += 1
        self.skip_space()
        if self.peek() == ord("}"):
            self.pos += 1
            return
        while True:
            self.skip_space()
            if self.peek() != ord('"'):
                self.fail("looking for beginning of object key string")
            self.string()
            self.skip_space()
            if self.peek() != ord(":"):
                self.fail("after object key")
            self.pos += 1
            self.value()
            self.skip_space()
            c = self.peek()
            self.pos += 1
            if c == ord("}"):
                return
            if c != ord(","):
                self.pos -= 1
                self.fail("after object key:value pair")

    def array(self) -> None:
        self.pos += 1
        self.skip_space()
        if self.peek() == ord("]"):
            self.pos += 1
            return
        while True:
            self.value()
            self.skip_space()
            c = self.peek()
            self.pos += 1
            if c == ord("]"):
                return
            if c != ord(","):
                self.pos -= 1
                self.fail("after array element")

    def string(self) -> None:
        self.pos += 1
        while True:
            c = self.peek()
            if c == ord('"'):
                self.pos += 1
                return
            if c == ord("\\"):
                self.pos += 1
                escape = self.peek()
                if escape == ord("u"):
                    for _ in range(4):
                        self.pos += 1
                        if self.peek() not in b"0123456789abcdefABCDEF":
                            self.fail("in \\u hexadecimal character escape")
                elif escape not in b'"\\/bfnrt':
                    self.fail("in string escape code")
            elif c < 0x20:
                self.fail("in string literal")
            self.pos += 1

    def number(self) -> None:
        if self.peek() == ord("-"):
            self.pos += 1
            if not self.digit():
                self.fail("in numeric literal")
        if self.peek() == ord("0"):
            self.pos += 1
        else:
            self.digits()
        if self.at(b"."):
            self.pos += 1
            if not self.digit():
                self.fail("after decimal point in numeric literal")
            self.digits()
        if self.at(b"eE"):
            self.pos += 1
            if self.at(b"+-"):
                self.pos += 1
            if not self.digit():
                self.fail("in exponent of numeric literal")
            self.digits()

    def literal(self, word: bytes) -> None:
        for i, expected in enumerate(word):
            if i and self.peek() != expected:
                self.fail(f"in literal {word.decode()} (expecting {_quote_char(expected)})")
            self.pos += 1

    def at(self, chars: bytes) -> bool:
        return self.pos < len(self.data) and self.data[self.pos] in chars

    def digit(self) -> bool:
        return ord("0") <= self.peek() <= ord("9")

    def digits(self) -> None:
        while self.pos < len(self.data) and ord("0") <= self.data[self.pos] <= ord("9"):
            self.pos += 1


def _quote_char(c: int) -> str:
    """Go's quoteChar: the byte as a rune, %q-quoted with single quotes."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    return "'" + go_quote(chr(c))[1:-1] + "'"
