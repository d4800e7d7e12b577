"""Bootstrap tokens (`<id>.<secret>`) and how a k3s-style join token maps onto one.

Upstream's bootstrap tokens live in kube-system as Secrets named
`bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`; a request
bearing `<id>.<secret>` authenticates as `system:bootstrap:<id>` in the group
`system:bootstrappers`.

k3s lets `--token` be any string (or `K10<ca-hash>::<user>:<password>`). k8py
maps such a join token onto a bootstrap token, the same way on the server and
on every agent:
- a token already of the form `[a-z0-9]{6}.[a-z0-9]{16}` is used as it is;
- `K10<hash>::<user>:<password>` stands for its password part;
- any other string S becomes id = sha256("k8py-join-token\\0" + S)[0:6] and
  secret = the next 16 hex digits of that digest.
The server creates (and keeps) the Secret for it; the plain string never
authenticates on its own.
"""

from __future__ import annotations

import hashlib
import re

TOKEN_PATTERN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
SECRET_NAMESPACE = "kube-system"
USER_PREFIX = "system:bootstrap:"
BOOTSTRAPPERS_GROUP = "system:bootstrappers"
JOIN_TOKEN_GROUP = "system:bootstrappers:k8py:default-node-token"


def from_join_token(join_token: str) -> tuple[str, str]:
    """(token id, token secret) for a join token as given to `--token`."""
    token = join_token.strip()
    if token.startswith("K10") and "::" in token:
        token = token.split("::", 1)[1].split(":", 1)[-1]
    matched = TOKEN_PATTERN.match(token)
    if matched:
        return matched.group(1), matched.group(2)
    digest = hashlib.sha256(b"k8py-join-token\0" + token.encode()).hexdigest()
    return digest[:6], digest[6:22]


def bearer(join_token: str) -> str:
    """The bearer token an agent presents for a join token."""
    token_id, secret = from_join_token(join_token)
    return f"{token_id}.{secret}"
