"""The RBAC authorizer, as upstream's: Roles, ClusterRoles and their bindings.

It follows the API server's watch caches of the four rbac.authorization.k8s.io
resources (subscribed to the store, so a binding written is in force before
its writer has the answer) and keeps them indexed by subject:

    subject ("User"|"Group", name) -> namespace ("" for ClusterRoleBindings)
                                   -> [roleRef, ...]

A ServiceAccount subject is indexed as the user name its tokens carry
(system:serviceaccount:<ns>:<name>). A decision then looks up the user and
each of its groups, takes the cluster-wide bindings and those of the request's
namespace, and checks the rules of the roles they refer to: a few dict
lookups and a short scan, whatever the number of roles in the cluster.

RBAC only ever allows: what no rule grants gets NO_OPINION, with the roles that
could not be found as the reason (upstream's "RBAC: ..." text).
"""

from __future__ import annotations

import logging
import orjson

from k8py.apiserver.authn import UserInfo
from k8py.apiserver.authz import ALLOW, NO_OPINION, Attributes, Decision, Rules
from k8py.apiserver.authz.rules import CompiledRule, compile_rules

log = logging.getLogger("k8py.apiserver.authz.rbac")

GROUP = "rbac.authorization.k8s.io"
PREFIXES = {"roles": "/registry/roles/", "clusterroles": "/registry/clusterroles/",
            "rolebindings": "/registry/rolebindings/", "clusterrolebindings": "/registry/clusterrolebindings/"}
SA_PREFIX = "system:serviceaccount:"


def subject_keys(subject: dict, binding_namespace: str) -> tuple[str, str] | None:
    """The index key a binding subject is found under, or None if it names nobody."""
    kind, name = subject.get("kind"), subject.get("name") or ""
    if kind == "User":
        return "User", name
    if kind == "Group":
        return "Group", name
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        if namespace and name:
            return "User", f"{SA_PREFIX}{namespace}:{name}"
    return None


