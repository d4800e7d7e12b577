"""--authorization-mode: the authorizer chain kube-apiserver builds from it.

Modes are tried in the order given (default `Node,RBAC`). Before all of them,
members of system:masters are allowed everything (upstream's privileged-group
short-circuit), so an admin is never locked out by RBAC objects.

    AlwaysAllow  everything is allowed
    AlwaysDeny   nothing is ("Everything is forbidden.")
    RBAC         Roles, ClusterRoles and their bindings (rbac.py)
    Node         the Node authorizer (node.py) over the server's node graph
"""

from __future__ import annotations

from typing import Callable

from k8py.apiserver.authn import MASTERS_GROUP, UserInfo
from k8py.apiserver.authz import ALLOW, NO_OPINION, Attributes, AuthorizerChain, Decision, EVERYTHING, Rules
from k8py.apiserver.authz.rbac import RBACAuthorizer

MODES = ("AlwaysAllow", "AlwaysDeny", "Node", "RBAC")
DEFAULT_MODES = "Node,RBAC"

def _node_authorizer(api):
    from k8py.apiserver.authz.node import NodeAuthorizer
    return NodeAuthorizer(api.node_graph)


# The Node authorizer, built for an APIServer (tests may replace it; None: Node has no opinion).
NODE_AUTHORIZER: Callable | None = _node_authorizer


class PrivilegedGroups:
    """system:masters may do anything, whatever the modes say."""

    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(ALLOW) if MASTERS_GROUP in attrs.user.groups else Decision(NO_OPINION)

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        return EVERYTHING if MASTERS_GROUP in user.groups else Rules()


class AlwaysAllow:
    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(ALLOW)

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        return EVERYTHING


class AlwaysDeny:
    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(NO_OPINION, "Everything is forbidden.")

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        return Rules()


class NoOpinion:
    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(NO_OPINION)

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        return Rules()


def parse_modes(text: str) -> list[str]:
    """The modes of a --authorization-mode value; ValueError for an unknown or repeated one."""
    modes = [m.strip() for m in (text or "").split(",") if m.strip()]
    if not modes:
        raise ValueError("at least one authorization-mode must be passed")
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"authorization-mode {mode!r} is not a valid mode (valid: {', '.join(MODES)})")
    if len(set(modes)) != len(modes):
        raise ValueError(f"authorization-mode {text!r} has mode specified more than once")
    return modes


def build_chain(api, modes: list[str]) -> tuple[AuthorizerChain, RBACAuthorizer | None]:
    """The chain for these modes, and the RBAC authorizer in it (escalation checks resolve rules with it)."""
    chain = AuthorizerChain(PrivilegedGroups())
    rbac = None
    for mode in modes:
        if mode == "AlwaysAllow":
            chain.add(AlwaysAllow())
        elif mode == "AlwaysDeny":
            chain.add(AlwaysDeny())
        elif mode == "Node":
            chain.add(NODE_AUTHORIZER(api) if NODE_AUTHORIZER is not None else NoOpinion())
        elif mode == "RBAC":
            rbac = RBACAuthorizer()
            rbac.attach(api)
            chain.add(rbac)
    return chain, rbac
