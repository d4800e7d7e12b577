"""Privilege-escalation prevention for RBAC writes, as upstream's RBAC storage does it.

Writing a Role or ClusterRole needs either the `escalate` verb on it or
holding every permission it grants (a ClusterRole with an aggregationRule
counts as granting everything). Writing a RoleBinding or ClusterRoleBinding
needs either the `bind` verb on the role it refers to or holding every
permission of that role. Members of system:masters pass, as upstream's
EscalationAllowed. Requests from inside the server (no user) are trusted.
"""

from __future__ import annotations

from k8py.apimachinery import errors
from k8py.apiserver.authn import MASTERS_GROUP, UserInfo
from k8py.apiserver.authz import Attributes
from k8py.apiserver.authz.rules import compact_rules, compact_string, covers

GROUP = "rbac.authorization.k8s.io"
ROLE_KINDS = {"Role": "roles", "ClusterRole": "clusterroles"}
BINDING_KINDS = {"RoleBinding": "rolebindings", "ClusterRoleBinding": "clusterrolebindings"}
FULL_AUTHORITY = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                  {"nonResourceURLs": ["*"], "verbs": ["*"]}]
_GC_FIELDS = ("ownerReferences", "finalizers")


def check_write(api, group: str, kind: str, obj: dict, old: dict | None, user: UserInfo | None) -> None:
    """Raise 403 when `user` may not write `obj` (old: its stored state on update)."""
    if group != GROUP or user is None or (kind not in ROLE_KINDS and kind not in BINDING_KINDS):
        return
    if MASTERS_GROUP in user.groups:
        return
    if old is not None and _only_gc_fields_changed(obj, old):
        return
    metadata = obj.get("metadata") or {}
    name, namespace = metadata.get("name", ""), metadata.get("namespace", "") if kind in ("Role", "RoleBinding") else ""
    if kind in ROLE_KINDS:
        if _allowed(api, user, "escalate", ROLE_KINDS[kind], name, namespace):
            return
        rules = obj.get("rules") or []
        if obj.get("aggregationRule") or (old is not None and old.get("aggregationRule")):
            rules = FULL_AUTHORITY
        _confirm_no_escalation(api, user, rules, namespace, ROLE_KINDS[kind], name)
        return
    ref = obj.get("roleRef") or {}
    role_kind, role_name = ref.get("kind", ""), ref.get("name", "")
    if role_kind in ROLE_KINDS and _allowed(api, user, "bind", ROLE_KINDS[role_kind], role_name, namespace):
        return
    rules = _role_rules(api, role_kind, role_name, namespace)
    _confirm_no_escalation(api, user, rules, namespace, BINDING_KINDS[kind], name)


def _allowed(api, user: UserInfo, verb: str, resource: str, name: str, namespace: str) -> bool:
    attrs = Attributes(user=user, verb=verb, resource_request=True, namespace=namespace, api_group=GROUP,
                       api_version="v1", resource=resource, name=name)
    return api.authorizer.authorize(attrs).allowed


def _role_rules(api, kind: str, name: str, namespace: str) -> list[dict]:
    """The rules of the role a binding refers to; 404 as upstream when it does not exist."""
    if kind == "ClusterRole":
        cached = api.objects_for(GROUP, "v1", "clusterroles").get_cached("", name)
        plural = "clusterroles"
    else:
        cached = api.objects_for(GROUP, "v1", "roles").get_cached(namespace, name) if namespace else None
        plural = "roles"
    if cached is None:
        raise errors.not_found(plural, name, GROUP)
    return cached.obj.get("rules") or []


def _confirm_no_escalation(api, user: UserInfo, rules: list[dict], namespace: str, plural: str, name: str) -> None:
    rbac = getattr(api, "rbac", None)
    owned, resolution_errors = rbac.rules_and_errors(user, namespace) if rbac is not None else ([], [])
    ok, missing = covers(owned, rules)
    if ok:
        return
    held = "\n".join(sorted({compact_string(r) for r in compact_rules(missing)}))
    groups = "[" + " ".join(f'"{g}"' for g in user.groups) + "]"
    message = (f'user "{user.name}" (groups={groups}) is attempting to grant RBAC permissions not currently '
               f"held:\n{held}")
    if resolution_errors:
        message += "; resolution errors: [" + " ".join(resolution_errors) + "]"
    raise errors.StatusError(403, "Forbidden", f'{plural}.{GROUP} "{name}" is forbidden: {message}',
                             name=name, group=GROUP, kind=plural)


def _only_gc_fields_changed(new: dict, old: dict) -> bool:
    def stripped(obj: dict) -> dict:
        metadata = {k: v for k, v in (obj.get("metadata") or {}).items()
                    if k not in (*_GC_FIELDS, "resourceVersion", "managedFields", "generation")}
        return {**obj, "metadata": metadata}
    return stripped(new) == stripped(old)
