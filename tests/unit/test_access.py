"""Tokens, reviews, authorization and component statuses through the HTTP API."""

from __future__ import annotations

import base64
import json

from tests.unit.conftest import HEADERS

SA_TOKEN = "/api/v1/namespaces/default/serviceaccounts/{}/token"
AUTHZ = "/apis/authorization.k8s.io/v1"
AUTHN = "/apis/authentication.k8s.io/v1"


async def post(client, path, body, headers=HEADERS):
    resp = await client.post(path, json=body, headers=headers)
    return resp.status, await resp.json()


async def make_sa(client, name="robot"):
    status, _ = await post(client, "/api/v1/namespaces/default/serviceaccounts",
                           {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
    assert status == 201


async def request_token(client, name="robot", **spec):
    return await post(client, SA_TOKEN.format(name), {"apiVersion": "authentication.k8s.io/v1",
                                                      "kind": "TokenRequest", "spec": spec})


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_token_request_issues_a_jwt_that_authenticates_as_the_service_account(client):
    await make_sa(client)
    status, body = await request_token(client, audiences=["api"], expirationSeconds=1200)
    assert status == 201, body
    assert body["kind"] == "TokenRequest" and body["spec"]["expirationSeconds"] == 1200
    token = body["status"]["token"]
    c = claims(token)
    assert c["sub"] == "system:serviceaccount:default:robot" and c["aud"] == ["api"]
    assert c["exp"] - c["iat"] == 1200
    # A token for another audience is not good for the API server itself...
    resp = await client.get("/api/v1/namespaces/default/configmaps", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    # ...one for the default audience is, and the policy forbids what RBAC has not granted.
    status, body = await request_token(client)
    token = body["status"]["token"]
    resp = await client.get("/api/v1/namespaces/default/configmaps", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 403
    assert (await resp.json())["message"] == ('configmaps is forbidden: User "system:serviceaccount:default:robot" '
                                              'cannot list resource "configmaps" in API group "" in the namespace '
                                              '"default"')
    resp = await client.get("/apis", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200


async def test_token_request_validation_and_revocation_by_deletion(client):
    await make_sa(client)
    status, body = await request_token(client, expirationSeconds=60)
    assert status == 422
    assert body["details"]["causes"][0]["message"] == \
        "Invalid value: 60: may not specify a duration less than 10 minutes"
    status, body = await request_token(client, boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "nope"})
    assert status == 404
    status, body = await request_token(client, "ghost")
    assert status == 404
    _, body = await request_token(client)
    token = body["status"]["token"]
    resp = await client.delete("/api/v1/namespaces/default/serviceaccounts/robot", headers=HEADERS)
    assert resp.status == 200
    resp = await client.get("/apis", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401


async def test_expired_and_foreign_tokens_are_401_and_change_nothing(client):
    """An expired token of ours, and a well-formed token for a live account signed by another key,
    are 401 (also to TokenReview), and the write they carry is not made."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from k8py.apiserver.tokens import ServiceAccountTokens

    await make_sa(client)
    await post(client, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "robot-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]})
    ours = client.api.tokens
    account = client.api.objects_for("", "v1", "serviceaccounts").get_cached("default", "robot").obj
    expired, _ = ours.issue(account, [], -1)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged, _ = ServiceAccountTokens(other_key, ours.issuer, ours.api_audiences, ours.lookup).issue(account, [], 3600)
    good, _ = ours.issue(account, [], 3600)
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "written"}}
    for token in (expired, forged):
        status, body = await post(client, "/api/v1/namespaces/default/configmaps", configmap,
                                  {"Authorization": f"Bearer {token}"})
        assert (status, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        _, body = await post(client, f"{AUTHN}/tokenreviews", review)
        assert body["status"]["authenticated"] is False
    resp = await client.get("/api/v1/namespaces/default/configmaps/written", headers=HEADERS)
    assert resp.status == 404
    # the same account with a token of ours may (it is bound to cluster-admin)
    status, _ = await post(client, "/api/v1/namespaces/default/configmaps", configmap,
                           {"Authorization": f"Bearer {good}"})
    assert status == 201


async def test_token_review_reports_user_and_rejects_tampering(client):
    await make_sa(client)
    _, body = await request_token(client)
    token = body["status"]["token"]
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    status, body = await post(client, f"{AUTHN}/tokenreviews", review)
    assert status == 201
    user = body["status"]["user"]
    assert body["status"]["authenticated"] is True
    assert user["username"] == "system:serviceaccount:default:robot"
    assert user["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
    assert user["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    head, payload, sig = token.split(".")
    review["spec"]["token"] = f"{head}.{payload}x.{sig}"
    _, body = await post(client, f"{AUTHN}/tokenreviews", review)
    assert body["status"]["authenticated"] is False
    review["spec"] = {"token": token, "audiences": ["vault"]}
    _, body = await post(client, f"{AUTHN}/tokenreviews", review)
    assert body["status"]["authenticated"] is False and "invalid for the target audiences [vault]" in \
        body["status"]["error"]


async def test_self_subject_review_is_whoami(client):
    status, body = await post(client, f"{AUTHN}/selfsubjectreviews",
                              {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert status == 201
    assert body["status"]["userInfo"] == {"username": "system:admin",
                                          "groups": ["system:masters", "system:authenticated"]}


def access_review(kind, **spec):
    return {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}


async def test_access_reviews_answer_from_the_policy(client):
    status, body = await post(client, f"{AUTHZ}/selfsubjectaccessreviews", access_review(
        "SelfSubjectAccessReview", resourceAttributes={"verb": "delete", "resource": "nodes"}))
    assert status == 201 and body["status"]["allowed"] is True
    status, body = await post(client, f"{AUTHZ}/subjectaccessreviews", access_review(
        "SubjectAccessReview", user="jane", groups=["system:authenticated"],
        resourceAttributes={"verb": "get", "resource": "pods", "namespace": "default"}))
    assert status == 201 and body["status"]["allowed"] is False
    status, body = await post(client, f"{AUTHZ}/subjectaccessreviews", access_review(
        "SubjectAccessReview", user="jane", groups=["system:authenticated"],
        nonResourceAttributes={"verb": "get", "path": "/version"}))
    assert body["status"]["allowed"] is True
    status, body = await post(client, f"{AUTHZ}/subjectaccessreviews", access_review(
        "SubjectAccessReview", resourceAttributes={"verb": "get", "resource": "pods"}))
    assert status == 422
    status, body = await post(client, f"{AUTHZ}/subjectaccessreviews", access_review(
        "SubjectAccessReview", user="jane"))
    assert status == 422
    status, body = await post(client, "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews",
                              access_review("LocalSubjectAccessReview", groups=["system:masters"],
                                            resourceAttributes={"verb": "get", "resource": "pods"}))
    assert status == 201 and body["status"]["allowed"] is True
    assert body["spec"]["resourceAttributes"]["namespace"] == "default"
    status, body = await post(client, "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews",
                              access_review("LocalSubjectAccessReview", groups=["system:masters"],
                                            resourceAttributes={"verb": "get", "resource": "pods",
                                                                "namespace": "other"}))
    assert status == 422


async def test_self_subject_rules_review(client):
    status, body = await post(client, f"{AUTHZ}/selfsubjectrulesreviews", access_review(
        "SelfSubjectRulesReview", namespace="default"))
    assert status == 201
    assert {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]} in body["status"]["resourceRules"]
    assert body["status"]["incomplete"] is False


async def test_component_statuses_follow_leases_and_store(client):
    resp = await client.get("/api/v1/componentstatuses", headers=HEADERS)
    items = {i["metadata"]["name"]: i["conditions"][0] for i in (await resp.json())["items"]}
    assert items["etcd-0"]["status"] == "True"
    assert items["scheduler"]["status"] == "False"
    assert "kube-system/kube-scheduler" in items["scheduler"]["error"]
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    status, _ = await post(client, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "kube-scheduler"},
        "spec": {"holderIdentity": "s1", "leaseDurationSeconds": 15, "renewTime": now}})
    assert status == 201
    resp = await client.get("/api/v1/componentstatuses/scheduler", headers=HEADERS)
    assert (await resp.json())["conditions"] == [{"type": "Healthy", "status": "True", "message": "ok"}]


async def test_impersonation_answers_for_the_impersonated_user(client):
    review = access_review("SelfSubjectAccessReview", resourceAttributes={"verb": "list", "resource": "pods"})
    headers = {**HEADERS, "Impersonate-User": "jane"}
    status, body = await post(client, f"{AUTHZ}/selfsubjectaccessreviews", review, headers)
    assert status == 201 and body["status"]["allowed"] is False
    status, body = await post(client, f"{AUTHN}/selfsubjectreviews",
                              {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, headers)
    assert body["status"]["userInfo"] == {"username": "jane", "groups": ["system:authenticated"]}
    resp = await client.get("/api/v1/pods", headers=headers)
    assert resp.status == 403
    # jane herself may not impersonate anyone.
    await make_sa(client)
    _, body = await request_token(client)
    sa_headers = {"Authorization": f"Bearer {body['status']['token']}", "Impersonate-User": "admin"}
    resp = await client.get("/apis", headers=sa_headers)
    assert resp.status == 403
    assert 'cannot impersonate resource "users"' in (await resp.json())["message"]
