"""Who is calling: request authentication, as kube-apiserver does it.

Authenticators are tried in upstream's order and the first that recognises
the request wins:

1. Client certificate (x509): a certificate signed by the cluster CA; the user
   is its CN, the groups its O values. The TLS context (pki.ssl_context)
   already refuses certificates from other CAs at the handshake; the check is
   repeated here against the CA file so that this module is correct on its
   own, and is cached per certificate so it costs a dictionary lookup.
2. Bearer token (`Authorization: Bearer T`, or for WebSocket requests the
   `base64url.bearer.authorization.k8s.io.<T>` subprotocol, which is how
   browsers and some clients send it): the static tokens first
   (--token-auth-file, --token), then the hooks added with
   add_token_authenticator (ServiceAccount JWTs).

Everyone authenticated also gets the group system:authenticated. No
credentials, or a token nobody recognises, gives None, which the server turns
into 401 Unauthorized (anonymous requests are not supported).

The server's --token is, as in k3s, the join secret agents present, not an
API credential: it becomes a bootstrap token (apiserver/bootstrap_tokens.py)
whose user may only request node certificates. `admin_token` here is a
static system:masters token for embedding (tests), never set from a flag.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("k8py.apiserver.authn")

ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
ADMIN_USER = "system:admin"
MASTERS_GROUP = "system:masters"
WEBSOCKET_TOKEN_PREFIX = "base64url.bearer.authorization.k8s.io."

_CERT_CACHE_SIZE = 1024


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, hash=False)


TokenAuthenticator = Callable[[str], "UserInfo | None"]


class Authenticator:
    def __init__(self, ca_cert_path: Path, tokens: dict[str, UserInfo]):
        self._ca = x509.load_pem_x509_certificate(Path(ca_cert_path).read_bytes())
        self._tokens = dict(tokens)
        self._token_authenticators: list[TokenAuthenticator] = []
        # DER bytes -> (user or None, not_before, not_after)
        self._cert_cache: dict[bytes, tuple[UserInfo | None, datetime.datetime, datetime.datetime]] = {}

    @classmethod
    def from_config(cls, pki, admin_token: str | None = None, token_file: Path | None = None) -> Authenticator:
        tokens = load_token_file(token_file) if token_file else {}
        if admin_token:
            tokens[admin_token] = UserInfo(ADMIN_USER, groups=(MASTERS_GROUP,))
        return cls(pki.ca_cert, tokens)

    def add_token_authenticator(self, fn: TokenAuthenticator) -> None:
        """Add a bearer-token check tried after the static tokens:
        fn(token) returns the user, or None when the token is not its kind."""
        self._token_authenticators.append(fn)

    def authenticate(self, request) -> UserInfo | None:
        user = self._from_client_cert(request)
        if user is None:
            token = bearer_token(request.headers)
            if token is not None:
                user = self.authenticate_token(token)
        return with_authenticated_group(user) if user else None

    def authenticate_token(self, token: str) -> UserInfo | None:
        user = self._tokens.get(token)
        if user is not None:
            return user
        for check in self._token_authenticators:
            user = check(token)
            if user is not None:
                return user
        return None

    def authenticate_certificate(self, der: bytes) -> UserInfo | None:
        """The user a DER client certificate stands for, or None when the
        cluster CA did not sign it for client use, or it is out of date."""
        cached = self._cert_cache.get(der)
        if cached is None:
            cached = self._check_certificate(der)
            if len(self._cert_cache) >= _CERT_CACHE_SIZE:
                self._cert_cache.clear()
            self._cert_cache[der] = cached
        user, not_before, not_after = cached
        now = datetime.datetime.now(datetime.timezone.utc)
        if user is None or not (not_before <= now <= not_after):
            return None
        return user

    def _from_client_cert(self, request) -> UserInfo | None:
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            return None
        der = ssl_object.getpeercert(binary_form=True)
        return self.authenticate_certificate(der) if der else None

    def _check_certificate(self, der: bytes):
        try:
            cert = x509.load_der_x509_certificate(der)
            cert.verify_directly_issued_by(self._ca)
        except (ValueError, TypeError, InvalidSignature):
            return None, cert_epoch(), cert_epoch()
        window = cert.not_valid_before_utc, cert.not_valid_after_utc
        if not _allows_client_auth(cert):
            return (None, *window)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names or not names[0].value:
            return (None, *window)
        groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
        return (UserInfo(str(names[0].value), groups=groups), *window)


def cert_epoch() -> datetime.datetime:
    return datetime.datetime.fromtimestamp(0, datetime.timezone.utc)


def _allows_client_auth(cert: x509.Certificate) -> bool:
    # As Go's x509 verification: no EKU extension means any usage.
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def bearer_token(headers) -> str | None:
    """The bearer token a request carries, or None."""
    auth = headers.get("Authorization", "").strip()
    if auth:
        parts = auth.split(" ", 2)
        if len(parts) >= 2 and parts[0].lower() == "bearer" and parts[1]:
            return parts[1]
        return None
    if headers.get("Upgrade", "").lower() == "websocket":
        for protocols in headers.getall("Sec-WebSocket-Protocol", ()):
            for protocol in protocols.split(","):
                protocol = protocol.strip()
                if protocol.startswith(WEBSOCKET_TOKEN_PREFIX):
                    encoded = protocol[len(WEBSOCKET_TOKEN_PREFIX):]
                    try:
                        token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
                    except (binascii.Error, UnicodeDecodeError):
                        return None
                    return token or None
    return None


def with_authenticated_group(user: UserInfo) -> UserInfo:
    if user.name == ANONYMOUS or ALL_AUTHENTICATED in user.groups or ALL_UNAUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, ALL_AUTHENTICATED), user.extra)


def load_token_file(path: Path) -> dict[str, UserInfo]:
    """Parse kube-apiserver's --token-auth-file: CSV lines of
    `token,user,uid[,"group1,group2"]`; further columns are ignored."""
    tokens: dict[str, UserInfo] = {}
    with open(path, newline="") as f:
        for line_number, record in enumerate(csv.reader(f), start=1):
            if not record:
                continue
            if len(record) < 3:
                raise ValueError(f"token file '{path}' must have at least 3 columns (token, user name, "
                                 f"user uid), found {len(record)} on line {line_number}")
            token, name, uid = record[0], record[1], record[2]
            if not token:
                log.warning("empty token in token file '%s', line %d", path, line_number)
                continue
            if token in tokens:
                log.warning("duplicate token in token file '%s', line %d: the later line wins",
                            path, line_number)
            groups = ()
            if len(record) >= 4 and record[3]:
                groups = tuple(g.strip() for g in record[3].split(",") if g.strip())
            tokens[token] = UserInfo(name, uid, groups)
    return tokens
