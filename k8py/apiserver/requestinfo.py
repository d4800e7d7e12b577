"""Parse a request path into what it addresses, as upstream's RequestInfo does.

    /api/v1/namespaces/{ns}/{resource}/{name}/{subresource}
    /apis/{group}/{version}/{resource}/{name}
"""

from __future__ import annotations

from dataclasses import dataclass

# Subresources of a namespace object itself (not resources inside it).
NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass
class RequestInfo:
    is_resource: bool
    path: str
    verb: str = ""
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    # Extra path segments after a subresource (proxy paths).
    rest: tuple[str, ...] = ()
    prefix: str = ""  # "api" or "apis"


def parse(path: str, method: str, query: dict) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    info = RequestInfo(is_resource=False, path=path)
    if not parts or parts[0] not in ("api", "apis"):
        return info
    info.prefix = parts[0]
    if parts[0] == "api":
        if len(parts) < 2:
            return info
        info.version, rest = parts[1], parts[2:]
    else:
        if len(parts) < 3:
            if len(parts) == 2:
                info.group = parts[1]
            return info
        info.group, info.version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return info
    info.is_resource = True
    if rest[0] == "namespaces" and len(rest) >= 2:
        if len(rest) == 2 or (len(rest) == 3 and rest[2] in NAMESPACE_SUBRESOURCES):
            info.resource = "namespaces"
            info.name = rest[1]
            info.subresource = rest[2] if len(rest) == 3 else ""
        else:
            info.namespace = rest[1]
            rest = rest[2:]
            info.resource = rest[0]
            if len(rest) > 1:
                info.name = rest[1]
            if len(rest) > 2:
                info.subresource = rest[2]
                info.rest = tuple(rest[3:])
    else:
        info.resource = rest[0]
        if len(rest) > 1:
            info.name = rest[1]
        if len(rest) > 2:
            info.subresource = rest[2]
            info.rest = tuple(rest[3:])
    info.verb = _verb(method, info, query)
    return info


def _verb(method: str, info: RequestInfo, query: dict) -> str:
    watching = query.get("watch") in ("true", "1")
    if method == "GET" or method == "HEAD":
        if watching:
            return "watch"
        return "get" if info.name else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if info.name else "deletecollection"
    return method.lower()
