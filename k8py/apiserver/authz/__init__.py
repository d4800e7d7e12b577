"""Authorization: may this user do this verb on this resource?

Every request is described by Attributes (as upstream's authorizer.Attributes)
and put to an Authorizer. The policy here is the one a cluster has before any
RBAC objects exist: members of system:masters may do everything, and every
authenticated user may read discovery, version and health and ask about
themselves (the system:discovery, system:basic-user and
system:public-info-viewer roles). The chain a server runs is built from
--authorization-mode by modes.py; RBAC (rbac.py) implements the same
interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from k8py.apiserver.authn import ALL_AUTHENTICATED, MASTERS_GROUP, UserInfo

ALLOW, DENY, NO_OPINION = "allow", "deny", "no-opinion"


@dataclass(frozen=True)
class Attributes:
    user: UserInfo
    verb: str
    resource_request: bool
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    field_selector: str = ""   # of a list or watch (the Node authorizer scopes pod lists by it)


@dataclass
class Decision:
    verdict: str
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.verdict == ALLOW


@dataclass
class Rules:
    """What a user may do in a namespace, as SelfSubjectRulesReview reports it."""
    resource_rules: list[dict] = field(default_factory=list)
    non_resource_rules: list[dict] = field(default_factory=list)
    incomplete: bool = False
    evaluation_error: str = ""


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> Decision: ...

    def rules_for(self, user: UserInfo, namespace: str) -> Rules: ...


# What every authenticated user may do, as upstream's bootstrap cluster roles grant it.
BASIC_RESOURCE_RULES = [
    {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
     "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
]
BASIC_NON_RESOURCE_RULES = [
    {"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                           "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]},
]
EVERYTHING = Rules(resource_rules=[{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                   non_resource_rules=[{"verbs": ["*"], "nonResourceURLs": ["*"]}])


def rule_allows(rule: dict, attrs: Attributes) -> bool:
    """Does one PolicyRule (RBAC's shape) cover these attributes?"""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        return any(url == "*" or url == attrs.path or (url.endswith("*") and attrs.path.startswith(url[:-1]))
                   for url in rule.get("nonResourceURLs") or [])
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.api_group not in groups:
        return False
    wanted = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resources = rule.get("resources") or []
    # As RBAC: "*" is every resource, "*/scale" the scale subresource of any.
    if not any(r in ("*", wanted) or (attrs.subresource and r == f"*/{attrs.subresource}") for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


class BootstrapPolicy:
    """The policy of a cluster without RBAC objects: masters do anything, others only the basics."""

    def authorize(self, attrs: Attributes) -> Decision:
        if MASTERS_GROUP in attrs.user.groups:
            return Decision(ALLOW)
        if ALL_AUTHENTICATED in attrs.user.groups:
            rules = BASIC_RESOURCE_RULES if attrs.resource_request else BASIC_NON_RESOURCE_RULES
            if any(rule_allows(rule, attrs) for rule in rules):
                return Decision(ALLOW)
        return Decision(NO_OPINION)

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        if MASTERS_GROUP in user.groups:
            return EVERYTHING
        return Rules(resource_rules=list(BASIC_RESOURCE_RULES), non_resource_rules=list(BASIC_NON_RESOURCE_RULES))


class AuthorizerChain:
    """Ask each authorizer in turn; the first that allows or denies decides."""

    def __init__(self, *authorizers: Authorizer):
        self.authorizers = list(authorizers)

    def add(self, authorizer: Authorizer) -> None:
        self.authorizers.append(authorizer)

    def authorize(self, attrs: Attributes) -> Decision:
        reasons = []
        for authorizer in self.authorizers:
            decision = authorizer.authorize(attrs)
            if decision.verdict != NO_OPINION:
                return decision
            if decision.reason:     # as upstream's union: every authorizer's reason, one per line
                reasons.append(decision.reason)
        return Decision(NO_OPINION, "\n".join(reasons))

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        merged = Rules()
        for authorizer in self.authorizers:
            rules = authorizer.rules_for(user, namespace)
            merged.resource_rules += rules.resource_rules
            merged.non_resource_rules += rules.non_resource_rules
            merged.incomplete = merged.incomplete or rules.incomplete
            merged.evaluation_error = merged.evaluation_error or rules.evaluation_error
        return merged
