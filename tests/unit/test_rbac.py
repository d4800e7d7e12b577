"""RBAC: rule matching, the subject index, rules_for, coverage, escalation wording, reconciliation, policy data."""

from __future__ import annotations

import pytest

from k8py.apimachinery import errors
from k8py.apiserver.authn import UserInfo
from k8py.apiserver.authz import ALLOW, NO_OPINION, Attributes
from k8py.apiserver.authz import escalation
from k8py.apiserver.authz.modes import AlwaysDeny, build_chain, parse_modes
from k8py.apiserver.authz.policy import AUTOUPDATE, bootstrap_objects
from k8py.apiserver.authz.rbac import RBACAuthorizer
from k8py.apiserver.authz.reconcile import reconciled
from k8py.apiserver.authz.rules import compact_string, compile_rule, covers

ALICE = UserInfo("alice", groups=("devs", "system:authenticated"))
SA = UserInfo("system:serviceaccount:kube-system:haimaxy-sa",
              groups=("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"))


def res(user, verb, resource, namespace="", group="", subresource="", name=""):
    return Attributes(user=user, verb=verb, resource_request=True, namespace=namespace, api_group=group,
                      resource=resource, subresource=subresource, name=name)


def url(user, verb, path):
    return Attributes(user=user, verb=verb, resource_request=False, path=path)


# ---- rule matching ------------------------------------------------------------

def test_rule_wildcards_and_subresources():
    rule = compile_rule({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]})
    assert rule.allows(res(ALICE, "get", "deployments", group="apps", subresource="scale"))
    assert not rule.allows(res(ALICE, "get", "deployments", group="apps"))
    assert not rule.allows(res(ALICE, "update", "deployments", group="apps", subresource="scale"))
    exact = compile_rule({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]})
    assert exact.allows(res(ALICE, "get", "pods", subresource="log"))
    assert not exact.allows(res(ALICE, "get", "pods"))
    assert not exact.allows(res(ALICE, "get", "pods", subresource="exec"))
    # "pods" does not cover its subresources
    pods = compile_rule({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]})
    assert pods.allows(res(ALICE, "delete", "pods"))
    assert not pods.allows(res(ALICE, "create", "pods", subresource="exec"))
    assert not pods.allows(res(ALICE, "get", "pods", group="apps"))


def test_rule_resource_names_never_match_unnamed_requests():
    rule = compile_rule({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"],
                         "verbs": ["get", "list"]})
    assert rule.allows(res(ALICE, "get", "configmaps", "ns", name="cfg"))
    assert not rule.allows(res(ALICE, "get", "configmaps", "ns", name="other"))
    assert not rule.allows(res(ALICE, "list", "configmaps", "ns"))


def test_rule_non_resource_urls():
    rule = compile_rule({"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]})
    assert rule.allows(url(ALICE, "get", "/healthz"))
    assert rule.allows(url(ALICE, "get", "/apis/apps/v1"))
    assert not rule.allows(url(ALICE, "get", "/healthz/etcd"))
    assert not rule.allows(url(ALICE, "post", "/healthz"))
    assert not rule.allows(res(ALICE, "get", "pods"))  # a URL rule grants no resource


# ---- the authorizer ------------------------------------------------------------

def rbac_with(*objects) -> RBACAuthorizer:
    rbac = RBACAuthorizer()
    for resource, obj in objects:
        metadata = obj["metadata"]
        key = f"/registry/{resource}/" + (f"{metadata['namespace']}/" if metadata.get("namespace") else "") + \
            metadata["name"]
        rbac.apply(resource, key, obj)
    return rbac


def role(name, namespace, rules):
    return "roles", {"metadata": {"name": name, "namespace": namespace}, "rules": rules}


def cluster_role(name, rules):
    return "clusterroles", {"metadata": {"name": name}, "rules": rules}


def binding(name, namespace, role_kind, role_name, *subjects):
    resource = "rolebindings" if namespace else "clusterrolebindings"
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return resource, {"metadata": metadata, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                         "kind": role_kind, "name": role_name},
                      "subjects": list(subjects)}


SEED_ROLE = role("haimaxy-sa-role", "kube-system", [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]},
    {"apiGroups": ["apps"], "resources": ["deployments"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}])
SEED_BINDING = binding("haimaxy-sa-rolebinding", "kube-system", "Role", "haimaxy-sa-role",
                       {"kind": "ServiceAccount", "name": "haimaxy-sa", "namespace": "kube-system"})


