"""What kubelets may do, as RBAC PolicyRules: upstream v1.32's NodeRules().

These are the rules of the `system:node` ClusterRole and the fallback of the
Node authorizer for every request it does not subdivide itself (secrets,
configmaps, PVCs, PVs, resource claims, service-account tokens, leases and
its own Node are decided by the authorizer's graph; see authz/node.py). The
Node authorizer and NodeRestriction admission narrow the writes granted here
to the node's own objects.

NODE_RULES is the list with v1.32's default feature gates. The rules behind
gates that are off by default in v1.32 (DynamicResourceAllocation,
ClusterTrustBundle) are kept apart, so that RBAC's bootstrap policy can add
them when such a gate is turned on.
"""

from __future__ import annotations

READ = ["get", "list", "watch"]


def _rule(verbs: list[str], group: str, *resources: str) -> dict:
    return {"verbs": list(verbs), "apiGroups": [group], "resources": list(resources)}


NODE_RULES: list[dict] = [
    # Checking API access (the kubelet's webhook authn/authz): non-mutating creates.
    _rule(["create"], "authentication.k8s.io", "tokenreviews"),
    _rule(["create"], "authorization.k8s.io", "subjectaccessreviews", "localsubjectaccessreviews"),
    # Service environment variables of pods.
    _rule(READ, "", "services"),
    # Registering the Node and reporting its status (NodeRestriction: its own only).
    _rule(["create", "get", "list", "watch"], "", "nodes"),
    _rule(["update", "patch"], "", "nodes/status"),
    _rule(["update", "patch"], "", "nodes"),
    _rule(["create", "update", "patch"], "", "events"),
    _rule(READ, "", "pods"),
    # Mirror pods (NodeRestriction: bound to itself).
    _rule(["create", "delete"], "", "pods"),
    _rule(["update", "patch"], "", "pods/status"),
    _rule(["create"], "", "pods/eviction"),
    # Secret and configmap volumes, env and image pull secrets (Node authorizer: used by its pods).
    _rule(["get", "list", "watch"], "", "secrets", "configmaps"),
    _rule(["get"], "", "persistentvolumeclaims", "persistentvolumes"),
    _rule(["get"], "", "endpoints"),
    # Its own client certificate, requested and renewed through a CSR.
    _rule(["create", "get", "list", "watch"], "certificates.k8s.io", "certificatesigningrequests"),
    _rule(["get", "create", "update", "patch", "delete"], "coordination.k8s.io", "leases"),
    _rule(["get"], "storage.k8s.io", "volumeattachments"),
    # Projected service-account tokens (Node authorizer and NodeRestriction: for its pods).
    _rule(["create"], "", "serviceaccounts/token"),
    _rule(["get", "update", "patch"], "", "persistentvolumeclaims/status"),
    _rule(["get", "watch", "list"], "storage.k8s.io", "csidrivers"),
    _rule(["get", "create", "update", "patch", "delete"], "storage.k8s.io", "csinodes"),
    _rule(READ, "node.k8s.io", "runtimeclasses"),
]

# v1.32 feature-gated additions (both gates are off by default in v1.32).
DYNAMIC_RESOURCE_ALLOCATION_NODE_RULES: list[dict] = [
    _rule(["get"], "resource.k8s.io", "resourceclaims"),
    _rule(["deletecollection"], "resource.k8s.io", "resourceslices"),
]
CLUSTER_TRUST_BUNDLE_NODE_RULES: list[dict] = [
    _rule(READ, "certificates.k8s.io", "clustertrustbundles"),
]
