"""Turning a wanted set of endpoints into EndpointSlice creates, updates and deletes.

Both the EndpointSlice controller and the mirroring controller want the same
thing: endpoints grouped by (address type, ports), at most MAX_PER_SLICE per
slice, and as little churn as possible (an endpoint stays in the slice it is
already in, so kube-proxy and DNS watchers see small changes).
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field

MAX_PER_SLICE = 100
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"


def ports_key(ports: list[dict] | None) -> tuple:
    return tuple(sorted((p.get("name", ""), p.get("port"), p.get("protocol", "TCP"), p.get("appProtocol", ""))
                        for p in ports or []))


def endpoint_key(endpoint: dict) -> tuple:
    return tuple(endpoint.get("addresses") or [])


def _sort_key(endpoint: dict):
    address = (endpoint.get("addresses") or ["0.0.0.0"])[0]
    ip = ipaddress.ip_address(address)
    return (ip.version, int(ip))


@dataclass
class Group:
    address_type: str
    ports: list[dict]
    endpoints: list[dict] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        return (self.address_type, ports_key(self.ports))


@dataclass
class Plan:
    create: list[dict] = field(default_factory=list)
    update: list[dict] = field(default_factory=list)
    delete: list[dict] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def group_endpoints(entries: list[tuple[str, list[dict], dict]]) -> list[Group]:
    """(address type, ports, endpoint) triples -> groups, in a stable order."""
    groups: dict[tuple, Group] = {}
    for address_type, ports, endpoint in entries:
        group = Group(address_type, ports)
        groups.setdefault(group.key, group).endpoints.append(endpoint)
    return [groups[k] for k in sorted(groups)]


def _slice_key(s: dict) -> tuple:
    return (s.get("addressType", "IPv4"), ports_key(s.get("ports")))


def _same(existing: dict, wanted: dict) -> bool:
    def norm(eps):
        return sorted((copy.deepcopy(e) for e in eps or []), key=_sort_key)
    return norm(existing.get("endpoints")) == norm(wanted.get("endpoints")) \
        and ports_key(existing.get("ports")) == ports_key(wanted.get("ports")) \
        and (existing["metadata"].get("labels") or {}) == (wanted["metadata"].get("labels") or {}) \
        and existing.get("addressType") == wanted.get("addressType")


def plan(existing: list[dict], groups: list[Group], new_slice, labels: dict) -> Plan:
    """What to write so the slices hold exactly `groups`.

    `new_slice(address_type, ports, endpoints)` builds a fresh slice body;
    `labels` are the labels every slice must carry.
    """
    result = Plan()
    existing = sorted(existing, key=lambda s: s["metadata"]["name"])
    unused = {s["metadata"]["name"]: s for s in existing}
    for group in groups:
        wanted = {endpoint_key(e): e for e in group.endpoints}
        mine = [s for s in existing if s["metadata"]["name"] in unused and _slice_key(s) == group.key]
        filled: list[tuple[dict, list[dict]]] = []
        for s in mine:
            keep = [wanted.pop(endpoint_key(e)) for e in s.get("endpoints") or [] if endpoint_key(e) in wanted]
            filled.append((s, keep))
        leftover = sorted(wanted.values(), key=_sort_key)
        for s, keep in filled:
            room = MAX_PER_SLICE - len(keep)
            if room > 0 and leftover:
                keep.extend(leftover[:room])
                leftover = leftover[room:]
            if not keep:
                continue  # an emptied slice is deleted below
            del unused[s["metadata"]["name"]]
            updated = copy.deepcopy(s)
            updated["endpoints"] = keep
            updated["ports"] = group.ports
            updated["metadata"]["labels"] = dict(labels)
            if not _same(s, updated):
                result.update.append(updated)
        for start in range(0, len(leftover), MAX_PER_SLICE):
            result.create.append(new_slice(group.address_type, group.ports, leftover[start:start + MAX_PER_SLICE]))
    if not groups:
        # A Service without endpoints still gets one empty slice, as upstream's placeholder.
        placeholder = next(iter(unused.values()), None)
        wanted = new_slice("IPv4", [], [])
        if placeholder is None:
            result.create.append(wanted)
        else:
            del unused[placeholder["metadata"]["name"]]
            updated = copy.deepcopy(placeholder)
            updated.update(endpoints=[], ports=[], addressType="IPv4")
            updated["metadata"]["labels"] = wanted["metadata"]["labels"]
            if not _same(placeholder, updated):
                result.update.append(updated)
    result.delete.extend(unused.values())
    return result


def _rv(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


class SliceTracker:
    """What we wrote but the informer may not show yet, so a quick second sync does not duplicate slices."""

    def __init__(self):
        self._written: dict[str, dict[str, dict | None]] = {}  # service key -> slice name -> slice (None: deleted)

    def record(self, key: str, written: dict | None, name: str) -> None:
        self._written.setdefault(key, {})[name] = written

    def view(self, key: str, cached: list[dict]) -> list[dict]:
        written = self._written.get(key)
        if not written:
            return cached
        current = {s["metadata"]["name"]: s for s in cached}
        for name, obj in list(written.items()):
            seen = current.get(name)
            if obj is None:
                if seen is None:
                    del written[name]  # the informer has seen the delete
                else:
                    current.pop(name)
            elif seen is not None and _rv(seen) >= _rv(obj):
                del written[name]  # the informer caught up
            else:
                current[name] = obj
        if not written:
            del self._written[key]
        return list(current.values())

    def forget(self, key: str) -> None:
        self._written.pop(key, None)
