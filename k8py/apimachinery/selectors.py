"""Label and field selectors: parsing the query-string syntax and matching.

Label selectors follow k8s.io/apimachinery/pkg/labels: `a=b`, `a==b`, `a!=b`,
`a in (x,y)`, `a notin (x)`, `a`, `!a`, plus `a>1`/`a<1` for numbers.
Field selectors allow only `=`, `==` and `!=` on the fields a kind declares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from k8py.apimachinery.errors import bad_request


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in (">", "<"):
            try:
                have, want = int(value), int(self.values[0])
            except (TypeError, ValueError):
                return False
            return have > want if self.op == ">" else have < want
        return False


class Selector:
    def __init__(self, requirements: list[Requirement]):
        self.requirements = requirements

    def matches(self, labels: dict | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements


EVERYTHING = Selector([])

_TOKEN = re.compile(r"\s*(!=|==|=|!|,|\(|\)|>|<|[^\s!=,()<>]+)")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            break
        out.append(m.group(1))
        pos = m.end()
        if text[pos:].strip() == "":
            break
    return out


def parse_label_selector(text: str | None) -> Selector:
    """Parse a labelSelector query value; 400 BadRequest on bad syntax."""
    if not text or not text.strip():
        return EVERYTHING
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def fail(msg: str):
        raise bad_request(f"unable to parse requirement: {msg}")

    while i < len(toks):
        tok = toks[i]
        if tok == "!":
            if i + 1 >= len(toks):
                fail("found '', expected: identifier")
            reqs.append(Requirement(_label_key(toks[i + 1], fail), "!"))
            i += 2
        else:
            key = _label_key(tok, fail)
            op = toks[i + 1] if i + 1 < len(toks) else ","
            if op == ",":
                reqs.append(Requirement(key, "exists"))
                i += 1
            elif op in ("=", "==", "!="):
                value = toks[i + 2] if i + 2 < len(toks) and toks[i + 2] != "," else ""
                _label_value(value, fail)
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
                i += 3 if value else 2
            elif op in (">", "<"):
                value = toks[i + 2] if i + 2 < len(toks) else ""
                if not re.fullmatch(r"-?\d+", value):
                    fail("for 'Gt', 'Lt' operators, the value must be an integer")
                reqs.append(Requirement(key, op, (value,)))
                i += 3
            elif op in ("in", "notin"):
                if i + 2 >= len(toks) or toks[i + 2] != "(":
                    fail(f"found '{toks[i + 2] if i + 2 < len(toks) else ''}', expected: '('")
                j, values = i + 3, []
                while j < len(toks) and toks[j] != ")":
                    if toks[j] != ",":
                        _label_value(toks[j], fail)
                        values.append(toks[j])
                    j += 1
                if j >= len(toks):
                    fail("found '', expected: ')'")
                reqs.append(Requirement(key, op, tuple(values)))
                i = j + 1
            else:
                fail(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(toks):
            if toks[i] != ",":
                fail(f"found '{toks[i]}', expected: ',' or 'end of string'")
            i += 1
    return Selector(reqs)


_QUALIFIED = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _label_key(key: str, fail) -> str:
    name = key
    if "/" in key:
        prefix, name = key.split("/", 1)
        if not prefix or len(prefix) > 253 or not _PREFIX.match(prefix):
            fail(f'invalid label key "{key}": prefix part must be a lowercase RFC 1123 subdomain')
    if not name or len(name) > 63 or not _QUALIFIED.match(name):
        fail(f'invalid label key "{key}": name part must consist of alphanumeric characters, '
             "'-', '_' or '.', and must start and end with an alphanumeric character")
    return key


def _label_value(value: str, fail) -> None:
    if value and (len(value) > 63 or not _QUALIFIED.match(value)):
        fail(f'invalid label value: "{value}": at key: must be no more than 63 characters')


def selector_from_label_selector(spec: dict | None) -> Selector | None:
    """A metav1.LabelSelector (matchLabels/matchExpressions) as a Selector.

    None means "matches nothing" (a nil selector), an empty dict everything.
    """
    if spec is None:
        return None
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (spec.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in spec.get("matchExpressions") or []:
        reqs.append(Requirement(expr.get("key", ""), ops.get(expr.get("operator"), "in"),
                                tuple(expr.get("values") or ())))
    return Selector(reqs)


def selector_string(spec: dict | None) -> str:
    """Render a LabelSelector the way Scale.status.selector shows it."""
    if not spec:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((spec.get("matchLabels") or {}).items())]
    for expr in spec.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), sorted(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(sorted(parts))


# ---- field selectors -------------------------------------------------------

@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool

    def matches(self, fields: dict) -> bool:
        have = fields.get(self.field)
        return (have != self.value) if self.negate else (have == self.value)


class FieldSelector:
    def __init__(self, requirements: list[FieldRequirement]):
        self.requirements = requirements

    def matches(self, fields: dict) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def exact_name(self) -> str | None:
        for r in self.requirements:
            if r.field == "metadata.name" and not r.negate:
                return r.value
        return None


def parse_field_selector(text: str | None) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector([])
    reqs = []
    for part in _split_unescaped(text, ","):
        part = part.strip()
        if not part:
            continue
        for op, negate in (("!=", True), ("==", False), ("=", False)):
            if op in part:
                field, value = part.split(op, 1)
                reqs.append(FieldRequirement(field.strip(), _unescape(value.strip()), negate))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return FieldSelector(reqs)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, escaped = [], [], False
    for ch in text:
        if escaped:
            cur.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
