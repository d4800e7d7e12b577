"""API discovery documents: aggregated (apidiscovery.k8s.io/v2) and legacy.

kubectl reads the aggregated form from /api and /apis; `kubectl drain` and
the Python DynamicClient read the legacy per-group-version lists.
"""

from __future__ import annotations

import hashlib

from k8py.api.registry import Registry, Resource

AGGREGATED_MEDIA = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_MEDIA_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

_STATUS_VERBS = ("get", "patch", "update")
# subresource -> (group, version, kind or None for the parent's kind, verbs)
SUBRESOURCES = {
    "status": (None, None, None, _STATUS_VERBS),
    "scale": ("autoscaling", "v1", "Scale", _STATUS_VERBS),
    "binding": ("", "v1", "Binding", ("create",)),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "exec": ("", "v1", "PodExecOptions", ("create", "get")),
    "attach": ("", "v1", "PodAttachOptions", ("create", "get")),
    "portforward": ("", "v1", "PodPortForwardOptions", ("create", "get")),
    "log": (None, None, None, ("get",)),
    "proxy": ("", "v1", "{kind}ProxyOptions", ("create", "delete", "get", "patch", "update")),
    "ephemeralcontainers": (None, None, None, _STATUS_VERBS),
    "finalize": (None, None, None, ("update",)),
    "approval": (None, None, None, _STATUS_VERBS),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ("create",)),
}


def subresource_kind(resource: Resource, sub: str) -> tuple[str, str, str, tuple[str, ...]]:
    group, version, kind, verbs = SUBRESOURCES.get(sub, (None, None, None, ("get",)))
    if kind is None:
        return resource.group, resource.version, resource.kind, verbs
    return group, version, kind.format(kind=resource.kind), verbs


def _storage_version_hash(resource: Resource) -> str:
    digest = hashlib.sha256(f"{resource.stored_group}/{resource.stored_version}/{resource.kind}".encode())
    return digest.digest()[:8].hex()


def _scope(resource: Resource) -> str:
    return "Namespaced" if resource.namespaced else "Cluster"


def _aggregated_resource(resource: Resource) -> dict:
    out = {
        "resource": resource.plural,
        "responseKind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
        "scope": _scope(resource),
        "singularResource": resource.singular,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        out["shortNames"] = list(resource.short_names)
    if resource.categories:
        out["categories"] = list(resource.categories)
    subs = []
    for sub in resource.subresources:
        group, version, kind, verbs = subresource_kind(resource, sub)
        subs.append({"subresource": sub, "responseKind": {"group": group, "version": version, "kind": kind},
                     "verbs": list(verbs)})
    if subs:
        out["subresources"] = subs
    return out


def aggregated(registry: Registry, legacy: bool) -> dict:
    """APIGroupDiscoveryList for /api (legacy=True) or /apis."""
    items = []
    for group, versions in registry.groups().items():
        if (group == "") != legacy:
            continue
        group_meta = {"creationTimestamp": None}
        if group:
            group_meta = {"name": group, "creationTimestamp": None}
        items.append({
            "metadata": group_meta,
            "versions": [{
                "version": version,
                "resources": [_aggregated_resource(r) for r in sorted(
                    registry.in_group_version(group, version), key=lambda r: r.plural)],
                "freshness": "Current",
            } for version in versions],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(group: str, versions: list[str]) -> dict:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def api_group_list(registry: Registry) -> dict:
    groups = [_group(g, v) for g, v in registry.groups().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict | None:
    versions = registry.groups().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def api_resource_list(registry: Registry, group: str, version: str) -> dict | None:
    resources = sorted(registry.in_group_version(group, version), key=lambda r: r.plural)
    if not resources:
        return None
    listed = []
    for r in resources:
        entry = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entry["storageVersionHash"] = _storage_version_hash(r)
        listed.append(entry)
        for sub in r.subresources:
            sgroup, sversion, skind, verbs = subresource_kind(r, sub)
            sub_entry = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                         "kind": skind, "verbs": list(verbs)}
            if (sgroup, sversion) != (r.group, r.version):
                sub_entry["group"], sub_entry["version"] = sgroup, sversion
            listed.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": listed}
