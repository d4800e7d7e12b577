"""Who may use the kubelet API: upstream's webhook mode. The caller's client
certificate (CN = user, O = groups) and the request, mapped to a `nodes`
subresource as the kubelet maps it (/stats -> nodes/stats, /metrics -> nodes/metrics,
/logs -> nodes/log, /spec -> nodes/spec, /healthz -> nodes/healthz, the rest
-> nodes/proxy), are put to the API server as a SubjectAccessReview. Answers
are cached as upstream's defaults: allowed 5 minutes, denied 30 seconds.
"""

from __future__ import annotations

import time

ALLOWED_TTL, DENIED_TTL = 300.0, 30.0
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_SUBRESOURCES = (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log"), ("/spec", "spec"),
                 ("/healthz", "healthz"), ("/configz", "configz"), ("/checkpoint", "checkpoint"))


def attributes(path: str, method: str) -> tuple[str, str]:
    """(verb, subresource of nodes) a kubelet request needs."""
    subresource = next((sub for prefix, sub in _SUBRESOURCES if path == prefix or path.startswith(prefix + "/")),
                       "proxy")
    return _VERBS.get(method.upper(), method.lower()), subresource


def forbidden_text(user: str, verb: str, subresource: str) -> str:
    """The kubelet's 403 body (plain text, as upstream words it)."""
    return f"Forbidden (user={user}, verb={verb}, resource=nodes, subresource={subresource})"


class SubjectAccessReviewer:
    def __init__(self, client, node_name: str):
        self.reviews = client.resource("authorization.k8s.io/v1", "subjectaccessreviews")
        self.node_name = node_name
        self._cache: dict[tuple, tuple[float, bool]] = {}

    async def allowed(self, user: str, groups: list[str], verb: str, subresource: str) -> bool:
        key = (user, tuple(groups), verb, subresource)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": user, "groups": list(groups),
                           "resourceAttributes": {"verb": verb, "resource": "nodes", "subresource": subresource,
                                                  "name": self.node_name}}}
        try:
            answer = await self.reviews.create(review)
        except Exception:
            return False                       # no answer is no permission (not cached: ask again next time)
        allowed = bool((answer.get("status") or {}).get("allowed"))
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[key] = (now + (ALLOWED_TTL if allowed else DENIED_TTL), allowed)
        return allowed
