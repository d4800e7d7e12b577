"""PolicyRule matching and coverage, as upstream's rbac validation package.

`CompiledRule` answers "does this rule allow these attributes?" with set
lookups; `covers(owner, servant)` answers "does holding `owner` include every
permission of `servant`?", which is what privilege-escalation prevention and
bootstrap-policy reconciliation ask. `compact_string` words a rule as
upstream's PolicyRule.CompactString does in escalation errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8py.apiserver.authz import Attributes

STAR = "*"


def _set(values) -> frozenset | None:
    """The values as a set, or None when "*" makes it everything."""
    values = [v for v in values or [] if isinstance(v, str)]
    return None if STAR in values else frozenset(values)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    verbs: frozenset | None
    groups: frozenset | None
    resources: frozenset  # "*" kept as a member: it is matched with subresource forms
    names: frozenset
    urls: tuple[str, ...]

    def allows(self, attrs: Attributes) -> bool:
        if self.verbs is not None and attrs.verb not in self.verbs:
            return False
        if not attrs.resource_request:
            path = attrs.path
            return any(url == STAR or url == path or (url[-1:] == STAR and path.startswith(url[:-1]))
                       for url in self.urls)
        if self.groups is not None and attrs.api_group not in self.groups:
            return False
        resources = self.resources
        if attrs.subresource:
            if not (STAR in resources or f"{attrs.resource}/{attrs.subresource}" in resources
                    or f"*/{attrs.subresource}" in resources):
                return False
        elif STAR not in resources and attrs.resource not in resources:
            return False
        return not self.names or attrs.name in self.names


def compile_rule(rule: dict) -> CompiledRule:
    return CompiledRule(verbs=_set(rule.get("verbs")), groups=_set(rule.get("apiGroups")),
                        resources=frozenset(r for r in rule.get("resources") or [] if isinstance(r, str)),
                        names=frozenset(n for n in rule.get("resourceNames") or [] if isinstance(n, str)),
                        urls=tuple(u for u in rule.get("nonResourceURLs") or [] if isinstance(u, str) and u))


def compile_rules(rules: list[dict]) -> list[CompiledRule]:
    return [compile_rule(r) for r in rules]


# ---- coverage -------------------------------------------------------------

def _atoms(rule: dict) -> list[dict]:
    """A rule broken into rules of one verb and one group/resource/name (or one URL)."""
    atoms = []
    verbs = rule.get("verbs") or []
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            for verb in verbs:
                names = rule.get("resourceNames") or []
                if names:
                    atoms += [{"apiGroups": [group], "resources": [resource], "resourceNames": [n],
                               "verbs": [verb]} for n in names]
                else:
                    atoms.append({"apiGroups": [group], "resources": [resource], "verbs": [verb]})
    for url in rule.get("nonResourceURLs") or []:
        atoms += [{"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs]
    return atoms


def _has_all(owned, wanted) -> bool:
    owned = set(owned or [])
    return STAR in owned or set(wanted or []) <= owned


def _resources_cover(owned, wanted) -> bool:
    owned = set(owned or [])
    if STAR in owned:
        return True
    for resource in wanted or []:
        if resource in owned:
            continue
        # "*/scale" covers "deployments/scale"
        _, slash, sub = resource.partition("/")
        if not slash or f"*/{sub}" not in owned:
            return False
    return True


def _url_covers(owned: str, wanted: str) -> bool:
    if owned == STAR or owned == wanted:
        return True
    return owned.endswith(STAR) and wanted.startswith(owned.rstrip(STAR))


def _rule_covers(owner: dict, atom: dict) -> bool:
    if not _has_all(owner.get("verbs"), atom.get("verbs")):
        return False
    if atom.get("nonResourceURLs"):
        return all(any(_url_covers(o, w) for o in owner.get("nonResourceURLs") or [])
                   for w in atom["nonResourceURLs"])
    if owner.get("nonResourceURLs") and not owner.get("resources"):
        return False
    if not _has_all(owner.get("apiGroups"), atom.get("apiGroups")):
        return False
    if not _resources_cover(owner.get("resources"), atom.get("resources")):
        return False
    owner_names = owner.get("resourceNames") or []
    return not owner_names or (bool(atom.get("resourceNames")) and set(atom["resourceNames"]) <= set(owner_names))


def covers(owner_rules: list[dict], servant_rules: list[dict]) -> tuple[bool, list[dict]]:
    """Whether owner_rules grant all of servant_rules, and the atomic rules they lack."""
    missing = []
    for rule in servant_rules:
        for atom in _atoms(rule):
            if not any(_rule_covers(owner, atom) for owner in owner_rules):
                missing.append(atom)
    return not missing, missing


# ---- wording ----------------------------------------------------------------

def compact_rules(rules: list[dict]) -> list[dict]:
    """Atomic resource rules of the same group, resource and names merged into one with all their verbs."""
    merged: dict[tuple, dict] = {}
    out = []
    for rule in rules:
        if rule.get("nonResourceURLs") or len(rule.get("apiGroups") or []) != 1 or \
                len(rule.get("resources") or []) != 1:
            out.append(rule)
            continue
        key = (rule["apiGroups"][0], rule["resources"][0], tuple(rule.get("resourceNames") or ()))
        if key in merged:
            merged[key]["verbs"] += [v for v in rule["verbs"] if v not in merged[key]["verbs"]]
        else:
            merged[key] = {**rule, "verbs": list(rule["verbs"])}
            out.append(merged[key])
    return out


def _go_quoted(values) -> str:
    return "[" + " ".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"


def compact_string(rule: dict) -> str:
    """As upstream's PolicyRule.CompactString: {APIGroups:["apps"], Resources:["deployments"], Verbs:["create"]}."""
    parts = []
    for field, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("resourceNames", "ResourceNames"),
                         ("nonResourceURLs", "NonResourceURLs"), ("verbs", "Verbs")):
        if rule.get(field):
            parts.append(f"{label}:{_go_quoted(rule[field])}")
    return "{" + ", ".join(parts) + "}"
