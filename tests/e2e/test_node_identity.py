"""Node identities: an agent joins with the join token, gets its certificates through
approved CSRs, and its kubelet credentials reach only what its own pods use."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, TOKEN, kubectl_binary, wait_for
from k8py.apimachinery.bootstraptoken import bearer


def kubeconfig_for(server, cert: Path, key: Path, path: Path) -> Path:
    ca = server.data_dir / "server" / "tls" / "server-ca.crt"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server.url, "certificate-authority": str(ca)}}],
        "users": [{"name": "u", "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return path


def kubectl_as(server, kubeconfig: Path, *args, input: str | None = None):
    return subprocess.run([kubectl_binary(), f"--kubeconfig={kubeconfig}", f"--cache-dir={server.cache_dir}", *args],
                          input=input, capture_output=True, text=True, timeout=60)


def raw_get(server, path: str, token: str) -> int:
    return raw_request(server, "GET", path, token=token)[0]


def raw_request(server, method: str, path: str, body: dict | None = None, token: str | None = None,
                cert: tuple[Path, Path] | None = None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "server" / "tls" / "server-ca.crt"))
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(*map(str, cert))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/merge-patch+json" if method == "PATCH" else "application/json"
    request = urllib.request.Request(server.url + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def agent(server, tmp_path_factory):
    """Two hollow nodes from one agent, each with its own kubelet certificate."""
    tmp = tmp_path_factory.mktemp("node-identity")
    prefix = f"ident-{tmp.name[-4:].lower().replace('_', '')}"
    log = open(tmp / "agent.log", "wb")
    argv = [sys.executable, "-m", "k8py", "agent", "--server", server.url, "--token", TOKEN, "--runtime", "simulated",
            "--count", "2", "--node-name", prefix, "--data-dir", str(tmp / "agent")]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    names = [f"{prefix}-0", f"{prefix}-1"]
    try:
        def ready():
            out = json.loads(server.kubectl("get", "nodes", "-o", "json").stdout)["items"]
            return {n["metadata"]["name"] for n in out} >= set(names)
        wait_for(lambda: proc.poll() is not None or ready(), timeout=60, what="agent nodes registered")
        assert proc.poll() is None, (tmp / "agent.log").read_text()[-3000:]
        tls = tmp / "agent" / "tls"
        configs = {name: kubeconfig_for(server, tls / name / "client-kubelet.crt", tls / name / "client-kubelet.key",
                                        tmp / f"{name}.kubeconfig") for name in names}
        state = {"names": names, "kubeconfigs": configs, "proc": proc, "argv": argv, "tmp": tmp, "tls": tls}
        yield state
        proc = state["proc"]        # a test may have restarted it
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for name in names:
            server.kubectl("delete", "node", name, "--wait=false", check=False)


def test_agent_joins_through_approved_csrs(server, agent):
    csrs = json.loads(server.kubectl("get", "csr", "-o", "json").stdout)["items"]
    token_id = bearer(TOKEN).split(".")[0]
    mine = {c["metadata"]["name"]: c for c in csrs if c["spec"]["username"] == f"system:bootstrap:{token_id}"}
    kubelet_csrs = [c for c in mine.values() if c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"]
    assert len(kubelet_csrs) >= 2
    # kube-proxy is a ServiceAccount (kubeadm's way), not a certificate the join token asked for
    assert not any(c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client" for c in mine.values())
    for csr in kubelet_csrs:
        approved = [c for c in csr["status"]["conditions"] if c["type"] == "Approved"]
        assert approved and approved[0]["reason"] == "AutoApproved"
        assert csr["status"]["certificate"]
    table = server.kubectl("get", "csr", kubelet_csrs[0]["metadata"]["name"]).stdout
    assert "Approved,Issued" in table and "kubernetes.io/kube-apiserver-client-kubelet" in table
    # The certificate is the node's identity.
    who = kubectl_as(server, agent["kubeconfigs"][agent["names"][0]], "auth", "whoami", "-o", "json")
    assert who.returncode == 0, who.stderr
    user = json.loads(who.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:node:{agent['names'][0]}" and "system:nodes" in user["groups"]


def test_bootstrap_token_only_requests_certificates(server, agent):
    token = bearer(TOKEN)
    assert raw_get(server, "/api/v1/pods", token) == 403
    assert raw_get(server, "/api/v1/namespaces/kube-system/secrets", token) == 403
    assert raw_get(server, "/apis/certificates.k8s.io/v1/certificatesigningrequests", token) == 200
    assert raw_get(server, "/api/v1/pods", "e2e-wrong-token") == 401
    # ... and kube-proxy's tokens (kube-system/kube-proxy), no other account's
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    path = "/api/v1/namespaces/kube-system/serviceaccounts/{}/token"
    code, body = raw_request(server, "POST", path.format("kube-proxy"), request, token=token)
    assert code == 201, body
    proxy_token = body["status"]["token"]
    code, body = raw_request(server, "POST", path.format("default"), request, token=token)
    assert code == 403 and body["message"].startswith(
        'serviceaccounts "default" is forbidden: User "system:bootstrap:'), body
    # that token is kube-proxy's role (system:node-proxier) and nothing more
    assert raw_get(server, "/apis/discovery.k8s.io/v1/endpointslices", proxy_token) == 200
    assert raw_get(server, "/api/v1/nodes", proxy_token) == 200
    assert raw_get(server, "/api/v1/secrets", proxy_token) == 403
    assert raw_get(server, "/api/v1/pods", proxy_token) == 403


def test_kubelet_reads_only_what_its_pods_use(server, namespace, agent):
    mine, other = agent["names"]
    for name in ("mine", "theirs", "unused"):
        server.kubectl("create", "secret", "generic", name, "-n", namespace, "--from-literal=k=v")
    for pod, node, secret in (("p-mine", mine, "mine"), ("p-theirs", other, "theirs")):
        server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                     "volumes": [{"name": "s", "secret": {"secretName": secret}}]}}))
    kc = agent["kubeconfigs"][mine]
    wait_for(lambda: kubectl_as(server, kc, "get", "secret", "mine", "-n", namespace).returncode == 0,
             timeout=20, what="the node reads its pod's secret")
    for secret in ("theirs", "unused"):
        denied = kubectl_as(server, kc, "get", "secret", secret, "-n", namespace)
        assert denied.returncode != 0
        assert (f'secrets "{secret}" is forbidden: User "system:node:{mine}" cannot get resource "secrets" in API '
                f'group "" in the namespace "{namespace}": no relationship found between node \'{mine}\' and this '
                f'object') in denied.stderr
    assert "Forbidden" in kubectl_as(server, kc, "get", "pods", "-A").stderr
    assert kubectl_as(server, kc, "get", "pods", "-A", f"--field-selector=spec.nodeName={mine}").returncode == 0
    assert kubectl_as(server, kc, "get", "pod", "p-mine", "-n", namespace).returncode == 0
    assert "no relationship found" in kubectl_as(server, kc, "get", "pod", "p-theirs", "-n", namespace).stderr
    # A token only for its own pods' service accounts, bound to one of its pods.
    uid = server.kubectl_json("get", "pod", "p-theirs", "-n", namespace)["metadata"]["uid"]
    stolen = kubectl_as(server, kc, "create", "token", "default", "-n", namespace, "--bound-object-kind=Pod",
                        "--bound-object-name=p-theirs", f"--bound-object-uid={uid}")
    assert stolen.returncode != 0 and "node requested token bound to a pod scheduled on a different node" \
        in stolen.stderr


def test_kubelet_cannot_change_other_nodes(server, agent):
    mine, other = agent["names"]
    kc = agent["kubeconfigs"][mine]
    # Reading another Node is refused by the Node authorizer, writing it by NodeRestriction.
    label = kubectl_as(server, kc, "label", "node", other, "hijacked=yes")
    assert f"node '{mine}' cannot read '{other}', only its own Node object" in label.stderr
    cert = (agent["tls"] / mine / "client-kubelet.crt", agent["tls"] / mine / "client-kubelet.key")
    code, status = raw_request(server, "PATCH", f"/api/v1/nodes/{other}",
                               {"metadata": {"labels": {"hijacked": "yes"}}}, cert=cert)
    assert code == 403, status
    assert status["message"] == f'nodes "{other}" is forbidden: node "{mine}" is not allowed to modify node "{other}"'
    code, status = raw_request(server, "PATCH", f"/api/v1/nodes/{other}/status",
                               {"status": {"conditions": []}}, cert=cert)
    assert code == 403, status
    role = kubectl_as(server, kc, "label", "node", mine, "node-role.kubernetes.io/control-plane=")
    assert role.returncode != 0 and "is not allowed to modify labels: node-role.kubernetes.io/control-plane" \
        in role.stderr
    assert kubectl_as(server, kc, "label", "node", mine, "example.com/ok=yes").returncode == 0
    deleted = kubectl_as(server, kc, "delete", "node", mine, "--wait=false")
    assert deleted.returncode != 0 and "Forbidden" in deleted.stderr
    assert "hijacked" not in server.kubectl_json("get", "node", other)["metadata"].get("labels", {})
    assert server.kubectl("get", "node", mine).returncode == 0


def test_token_of_a_deleted_pod_is_refused(server, namespace):
    server.kubectl("create", "serviceaccount", "runner", "-n", namespace)
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "holder"},
        "spec": {"serviceAccountName": "runner", "containers": [{"name": "c", "image": "busybox"}]}}))
    uid = server.kubectl_json("get", "pod", "holder", "-n", namespace)["metadata"]["uid"]
    token = server.kubectl("create", "token", "runner", "-n", namespace, "--bound-object-kind=Pod",
                           "--bound-object-name=holder", f"--bound-object-uid={uid}").stdout.strip()
    assert raw_get(server, "/apis", token) == 200
    server.kubectl("delete", "pod", "holder", "-n", namespace, "--grace-period=0", "--force")
    wait_for(lambda: raw_get(server, "/apis", token) == 401, timeout=10, what="the pod's token refused")


def test_restarted_agent_reuses_its_certificates(server, agent):
    before = {p: p.read_bytes() for p in agent["tls"].rglob("*.crt")}
    count = len(json.loads(server.kubectl("get", "csr", "-o", "json").stdout)["items"])
    agent["proc"].terminate()
    agent["proc"].wait(10)
    log = open(agent["tmp"] / "agent-2.log", "wb")
    agent["proc"] = proc = subprocess.Popen(agent["argv"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def ready_again():
        lease = json.loads(server.kubectl("get", "lease", "-n", "kube-node-lease", agent["names"][0],
                                          "-o", "json").stdout)
        return proc.poll() is not None or lease["spec"]["renewTime"] > started
    started = json.loads(server.kubectl("get", "lease", "-n", "kube-node-lease", agent["names"][0],
                                        "-o", "json").stdout)["spec"]["renewTime"]
    wait_for(ready_again, timeout=60, what="the restarted agent renews its lease")
    assert proc.poll() is None, (agent["tmp"] / "agent-2.log").read_text()[-3000:]
    assert {p: p.read_bytes() for p in agent["tls"].rglob("*.crt")} == before
    assert len(json.loads(server.kubectl("get", "csr", "-o", "json").stdout)["items"]) == count
