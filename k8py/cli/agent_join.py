"""How `k8py agent --token T` joins: the kubelet TLS bootstrap, k3s-style.

1. The join token becomes a bootstrap token (apimachinery/bootstraptoken.py);
   with it the agent reads the cluster CA (kube-public/kube-root-ca.crt; a
   `K10<sha256>::...` token pins it, as k3s's does; `--ca-file` skips this).
2. The kubelet's client certificate (CN system:node:<name>, O system:nodes)
   comes from a CSR for kubernetes.io/kube-apiserver-client-kubelet, which the
   controller-manager's csrapproving approves (the bootstrapper may create
   certificatesigningrequests/nodeclient) and csrsigning signs.
3. kube-proxy runs as the ServiceAccount kube-system/kube-proxy, as kubeadm's
   kube-proxy does (bound to system:node-proxier by k8py:node-proxier): the join
   token may create that account's tokens (TokenRequest; the Role
   k8py:kube-proxy-token-requester), and a new one is asked for at 80% of its
   life. The agent's network side (peer routes) uses it too: nodes read only
   their own Node.
The kubelet's pair is kept in `<data-dir>/tls` (client-kubelet.*), reused on
restart and renewed by the node itself (selfnodeclient) at 70-90% of its life.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from k8py.apimachinery.bootstraptoken import bearer
from k8py.client import ApiError, Client
from k8py.client.certificates import KUBELET_CLIENT_SIGNER, CertificateRefused, ClientCertificate, Identity
from k8py.client.sa_tokens import ServiceAccountToken, client_as

log = logging.getLogger("k8py.agent")

KUBE_PROXY_USER = "system:kube-proxy"
# kubeadm's kube-proxy identity; a joined agent's kube-proxy runs as it
KUBE_PROXY_ACCOUNT = ("kube-system", "kube-proxy")


class JoinError(Exception):
    pass


@dataclass
class Joined:
    ca_file: Path
    bootstrap: Client
    network: Client         # kube-proxy's identity
    certificates: list[ClientCertificate] = field(default_factory=list)
    tokens: list[ServiceAccountToken] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)

    async def close(self) -> None:
        for cert in self.certificates:
            await cert.stop()
        for token in self.tokens:
            await token.stop()
        for client in [*self.clients, self.network, self.bootstrap]:
            if client is not None:
                await client.close()


def ca_hash_of(join_token: str) -> str | None:
    """The CA digest a k3s secure token (K10<sha256>::<user>:<password>) pins."""
    if join_token.startswith("K10") and "::" in join_token:
        return join_token[3:join_token.index("::")].lower()
    return None


async def fetch_cluster_ca(server: str, join_token: str, folder: Path) -> Path:
    """Read the cluster CA with the join token, check it against the token's pin, keep it."""
    client = Client(server, token=bearer(join_token), insecure=True, user_agent="k8py-agent-bootstrap")
    try:
        for attempt in range(60):
            try:
                configmap = await client.resource("v1", "configmaps", "kube-public").get("kube-root-ca.crt")
                break
            except ApiError as e:
                if e.code != 404 or attempt == 59:      # 404: the CA publisher has not run yet
                    raise JoinError(f"cannot read the cluster CA with the join token: {e}") from None
                await asyncio.sleep(1)
            except (aiohttp.ClientError, OSError) as e:
                raise JoinError(f"cannot reach {server}: {e}") from None
    finally:
        await client.close()
    ca = (configmap.get("data") or {}).get("ca.crt", "")
    pinned = ca_hash_of(join_token)
    if pinned and hashlib.sha256(ca.encode()).hexdigest() != pinned:
        raise JoinError("the cluster CA does not match the hash in the join token")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "server-ca.crt"
    path.write_text(ca)
    return path


async def join(server: str, join_token: str, data_dir: Path, node_names: list[str], ca_file: Path | None = None,
               cert_seconds: int | None = None) -> tuple[Joined, dict[str, Client]]:
    """Credentials for the agent: (shared parts, a kubelet client per node name)."""
    tls = data_dir / "tls"
    ca_file = ca_file or await fetch_cluster_ca(server, join_token, tls)
    bootstrap = Client(server, token=bearer(join_token), ca_file=str(ca_file), user_agent="k8py-agent-bootstrap")
    joined = Joined(ca_file, bootstrap, network=None)
    try:
        joined.network, proxy_token = await client_as(bootstrap, *KUBE_PROXY_ACCOUNT, "k8py-kube-proxy")
        joined.tokens.append(proxy_token)
        kubelets = {}
        for name in node_names:
            cert = ClientCertificate(tls if len(node_names) == 1 else tls / name, "client-kubelet", Identity(
                f"system:node:{name}", ["system:nodes"], KUBELET_CLIENT_SIGNER, "node-csr-", cert_seconds))
            await cert.ensure(bootstrap)
            client = _client(server, ca_file, cert, "k8py-kubelet")
            cert.start_rotation(client)         # renewals are the node's own (selfnodeclient)
            joined.certificates.append(cert)
            joined.clients.append(client)
            kubelets[name] = client
    except (ApiError, CertificateRefused, asyncio.TimeoutError, aiohttp.ClientError, OSError) as e:
        await joined.close()
        what = "timed out waiting for a certificate (is the controller-manager with csrapproving and " \
               "csrsigning running?)" if isinstance(e, asyncio.TimeoutError) else str(e)
        raise JoinError(f"joining failed: {what}") from None
    except BaseException:
        await joined.close()
        raise
    return joined, kubelets


def _client(server: str, ca_file: Path, cert: ClientCertificate, agent: str) -> Client:
    client = Client(server, ca_file=str(ca_file), cert_file=str(cert.cert_file), key_file=str(cert.key_file),
                    user_agent=agent)
    cert.clients.append(client)
    return client


def server_node_clients(server: str, ca_dir: Path, node_name: str) -> tuple[Client, Client]:
    """The server's own agent: its kubelet and network clients, with client certificates the
    server's CA signs directly (kept beside the other components' in <data-dir>/server/tls)."""
    from k8py.apiserver import pki as pki_mod
    pki = pki_mod.pki_paths(ca_dir)
    kubelet = pki_mod.ensure_client_cert(pki, "client-kubelet", f"system:node:{node_name}", ["system:nodes"])
    proxy = pki_mod.ensure_client_cert(pki, "client-agent-kube-proxy", KUBE_PROXY_USER)
    return tuple(Client(server, ca_file=str(pki.ca_cert), cert_file=str(cert), key_file=str(key), user_agent=agent)
                 for (cert, key), agent in ((kubelet, "k8py-kubelet"), (proxy, "k8py-kube-proxy")))
