"""Field paths, sets of them, and their FieldsV1 wire form.

A path is a tuple of path elements. An element is a small tuple whose first
item says what it is, so elements hash, compare and sort cheaply:

    (FIELD, "spec")                      f:spec        .spec
    (KEY, (("name", "c"),))              k:{"name":"c"} [name="c"]
    (VALUE, "foregroundDeletion")        v:"..."       [="..."]
    (INDEX, 0)                           i:0           [0]

Key fields are kept sorted by name, as upstream does, so the same list item
always gets the same element. Element order (fields, then keys, then values,
then indices; values numbers < strings < booleans < lists < maps < null) is
upstream's, because it decides the key order of the FieldsV1 JSON.

A FieldSet is a tree: `members` are the elements that are themselves in the
set at this level, `children` maps an element to the set below it. Children
are never left empty, so emptiness and equality stay structural.
"""

from __future__ import annotations

import json
from typing import Iterator

FIELD, KEY, VALUE, INDEX = 0, 1, 2, 3

PathElement = tuple
Path = tuple


class FrozenMap(tuple):
    """A JSON object used as a value inside a path element (rare, but legal)."""


def freeze(value):
    """A hashable stand-in for a JSON value (lists and maps become tuples)."""
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return FrozenMap(sorted((k, freeze(v)) for k, v in value.items()))
    return value


def make_path(*parts) -> Path:
    """A path from plain names (fields), ints (indices) and ready elements."""
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append((FIELD, p))
        elif isinstance(p, int) and not isinstance(p, bool):
            out.append((INDEX, p))
        else:
            out.append(p)
    return tuple(out)


# -- ordering ---------------------------------------------------------------

def _value_order(v):
    if v is True or v is False:
        return (2, v)
    if isinstance(v, (int, float)):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, FrozenMap):
        return (4, tuple((k, _value_order(x)) for k, x in v))
    if isinstance(v, tuple):
        return (3, tuple(_value_order(x) for x in v))
    return (5,)


def element_order(pe: PathElement):
    kind, payload = pe
    if kind == FIELD or kind == INDEX:
        return pe
    if kind == KEY:
        return (KEY, tuple((name, _value_order(v)) for name, v in payload))
    return (VALUE, _value_order(payload))


# -- the set ----------------------------------------------------------------

class FieldSet:
    __slots__ = ("members", "children")

    def __init__(self, members: set | None = None, children: dict | None = None):
        self.members = members if members is not None else set()
        self.children = children if children is not None else {}

    @classmethod
    def of(cls, *paths: Path) -> "FieldSet":
        s = cls()
        for p in paths:
            s.insert(p)
        return s

    def insert(self, path: Path) -> None:
        if not path:
            return
        node = self
        for pe in path[:-1]:
            child = node.children.get(pe)
            if child is None:
                child = node.children[pe] = FieldSet()
            node = child
        node.members.add(path[-1])

    def has(self, path: Path) -> bool:
        if not path:
            return False
        node = self
        for pe in path[:-1]:
            node = node.children.get(pe)
            if node is None:
                return False
        return path[-1] in node.members

    def __contains__(self, path: Path) -> bool:
        return self.has(path)

    def empty(self) -> bool:
        # Children are never kept empty, so one level is enough.
        return not self.members and not self.children

    def __bool__(self) -> bool:
        return bool(self.members or self.children)

    def __eq__(self, other) -> bool:
        if not isinstance(other, FieldSet):
            return NotImplemented
        return self.members == other.members and self.children == other.children

    def __repr__(self) -> str:
        return f"FieldSet({[path_string(p) for p in self.paths()]})"

    # Set algebra. Results may share subtrees with the inputs: treat sets
    # that came out of these operations as read-only.

    def union(self, other: "FieldSet") -> "FieldSet":
        if not other:
            return self
        if not self:
            return other
        children = dict(self.children)
        for pe, oc in other.children.items():
            mine = children.get(pe)
            children[pe] = oc if mine is None else mine.union(oc)
        return FieldSet(self.members | other.members, children)

    def intersection(self, other: "FieldSet") -> "FieldSet":
        children = {}
        if self.children and other.children:
            for pe, mine in self.children.items():
                oc = other.children.get(pe)
                if oc is not None:
                    both = mine.intersection(oc)
                    if both:
                        children[pe] = both
        return FieldSet(self.members & other.members, children)

    def difference(self, other: "FieldSet") -> "FieldSet":
        """Removes the exact paths of `other`; descendants of a removed path stay."""
        if not other or not self:
            return self
        children = {}
        for pe, mine in self.children.items():
            oc = other.children.get(pe)
            if oc is None:
                children[pe] = mine
            else:
                rest = mine.difference(oc)
                if rest:
                    children[pe] = rest
        return FieldSet(self.members - other.members, children)

    def recursive_difference(self, other: "FieldSet") -> "FieldSet":
        """Removes the paths of `other` and everything below them."""
        if not other or not self:
            return self
        children = {}
        for pe, mine in self.children.items():
            if pe in other.members:
                continue
            oc = other.children.get(pe)
            if oc is None:
                children[pe] = mine
            else:
                rest = mine.recursive_difference(oc)
                if rest:
                    children[pe] = rest
        return FieldSet(self.members - other.members, children)

    def paths(self, prefix: Path = ()) -> Iterator[Path]:
        """Every path, members of a level before its subtrees, each sorted."""
        for pe in sorted(self.members, key=element_order):
            yield prefix + (pe,)
        for pe in sorted(self.children, key=element_order):
            yield from self.children[pe].paths(prefix + (pe,))