class RBACAuthorizer:
    def __init__(self):
        self._roles: dict[tuple[str, str], list[CompiledRule]] = {}  # (namespace, name)
        self._cluster_roles: dict[str, list[CompiledRule]] = {}
        self._raw_roles: dict[tuple[str, str], list[dict]] = {}
        self._raw_cluster_roles: dict[str, list[dict]] = {}
        # subject -> namespace ("" = cluster-wide) -> binding key -> (role kind, role name)
        self._by_subject: dict[tuple[str, str], dict[str, dict[str, tuple[str, str]]]] = {}
        self._binding_subjects: dict[str, tuple[str, list[tuple[str, str]]]] = {}  # key -> (ns, subjects)
        self._caches: dict[str, object] = {}

    # ---- following the store ----------------------------------------------

    def attach(self, api) -> None:
        """Load the current objects from the API server's caches, then follow every commit."""
        for resource, prefix in PREFIXES.items():
            cache = self._caches[resource] = api.caches[prefix]
            for cached in cache.list(prefix)[0]:
                self.apply(resource, cached.key, cached.obj)
        api.store.subscribe(self._on_commit)

    def _on_commit(self, events) -> None:
        for event in events:
            key = event.kv.key
            if not key.startswith("/registry/"):
                continue
            resource = key[len("/registry/"):].split("/", 1)[0]
            if resource not in PREFIXES:
                continue
            try:
                # The cache follows the store too and was subscribed first: it has decoded this change.
                cached = None if event.type == "DELETE" else self._caches[resource].get(key)
                self.apply(resource, key, cached.obj if cached is not None else None)
            except Exception:  # a bad object must not stop authorization for everyone
                log.exception("cannot index %s", key)

    def apply(self, resource: str, key: str, obj: dict | None) -> None:
        """Take one created, changed (obj) or deleted (None) RBAC object into the index."""
        parts = key[len(PREFIXES[resource]):].split("/")
        namespace, name = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
        if resource == "roles":
            self._set(self._roles, self._raw_roles, (namespace, name), obj)
        elif resource == "clusterroles":
            self._set(self._cluster_roles, self._raw_cluster_roles, name, obj)
        else:
            self._unbind(key)
            if obj is not None:
                self._bind(key, namespace, obj)

    @staticmethod
    def _set(compiled: dict, raw: dict, key, obj: dict | None) -> None:
        if obj is None:
            compiled.pop(key, None)
            raw.pop(key, None)
            return
        rules = [r for r in obj.get("rules") or [] if isinstance(r, dict)]
        raw[key] = rules
        compiled[key] = compile_rules(rules)

    def _bind(self, key: str, namespace: str, obj: dict) -> None:
        ref = obj.get("roleRef") or {}
        role = (ref.get("kind", ""), ref.get("name", ""))
        subjects = [k for k in (subject_keys(s, namespace) for s in obj.get("subjects") or [] if isinstance(s, dict))
                    if k is not None]
        for subject in subjects:
            self._by_subject.setdefault(subject, {}).setdefault(namespace, {})[key] = role
        self._binding_subjects[key] = (namespace, subjects)

    def _unbind(self, key: str) -> None:
        namespace, subjects = self._binding_subjects.pop(key, ("", []))
        for subject in subjects:
            by_namespace = self._by_subject.get(subject)
            if by_namespace is None:
                continue
            bindings = by_namespace.get(namespace)
            if bindings is not None:
                bindings.pop(key, None)
                if not bindings:
                    del by_namespace[namespace]
            if not by_namespace:
                del self._by_subject[subject]

    # ---- resolving a user's roles -----------------------------------------

    def _role_refs(self, user: UserInfo, namespace: str):
        """(role kind, role name, binding namespace) of every binding that applies to user in namespace."""
        by_subject = self._by_subject
        for subject in (("User", user.name), *(("Group", g) for g in user.groups)):
            by_namespace = by_subject.get(subject)
            if by_namespace is None:
                continue
            cluster = by_namespace.get("")
            if cluster:
                for kind, name in cluster.values():
                    yield kind, name, ""
            if namespace:
                local = by_namespace.get(namespace)
                if local:
                    for kind, name in local.values():
                        yield kind, name, namespace

    def _lookup(self, kind: str, name: str, namespace: str, compiled: bool = True):
        """The rules a roleRef points at, or None (with the upstream error text) when it is missing."""
        if kind == "ClusterRole":
            rules = (self._cluster_roles if compiled else self._raw_cluster_roles).get(name)
            missing = f'clusterrole.{GROUP} "{name}" not found'
        elif kind == "Role" and namespace:
            rules = (self._roles if compiled else self._raw_roles).get((namespace, name))
            missing = f'role.{GROUP} "{name}" not found'
        else:
            return None, f'unsupported role reference kind: "{kind}"'
        return rules, (missing if rules is None else "")

    def authorize(self, attrs: Attributes) -> Decision:
        namespace = attrs.namespace if attrs.resource_request else ""
        errors = []
        for kind, name, binding_namespace in self._role_refs(attrs.user, namespace):
            rules, error = self._lookup(kind, name, binding_namespace)
            if rules is None:
                errors.append(error)
                continue
            for rule in rules:
                if rule.allows(attrs):
                    return Decision(ALLOW)
        if not errors:
            return Decision(NO_OPINION)
        reason = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        return Decision(NO_OPINION, f"RBAC: {reason}")

    def rules_and_errors(self, user: UserInfo, namespace: str) -> tuple[list[dict], list[str]]:
        """Every PolicyRule user holds in namespace (cluster-wide ones included), as the API shows them."""
        rules, errors = [], []
        for kind, name, binding_namespace in self._role_refs(user, namespace):
            found, error = self._lookup(kind, name, binding_namespace, compiled=False)
            if found is None:
                errors.append(error)
            else:
                rules += found
        return rules, errors

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        rules, errors = self.rules_and_errors(user, namespace)
        out = Rules(incomplete=bool(errors))
        seen = set()
        for rule in rules:
            fingerprint = orjson.dumps(rule, option=orjson.OPT_SORT_KEYS)
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            if rule.get("nonResourceURLs"):
                out.non_resource_rules.append({"verbs": list(rule.get("verbs") or []),
                                               "nonResourceURLs": list(rule["nonResourceURLs"])})
            else:
                resource_rule = {"verbs": list(rule.get("verbs") or [])}
                for field in ("apiGroups", "resources", "resourceNames"):
                    if rule.get(field):
                        resource_rule[field] = list(rule[field])
                out.resource_rules.append(resource_rule)
        if errors:
            out.evaluation_error = "[" + ", ".join(errors) + "]"
        return out

    def stats(self) -> dict:
        return {"roles": len(self._roles), "clusterroles": len(self._cluster_roles),
                "subjects": len(self._by_subject), "bindings": len(self._binding_subjects)}
