"""What an object sets, and what changed between two versions of it.

`to_field_set` is upstream's ToFieldSet: scalars and atomic values are
leaves; list items and the keys of non-struct maps are members of the set
themselves; struct fields only when null or an empty map. `compare` is
upstream's Compare: modified leaves, and every added or removed node,
containers included (which is where the `.` entries of Update operations
come from).
"""

from __future__ import annotations

from .fieldpath import FIELD, FieldSet, path_string
from .typeinfo import LIST, MAP, MISSING, UNTYPED, Type, TypedError, elements

# -- ToFieldSet -------------------------------------------------------------

def to_field_set(obj: dict, t: Type, allow_duplicates: bool = True) -> FieldSet:
    """Every path the value sets, as upstream's ToFieldSet counts them.
    Stored objects may repeat a list-map key (the item then counts as one
    leaf); an applied configuration may not."""
    out = FieldSet()
    _fs_map(obj, t, out, [], allow_duplicates)
    return out


def _fs_value(v, t: Type, parent: FieldSet, pe, path: list, dups_ok: bool) -> None:
    if isinstance(v, dict):
        if t.kind == MAP or t.kind == UNTYPED:
            if t.atomic:
                parent.members.add(pe)
            elif v:
                sub = FieldSet()
                path.append(pe)
                _fs_map(v, t, sub, path, dups_ok)
                path.pop()
                if sub:
                    parent.children[pe] = sub
            return
    elif isinstance(v, list):
        if t.kind == LIST and not t.atomic:
            if v:
                sub = FieldSet()
                path.append(pe)
                _fs_list(v, t, sub, path, dups_ok)
                path.pop()
                if sub:
                    parent.children[pe] = sub
            return
    elif v is None and t.kind in (MAP, LIST, UNTYPED) and not t.atomic:
        return
    parent.members.add(pe)


def _fs_map(m: dict, t: Type, out: FieldSet, path: list, dups_ok: bool) -> None:
    props = t.props
    for k, v in m.items():
        pe = (FIELD, k)
        _fs_value(v, t.field(k), out, pe, path, dups_ok)
        if v is None or (type(v) is dict and not v) or k not in props:
            out.members.add(pe)


def _fs_list(items: list, t: Type, out: FieldSet, path: list, dups_ok: bool) -> None:
    pes = elements(items, t, path)
    seen: set = set()
    dups: set = set()
    for pe in pes:
        if pe in seen:
            if not dups_ok:
                raise TypedError(f"{path_string(tuple(path))}: duplicate entries for key {path_string((pe,))}")
            dups.add(pe)
        seen.add(pe)
    elem = t.element()
    for item, pe in zip(items, pes):
        if pe in dups:
            continue
        _fs_value(item, elem, out, pe, path, dups_ok)
        out.members.add(pe)
    out.members.update(dups)


# -- Compare ----------------------------------------------------------------

class Comparison:
    __slots__ = ("added", "modified", "removed")

    def __init__(self):
        self.added = FieldSet()
        self.modified = FieldSet()
        self.removed = FieldSet()

    def changed(self) -> FieldSet:
        return self.modified.union(self.added)

    def exclude(self, fields: FieldSet | None) -> "Comparison":
        if fields:
            self.added = self.added.recursive_difference(fields)
            self.modified = self.modified.recursive_difference(fields)
            self.removed = self.removed.recursive_difference(fields)
        return self


def compare(lhs: dict, rhs: dict, t: Type) -> Comparison:
    """What changed from lhs to rhs: added and removed nodes, modified leaves."""
    c = Comparison()
    if lhs != rhs:
        _cmp_map(lhs, rhs, t, [], c)
    return c


def _leaf(lv, rv, path: list, c: Comparison) -> None:
    if lv is MISSING:
        c.added.insert(tuple(path))
    elif rv is MISSING:
        c.removed.insert(tuple(path))
    elif lv != rv:
        c.modified.insert(tuple(path))


def _cmp(lv, rv, t: Type, path: list, c: Comparison) -> None:
    if lv is not MISSING and rv is not MISSING and lv == rv:
        return
    kind = t.kind
    lt, rt = type(lv), type(rv)
    l_absent = lv is None or lv is MISSING
    r_absent = rv is None or rv is MISSING
    if (kind == MAP or kind == UNTYPED) and (lt is dict or rt is dict):
        container = dict
    elif kind == LIST and (lt is list or rt is list):
        container = list
    else:
        _leaf(lv, rv, path, c)
        return
    mismatched = not (lt is container or l_absent) or not (rt is container or r_absent)
    both_empty = (l_absent or not lv) and (r_absent or not rv)
    if t.atomic or mismatched or both_empty:
        # Atomic values, and empty or null ones on both sides, are leaves.
        _leaf(lv, rv, path, c)
        return
    if container is dict:
        _cmp_map(lv if lt is dict else None, rv if rt is dict else None, t, path, c)
    else:
        _cmp_list(lv if lt is list else [], rv if rt is list else [], t, path, c)
    if lv is MISSING:
        c.added.insert(tuple(path))
    elif rv is MISSING:
        c.removed.insert(tuple(path))


def _cmp_map(lm: dict | None, rm: dict | None, t: Type, path: list, c: Comparison) -> None:
    # A side whose map is null has no fields at all, not even always-present ones.
    always = t.always
    l_always = always if lm is not None else ()
    r_always = always if rm is not None else ()
    lm = lm if lm is not None else {}
    rm = rm if rm is not None else {}
    for k, lc in lm.items():
        rc = rm.get(k, MISSING)
        if rc is MISSING:
            if k in r_always:
                rc = {} if k in t.value_structs else None
        elif lc == rc:
            continue
        path.append((FIELD, k))
        _cmp(lc, rc, t.field(k), path, c)
        path.pop()
    for k, rc in rm.items():
        if k in lm:
            continue
        lc = MISSING
        if k in l_always:
            lc = {} if k in t.value_structs else None
        path.append((FIELD, k))
        _cmp(lc, rc, t.field(k), path, c)
        path.pop()


def _index(items: list, t: Type, path: list) -> tuple[list, dict]:
    order: list = []
    by_pe: dict = {}
    for item, pe in zip(items, elements(items, t, path)):
        seen = by_pe.get(pe)
        if seen is None:
            by_pe[pe] = [item]
            order.append(pe)
        else:
            seen.append(item)
    return order, by_pe


def _cmp_list(ll: list, rl: list, t: Type, path: list, c: Comparison) -> None:
    lorder, lby = _index(ll, t, path)
    rorder, rby = _index(rl, t, path)
    elem = t.element()
    for pe in lorder + [pe for pe in rorder if pe not in lby]:
        litems = lby.get(pe, ())
        ritems = rby.get(pe, ())
        path.append(pe)
        if len(litems) <= 1 and len(ritems) <= 1:
            _cmp(litems[0] if litems else MISSING, ritems[0] if ritems else MISSING, elem, path, c)
        elif len(litems) >= 2 and len(ritems) >= 2:
            if litems != ritems:
                c.modified.insert(tuple(path))
        elif len(litems) >= 2:
            if ritems:
                _cmp(MISSING, ritems[0], elem, path, c)
            c.removed.insert(tuple(path))
        else:
            if litems:
                _cmp(litems[0], MISSING, elem, path, c)
            c.added.insert(tuple(path))
        path.pop()