# -- strings ----------------------------------------------------------------

def _go_json(v) -> str:
    """JSON as Go's encoder writes it (compact, HTML characters escaped)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v)
    if isinstance(v, str):
        return (json.dumps(v, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
                .replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    if isinstance(v, FrozenMap):
        return "{" + ",".join(_go_json(k) + ":" + _go_json(x) for k, x in v) + "}"
    if isinstance(v, tuple):
        return "[" + ",".join(_go_json(x) for x in v) + "]"
    raise TypeError(f"not a JSON value: {v!r}")


def element_key(pe: PathElement) -> str:
    """The FieldsV1 object key of an element (`f:name`, `k:{...}`, `v:...`, `i:N`)."""
    kind, payload = pe
    if kind == FIELD:
        return "f:" + payload
    if kind == KEY:
        return "k:{" + ",".join(_go_json(n) + ":" + _go_json(v) for n, v in payload) + "}"
    if kind == VALUE:
        return "v:" + _go_json(payload)
    return "i:" + str(payload)


def _to_string(v) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_json(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, FrozenMap):
        return "".join(f"{k}={_to_string(x)}" for k, x in v)
    if isinstance(v, tuple):
        return "[" + ",".join(_to_string(x) for x in v) + "]"
    return str(v)


def element_string(pe: PathElement) -> str:
    kind, payload = pe
    if kind == FIELD:
        return "." + payload
    if kind == KEY:
        return "[" + ",".join(f"{n}={_to_string(v)}" for n, v in payload) + "]"
    if kind == VALUE:
        return "[=" + _to_string(payload) + "]"
    return f"[{payload}]"


def path_string(path: Path) -> str:
    """The path as upstream prints it in conflicts: `.spec.containers[name="c"].image`."""
    return "".join(element_string(pe) for pe in path)


# -- FieldsV1 ---------------------------------------------------------------

def encode_fields_v1(fs: FieldSet) -> dict:
    """The FieldsV1 JSON object of a set, keys in upstream's order."""
    return _encode(fs, False)


def _encode(fs: FieldSet, include_self: bool) -> dict:
    out: dict = {}
    if include_self and fs:
        out["."] = {}
    members, children = fs.members, fs.children
    if not children:
        for pe in sorted(members, key=element_order):
            out[element_key(pe)] = {}
        return out
    for pe in sorted(members | children.keys(), key=element_order):
        child = children.get(pe)
        out[element_key(pe)] = {} if child is None else _encode(child, pe in members)
    return out


class FieldsV1Error(ValueError):
    pass


def _parse_element(key: str) -> PathElement | None:
    if len(key) < 2:
        raise FieldsV1Error("key must be 2 characters long")
    if key[1] != ":":
        raise FieldsV1Error(f"missing colon: {key}")
    kind, rest = key[0], key[2:]
    if kind == "f":
        return (FIELD, rest)
    if kind == "v":
        try:
            return (VALUE, freeze(json.loads(rest)))
        except ValueError as e:
            raise FieldsV1Error(f"parsing key as path element: {e}") from None
    if kind == "k":
        try:
            fields = json.loads(rest)
        except ValueError as e:
            raise FieldsV1Error(f"parsing key as path element: {e}") from None
        if not isinstance(fields, dict):
            raise FieldsV1Error(f"parsing key as path element: {key}")
        return (KEY, tuple(sorted((n, freeze(v)) for n, v in fields.items())))
    if kind == "i":
        try:
            return (INDEX, int(rest))
        except ValueError:
            raise FieldsV1Error(f"parsing key as path element: {key}") from None
    return None  # an element type this version does not know: skipped, as upstream does


def decode_fields_v1(d: dict) -> FieldSet:
    """The set a FieldsV1 JSON object describes; FieldsV1Error when it is malformed."""
    if not isinstance(d, dict):
        raise FieldsV1Error("FieldsV1 must be a JSON object")
    return _decode(d)[0] or FieldSet()


def _decode(d: dict) -> tuple[FieldSet | None, bool]:
    node: FieldSet | None = None
    is_member = False
    for key, value in d.items():
        if key == ".":
            is_member = True
            continue
        pe = _parse_element(key)
        if pe is None:
            continue
        if not isinstance(value, dict):
            raise FieldsV1Error(f"expected an object for {key}")
        below, child_member = _decode(value)
        if child_member or below is not None:
            if node is None:
                node = FieldSet()
            if child_member:
                node.members.add(pe)
            if below is not None:
                node.children[pe] = below
    if node is None:
        is_member = True
    return node, is_member
