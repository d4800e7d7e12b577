"""RBAC end to end: the seed's haimaxy-sa, escalation, impersonation, exec, aggregation,
`kubectl auth can-i|reconcile`, SubjectAccessReviews and anonymous requests, with the real kubectl."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.e2e.conftest import SEED, kubectl_binary, start_server, wait_for

SA_USER = "system:serviceaccount:kube-system:haimaxy-sa"


def as_token(server, token: str, *args, check: bool = False, input: str | None = None):
    """kubectl with only a bearer token: no kubeconfig, so no admin certificate in play."""
    cmd = [kubectl_binary(), "--kubeconfig=/dev/null", f"--cache-dir={server.cache_dir}-token",
           f"--server={server.url}", f"--certificate-authority={server.data_dir / 'server' / 'tls' / 'server-ca.crt'}",
           f"--token={token}", *args]
    result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)
    assert not check or result.returncode == 0, result.stderr
    return result


def allowed_by_review(server, user: str, groups: list[str], verb: str, group: str, resource: str,
                      namespace: str) -> bool:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": {
                "verb": verb, "group": group, "resource": resource, "namespace": namespace}}}
    return server.kubectl_json("create", "-f", "-", input=json.dumps(body))["status"]["allowed"]


@pytest.fixture(scope="module")
def seed_token(server):
    server.kubectl("apply", "-f", str(SEED / "13-rbac-serviceaccount.yaml"))
    return server.kubectl("create", "token", "haimaxy-sa", "-n", "kube-system").stdout.strip()


def test_haimaxy_sa_gets_exactly_its_role(server, seed_token):
    listed = as_token(server, seed_token, "get", "pods", "-n", "kube-system")
    assert listed.returncode == 0, listed.stderr
    refused = as_token(server, seed_token, "get", "pods", "-n", "default")
    assert refused.returncode != 0
    assert (f'pods is forbidden: User "{SA_USER}" cannot list resource "pods" in API group "" in the '
            f'namespace "default"') in refused.stderr
    secrets = as_token(server, seed_token, "get", "secrets", "-n", "kube-system")
    assert f'User "{SA_USER}" cannot list resource "secrets" in API group "" in the namespace "kube-system"' \
        in secrets.stderr
    nodes = as_token(server, seed_token, "get", "nodes")
    assert 'cannot list resource "nodes" in API group "" at the cluster scope' in nodes.stderr
    created = as_token(server, seed_token, "create", "deployment", "rbac-e2e", "--image=busybox", "-n", "kube-system")
    assert created.returncode == 0, created.stderr
    deleted = as_token(server, seed_token, "delete", "deployment", "rbac-e2e", "-n", "kube-system")
    assert deleted.returncode == 0, deleted.stderr
    elsewhere = as_token(server, seed_token, "create", "deployment", "rbac-e2e", "--image=busybox", "-n", "default")
    assert 'cannot create resource "deployments" in API group "apps" in the namespace "default"' in elsewhere.stderr
    # can-i, as the account itself and for it through impersonation
    for args in ((), ("--as", SA_USER)):
        can = server.kubectl("auth", "can-i", "list", "pods", "-n", "kube-system", *args, check=False) if args else \
            as_token(server, seed_token, "auth", "can-i", "list", "pods", "-n", "kube-system")
        assert can.stdout.strip() == "yes"
    for verb, resource, ns in (("list", "pods", "default"), ("get", "secrets", "kube-system"),
                               ("delete", "pods", "kube-system")):
        no = server.kubectl("auth", "can-i", verb, resource, "-n", ns, "--as", SA_USER, check=False)
        assert no.stdout.strip() == "no", (verb, resource, ns)


def test_can_i_list_shows_the_role(server, seed_token):
    out = server.kubectl("auth", "can-i", "--list", "--as", SA_USER, "-n", "kube-system").stdout
    rows = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}
    assert "[get watch list]" in rows["pods"]
    assert "[get list watch create update patch delete]" in rows["deployments.apps"]
    assert "secrets" not in rows
    elsewhere = server.kubectl("auth", "can-i", "--list", "--as", SA_USER, "-n", "default").stdout
    assert "deployments.apps" not in elsewhere and "\npods " not in elsewhere


@pytest.fixture
def limited_user(server, namespace):
    """A service account allowed to create ClusterRoleBindings and to read pods, nothing more."""
    server.kubectl("create", "serviceaccount", "limited", "-n", namespace)
    server.kubectl("create", "role", "pod-reader", "--verb=get", "--resource=pods", "-n", namespace)
    server.kubectl("create", "rolebinding", "limited-reads", "--role=pod-reader",
                   f"--serviceaccount={namespace}:limited", "-n", namespace)
    name = f"crb-maker-{namespace}"
    server.kubectl("create", "clusterrole", name, "--verb=create",
                   "--resource=clusterrolebindings.rbac.authorization.k8s.io")
    server.kubectl("create", "clusterrolebinding", name, f"--clusterrole={name}",
                   f"--serviceaccount={namespace}:limited")
    token = server.kubectl("create", "token", "limited", "-n", namespace).stdout.strip()
    yield token, f"system:serviceaccount:{namespace}:limited"
    server.kubectl("delete", "clusterrolebinding", name, check=False)
    server.kubectl("delete", "clusterrole", name, check=False)


def test_binding_cluster_admin_is_refused_and_writes_nothing(server, namespace, limited_user):
    token, user = limited_user
    name = f"root-{namespace}"
    out = as_token(server, token, "create", "clusterrolebinding", name, "--clusterrole=cluster-admin",
                   f"--serviceaccount={namespace}:limited")
    assert out.returncode != 0
    assert (f'clusterrolebindings.rbac.authorization.k8s.io "{name}" is forbidden: user "{user}" (groups=['
            f'"system:serviceaccounts" "system:serviceaccounts:{namespace}" "system:authenticated"]) is attempting '
            'to grant RBAC permissions not currently held:\n{APIGroups:["*"], Resources:["*"], Verbs:["*"]}\n'
            '{NonResourceURLs:["*"], Verbs:["*"]}') in out.stderr
    assert server.kubectl("get", "clusterrolebinding", name, check=False).returncode != 0
    assert as_token(server, token, "get", "secrets", "-n", namespace).returncode != 0


def test_escalation_is_checked_before_validation(server, namespace, limited_user):
    """As upstream's policy-based RBAC storage: an escalating Role is 403 even when it is also
    invalid; an invalid Role within the writer's rights is 422; neither is stored."""
    token, user = limited_user
    server.kubectl("create", "role", "role-maker", "--verb=create", "--resource=roles.rbac.authorization.k8s.io",
                   "-n", namespace)
    server.kubectl("create", "rolebinding", "role-maker", "--role=role-maker",
                   f"--serviceaccount={namespace}:limited", "-n", namespace)

    def create_role(name: str, rules: list[dict]):
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": name, "namespace": namespace}, "rules": rules}
        return as_token(server, token, "create", "-f", "-", input=json.dumps(role))

    no_verbs = {"apiGroups": [""], "resources": ["pods"], "verbs": []}
    out = create_role("escalating", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}, no_verbs])
    assert (f'roles.rbac.authorization.k8s.io "escalating" is forbidden: user "{user}"' in out.stderr
            and 'is attempting to grant RBAC permissions not currently held:\n'
                '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}' in out.stderr), out.stderr
    out = create_role("within", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, no_verbs])
    assert 'The Role "within" is invalid: rules[1].verbs: Required value' in out.stderr, out.stderr
    roles = {r["metadata"]["name"] for r in server.kubectl_json("get", "roles", "-n", namespace)["items"]}
    assert roles == {"pod-reader", "role-maker"}


