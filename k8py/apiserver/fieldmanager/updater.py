"""Field ownership on writes: Update operations and server-side apply.

Mirrors upstream's field manager stack (k8s.io/apimachinery/pkg/util/
managedfields/internal) on plain dicts:

- `record_update` is what every create, update and non-apply patch does: the
  writer takes the fields its change added or modified; everybody else loses
  those, and fields that disappeared. An object whose managedFields were
  reset (an update sending `managedFields: []`) is not tracked again until
  something applies to it.
- `apply` merges an applied configuration, removes what the applier applied
  before and dropped (unless someone else owns it), and refuses to change a
  value another manager owns unless forced. An object without managedFields
  first gets a `before-first-apply` Update entry owning all it has. For the
  manager `kubectl`, conflicts on fields that the client-side
  `last-applied-configuration` still describes are forced through, and that
  annotation is kept current, so `kubectl apply --server-side` can take over
  from client-side apply.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import orjson

from k8py.apimachinery import errors

from . import managers as mf
from .compare import compare, to_field_set
from .fieldpath import FieldSet, make_path, path_string
from .merge import merge, prune
from .typeinfo import Type, TypedError, root_type

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
FIELD_MANAGER_MAX_LENGTH = 128

# Fields nobody owns: identity and bookkeeping the server sets itself.
STRIPPED = FieldSet.of(
    make_path("apiVersion"), make_path("kind"), make_path("metadata"),
    *(make_path("metadata", f) for f in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                         "clusterName", "generation", "managedFields", "resourceVersion")))


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def manager_name(field_manager: str | None, user_agent: str | None) -> str:
    """The fieldManager parameter, else the User-Agent up to its first "/"
    (printable characters only, at most 128 bytes), as upstream names writers."""
    if field_manager:
        return field_manager
    out = []
    size = 0
    for ch in (user_agent or "").split("/")[0]:
        if not ch.isprintable():
            continue
        n = len(ch.encode())
        if size + n > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(ch)
        size += n
    return "".join(out)


def field_set(obj: dict, schema: dict | None) -> FieldSet:
    """The fields an object (or an applied configuration) sets, without the
    identity fields upstream never records as owned."""
    return to_field_set(_without_managed_fields(obj), root_type(schema)).difference(STRIPPED)


def reset_field_set(*paths) -> FieldSet:
    """A set for `reset_fields` from dotted paths or tuples: ("status",), "spec"."""
    return FieldSet.of(*(make_path(*(p.split(".") if isinstance(p, str) else p)) for p in paths))


def _without_managed_fields(obj: dict) -> dict:
    meta = obj.get("metadata")
    if type(meta) is not dict or "managedFields" not in meta:
        return obj
    out = dict(obj)
    out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def _is_reset(entries) -> bool:
    return isinstance(entries, list) and (not entries or (len(entries) == 1 and entries[0] == {}))


def _decode_or_empty(entries) -> dict:
    try:
        return mf.decode(entries)
    except mf.ManagedFieldsError:
        return {}


def _transfer(managers: dict, changed: FieldSet, removed: FieldSet, skip: str | None = None) -> dict:
    """Other managers lose what was just changed or removed; empty ones go."""
    out = {}
    for key, entry in managers.items():
        if key != skip:
            rest = entry.fields
            if changed:
                rest = rest.difference(changed)
            if removed:
                rest = rest.difference(removed)
            if rest != entry.fields:
                if not rest:
                    continue
                entry = entry.with_fields(rest)
        out[key] = entry
    return out


def _update(managers: dict, old: dict, new: dict, t: Type, manager: str, api_version: str,
            subresource: str, now: str, reset: FieldSet | None) -> dict:
    c = compare(old, new, t).exclude(reset)
    changed = c.changed()
    managers = _transfer(managers, changed, c.removed)
    mine = changed.difference(STRIPPED)
    if mine:
        key = mf.identifier(manager, mf.UPDATE, api_version, subresource)
        previous = managers.get(key)
        if previous is not None:
            mine = mine.union(previous.fields)
        managers[key] = mf.Entry(manager, mf.UPDATE, api_version, subresource, now, mine)
    return managers


def _store(obj: dict, managers: dict) -> None:
    meta = obj.setdefault("metadata", {})
    if managers:
        meta["managedFields"] = mf.encode(managers)
    else:
        meta.pop("managedFields", None)


def record_update(old: dict | None, new: dict, manager: str, operation: str = "Update",
                  subresource: str = "", now: str | None = None, schema: dict | None = None, *,
                  reset_fields: FieldSet | None = None) -> None:
    """Updates new["metadata"]["managedFields"] for a create (old None),
    update or non-apply patch by `manager`. Fields under `reset_fields`
    (what the strategy wipes, e.g. status on the main resource) are never
    recorded. Never raises: an object the schema cannot describe loses its
    managedFields, as upstream's UpdateNoErrors does."""
    now = now or now_rfc3339()
    manager = manager or "unknown"
    meta = new.get("metadata")
    if type(meta) is not dict or (old is not None and meta is old.get("metadata")):
        # A new object that shares its metadata with the old one must not
        # rewrite the old one's managedFields.
        meta = new["metadata"] = dict(meta) if type(meta) is dict else {}
    old_entries = ((old or {}).get("metadata") or {}).get("managedFields")
    if subresource:
        managers = _decode_or_empty(old_entries)
    else:
        sent = meta.get("managedFields")
        if _is_reset(sent):
            managers = {}
        else:
            managers = _decode_or_empty(sent) or _decode_or_empty(old_entries)
    meta.pop("managedFields", None)
    if not managers and old is not None and (old.get("metadata") or {}).get("uid"):
        return  # untracked (its managedFields were reset): stays untracked
    try:
        managers = _update(managers, _without_managed_fields(old) if old else {}, new, root_type(schema),
                           manager, new.get("apiVersion") or "", subresource, now, reset_fields)
    except TypedError:
        return
    mf.cap_update_managers(managers)
    _store(new, managers)


