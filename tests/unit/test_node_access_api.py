"""Through the API server: the Node authorizer's graph follows writes at once, NodeRestriction
and the CSR admission plugins answer with upstream's Status."""

import base64

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from k8py.apiserver.authn import UserInfo
from k8py.apiserver.authz import ALLOW, NO_OPINION, Decision
from tests.unit.conftest import HEADERS

NODE = {"Authorization": "Bearer node-token"}
ALICE = {"Authorization": "Bearer alice-token"}
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def add_users(api):
    api.authenticator._tokens["node-token"] = UserInfo("system:node:n1", groups=("system:nodes",))
    api.authenticator._tokens["alice-token"] = UserInfo("alice")


async def test_node_reads_a_secret_from_the_moment_its_pod_is_bound(client):
    add_users(client.api)
    for name in ("used", "other"):
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {"k": "dg=="}}
        assert (await client.post("/api/v1/namespaces/default/secrets", json=body, headers=HEADERS)).status == 201
    secret = "/api/v1/namespaces/default/secrets/used"
    assert (await client.get(secret, headers=NODE)).status == 403
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}],
                    "volumes": [{"name": "s", "secret": {"secretName": "used"}}]}}
    assert (await client.post("/api/v1/namespaces/default/pods", json=pod, headers=HEADERS)).status == 201
    # No waiting: the graph is updated as the write commits.
    assert (await client.get(secret, headers=NODE)).status == 200
    denied = await client.get("/api/v1/namespaces/default/secrets/other", headers=NODE)
    assert denied.status == 403
    assert (await denied.json())["message"] == (
        'secrets "other" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in '
        "the namespace \"default\": no relationship found between node 'n1' and this object")
    # A list of one secret by name is the same question.
    listed = await client.get("/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dused", headers=NODE)
    assert listed.status == 200
    assert (await client.delete("/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0", headers=HEADERS)).status \
        == 200
    assert (await client.get(secret, headers=NODE)).status == 403


async def test_node_pod_status_of_other_nodes_is_refused(client):
    add_users(client.api)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "elsewhere"},
           "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "busybox"}]}}
    assert (await client.post("/api/v1/namespaces/default/pods", json=pod, headers=HEADERS)).status == 201
    resp = await client.patch("/api/v1/namespaces/default/pods/elsewhere/status", data=b'{"status":{"phase":"Failed"}}',
                              headers={**NODE, "Content-Type": "application/merge-patch+json"})
    assert resp.status == 403
    assert (await resp.json())["message"] == \
        'pods "elsewhere" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself'


def csr_body(name, cn, orgs=(), signer="kubernetes.io/kube-apiserver-client"):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs] +
                        [x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    pem = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM)
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer,
                     "usages": ["digital signature", "client auth"]}}


class AliceMayUpdateCSRs:
    """alice may update any CSR subresource, but holds no signer permission."""

    def authorize(self, attrs):
        if attrs.user.name == "alice" and attrs.resource == "certificatesigningrequests":
            return Decision(ALLOW)
        return Decision(NO_OPINION)

    def rules_for(self, user, namespace):
        from k8py.apiserver.authz import Rules
        return Rules()


async def test_csr_approval_and_signing_need_signer_permissions(client):
    add_users(client.api)
    client.api.authorizer.add(AliceMayUpdateCSRs())
    masters = await client.post(CSRS, json=csr_body("root", "eve", ["system:masters"]), headers=HEADERS)
    assert masters.status == 403
    assert (await masters.json())["message"].endswith(
        "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed")
    assert (await client.post(CSRS, json=csr_body("c1", "bob"), headers=HEADERS)).status == 201
    csr = await (await client.get(f"{CSRS}/c1", headers=HEADERS)).json()
    csr["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "Mine", "message": "ok"}]}
    refused = await client.put(f"{CSRS}/c1/approval", json=csr, headers=ALICE)
    assert refused.status == 403
    assert (await refused.json())["message"] == ('certificatesigningrequests.certificates.k8s.io "c1" is forbidden: '
                                                 'user not permitted to approve requests with signerName '
                                                 '"kubernetes.io/kube-apiserver-client"')
    assert (await client.put(f"{CSRS}/c1/approval", json=csr, headers=HEADERS)).status == 200
    csr = await (await client.get(f"{CSRS}/c1", headers=HEADERS)).json()
    csr["status"]["certificate"] = base64.b64encode(b"not really").decode()
    refused = await client.put(f"{CSRS}/c1/status", json=csr, headers=ALICE)
    assert refused.status == 403 and "user not permitted to sign requests" in (await refused.json())["message"]