def test_impersonation_without_rights_is_refused(server, namespace, limited_user):
    token, user = limited_user
    # kubectl's discovery cache first: with an empty cache, the refused discovery request is all
    # kubectl reports ("Error from server (Forbidden): unknown", as against upstream)
    assert as_token(server, token, "api-resources").returncode == 0
    out = as_token(server, token, "get", "pods", "-n", namespace, "--as", "jane")
    assert (f'users "jane" is forbidden: User "{user}" cannot impersonate resource "users" in API group "" at '
            "the cluster scope") in out.stderr
    out = as_token(server, token, "create", "configmap", "smuggled", "-n", namespace, "--as", "system:admin",
                   "--as-group", "system:masters")
    assert "cannot impersonate" in out.stderr
    assert server.kubectl("get", "configmap", "smuggled", "-n", namespace, check=False).returncode != 0


def test_exec_with_only_pods_get_is_refused(server, namespace, limited_user):
    token, user = limited_user
    server.kubectl("run", "target", "--image=busybox", "-n", namespace, "--restart=Never", "--", "sleep", "3600")
    assert as_token(server, token, "get", "pod", "target", "-n", namespace).returncode == 0
    out = as_token(server, token, "exec", "target", "-n", namespace, "--", "true")
    assert out.returncode != 0
    assert f'pods "target" is forbidden: User "{user}" cannot' in out.stderr
    assert 'resource "pods/exec" in API group "" in the namespace' in out.stderr