def test_service_account_gets_exactly_its_role():
    rbac = rbac_with(SEED_ROLE, SEED_BINDING)
    assert rbac.authorize(res(SA, "list", "pods", "kube-system")).verdict == ALLOW
    assert rbac.authorize(res(SA, "delete", "deployments", "kube-system", "apps", name="d")).verdict == ALLOW
    for attrs in (res(SA, "list", "pods", "default"), res(SA, "list", "pods"),
                  res(SA, "get", "secrets", "kube-system", name="s"), res(SA, "delete", "pods", "kube-system"),
                  res(SA, "create", "pods", "kube-system", subresource="exec", name="p"),
                  res(SA, "get", "deployments", "kube-system", "extensions")):
        assert rbac.authorize(attrs).verdict == NO_OPINION, attrs
    # another account of the same name in another namespace gets nothing
    other = UserInfo("system:serviceaccount:default:haimaxy-sa", groups=("system:serviceaccounts",))
    assert rbac.authorize(res(other, "list", "pods", "kube-system")).verdict == NO_OPINION


def test_groups_cluster_role_bindings_and_role_binding_scope():
    rbac = rbac_with(
        cluster_role("reader", [{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get"]}]),
        binding("devs-read", "team", "ClusterRole", "reader", {"kind": "Group", "name": "devs"}),
        binding("urls", "", "ClusterRole", "urls", {"kind": "User", "name": "alice"}),
        cluster_role("urls", [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]))
    # A RoleBinding to a ClusterRole grants it in its own namespace only, and no cluster-scoped resources.
    assert rbac.authorize(res(ALICE, "get", "pods", "team", name="p")).allowed
    assert not rbac.authorize(res(ALICE, "get", "pods", "other", name="p")).allowed
    assert not rbac.authorize(res(ALICE, "get", "nodes", name="n")).allowed
    assert rbac.authorize(url(ALICE, "get", "/metrics")).allowed
    assert not rbac.authorize(url(UserInfo("bob"), "get", "/metrics")).allowed


def test_changes_and_deletions_take_effect():
    rbac = rbac_with(SEED_ROLE, SEED_BINDING)
    rbac.apply("rolebindings", "/registry/rolebindings/kube-system/haimaxy-sa-rolebinding", None)
    assert not rbac.authorize(res(SA, "list", "pods", "kube-system")).allowed
    assert rbac.stats()["subjects"] == 0
    rbac.apply("rolebindings", "/registry/rolebindings/kube-system/haimaxy-sa-rolebinding", SEED_BINDING[1])
    assert rbac.authorize(res(SA, "list", "pods", "kube-system")).allowed
    # the role losing a rule loses the permission
    rbac.apply("roles", "/registry/roles/kube-system/haimaxy-sa-role",
               {"metadata": {"name": "haimaxy-sa-role", "namespace": "kube-system"},
                "rules": [SEED_ROLE[1]["rules"][1]]})
    assert not rbac.authorize(res(SA, "list", "pods", "kube-system")).allowed


def test_missing_role_is_the_reason():
    rbac = rbac_with(binding("b", "", "ClusterRole", "ghost", {"kind": "User", "name": "alice"}))
    decision = rbac.authorize(res(ALICE, "get", "pods", "ns"))
    assert decision.verdict == NO_OPINION
    assert decision.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "ghost" not found'


def test_rules_for_lists_cluster_and_namespace_rules():
    rbac = rbac_with(SEED_ROLE, SEED_BINDING,
                     cluster_role("public", [{"nonResourceURLs": ["/version"], "verbs": ["get"]}]),
                     binding("public", "", "ClusterRole", "public", {"kind": "Group", "name": "system:authenticated"}))
    rules = rbac.rules_for(SA, "kube-system")
    assert {"verbs": ["get", "watch", "list"], "apiGroups": [""], "resources": ["pods"]} in rules.resource_rules
    assert len(rules.resource_rules) == 2
    assert rules.non_resource_rules == [{"verbs": ["get"], "nonResourceURLs": ["/version"]}]
    assert rbac.rules_for(SA, "default").resource_rules == []


# ---- coverage and escalation ---------------------------------------------------------

def test_covers_breaks_rules_down():
    owner = [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
             {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update"]}]
    assert covers(owner, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])[0]
    assert covers(owner, [{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["update"]}])[0]
    ok, missing = covers(owner, [{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "delete"]}])
    assert not ok
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]} in missing
    assert len(missing) == 3  # pods/delete, secrets/get, secrets/delete
    named = [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]}]
    assert covers(named, named)[0]
    assert not covers(named, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])[0]
    assert covers([{"nonResourceURLs": ["/apis/*"], "verbs": ["get"]}],
                  [{"nonResourceURLs": ["/apis/apps"], "verbs": ["get"]}])[0]


