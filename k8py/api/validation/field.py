"""Field paths and error constructors with upstream's message shapes.

A cause's message is what upstream's `field.Error.ErrorBody()` prints:
`Required value`, `Invalid value: <value>: <detail>`, `Unsupported value:
<value>: supported values: "a", "b"`, `Duplicate value: <value>`,
`Forbidden: <detail>`, `Too long: may not be more than N bytes`, `Not found:
<value>`. Values are printed the way Go's fmt prints them there: strings
quoted (%q), numbers and booleans bare, nil as `null`, anything else with
Go syntax (%#v). Callers that need a particular Go rendering (a struct, a
typed slice) pass a `GoValue`.
"""

from __future__ import annotations

from k8py.apimachinery.errors import Cause
from k8py.apimachinery.gostrings import go_quote  # noqa: F401 (validation modules take it from here)

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"
INTERNAL = "InternalError"


class Path(str):
    """A field path rendered as upstream's `field.Path.String()`."""

    def child(self, *names: str) -> "Path":
        out = str(self)
        for name in names:
            out = f"{out}.{name}" if out else name
        return Path(out)

    def index(self, i: int) -> "Path":
        return Path(f"{self}[{i}]")

    def key(self, k: str) -> "Path":
        return Path(f"{self}[{k}]")


ROOT = Path("")


def path(*names: str) -> Path:
    return ROOT.child(*names)


class GoValue:
    """A value already rendered the way Go's fmt would print it."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text


OMIT = GoValue("")  # field.OmitValueType: only the error type is printed


# ---- Go rendering --------------------------------------------------------------

def go_strings(values) -> str:
    """%#v of a []string."""
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(str(v)) for v in values) + "}"


def go_string_map(values) -> str:
    """%#v of a map[string]string (Go prints map keys sorted)."""
    if values is None:
        return "map[string]string(nil)"
    items = sorted((str(k), v) for k, v in values.items())
    return "map[string]string{" + ", ".join(f"{go_quote(k)}:{go_quote(str(v))}" for k, v in items) + "}"


def go_label_selector(sel) -> str:
    """%#v of a metav1.LabelSelector value."""
    if not isinstance(sel, dict):
        return "(*v1.LabelSelector)(nil)"
    labels = sel.get("matchLabels")
    labels_text = go_string_map(labels if isinstance(labels, dict) else None)
    exprs = sel.get("matchExpressions")
    if isinstance(exprs, list) and exprs:
        parts = []
        for e in exprs:
            e = e if isinstance(e, dict) else {}
            vals = e.get("values")
            parts.append("v1.LabelSelectorRequirement{Key:%s, Operator:%s, Values:%s}" % (
                go_quote(str(e.get("key", ""))), go_quote(str(e.get("operator", ""))),
                go_strings(vals if isinstance(vals, list) else None)))
        exprs_text = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    else:
        exprs_text = "[]v1.LabelSelectorRequirement(nil)"
    return f"v1.LabelSelector{{MatchLabels:{labels_text}, MatchExpressions:{exprs_text}}}"


def render(value) -> str:
    if isinstance(value, GoValue):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return go_strings(value)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return go_string_map(value)
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "[]int32{" + ", ".join(str(v) for v in value) + "}"
    return repr(value)


# ---- constructors (upstream's field.Required, field.Invalid, ...) ---------------

def _with_detail(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


def required(p: str, detail: str = "") -> Cause:
    return Cause(str(p), _with_detail("Required value", detail), REQUIRED)


def invalid(p: str, value, detail: str = "") -> Cause:
    if value is OMIT:
        return Cause(str(p), _with_detail("Invalid value", detail), INVALID)
    return Cause(str(p), _with_detail(f"Invalid value: {render(value)}", detail), INVALID)


def not_supported(p: str, value, supported=()) -> Cause:
    detail = ""
    if supported:
        detail = "supported values: " + ", ".join(go_quote(str(s)) for s in supported)
    return Cause(str(p), _with_detail(f"Unsupported value: {render(value)}", detail), NOT_SUPPORTED)


def duplicate(p: str, value) -> Cause:
    return Cause(str(p), f"Duplicate value: {render(value)}", DUPLICATE)


def forbidden(p: str, detail: str) -> Cause:
    return Cause(str(p), _with_detail("Forbidden", detail), FORBIDDEN)


def too_long(p: str, max_length: int) -> Cause:
    detail = f"may not be more than {max_length} bytes" if max_length >= 0 else "value is too long"
    return Cause(str(p), f"Too long: {detail}", TOO_LONG)


def too_many(p: str, actual: int, maximum: int) -> Cause:
    detail = f"must have at most {maximum} items" if maximum >= 0 else "has too many items"
    head = f"Too many: {actual}" if actual >= 0 else "Too many"
    return Cause(str(p), f"{head}: {detail}", TOO_MANY)


def not_found(p: str, value, detail: str = "") -> Cause:
    return Cause(str(p), _with_detail(f"Not found: {render(value)}", detail), NOT_FOUND)


def internal(p: str, detail: str) -> Cause:
    return Cause(str(p), _with_detail("Internal error", detail), INTERNAL)


# ---- defensive accessors: wrong types read as absent ---------------------------

def d(value) -> dict:
    return value if isinstance(value, dict) else {}


def lst(value) -> list:
    return value if isinstance(value, list) else []


def s(value) -> str:
    return value if isinstance(value, str) else ""


def i(value, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def dicts(value) -> list[tuple[int, dict]]:
    """(index, item) for the dict items of a list; other items are skipped."""
    return [(n, item) for n, item in enumerate(lst(value)) if isinstance(item, dict)]


def strmap(value) -> dict:
    """A map[string]string: non-string values read as their string form."""
    return {str(k): (v if isinstance(v, str) else "" if v is None else str(v)) for k, v in d(value).items()}
