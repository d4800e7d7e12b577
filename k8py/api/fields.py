"""Field selector support: which fields each kind can be selected on.

Upstream registers field label conversion functions per kind; a selector on
any other field is rejected with `field label not supported: <field>`.
"""

from __future__ import annotations

from k8py.apimachinery.errors import bad_request
from k8py.apimachinery.selectors import FieldSelector


def _get(obj: dict, path: str):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _as_field(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# kind key (group, kind) -> extra selectable fields beyond metadata.name/namespace
_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                  "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                  "status.podIPs", "status.nominatedNodeName"),
    ("", "Event"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                    "involvedObject.uid", "involvedObject.apiVersion",
                    "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                    "reportingComponent", "source", "type"),
    ("", "Secret"): ("type",),
    ("", "Node"): ("spec.unschedulable",),
    ("", "Namespace"): ("status.phase",),
    ("", "ReplicationController"): ("status.replicas",),
    ("apps", "ReplicaSet"): ("status.replicas",),
    ("batch", "Job"): ("status.successful",),
    ("certificates.k8s.io", "CertificateSigningRequest"): ("spec.signerName",),
}


def _event_source(obj: dict) -> str:
    return _as_field((obj.get("source") or {}).get("component") or obj.get("reportingComponent"))


def field_values(group: str, kind: str, obj: dict) -> dict[str, str]:
    """The selectable fields of one object (in its storage version) as strings."""
    meta = obj.get("metadata") or {}
    values = {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}
    for field in _FIELDS.get((group, kind), ()):
        if field == "source":
            values[field] = _event_source(obj)
        elif field == "status.podIPs":
            ips = (obj.get("status") or {}).get("podIPs") or []
            values[field] = ips[0].get("ip", "") if ips else ""
        else:
            values[field] = _as_field(_get(obj, field))
    return values


def check_field_selector(group: str, kind: str, selector: FieldSelector) -> None:
    allowed = {"metadata.name", "metadata.namespace", *_FIELDS.get((group, kind), ())}
    for req in selector.requirements:
        if req.field not in allowed:
            raise bad_request(f"field label not supported: {req.field}")