def test_compact_string_as_upstream():
    assert compact_string({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}) == \
        '{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}'
    assert compact_string({"nonResourceURLs": ["*"], "verbs": ["*"]}) == '{NonResourceURLs:["*"], Verbs:["*"]}'


class FakeCached:
    def __init__(self, obj):
        self.obj = obj


class FakeStore:
    def __init__(self, objects):
        self.objects = objects

    def get_cached(self, namespace, name):
        obj = self.objects.get((namespace, name))
        return FakeCached(obj) if obj else None


class FakeAPI:
    def __init__(self, rbac, roles=(), cluster_roles=()):
        from k8py.apiserver.authz import AuthorizerChain
        self.rbac = rbac
        self.authorizer = AuthorizerChain(rbac)
        self.stores = {"roles": FakeStore({(r[1]["metadata"]["namespace"], r[1]["metadata"]["name"]): r[1]
                                           for r in roles}),
                       "clusterroles": FakeStore({("", r[1]["metadata"]["name"]): r[1] for r in cluster_roles})}

    def objects_for(self, group, version, plural):
        return self.stores[plural]


ADMIN_ROLE = cluster_role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                                            {"nonResourceURLs": ["*"], "verbs": ["*"]}])


def test_binding_cluster_admin_without_holding_it_is_refused():
    maker = cluster_role("crb-maker", [{"apiGroups": ["rbac.authorization.k8s.io"],
                                        "resources": ["clusterrolebindings"], "verbs": ["create"]}])
    rbac = rbac_with(maker, ADMIN_ROLE, binding("m", "", "ClusterRole", "crb-maker", {"kind": "User", "name": "alice"}))
    api = FakeAPI(rbac, cluster_roles=[ADMIN_ROLE, maker])
    crb = binding("root", "", "ClusterRole", "cluster-admin", {"kind": "User", "name": "alice"})[1]
    with pytest.raises(errors.StatusError) as err:
        escalation.check_write(api, "rbac.authorization.k8s.io", "ClusterRoleBinding", crb, None, ALICE)
    assert err.value.code == 403
    assert str(err.value.message).startswith(
        'clusterrolebindings.rbac.authorization.k8s.io "root" is forbidden: user "alice" '
        '(groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}\n{NonResourceURLs:["*"], Verbs:["*"]}')
    # with `bind` on that role it passes
    rbac.apply("clusterroles", "/registry/clusterroles/binder", cluster_role("binder", [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["cluster-admin"],
         "verbs": ["bind"]}])[1])
    rbac.apply("clusterrolebindings", "/registry/clusterrolebindings/binder",
               binding("binder", "", "ClusterRole", "binder", {"kind": "User", "name": "alice"})[1])
    escalation.check_write(api, "rbac.authorization.k8s.io", "ClusterRoleBinding", crb, None, ALICE)


