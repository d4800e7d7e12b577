"""The admin kubeconfig the server writes on start (k3s's k3s.yaml).

The current context authenticates with the admin client certificate
(CN=system:admin, O=system:masters), embedded as data so the file is usable
on its own. When the server has a static token, a second user and context
named `<user>-token` / `<context>-token` carry it, so the token can be tried
with `kubectl --context default-token`. (Passing `--token` to kubectl with the
default context sends the client certificate too, and the apiserver, as
upstream, authenticates the certificate first.)
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from k8py.apiserver.pki import PKI, write_atomic


def kubeconfig_dict(server_url: str, pki: PKI, token: str | None = None, user: str = "default",
                    cluster: str = "default", context: str = "default") -> dict:
    users = [{"name": user, "user": {"client-certificate-data": _b64(pki.admin_cert),
                                     "client-key-data": _b64(pki.admin_key)}}]
    contexts = [{"name": context, "context": {"cluster": cluster, "user": user}}]
    if token:
        users.append({"name": f"{user}-token", "user": {"token": token}})
        contexts.append({"name": f"{context}-token", "context": {"cluster": cluster, "user": f"{user}-token"}})
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server_url,
                                                   "certificate-authority-data": _b64(pki.ca_cert)}}],
        "contexts": contexts,
        "current-context": context,
        "preferences": {},
        "users": users,
    }


def write_kubeconfig(path: Path, server_url: str, pki: PKI, token: str | None = None, user: str = "default",
                     cluster: str = "default", context: str = "default") -> Path:
    """Write the kubeconfig to path with mode 0600, atomically: a reader sees
    either the old file or the whole new one."""
    path = Path(path)
    text = yaml.safe_dump(kubeconfig_dict(server_url, pki, token, user, cluster, context),
                          sort_keys=False, default_flow_style=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode(), 0o600)
    return path


def _b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")