# -- apply -------------------------------------------------------------------

class _Conflicts(Exception):
    def __init__(self, items: list):
        super().__init__(items)
        self.items = items  # (entry, path)


def conflict_error(items: list) -> errors.StatusError:
    """409 Conflict worded as upstream's apply conflicts."""
    causes = [errors.Cause(path_string(p), f"conflict with {e.describe()}", "FieldManagerConflict")
              for e, p in items]
    if len(items) == 1:
        e, p = items[0]
        message = f"Apply failed with 1 conflict: conflict with {e.describe()}: {path_string(p)}"
    else:
        lines = []
        by_manager: dict = {}
        for e, p in items:
            by_manager.setdefault(e.key, (e, []))[1].append(p)
        for key in sorted(by_manager):
            e, paths = by_manager[key]
            lines.append(f"conflicts with {e.describe()}:")
            lines.extend(f"- {path_string(p)}" for p in paths)
        message = f"Apply failed with {len(items)} conflicts: " + "\n".join(lines)
    return errors.StatusError(409, "Conflict", message, causes=causes)


def _apply_once(live: dict, applied: dict, managers: dict, t: Type, manager: str, api_version: str,
                subresource: str, force: bool, now: str, reset: FieldSet | None) -> tuple[dict, dict]:
    key = mf.identifier(manager, mf.APPLY, api_version, subresource)
    previous = managers.get(key)
    mine = to_field_set(applied, t, allow_duplicates=False)
    if reset:
        mine = mine.recursive_difference(reset)
    managers = dict(managers)
    managers[key] = mf.Entry(manager, mf.APPLY, api_version, subresource, None, mine)

    result = merge(live, applied, t)
    if previous is not None and previous.fields:
        owned = FieldSet()
        for entry in managers.values():
            owned = owned.union(entry.fields)
        result = prune(result, t, previous.fields, owned)

    c = compare(live, result, t).exclude(reset)
    changed = c.changed()
    if changed and not force:
        found = []
        for k in sorted(managers):
            if k != key:
                clash = managers[k].fields.intersection(changed)
                found.extend((managers[k], p) for p in clash.paths())
        if found:
            raise _Conflicts(found)
    managers = _transfer(managers, changed, c.removed, skip=key)

    mine = mine.difference(STRIPPED)
    if mine:
        unchanged = result == live
        time = (previous.time if previous else None) if unchanged else now
        managers[key] = mf.Entry(manager, mf.APPLY, api_version, subresource, time, mine)
    else:
        del managers[key]
    return result, managers