def test_aggregation_picks_up_labelled_roles(server, namespace):
    name = f"crd-viewer-{namespace}"
    manifest = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name, "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                "rules": [{"apiGroups": [f"{namespace}.example.com"], "resources": ["widgets"],
                           "verbs": ["get", "list", "watch"]}]}
    server.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        for aggregated in ("view", "edit", "admin"):
            wait_for(lambda: manifest["rules"][0] in server.kubectl_json("get", "clusterrole", aggregated)["rules"],
                     timeout=30, what=f"{aggregated} to aggregate {name}")
        # (kubectl auth can-i would send "widgets.<group>" whole for a resource discovery does not know)
        group = f"{namespace}.example.com"
        assert not allowed_by_review(server, "someone", ["viewers"], "list", group, "widgets", namespace)
        server.kubectl("create", "rolebinding", "viewers", "--clusterrole=view", "--group=viewers", "-n", namespace)
        assert allowed_by_review(server, "someone", ["viewers"], "list", group, "widgets", namespace)
        assert not allowed_by_review(server, "someone", ["viewers"], "delete", group, "widgets", namespace)
    finally:
        server.kubectl("delete", "clusterrole", name, check=False)
    wait_for(lambda: manifest["rules"][0] not in server.kubectl_json("get", "clusterrole", "view")["rules"],
             timeout=30, what="view to drop the deleted role's rules")


def test_auth_reconcile(server, namespace):
    manifest = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "cm-reader", "namespace": namespace},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "cm-reader", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]}]}
    out = server.kubectl("auth", "reconcile", "-f", "-", input=json.dumps(manifest)).stdout
    assert "reconciled" in out
    assert server.kubectl("auth", "can-i", "list", "configmaps", "-n", namespace, "--as", "carol").stdout.strip() \
        == "yes"
    # reconciling again with one more verb adds it and keeps the rest
    manifest["items"][0]["rules"][0]["verbs"] = ["watch"]
    server.kubectl("auth", "reconcile", "-f", "-", input=json.dumps(manifest))
    verbs = server.kubectl_json("get", "role", "cm-reader", "-n", namespace)["rules"]
    assert {v for rule in verbs for v in rule["verbs"]} == {"get", "list", "watch"}


