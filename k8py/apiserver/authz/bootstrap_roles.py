"""The rules the node-join flow needs before RBAC objects grant them.

Upstream (kubeadm, k3s) grants these through ClusterRoleBindings to roles of
the bootstrap policy; until the RBAC authorizer and its bootstrap policy are
in the chain, this authorizer grants exactly them and nothing else:

- group system:bootstrappers (a join token): the ClusterRole
  system:node-bootstrapper (create/get/list/watch CSRs), plus
  system:certificates.k8s.io:certificatesigningrequests:nodeclient (create
  certificatesigningrequests/nodeclient: the csrapproving controller's check
  for a first node client certificate) and k8py's
  certificatesigningrequests/kubeproxyclient (the same check for the agent's
  kube-proxy certificate, CN system:kube-proxy);
- group system:nodes: system:certificates.k8s.io:certificatesigningrequests:selfnodeclient
  (renewing its own node client certificate);
- user system:kube-proxy: the ClusterRole system:node-proxier;
- groups system:bootstrappers and system:nodes, in kube-public only: get the
  ConfigMap kube-root-ca.crt (the cluster CA a joining agent trusts from then
  on; kubeadm opens kube-public/cluster-info the same way).

With RBAC merged, each of these becomes the ClusterRoleBinding named in
BINDINGS (k3s and kubeadm create the first three; upstream's bootstrap policy
has the last) and this authorizer can leave the chain.
"""

from __future__ import annotations

from k8py.apiserver.authn import UserInfo
from k8py.apiserver.authz import ALLOW, NO_OPINION, Attributes, Decision, Rules, rule_allows

CSR_GROUP = "certificates.k8s.io"

NODE_BOOTSTRAPPER = [{"verbs": ["create", "get", "list", "watch"], "apiGroups": [CSR_GROUP],
                      "resources": ["certificatesigningrequests"]}]
NODE_CLIENT = [{"verbs": ["create"], "apiGroups": [CSR_GROUP], "resources": ["certificatesigningrequests/nodeclient"]}]
SELF_NODE_CLIENT = [{"verbs": ["create"], "apiGroups": [CSR_GROUP],
                     "resources": ["certificatesigningrequests/selfnodeclient"]}]
KUBE_PROXY_CLIENT = [{"verbs": ["create"], "apiGroups": [CSR_GROUP],
                      "resources": ["certificatesigningrequests/kubeproxyclient"]}]
# v1.32's system:node-proxier.
NODE_PROXIER = [
    {"verbs": ["list", "watch"], "apiGroups": [""], "resources": ["services", "endpoints"]},
    {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["nodes"]},
    {"verbs": ["create", "patch", "update"], "apiGroups": ["", "events.k8s.io"], "resources": ["events"]},
    {"verbs": ["list", "watch"], "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"]},
]

CLUSTER_CA_READER = [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
                      "resourceNames": ["kube-root-ca.crt"]}]

# (binding name, subject kind, subject name, role name, rules, namespace: "" for a ClusterRoleBinding)
BINDINGS = [
    ("k8py-node-bootstrapper", "Group", "system:bootstrappers", "system:node-bootstrapper", NODE_BOOTSTRAPPER, ""),
    ("k8py-node-autoapprove-bootstrap", "Group", "system:bootstrappers",
     "system:certificates.k8s.io:certificatesigningrequests:nodeclient", NODE_CLIENT, ""),
    ("k8py-kube-proxy-autoapprove-bootstrap", "Group", "system:bootstrappers",
     "k8py:certificatesigningrequests:kubeproxyclient", KUBE_PROXY_CLIENT, ""),
    ("k8py-node-autoapprove-certificate-rotation", "Group", "system:nodes",
     "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", SELF_NODE_CLIENT, ""),
    ("system:node-proxier", "User", "system:kube-proxy", "system:node-proxier", NODE_PROXIER, ""),
    ("k8py:cluster-ca-reader", "Group", "system:bootstrappers", "k8py:cluster-ca-reader", CLUSTER_CA_READER,
     "kube-public"),
    ("k8py:cluster-ca-reader:nodes", "Group", "system:nodes", "k8py:cluster-ca-reader", CLUSTER_CA_READER,
     "kube-public"),
]


def _rules_of(user: UserInfo, namespace: str) -> list[dict]:
    rules = []
    for _, kind, subject, _, granted, scope in BINDINGS:
        if scope and scope != namespace:
            continue
        if (kind == "Group" and subject in user.groups) or (kind == "User" and subject == user.name):
            rules += granted
    return rules


class BootstrapRoles:
    def authorize(self, attrs: Attributes) -> Decision:
        if attrs.resource_request and any(rule_allows(rule, attrs)
                                          for rule in _rules_of(attrs.user, attrs.namespace)):
            return Decision(ALLOW)
        return Decision(NO_OPINION)

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        return Rules(resource_rules=list(_rules_of(user, namespace)))
