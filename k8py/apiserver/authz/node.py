"""The Node authorizer: what a kubelet (`system:node:<name>` in `system:nodes`) may do.

As upstream's (with v1.32's default AuthorizeNodeWithSelectors), a node may
read the secrets, configmaps, PVCs, PVs and resource claims, and create
tokens for the service accounts, that pods bound to it use (authz/node_graph.py);
read its own Node and its own pods (a list or watch only with a
`spec.nodeName=<itself>` field selector); its own Lease in kube-node-lease;
and whatever NODE_RULES grant for the rest. Writes to its Node, its pods and
their status are allowed here and narrowed by NodeRestriction admission.

Everyone else gets NO_OPINION, and so do the node's requests this authorizer
does not allow (with upstream's reason, which the 403 message carries).
"""

from __future__ import annotations

import logging

from k8py.apimachinery import errors
from k8py.apimachinery.selectors import parse_field_selector
from k8py.apiserver.authn import UserInfo
from k8py.apiserver.authz import ALLOW, NO_OPINION, Attributes, Decision, Rules, rule_allows
from k8py.apiserver.authz.node_graph import (CONFIGMAP, POD, PV, PVC, RESOURCECLAIM, SECRET, SERVICEACCOUNT,
                                             NodeGraph)
from k8py.apiserver.authz.node_rules import NODE_RULES

log = logging.getLogger("k8py.apiserver.authz.node")

NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
NODE_LEASE_NAMESPACE = "kube-node-lease"

# Singular names as upstream's graph vertex types print them.
_VERTEX_NAMES = {SECRET: "secret", CONFIGMAP: "configmap", PVC: "pvc", PV: "pv", SERVICEACCOUNT: "serviceAccount",
                 RESOURCECLAIM: "resourceclaim", POD: "pod"}


def node_identity(user: UserInfo) -> tuple[str, bool]:
    """(node name, is a node) as upstream's NodeIdentifier: a user in system:nodes
    named system:node:<name>."""
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
        return "", False
    return user.name[len(NODE_USER_PREFIX):], True


class NodeAuthorizer:
    def __init__(self, graph: NodeGraph, rules: list[dict] = NODE_RULES):
        self.graph = graph
        self.rules = rules

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        if node_identity(user)[1]:
            return Rules(incomplete=True, evaluation_error="node authorizer does not support user rule resolution")
        return Rules()

    def authorize(self, attrs: Attributes) -> Decision:
        node, is_node = node_identity(attrs.user)
        if not is_node:
            return Decision(NO_OPINION)
        if not node:
            return Decision(NO_OPINION, f'unknown node for user "{attrs.user.name}"')
        if attrs.resource_request:
            decide = _SUBDIVIDED.get((attrs.api_group, attrs.resource))
            if decide is not None:
                return decide(self, node, attrs)
        return self._static(attrs)

    def _static(self, attrs: Attributes, reason: str = "") -> Decision:
        if any(rule_allows(rule, attrs) for rule in self.rules):
            return Decision(ALLOW)
        return Decision(NO_OPINION, reason)

    # ---- per resource --------------------------------------------------------

    def _read_namespaced(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("get", "list", "watch"):
            return Decision(NO_OPINION, "can only read resources of this type")
        if attrs.subresource:
            return Decision(NO_OPINION, "cannot read subresource")
        if not attrs.namespace:
            return Decision(NO_OPINION, "can only read namespaced object of this type")
        return self._related(node, attrs)

    def _get(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb != "get":
            return Decision(NO_OPINION, "can only get individual resources of this type")
        if attrs.subresource:
            return Decision(NO_OPINION, "cannot get subresource")
        return self._related(node, attrs)

    def _pvc(self, node: str, attrs: Attributes) -> Decision:
        if attrs.subresource == "status":
            if attrs.verb not in ("update", "patch"):
                return Decision(NO_OPINION, "can only get/update/patch this type")
            return self._related(node, attrs)
        return self._get(node, attrs)

    def _token(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb != "create" or not attrs.name:
            return Decision(NO_OPINION, "can only create tokens for individual service accounts")
        if attrs.subresource != "token":
            return Decision(NO_OPINION, "can only create token subresource of serviceaccount")
        return self._related(node, attrs)

    def _lease(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return Decision(NO_OPINION, "can only get, create, update, patch, or delete a node lease")
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return Decision(NO_OPINION, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
        # A create names no object: NodeRestriction checks the name.
        if attrs.verb != "create" and attrs.name != node:
            return Decision(NO_OPINION, "can only access node lease with the same name as the requesting node")
        return Decision(ALLOW)

    def _node(self, node: str, attrs: Attributes) -> Decision:
        if not attrs.subresource:
            if attrs.verb in ("create", "update", "patch"):
                return Decision(ALLOW)      # NodeRestriction: its own Node only
            if attrs.verb in ("get", "list", "watch"):
                # By name, not through the graph: a kubelet reads its Node before creating it.
                if attrs.name == node:
                    return Decision(ALLOW)
                if not attrs.name:
                    return Decision(NO_OPINION, f"node '{node}' cannot read all nodes, only its own Node object")
                return Decision(NO_OPINION, f"node '{node}' cannot read '{attrs.name}', only its own Node object")
        elif attrs.subresource == "status" and attrs.verb in ("update", "patch"):
            return Decision(ALLOW)
        return Decision(NO_OPINION)

    def _pod(self, node: str, attrs: Attributes) -> Decision:
        sub, verb = attrs.subresource, attrs.verb
        if not sub:
            if verb == "get":
                return self._get(node, attrs)
            if verb in ("list", "watch"):
                if _selects_node(attrs.field_selector, node):
                    return Decision(ALLOW)
                if attrs.name:
                    return self._related(node, attrs)
                return Decision(NO_OPINION, "can only list/watch pods with spec.nodeName field selector")
            if verb in ("create", "delete"):
                return Decision(ALLOW)      # mirror pods; NodeRestriction: bound to itself
        elif (sub == "status" and verb in ("update", "patch")) or (sub == "eviction" and verb == "create"):
            return Decision(ALLOW)
        return Decision(NO_OPINION)

    def _related(self, node: str, attrs: Attributes) -> Decision:
        if not attrs.name:
            return Decision(NO_OPINION, "No Object name found")
        if not self.graph.related(node, attrs.resource, attrs.namespace, attrs.name):
            log.debug("NODE DENY: node '%s' cannot get %s %s/%s, no relationship to this object was found "
                      "in the node authorizer graph", node, _VERTEX_NAMES.get(attrs.resource, attrs.resource),
                      attrs.namespace, attrs.name)
            return Decision(NO_OPINION, f"no relationship found between node '{node}' and this object")
        return Decision(ALLOW)


def _selects_node(field_selector: str, node: str) -> bool:
    try:
        selector = parse_field_selector(field_selector)
    except errors.StatusError:
        return False
    return any(r.field == "spec.nodeName" and not r.negate and r.value == node for r in selector.requirements)


_SUBDIVIDED = {
    ("", SECRET): NodeAuthorizer._read_namespaced,
    ("", CONFIGMAP): NodeAuthorizer._read_namespaced,
    ("", PVC): NodeAuthorizer._pvc,
    ("", PV): NodeAuthorizer._get,
    ("resource.k8s.io", RESOURCECLAIM): NodeAuthorizer._get,
    ("", SERVICEACCOUNT): NodeAuthorizer._token,
    ("coordination.k8s.io", "leases"): NodeAuthorizer._lease,
    ("", "nodes"): NodeAuthorizer._node,
    ("", POD): NodeAuthorizer._pod,
}
