"""Server-side apply's merge of a configuration into the live object, and
the pruning of fields an applier stopped applying."""

from __future__ import annotations

from collections import deque

from .fieldpath import FIELD, FieldSet, path_string
from .typeinfo import LIST, MAP, MISSING, UNTYPED, Type, TypedError, elements

# -- Merge ------------------------------------------------------------------

def merge(live: dict, config: dict, t: Type) -> dict:
    """The applied configuration merged into the live object: maps and
    list-maps merge by key, sets union, atomic values and scalars are replaced.
    A null in the configuration clears a scalar or atomic value (the field is
    dropped, as decoding into a Go struct would) but leaves a granular map or
    list that has content alone."""
    return _merge_map(live, config, t, [])


def _without_nulls(v):
    if type(v) is dict:
        return {k: _without_nulls(x) for k, x in v.items() if x is not None}
    if type(v) is list:
        return [_without_nulls(x) for x in v]
    return v


def _merge(lv, rv, t: Type, path: list):
    """The merged value; None means the field is dropped."""
    if lv is MISSING or lv is None:
        return _without_nulls(rv)
    if lv == rv:
        return lv
    kind = t.kind
    if (kind == MAP or kind == UNTYPED) and type(lv) is dict and (rv is None or type(rv) is dict):
        if t.atomic or (not lv and not rv):
            return _without_nulls(rv)
        return _merge_map(lv, rv or {}, t, path)
    if kind == LIST and not t.atomic and type(lv) is list and (rv is None or type(rv) is list) and (lv or rv):
        return _merge_list(lv, rv or [], t, path)
    return _without_nulls(rv)


def _merge_map(lm: dict, rm: dict, t: Type, path: list) -> dict:
    out = {}
    for k, lc in lm.items():
        rc = rm.get(k, MISSING)
        if rc is MISSING:
            out[k] = lc
            continue
        path.append((FIELD, k))
        merged = _merge(lc, rc, t.field(k), path)
        path.pop()
        if merged is not None:
            out[k] = merged
    for k, rc in rm.items():
        if k not in lm and rc is not None:
            out[k] = _without_nulls(rc)
    return out


def _merge_list(ll: list, rl: list, t: Type, path: list) -> list:
    rpes = elements(rl, t, path)
    rby: dict = {}
    for item, pe in zip(rl, rpes):
        if pe in rby:
            raise TypedError(f"{path_string(tuple(path))}: duplicate entries for key {path_string((pe,))}")
        rby[pe] = item
    lpes = elements(ll, t, path)
    lby: dict = {}
    for item, pe in zip(ll, lpes):
        lby[pe] = None if pe in lby else item   # duplicated live items merge as null
    shared = deque(pe for pe in rpes if pe in lby)
    next_shared = shared.popleft() if shared else None
    merged: set = set()
    elem = t.element()
    out = []
    li = ri = 0
    nl, nr = len(lpes), len(rpes)
    while li < nl or ri < nr:
        if li < nl and ri < nr:
            pe = lpes[li]
            if pe == rpes[ri]:
                merged.add(pe)
                path.append(pe)
                out.append(_merge(lby[pe], rby[pe], elem, path))
                path.pop()
                li += 1
                ri += 1
                next_shared = shared.popleft() if shared else None
                continue
            if pe in rby and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < nl:
            pe = lpes[li]
            if pe not in rby:
                out.append(ll[li])
                li += 1
                continue
            if pe in merged:
                li += 1
        if ri < nr:
            pe = rpes[ri]
            merged.add(pe)
            path.append(pe)
            out.append(_merge(lby.get(pe, MISSING), rby[pe], elem, path))
            path.pop()
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.popleft() if shared else None
    return out


# -- Pruning ----------------------------------------------------------------

def prune(merged: dict, t: Type, last: FieldSet, owned: FieldSet) -> dict:
    """Removes what the applier applied last time (`last`) and nobody owns
    now (`owned` is everybody's fields, the applier's new ones included).

    This is the net effect of upstream's remove / add back owned / add back
    dangling steps: a node goes when it was in the last applied set and it,
    or a node above it that the last set covers, is owned by nobody. Named
    struct fields count as part of a set when anything below them is.
    Parents emptied this way disappear (value structs become `{}`)."""
    out = _prune_map(merged, t, last, owned, False, False)
    return merged if out is None else out


def _in(fs: FieldSet | None, pe, named: bool) -> bool:
    return fs is not None and (pe in fs.members or (named and pe in fs.children))


def _prune_step(v, t: Type, pe, named: bool, last: FieldSet, owned: FieldSet | None, d1: bool, e: bool):
    """MISSING to drop the node, None to keep it unchanged, else its new value."""
    in_last = _in(last, pe, named)
    below = last.children.get(pe)
    if not in_last and below is None:
        return None
    d1 = d1 or in_last
    gone = d1 and not _in(owned, pe, named)
    e = e or gone
    if e and in_last:
        return MISSING
    if below is None:
        return None
    owned_below = owned.children.get(pe) if owned is not None else None
    if type(v) is dict and (t.kind == MAP or t.kind == UNTYPED) and not t.atomic:
        return _prune_map(v, t, below, owned_below, d1, e)
    if type(v) is list and t.kind == LIST and not t.atomic:
        return _prune_list(v, t, below, owned_below, d1, e)
    return None


def _prune_map(m: dict, t: Type, last: FieldSet, owned: FieldSet | None, d1: bool, e: bool):
    out = None
    props = t.props
    for k, v in m.items():
        r = _prune_step(v, t.field(k), (FIELD, k), k in props, last, owned, d1, e)
        if r is None:
            if out is not None:
                out[k] = v
            continue
        if out is None:
            out = {}
            for k2, v2 in m.items():
                if k2 == k:
                    break
                out[k2] = v2
        if r is MISSING or not r:
            if k in t.value_structs:
                out[k] = {}
            continue
        out[k] = r
    return out


def _prune_list(items: list, t: Type, last: FieldSet, owned: FieldSet | None, d1: bool, e: bool):
    out = None
    elem = t.element()
    for i, (item, pe) in enumerate(zip(items, elements(items, t, []))):
        r = _prune_step(item, elem, pe, False, last, owned, d1, e)
        if r is None:
            if out is not None:
                out.append(item)
            continue
        if out is None:
            out = list(items[:i])
        if r is not MISSING:
            out.append(r)
    return out
