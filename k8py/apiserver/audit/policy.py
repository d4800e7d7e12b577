"""The audit Policy (audit.k8s.io/v1): which requests are logged, and how much.

Rules are tried in order and the first that matches decides the level
(None, Metadata, Request, RequestResponse); a request no rule matches is not
logged. A rule matches when every criterion it sets matches: `users`,
`userGroups` (any group), `verbs`, and either resource criteria
(`namespaces`, `resources` with group/resources/resourceNames, where
`pods/log`, `*`, `*/status` and `pods/*` name subresources) or
`nonResourceURLs` (exact, or a prefix ending in `*`). Stages listed in the
policy's and the rule's `omitStages` are not written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
API_VERSIONS = ("audit.k8s.io/v1",)


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def matches(self, group: str, resource: str, subresource: str, name: str) -> bool:
        if self.group != group:
            return False
        if not self.resources:
            return True
        if self.resource_names and name not in self.resource_names:
            return False
        combined = f"{resource}/{subresource}" if subresource else resource
        for spec in self.resources:
            if spec == "*" or spec == combined:
                return True
            if subresource and spec.startswith("*/") and spec[2:] == subresource:
                return True
            if spec.endswith("/*") and spec[:-2] == resource:
                return True
        return False


@dataclass(frozen=True)
class Rule:
    level: str
    users: frozenset = frozenset()
    user_groups: frozenset = frozenset()
    verbs: frozenset = frozenset()
    resources: tuple[GroupResources, ...] = ()
    namespaces: frozenset | None = None
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset = frozenset()
    omit_managed_fields: bool | None = None

    def matches(self, request: "RequestAttributes") -> bool:
        user = request.user
        if self.users and (user is None or user.name not in self.users):
            return False
        if self.user_groups and (user is None or self.user_groups.isdisjoint(user.groups)):
            return False
        if self.verbs and request.verb not in self.verbs:
            return False
        if self.namespaces is not None or self.resources:
            if not request.is_resource:
                return False
            if self.namespaces is not None and request.namespace not in self.namespaces:
                return False
            return not self.resources or any(
                gr.matches(request.group, request.resource, request.subresource, request.name)
                for gr in self.resources)
        if self.non_resource_urls:
            return not request.is_resource and any(_path_matches(request.path, spec)
                                                   for spec in self.non_resource_urls)
        return True


def _path_matches(path: str, spec: str) -> bool:
    return spec == "*" or spec == path or (spec.endswith("*") and path.startswith(spec.rstrip("*")))


@dataclass(frozen=True)
class RequestAttributes:
    """What the policy looks at (the authenticated user, not an impersonated one)."""
    user: object  # UserInfo | None (a request that failed authentication)
    verb: str
    is_resource: bool
    path: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True)
class AuditConfig:
    """The policy's answer for one request."""
    level: str
    omit_stages: frozenset = frozenset()
    omit_managed_fields: bool = False


NOT_LOGGED = AuditConfig("None")


class Policy:
    def __init__(self, rules: list[Rule], omit_stages: frozenset = frozenset(),
                 omit_managed_fields: bool = False):
        self.rules = rules
        self.omit_stages = omit_stages
        self.omit_managed_fields = omit_managed_fields

    def evaluate(self, request: RequestAttributes) -> AuditConfig:
        for rule in self.rules:
            if rule.matches(request):
                if rule.level == "None":
                    return NOT_LOGGED
                managed = self.omit_managed_fields if rule.omit_managed_fields is None else rule.omit_managed_fields
                return AuditConfig(rule.level, self.omit_stages | rule.omit_stages, managed)
        return NOT_LOGGED


def _strings(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: Invalid value: must be a list of strings")
    return value


def _stages(value, where: str) -> frozenset:
    stages = _strings(value, where)
    for i, stage in enumerate(stages):
        if stage not in STAGES:
            raise PolicyError(f'{where}[{i}]: Unsupported value: "{stage}": supported values: '
                              + ", ".join(f'"{s}"' for s in STAGES))
    return frozenset(stages)


def _rule(raw: dict, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: Invalid value: a rule must be an object")
    level = raw.get("level")
    if level not in LEVELS:
        raise PolicyError(f'{where}.level: ' + (f'Unsupported value: "{level}": supported values: '
                                               + ", ".join(f'"{v}"' for v in LEVELS) if level else
                                               "Required value"))
    urls = _strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs")
    namespaces = raw.get("namespaces")
    resources = raw.get("resources") or []
    if urls and (resources or namespaces):
        raise PolicyError(f"{where}.nonResourceURLs: Invalid value: rules cannot apply to both regular "
                          "resources and non-resource URLs")
    for i, url in enumerate(urls):
        if "*" in url[:-1] or not (url == "*" or url.startswith("/")):
            raise PolicyError(f'{where}.nonResourceURLs[{i}]: Invalid value: "{url}": non-resource URL rules '
                              "must begin with a '/' character and may only have a '*' at the end")
    groups = []
    for i, gr in enumerate(resources):
        at = f"{where}.resources[{i}]"
        if not isinstance(gr, dict):
            raise PolicyError(f"{at}: Invalid value: must be an object")
        names = _strings(gr.get("resources"), f"{at}.resources")
        resource_names = _strings(gr.get("resourceNames"), f"{at}.resourceNames")
        for j, name in enumerate(names):
            if name in ("", "/") or name.count("/") > 1 or (name.startswith("*") and resource_names
                                                            and name != "*"):
                raise PolicyError(f'{at}.resources[{j}]: Invalid value: "{name}"')
        groups.append(GroupResources(gr.get("group") or "", tuple(names), tuple(resource_names)))
    managed = raw.get("omitManagedFields")
    return Rule(level=level, users=frozenset(_strings(raw.get("users"), f"{where}.users")),
                user_groups=frozenset(_strings(raw.get("userGroups"), f"{where}.userGroups")),
                verbs=frozenset(_strings(raw.get("verbs"), f"{where}.verbs")), resources=tuple(groups),
                namespaces=frozenset(_strings(namespaces, f"{where}.namespaces")) if namespaces else None,
                non_resource_urls=tuple(urls), omit_stages=_stages(raw.get("omitStages"), f"{where}.omitStages"),
                omit_managed_fields=None if managed is None else bool(managed))


def parse(text: str) -> Policy:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PolicyError(f"failed decoding audit policy: {err}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Policy" or doc.get("apiVersion") not in API_VERSIONS:
        raise PolicyError("failed decoding audit policy: expected kind \"Policy\" with apiVersion "
                          "\"audit.k8s.io/v1\"")
    rules = doc.get("rules") or []
    if not isinstance(rules, list):
        raise PolicyError("rules: Invalid value: must be a list")
    if not rules:
        raise PolicyError("loaded illegal policy with 0 rules")
    return Policy([_rule(r, f"rules[{i}]") for i, r in enumerate(rules)],
                  _stages(doc.get("omitStages"), "omitStages"), bool(doc.get("omitManagedFields")))


def load(path: Path) -> Policy:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise PolicyError(f"failed to read audit policy file {str(path)!r}: {err.strerror}") from None
    return parse(text)