def test_subject_access_reviews_match_impersonated_calls(server, namespace):
    """Conformance: SubjectReview, API Operations."""
    server.kubectl("create", "serviceaccount", "reviewed", "-n", namespace)
    user = f"system:serviceaccount:{namespace}:reviewed"

    def review(kind: str) -> bool:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": kind,
                "spec": {"user": user, "resourceAttributes": {"verb": "list", "resource": "configmaps",
                                                              "namespace": namespace}}}
        if kind == "LocalSubjectAccessReview":
            body["metadata"] = {"namespace": namespace}
        return server.kubectl_json("create", "-f", "-", input=json.dumps(body))["status"]["allowed"]

    def impersonated_call() -> bool:
        return server.kubectl("get", "configmaps", "-n", namespace, "--as", user, check=False).returncode == 0

    assert (review("SubjectAccessReview"), review("LocalSubjectAccessReview"), impersonated_call()) == \
        (False, False, False)
    server.kubectl("create", "rolebinding", "reviewed-view", "--clusterrole=view",
                   f"--serviceaccount={namespace}:reviewed", "-n", namespace)
    assert (review("SubjectAccessReview"), review("LocalSubjectAccessReview"), impersonated_call()) == \
        (True, True, True)


def _get(url: str, token: str | None = None) -> tuple[int, dict | str]:
    ctx = ssl._create_unverified_context()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_anonymous_requests_get_401_by_default(server):
    status, _ = _get(server.url + "/version")
    assert status == 401
    status, _ = _get(server.url + "/version", token="not-a-token")
    assert status == 401


def test_anonymous_auth_opens_only_public_info(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("k8py-anon"), extra=["--anonymous-auth=true"])
    try:
        status, body = _get(server.url + "/version")
        assert status == 200 and '"gitVersion"' in body
        status, body = _get(server.url + "/api/v1/namespaces/default/pods")
        assert status == 403
        assert body["message"] == ('pods is forbidden: User "system:anonymous" cannot list resource "pods" in API '
                                   'group "" in the namespace "default"')
        status, _ = _get(server.url + "/apis")  # discovery is for authenticated users only
        assert status == 403
        status, _ = _get(server.url + "/version", token="not-a-token")  # a bad credential is still 401
        assert status == 401
    finally:
        server.stop()


def test_components_run_on_their_own_identities_without_refusals(server, namespace):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    tls = server.data_dir / "server" / "tls"
    for component, user in (("scheduler", "system:kube-scheduler"), ("controller-manager",
                                                                      "system:kube-controller-manager"),
                            ("proxy", "system:kube-proxy"), ("dns", "system:coredns")):
        cert = x509.load_pem_x509_certificate((tls / f"client-{component}.crt").read_bytes())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user
        assert not cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)  # not system:masters
    # the controller-manager and scheduler do their work under them: a Deployment gets its pods, bound
    server.kubectl("create", "deployment", "ident", "--image=busybox", "--replicas=2", "-n", namespace)
    wait_for(lambda: len(server.kubectl_json("get", "pods", "-n", namespace)["items"]) == 2, timeout=60,
             what="the deployment's pods")
    # each controller writes as its own ServiceAccount, with upstream's role for it
    accounts = {sa["metadata"]["name"] for sa in server.kubectl_json("get", "serviceaccounts", "-n",
                                                                     "kube-system")["items"]}
    assert {"replicaset-controller", "deployment-controller", "endpointslice-controller",
            "certificate-controller", "kube-proxy"} <= accounts
    # (the Deployment's pods above show it: system:kube-controller-manager itself may not create them)
    assert not allowed_by_review(server, "system:kube-controller-manager", [], "create", "apps", "replicasets",
                                 namespace)
    roles = server.kubectl("get", "clusterroles", "-o", "name").stdout.split()
    assert "clusterrole.rbac.authorization.k8s.io/system:controller:replicaset-controller" in roles
    assert not any("k8py:controller-manager" in r for r in roles)
    log = server.log_path.read_text()
    from k8py.controllers.credentials import ACCOUNTS
    for user in ("system:kube-scheduler", "system:kube-controller-manager", "system:kube-proxy", "system:coredns",
                 *(f"system:serviceaccount:kube-system:{account}" for account in set(ACCOUNTS.values()))):
        assert f"forbidden: user '{user}'" not in log
