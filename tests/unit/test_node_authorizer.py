"""The Node authorizer and its graph: a kubelet reads only what its pods use."""

from k8py.apiserver.authn import UserInfo
from k8py.apiserver.authz import ALLOW, NO_OPINION, Attributes, AuthorizerChain, BootstrapPolicy
from k8py.apiserver.authz.node import NodeAuthorizer, node_identity
from k8py.apiserver.authz.node_graph import NodeGraph, pod_references

NODE_A = UserInfo("system:node:a", groups=("system:nodes", "system:authenticated"))


def pod(name, node, ns="default", **spec):
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node, **spec}}


def secret_pod(name="web", node="a"):
    return pod(name, node, serviceAccountName="runner", imagePullSecrets=[{"name": "pull"}],
               containers=[{"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "env-s"}}},
                                                 {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "env-cm"}}}],
                            "envFrom": [{"configMapRef": {"name": "all-cm"}}]}],
               volumes=[{"name": "v1", "secret": {"secretName": "vol-s"}},
                        {"name": "v2", "persistentVolumeClaim": {"claimName": "data"}},
                        {"name": "v3", "projected": {"sources": [{"configMap": {"name": "proj-cm"}}]}},
                        {"name": "v4", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi-s"}}}])


def ask(authz, verb, resource, name="", ns="default", group="", sub="", fs="", user=NODE_A):
    return authz.authorize(Attributes(user=user, verb=verb, resource_request=True, namespace=ns, api_group=group,
                                      resource=resource, subresource=sub, name=name, field_selector=fs))


def test_pod_references_cover_env_volumes_and_pull_secrets():
    refs = pod_references(secret_pod())
    assert {("secrets", "default", n) for n in ("pull", "env-s", "vol-s", "csi-s")} <= refs
    assert {("configmaps", "default", n) for n in ("env-cm", "all-cm", "proj-cm")} <= refs
    assert ("persistentvolumeclaims", "default", "data") in refs
    assert ("serviceaccounts", "default", "runner") in refs


def test_graph_follows_binding_update_and_deletion():
    graph = NodeGraph()
    unbound = secret_pod(node="")
    graph.on_change("pods", None, unbound)
    assert not graph.related("a", "secrets", "default", "vol-s")       # not bound yet
    bound = secret_pod()
    graph.on_change("pods", unbound, bound)
    assert graph.related("a", "secrets", "default", "vol-s")
    assert not graph.related("b", "secrets", "default", "vol-s")
    # Two pods use the same secret: it stays readable until both are gone.
    graph.on_change("pods", None, secret_pod("web2"))
    graph.on_change("pods", bound, None)
    assert graph.related("a", "secrets", "default", "vol-s")
    graph.on_change("pods", secret_pod("web2"), None)
    assert not graph.related("a", "secrets", "default", "vol-s")


def test_pv_is_reachable_through_its_claim():
    graph = NodeGraph()
    graph.on_change("pods", None, secret_pod())
    pv = {"metadata": {"name": "pv1"}, "spec": {"claimRef": {"namespace": "default", "name": "data"}}}
    graph.on_change("persistentvolumes", None, pv)
    assert graph.related("a", "persistentvolumes", "", "pv1")
    assert not graph.related("b", "persistentvolumes", "", "pv1")
    graph.on_change("persistentvolumes", pv, None)
    assert not graph.related("a", "persistentvolumes", "", "pv1")


def test_node_reads_only_what_its_pods_use():
    graph = NodeGraph()
    graph.on_change("pods", None, secret_pod())
    graph.on_change("pods", None, pod("other", "b", volumes=[{"name": "s", "secret": {"secretName": "b-secret"}}]))
    authz = NodeAuthorizer(graph)
    assert ask(authz, "get", "secrets", "vol-s").verdict == ALLOW
    assert ask(authz, "get", "configmaps", "proj-cm").verdict == ALLOW
    assert ask(authz, "get", "persistentvolumeclaims", "data").verdict == ALLOW
    assert ask(authz, "create", "serviceaccounts", "runner", sub="token").verdict == ALLOW
    denied = ask(authz, "get", "secrets", "b-secret")
    assert denied.verdict == NO_OPINION
    assert denied.reason == "no relationship found between node 'a' and this object"
    assert ask(authz, "list", "secrets").reason == "No Object name found"
    assert ask(authz, "update", "secrets", "vol-s").reason == "can only read resources of this type"
    assert ask(authz, "get", "serviceaccounts", "runner").reason == \
        "can only create tokens for individual service accounts"


def test_node_objects_leases_and_pods():
    graph = NodeGraph()
    graph.on_change("pods", None, secret_pod())
    graph.on_change("pods", None, pod("other", "b"))
    authz = NodeAuthorizer(graph)
    assert ask(authz, "get", "nodes", "a", ns="").verdict == ALLOW
    assert ask(authz, "get", "nodes", "b", ns="").reason == "node 'a' cannot read 'b', only its own Node object"
    assert ask(authz, "list", "nodes", ns="").reason == "node 'a' cannot read all nodes, only its own Node object"
    assert ask(authz, "patch", "nodes", "a", ns="", sub="status").verdict == ALLOW
    assert ask(authz, "delete", "nodes", "a", ns="").verdict == NO_OPINION
    assert ask(authz, "update", "leases", "a", ns="kube-node-lease", group="coordination.k8s.io").verdict == ALLOW
    assert ask(authz, "update", "leases", "b", ns="kube-node-lease", group="coordination.k8s.io").reason == \
        "can only access node lease with the same name as the requesting node"
    assert ask(authz, "get", "leases", "a", ns="kube-system", group="coordination.k8s.io").verdict == NO_OPINION
    assert ask(authz, "get", "pods", "web").verdict == ALLOW
    assert ask(authz, "get", "pods", "other").verdict == NO_OPINION
    assert ask(authz, "watch", "pods", ns="", fs="spec.nodeName=a").verdict == ALLOW
    assert ask(authz, "list", "pods", ns="", fs="spec.nodeName=b").reason == \
        "can only list/watch pods with spec.nodeName field selector"
    # The rest comes from NODE_RULES: services may be listed, deployments not.
    assert ask(authz, "list", "services").verdict == ALLOW
    assert ask(authz, "list", "deployments", group="apps").verdict == NO_OPINION


def test_only_nodes_get_an_opinion():
    authz = NodeAuthorizer(NodeGraph())
    for user in (UserInfo("system:node:a", groups=("system:authenticated",)),
                 UserInfo("alice", groups=("system:nodes",))):
        assert ask(authz, "list", "services", user=user).verdict == NO_OPINION
        assert not node_identity(user)[1]


def test_chain_carries_the_node_reason_into_the_denial():
    chain = AuthorizerChain(BootstrapPolicy(), NodeAuthorizer(NodeGraph()))
    decision = ask(chain, "get", "secrets", "x")
    assert not decision.allowed
    assert decision.reason == "no relationship found between node 'a' and this object"
