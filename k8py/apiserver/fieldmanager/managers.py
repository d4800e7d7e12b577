"""metadata.managedFields entries: decoding, identity, order, and the cap.

Upstream keys each entry by a manager identifier: the JSON of the entry with
only manager, operation, apiVersion (Update entries only) and subresource.
So one manager applying, and the same manager updating through two API
versions or through a subresource, are separate entries.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime

from .fieldpath import FieldSet, FieldsV1Error, decode_fields_v1, encode_fields_v1

APPLY, UPDATE = "Apply", "Update"
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"


class ManagedFieldsError(ValueError):
    pass


def _go_string(s: str) -> str:
    return (json.dumps(s, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def identifier(manager: str, operation: str, api_version: str, subresource: str = "") -> str:
    parts = []
    if manager:
        parts.append('"manager":' + _go_string(manager))
    if operation:
        parts.append('"operation":' + _go_string(operation))
    if api_version and operation != APPLY:
        parts.append('"apiVersion":' + _go_string(api_version))
    if subresource:
        parts.append('"subresource":' + _go_string(subresource))
    return "{" + ",".join(parts) + "}"


class Entry:
    """One manager's fields. `raw` keeps the stored FieldsV1 object for as
    long as the set is unchanged, so untouched entries are not re-encoded."""

    __slots__ = ("manager", "operation", "api_version", "subresource", "time", "fields", "raw")

    def __init__(self, manager: str, operation: str, api_version: str, subresource: str,
                 time: str | None, fields: FieldSet, raw: dict | None = None):
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.subresource = subresource
        self.time = time
        self.fields = fields
        self.raw = raw

    @property
    def key(self) -> str:
        return identifier(self.manager, self.operation, self.api_version, self.subresource)

    def with_fields(self, fields: FieldSet) -> "Entry":
        if fields is self.fields:
            return self
        return Entry(self.manager, self.operation, self.api_version, self.subresource, self.time, fields)

    def describe(self) -> str:
        """How conflicts name this manager: `"kubectl" using apps/v1`."""
        out = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            out += " with subresource " + json.dumps(self.subresource, ensure_ascii=False)
        if self.operation == UPDATE:
            out += " using " + self.api_version
        return out

    def to_dict(self) -> dict:
        d: dict = {}
        if self.manager:
            d["manager"] = self.manager
        d["operation"] = self.operation
        d["apiVersion"] = self.api_version
        if self.time:
            d["time"] = self.time
        d["fieldsType"] = "FieldsV1"
        d["fieldsV1"] = self.raw if self.raw is not None else encode_fields_v1(self.fields)
        if self.subresource:
            d["subresource"] = self.subresource
        return d


def decode(entries) -> dict[str, Entry]:
    """Entries by identifier; ManagedFieldsError when one is malformed."""
    out: dict[str, Entry] = {}
    if not entries:
        return out
    if not isinstance(entries, list):
        raise ManagedFieldsError("managedFields must be a list")
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ManagedFieldsError(f"managed fields entry {i} is not an object")
        operation = e.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        api_version = e.get("apiVersion") or ""
        if not api_version:
            raise ManagedFieldsError("apiVersion must not be empty")
        fields_type = e.get("fieldsType") or ""
        if fields_type != "FieldsV1":
            if not fields_type:
                raise ManagedFieldsError(f"missing fieldsType in managed fields entry {i}")
            raise ManagedFieldsError(f"invalid fieldsType {fields_type!r} in managed fields entry {i}")
        raw = e.get("fieldsV1")
        try:
            fields = decode_fields_v1(raw) if raw is not None else FieldSet()
        except FieldsV1Error as err:
            raise ManagedFieldsError(f"error decoding set: {err}") from None
        entry = Entry(e.get("manager") or "", operation, api_version, e.get("subresource") or "",
                      e.get("time"), fields, raw if isinstance(raw, dict) else None)
        out[entry.key] = entry
    return out


@functools.lru_cache(maxsize=4096)
def _seconds(t: str | None) -> int:
    if not t:
        return 0
    try:
        return int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def encode(managers: dict[str, Entry]) -> list[dict]:
    """Entries in upstream's order: Apply before Update, then oldest first,
    then by manager, apiVersion and subresource."""
    entries = sorted(managers.values(), key=lambda e: (e.operation, _seconds(e.time), e.manager,
                                                       e.api_version, e.subresource))
    return [e.to_dict() for e in entries]


def cap_update_managers(managers: dict[str, Entry], limit: int = MAX_UPDATE_MANAGERS) -> None:
    """Folds the oldest Update entries into `ancient-changes` (one per API
    version) once there are more than `limit` of them."""
    updaters = [k for k, e in managers.items() if e.operation == UPDATE]
    if len(updaters) <= limit:
        return
    updaters.sort(key=lambda k: (_seconds(managers[k].time), k))
    remaining = len(updaters)
    first_of_version: dict[str, str] = {}
    for k in updaters:
        if remaining <= limit:
            break
        entry = managers[k]
        version = entry.api_version
        bucket = identifier(ANCIENT_CHANGES, UPDATE, version)
        first = first_of_version.get(version)
        if first is None:
            first_of_version[version] = k
            continue
        if bucket not in managers:
            moved = managers.pop(first)
            managers[bucket] = Entry(ANCIENT_CHANGES, UPDATE, version, "", moved.time, moved.fields)
        if k == bucket:
            continue
        held = managers[bucket]
        managers[bucket] = Entry(ANCIENT_CHANGES, UPDATE, version, "", entry.time,
                                 entry.fields.union(held.fields))
        del managers[k]
        remaining -= 1