def test_roles_within_held_rights_pass_and_beyond_need_escalate():
    rbac = rbac_with(SEED_ROLE, SEED_BINDING)
    api = FakeAPI(rbac)
    mine = {"metadata": {"name": "r", "namespace": "kube-system"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}
    escalation.check_write(api, "rbac.authorization.k8s.io", "Role", mine, None, SA)
    more = {**mine, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
    with pytest.raises(errors.StatusError) as err:
        escalation.check_write(api, "rbac.authorization.k8s.io", "Role", more, None, SA)
    assert '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}' in err.value.message
    # masters pass; so does a write made by the server itself
    escalation.check_write(api, "rbac.authorization.k8s.io", "Role", more, None,
                           UserInfo("admin", groups=("system:masters",)))
    escalation.check_write(api, "rbac.authorization.k8s.io", "Role", more, None, None)


def test_binding_to_missing_role_is_not_found():
    api = FakeAPI(rbac_with())
    rb = binding("b", "ns", "Role", "nope", {"kind": "User", "name": "alice"})[1]
    with pytest.raises(errors.StatusError) as err:
        escalation.check_write(api, "rbac.authorization.k8s.io", "RoleBinding", rb, None, ALICE)
    assert err.value.code == 404


# ---- bootstrap policy -------------------------------------------------------------

def test_bootstrap_policy_has_upstreams_roles_and_bindings():
    objects = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in bootstrap_objects()}
    for name in ("cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user",
                 "system:public-info-viewer", "system:monitoring", "system:kube-scheduler",
                 "system:kube-controller-manager", "system:node-proxier", "system:kube-dns", "system:node",
                 "system:node-bootstrapper", "system:auth-delegator", "system:volume-scheduler",
                 "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                 "system:controller:deployment-controller", "system:controller:clusterrole-aggregation-controller"):
        role_obj = objects[("ClusterRole", "", name)]
        assert role_obj["metadata"]["annotations"][AUTOUPDATE] == "true"
        assert role_obj["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
    public = objects[("ClusterRoleBinding", "", "system:public-info-viewer")]
    assert {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"} in \
        public["subjects"]
    assert objects[("ClusterRole", "", "edit")]["metadata"]["labels"][
        "rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert objects[("ClusterRole", "", "view")]["aggregationRule"] == {"clusterRoleSelectors": [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}
    controller = objects[("ClusterRoleBinding", "", "system:controller:job-controller")]
    assert controller["subjects"] == [{"kind": "ServiceAccount", "name": "job-controller", "namespace": "kube-system"}]
    assert ("RoleBinding", "kube-system", "system::leader-locking-kube-scheduler") in objects


def test_reconcile_adds_what_is_missing_and_respects_autoupdate_false():
    expected = {"kind": "ClusterRole", "metadata": {"name": "r", "labels": {"a": "1"}, "annotations": {AUTOUPDATE: "true"}},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                          {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}
    existing = {"kind": "ClusterRole", "metadata": {"name": "r", "labels": {"a": "mine"}},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]},
                          {"apiGroups": ["x"], "resources": ["y"], "verbs": ["get"]}]}
    result = reconciled(expected, existing)
    assert result["rules"] == existing["rules"] + [expected["rules"][1]]  # nothing removed, nodes added
    assert result["metadata"]["labels"] == {"a": "mine"}
    assert result["metadata"]["annotations"] == {AUTOUPDATE: "true"}
    assert reconciled(expected, result) is None
    frozen = {**existing, "metadata": {"name": "r", "annotations": {AUTOUPDATE: "false"}}}
    assert reconciled(expected, frozen) is None
    expected_binding = {"kind": "ClusterRoleBinding", "metadata": {"name": "b"},
                        "subjects": [{"kind": "Group", "name": "g"}]}
    added = reconciled(expected_binding, {"kind": "ClusterRoleBinding", "metadata": {"name": "b"},
                                          "subjects": [{"kind": "User", "name": "u"}]})
    assert added["subjects"] == [{"kind": "User", "name": "u"}, {"kind": "Group", "name": "g"}]


# ---- modes -----------------------------------------------------------------------------

def test_parse_modes():
    assert parse_modes("Node,RBAC") == ["Node", "RBAC"]
    for bad in ("", "RBAC,RBAC", "ABAC"):
        with pytest.raises(ValueError):
            parse_modes(bad)


def test_always_deny_still_lets_masters_in():
    chain, rbac = build_chain(None, ["AlwaysDeny"])
    assert rbac is None
    denied = chain.authorize(res(ALICE, "get", "pods", "ns"))
    assert not denied.allowed and denied.reason == "Everything is forbidden."
    assert chain.authorize(res(UserInfo("root", groups=("system:masters",)), "get", "pods", "ns")).allowed
    assert isinstance(chain.authorizers[1], AlwaysDeny)


async def test_reconcile_deletes_retired_bootstrap_objects_only_while_still_ours(client):
    from k8py.apiserver.authz.reconcile import reconcile_bootstrap_policy
    roles = client.api.objects_for("rbac.authorization.k8s.io", "v1", "clusterroles")
    name = "system:k8py:controller-manager"
    await roles.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
                        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}, "")
    await reconcile_bootstrap_policy(client.api)
    assert roles.get_cached("", name) is None
    # one an admin made their own (no bootstrapping label) stays
    await roles.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": {"name": name}, "rules": []}, "")
    await reconcile_bootstrap_policy(client.api)
    assert roles.get_cached("", name) is not None
