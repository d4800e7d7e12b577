"""ServiceAccount tokens: signed JWTs, issued by TokenRequest and checked on use.

Tokens are RS256 JWTs signed with the cluster's service-account key
(`server/tls/service.key`, as k3s names it), carrying upstream's claims: the
issuer, `sub` = system:serviceaccount:<ns>:<name>, audiences, expiry, and a
`kubernetes.io` claim naming the ServiceAccount (and the Pod or Secret the
token is bound to). A token is only good while everything it names still
exists with the same UID, so deleting the pod revokes its token.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from k8py.apiserver.authn import UserInfo

SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 2 ** 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key


class ServiceAccountTokens:
    """Issue and verify bound ServiceAccount tokens.

    `lookup(plural, namespace, name)` returns the live object or None; it is how
    a token's references are checked without this module knowing the store.
    """

    def __init__(self, key: rsa.RSAPrivateKey, issuer: str, api_audiences: list[str], lookup):
        self.key = key
        self.public_key = key.public_key()
        der = self.public_key.public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = _b64(hashlib.sha256(der).digest())
        self.issuer = issuer
        self.api_audiences = api_audiences
        self.lookup = lookup

    # ---- issuing ------------------------------------------------------------

    def issue(self, service_account: dict, audiences: list[str], expiration_seconds: int,
              bound: dict | None = None, node: dict | None = None) -> tuple[str, int]:
        """A signed token and its expiry (unix seconds)."""
        now = int(time.time())
        expires = now + expiration_seconds
        meta = service_account["metadata"]
        private = {"namespace": meta["namespace"],
                   "serviceaccount": {"name": meta["name"], "uid": meta["uid"]}}
        if bound is not None:
            kind = bound["kind"].lower()
            private[kind] = {"name": bound["metadata"]["name"], "uid": bound["metadata"]["uid"]}
        if node is not None:
            private["node"] = {"name": node["metadata"]["name"], "uid": node["metadata"]["uid"]}
        claims = {"aud": audiences or self.api_audiences, "exp": expires, "iat": now, "nbf": now,
                  "iss": self.issuer, "jti": str(uuid.uuid4()), "kubernetes.io": private,
                  "sub": f"{SA_PREFIX}{meta['namespace']}:{meta['name']}"}
        return self._sign(claims), expires

    def _sign(self, claims: dict) -> str:
        header = _b64(orjson.dumps({"alg": "RS256", "kid": self.key_id}))
        payload = _b64(orjson.dumps(claims))
        signing_input = f"{header}.{payload}".encode()
        signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64(signature)}"

    # ---- checking -----------------------------------------------------------

    def claims(self, token: str) -> dict | None:
        """The verified claims of one of our tokens, or None (not ours, tampered, malformed)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            if not isinstance(header, dict) or header.get("alg") != "RS256":
                return None
            self.public_key.verify(_unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                                   hashes.SHA256())
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature, orjson.JSONDecodeError):
            return None
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            return None
        return claims

    def review(self, token: str, audiences: list[str] | None = None) -> tuple[UserInfo | None, list[str], str]:
        """(user, audiences it is good for, error) as a TokenReview reports them."""
        claims = self.claims(token)
        if claims is None:
            return None, [], ""
        now = time.time()
        if claims.get("exp", 0) < now:
            return None, [], "service account token has expired"
        if claims.get("nbf", 0) > now + 60:
            return None, [], "service account token is not valid yet"
        token_audiences = claims.get("aud") or []
        if isinstance(token_audiences, str):
            token_audiences = [token_audiences]
        wanted = audiences or self.api_audiences
        matched = [a for a in wanted if a in token_audiences]
        if not matched:
            return None, [], "token audiences " + _go_list(token_audiences) + \
                " is invalid for the target audiences " + _go_list(wanted)
        private = claims.get("kubernetes.io") or {}
        namespace = private.get("namespace", "")
        sa_ref = private.get("serviceaccount") or {}
        problem = self._stale(private, namespace)
        if problem:
            return None, [], problem
        extra = {"authentication.kubernetes.io/credential-id": [f"JTI={claims.get('jti', '')}"]}
        for kind in ("pod", "node"):
            if kind in private:
                extra[f"authentication.kubernetes.io/{kind}-name"] = [private[kind]["name"]]
                extra[f"authentication.kubernetes.io/{kind}-uid"] = [private[kind]["uid"]]
        user = UserInfo(f"{SA_PREFIX}{namespace}:{sa_ref.get('name', '')}", uid=sa_ref.get("uid", ""),
                        groups=(SA_GROUP, f"{SA_GROUP}:{namespace}"), extra=extra)
        return user, matched, ""

    def _stale(self, private: dict, namespace: str) -> str:
        for kind, plural, scoped in (("serviceaccount", "serviceaccounts", True), ("pod", "pods", True),
                                     ("secret", "secrets", True), ("node", "nodes", False)):
            ref = private.get(kind)
            if ref is None:
                continue
            live = self.lookup(plural, namespace if scoped else "", ref.get("name", ""))
            if live is None:
                return f"{plural} \"{ref.get('name', '')}\" not found"
            if live["metadata"].get("uid") != ref.get("uid"):
                return f"{kind} UID ({live['metadata'].get('uid')}) does not match claim ({ref.get('uid')})"
        return ""

    def authenticate(self, token: str) -> UserInfo | None:
        """The authenticator hook: a token for the API server's own audiences."""
        user, _, _ = self.review(token)
        return user


def _go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"