def _describe(obj: dict) -> str:
    """`namespace/name; group/version, Kind=Kind` as upstream names objects in errors."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    api_version = str(obj.get("apiVersion") or "")
    group_version = api_version if "/" in api_version else "/" + api_version
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}; {group_version}, Kind={obj.get('kind') or ''}"


def _allowed_by_last_applied(live: dict | None, t: Type) -> FieldSet | None:
    """Fields the client-side last-applied configuration set and the live
    object still has unchanged: `kubectl` may take those over without force."""
    if not live:
        return None
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not raw:
        return None
    try:
        last = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != live.get("apiVersion"):
        return None
    try:
        c = compare(last, _without_managed_fields(live), t)
        return to_field_set(last, t).difference(c.modified).difference(c.added).difference(c.removed)
    except TypedError:
        return None


def _last_applied_value(applied: dict) -> str:
    obj = applied
    annotations = (applied.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        obj = dict(applied)
        obj["metadata"] = dict(applied["metadata"])
        obj["metadata"]["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def apply(live: dict | None, applied: dict, manager: str, force: bool = False, now: str | None = None,
          schema: dict | None = None, *, subresource: str = "",
          reset_fields: FieldSet | None = None) -> dict:
    """Server-side apply of `applied` by `manager` onto `live` (None: the
    object does not exist yet). Returns a new object with managedFields set;
    raises StatusError 409 Conflict (or 400 for a malformed configuration).
    Defaulting, validation and the strategy stay the caller's."""
    now = now or now_rfc3339()
    manager = manager or "unknown"
    if not isinstance(applied, dict):
        raise errors.bad_request("the applied configuration must be an object")
    applied_meta = applied.get("metadata")
    if isinstance(applied_meta, dict) and applied_meta.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    api_version = applied.get("apiVersion") or (live or {}).get("apiVersion") or ""
    if live is not None and live.get("apiVersion") and applied.get("apiVersion") \
            and live["apiVersion"] != applied["apiVersion"]:
        raise errors.bad_request(f"Incorrect version specified in apply patch. Specified patch version: "
                                 f"{applied['apiVersion']}, expected: {live['apiVersion']}")
    t = root_type(schema)
    current = _without_managed_fields(live) if live is not None else {}
    try:
        managers = mf.decode(((live or {}).get("metadata") or {}).get("managedFields"))
    except mf.ManagedFieldsError as e:
        raise errors.StatusError(500, "", f"failed to decode managed fields: {e}") from None
    try:
        if not managers and live is not None:
            managers = _update({}, {}, current, t, BEFORE_FIRST_APPLY, api_version, subresource, now,
                               reset_fields)
        try:
            result, managers = _apply_once(current, applied, managers, t, manager, api_version, subresource,
                                           force, now, reset_fields)
        except _Conflicts as conflicts:
            allowed = _allowed_by_last_applied(live, t) if manager == "kubectl" else None
            if allowed is None:
                raise conflict_error(conflicts.items) from None
            rest = [(e, p) for e, p in conflicts.items if not allowed.has(p)]
            if rest:
                raise conflict_error(rest) from None
            result, managers = _apply_once(current, applied, managers, t, manager, api_version, subresource,
                                           True, now, reset_fields)
    except TypedError as e:
        # Upstream returns this as a plain error: code 500 with no reason.
        raise errors.StatusError(500, "", f"failed to create typed patch object ({_describe(applied)}): {e}") \
            from None
    result = orjson.loads(orjson.dumps(result))
    if manager == "kubectl":
        annotations = (result.get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict) and annotations.get(LAST_APPLIED):
            annotations[LAST_APPLIED] = _last_applied_value(applied)
    _store(result, managers)
    return result
