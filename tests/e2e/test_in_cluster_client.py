"""A client inside a pod: kubectl in a runc container, authorized by its ServiceAccount's roles.

The image is busybox plus the static kubectl binary, imported into the node's
image store. The pod runs with its own ServiceAccount; kubectl inside it uses
the in-cluster config (KUBERNETES_SERVICE_HOST/PORT, the projected token,
ca.crt and namespace under /var/run/secrets/kubernetes.io/serviceaccount) and
also reaches https://kubernetes.default.svc by name through cluster DNS and
the Service VIP. Runs on a whole node in a network namespace (netns_cluster.py).
"""

from __future__ import annotations

import base64
import json
import os
import shutil

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from k8py.kubelet.images.archive import import_rootfs
from k8py.kubelet.images.store import ImageStore
from tests.e2e.conftest import wait_for
from tests.e2e.netns_cluster import NodeInNamespace
from tests.kubectl import kubectl_binary

pytest_plugins = ["tests.e2e.registry"]     # registry_script: builds the busybox root filesystem

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="containers and network namespaces need root"),
    pytest.mark.host_network,   # a netns-cluster node: one at a time (docs/testing.md)
]

IMAGE = "k8py.test/kubectl:1.32"
NAMESPACE = "incluster"
ACCOUNT = "reader"
USER = f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
CONTAINERS = {"kubectl": "token", "ca": "ca.crt", "ns": "namespace"}   # container -> the file it reads


class NodeWithLocalImages(NodeInNamespace):
    """The node without the test registry: its only image is imported into its store."""

    def start_registry(self):
        (self.data / "agent").mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def node(tmp_path_factory, registry_script):
    root = tmp_path_factory.mktemp("kubectl-image")
    config = registry_script.build_busybox(root)
    shutil.copy2(kubectl_binary("1.32"), root / "bin" / "kubectl")
    n = NodeWithLocalImages(tmp_path_factory.mktemp("netnscluster"))
    try:
        import_rootfs(ImageStore(n.data / "agent" / "images"), root, IMAGE, config)
        n.up()
        yield n
    finally:
        n.down()


@pytest.fixture(scope="module")
def client_pod(node):
    node.kubectl("create", "namespace", NAMESPACE)
    wait_for(lambda: node.kubectl("get", "serviceaccount", "default", "-n", NAMESPACE, check=False).returncode == 0,
             timeout=30, what="the default ServiceAccount")
    node.kubectl("create", "serviceaccount", ACCOUNT, "-n", NAMESPACE)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": NAMESPACE},
           "spec": {"serviceAccountName": ACCOUNT, "terminationGracePeriodSeconds": 0,
                    # one container per file of the token mount, as upstream's AutoMount check
                    "containers": [{"name": name, "image": IMAGE, "imagePullPolicy": "Never",
                                    "command": ["sleep", "3600"]} for name in CONTAINERS]}}
    node.kubectl("create", "-f", "-", input=json.dumps(pod))
    wait_for(lambda: node.kubectl_json("get", "pod", "client", "-n", NAMESPACE)["status"].get("phase") == "Running",
             timeout=90, interval=0.3, what="the client pod running")
    return "client"


def in_pod(node, pod: str, *argv: str, container: str = "kubectl"):
    """Run a command in a container of the pod through the API (kubectl exec): the container's own environment."""
    return node.kubectl("exec", pod, "-n", NAMESPACE, "-c", container, "--", *argv, check=False)


def test_in_cluster_config_is_authorized_by_the_accounts_roles(node, client_pod):
    # The projected service-account volume and the service environment are there.
    env = in_pod(node, client_pod, "env").stdout
    service_ip = node.kubectl_json("get", "service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
    assert f"KUBERNETES_SERVICE_HOST={service_ip}" in env and "KUBERNETES_SERVICE_PORT=443" in env, env
    assert in_pod(node, client_pod, "cat", f"{SA_DIR}/namespace").stdout == NAMESPACE

    # Who the pod is: its account, with the pod it is bound to (SelfSubjectReview).
    whoami = in_pod(node, client_pod, "kubectl", "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    info = json.loads(whoami.stdout)["status"]["userInfo"]
    assert info["username"] == USER
    assert info["extra"]["authentication.kubernetes.io/pod-name"] == [client_pod]
    assert set(info["groups"]) == {"system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}",
                                   "system:authenticated"}

    # Nothing granted yet: forbidden, worded as upstream.
    refused = in_pod(node, client_pod, "kubectl", "get", "pods")
    assert refused.returncode != 0
    assert (f'Error from server (Forbidden): pods is forbidden: User "{USER}" cannot list resource "pods" in API '
            f'group "" in the namespace "{NAMESPACE}"') in refused.stderr, refused.stderr

    # A Role in its namespace grants exactly list/get pods there.
    node.kubectl("create", "role", "pod-lister", "--verb=get,list", "--resource=pods", "-n", NAMESPACE)
    node.kubectl("create", "rolebinding", "pod-lister", "--role=pod-lister",
                 f"--serviceaccount={NAMESPACE}:{ACCOUNT}", "-n", NAMESPACE)
    listed = in_pod(node, client_pod, "kubectl", "get", "pods", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [f"pod/{client_pod}"]
    elsewhere = in_pod(node, client_pod, "kubectl", "get", "pods", "-n", "kube-system")
    assert (f'User "{USER}" cannot list resource "pods" in API group "" in the namespace "kube-system"'
            in elsewhere.stderr), elsewhere.stderr
    secrets = in_pod(node, client_pod, "kubectl", "get", "secrets")
    assert f'User "{USER}" cannot list resource "secrets" in API group ""' in secrets.stderr, secrets.stderr
    deleted = in_pod(node, client_pod, "kubectl", "delete", "pod", client_pod)
    assert f'User "{USER}" cannot delete resource "pods"' in deleted.stderr, deleted.stderr


def test_the_api_by_its_service_name(node, client_pod):
    """https://kubernetes.default.svc: cluster DNS gives the VIP, kube-proxy forwards it, and the
    serving certificate names it (kubectl verifies it against the pod's ca.crt)."""
    script = (f"kubectl --server=https://kubernetes.default.svc --certificate-authority={SA_DIR}/ca.crt "
              f"--token=$(cat {SA_DIR}/token) auth can-i --list")
    out = in_pod(node, client_pod, "sh", "-c", script)
    assert out.returncode == 0, out.stderr
    assert "selfsubjectreviews.authentication.k8s.io" in out.stdout
    nslookup = in_pod(node, client_pod, "nslookup", "kubernetes.default.svc.cluster.local")
    service_ip = node.kubectl_json("get", "service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
    assert f"Address: {service_ip}" in nslookup.stdout, nslookup.stdout


def test_service_account_token_mount_in_every_container(node, client_pod):
    """Conformance: Service Account Tokens Must AutoMount; TokenRequestProjection."""
    pod = node.kubectl_json("get", "pod", client_pod, "-n", NAMESPACE)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    for container in pod["spec"]["containers"]:
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == SA_DIR)
        assert mount["readOnly"] is True
        # the projected volume: a TokenRequest token, the cluster CA, the namespace
        sources = volumes[mount["name"]]["projected"]["sources"]
        assert sources[0]["serviceAccountToken"]["path"] == "token"
        assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
        assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    ca = (node.data / "server" / "tls" / "server-ca.crt").read_text()
    expected = {"token": None, "ca.crt": ca, "namespace": NAMESPACE}
    for container, name in CONTAINERS.items():
        content = in_pod(node, client_pod, "cat", f"{SA_DIR}/{name}", container=container).stdout
        assert content and (expected[name] is None or content.strip() == expected[name].strip()), (container, name)
    token = in_pod(node, client_pod, "cat", f"{SA_DIR}/token").stdout
    claims = jwt_claims(token)
    assert claims["kubernetes.io"]["pod"]["name"] == client_pod
    assert claims["sub"] == USER


def test_pod_verifies_its_token_with_oidc_discovery(node, client_pod):
    """Conformance: OIDC Discovery (ServiceAccountIssuerDiscovery). Inside the pod, the account reads
    the issuer's discovery document and keys (system:service-account-issuer-discovery); its own token
    verifies against them."""
    discovery = in_pod(node, client_pod, "kubectl", "get", "--raw", "/.well-known/openid-configuration")
    assert discovery.returncode == 0, discovery.stderr
    config = json.loads(discovery.stdout)
    jwks = in_pod(node, client_pod, "kubectl", "get", "--raw", "/openid/v1/jwks")
    assert jwks.returncode == 0, jwks.stderr
    assert config["jwks_uri"].endswith("/openid/v1/jwks") and "RS256" in config["id_token_signing_alg_values_supported"]
    token = in_pod(node, client_pod, "cat", f"{SA_DIR}/token").stdout
    claims = jwt_claims(token)
    assert claims["iss"] == config["issuer"]
    verify_rs256(token, json.loads(jwks.stdout)["keys"])


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_claims(token: str) -> dict:
    return json.loads(_b64(token.split(".")[1]))


def verify_rs256(token: str, keys: list[dict]) -> None:
    """Raise unless one of the JWKS keys (by kid) signed the token."""
    header, payload, signature = token.split(".")
    kid = json.loads(_b64(header))["kid"]
    jwk = next(k for k in keys if k["kid"] == kid)
    public = rsa.RSAPublicNumbers(int.from_bytes(_b64(jwk["e"]), "big"), int.from_bytes(_b64(jwk["n"]), "big"))
    public.public_key().verify(_b64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
