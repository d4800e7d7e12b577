"""Bootstrap-token authentication, and the Secret behind the server's join token.

A bearer token `<id>.<secret>` is checked against the Secret
kube-system/bootstrap-token-<id> (type bootstrap.kubernetes.io/token): the
secret must match, `usage-bootstrap-authentication` must be "true", and the
token must not have passed its `expiration`. The user is
`system:bootstrap:<id>` in `system:bootstrappers` plus the Secret's
`auth-extra-groups` (each under `system:bootstrappers:`), as upstream.

`k8py server --token T` keeps such a Secret for T (see
apimachinery/bootstraptoken.py for how an arbitrary T maps onto one); agents
join with it and may do no more than the bootstrapper rules allow.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import logging

from k8py.apimachinery import errors
from k8py.apimachinery.bootstraptoken import (BOOTSTRAPPERS_GROUP, JOIN_TOKEN_GROUP, SECRET_NAMESPACE,
                                              SECRET_PREFIX, SECRET_TYPE, TOKEN_PATTERN, USER_PREFIX,
                                              from_join_token)
from k8py.apiserver.authn import UserInfo

log = logging.getLogger("k8py.apiserver.bootstrap_tokens")


def _field(secret: dict, key: str) -> str:
    value = (secret.get("data") or {}).get(key)
    if value is None:
        return ""
    try:
        return base64.b64decode(value).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


def _expired(expiration: str) -> bool:
    if not expiration:
        return False
    try:
        when = datetime.datetime.fromisoformat(expiration.replace("Z", "+00:00"))
    except ValueError:
        return True     # upstream treats an unparsable expiration as expired
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when <= datetime.datetime.now(datetime.timezone.utc)


class BootstrapTokenAuthenticator:
    """The token hook: `lookup(plural, namespace, name)` reads live objects from the cache."""

    def __init__(self, lookup):
        self.lookup = lookup

    def __call__(self, token: str) -> UserInfo | None:
        matched = TOKEN_PATTERN.match(token)
        if not matched:
            return None
        token_id, token_secret = matched.groups()
        secret = self.lookup("secrets", SECRET_NAMESPACE, SECRET_PREFIX + token_id)
        if secret is None or secret.get("type") != SECRET_TYPE or secret["metadata"].get("deletionTimestamp"):
            return None
        if not hmac.compare_digest(_field(secret, "token-secret"), token_secret):
            return None
        if _field(secret, "token-id") != token_id or _field(secret, "usage-bootstrap-authentication") != "true":
            return None
        if _expired(_field(secret, "expiration")):
            log.info("bootstrap token %s has expired", token_id)
            return None
        groups = [BOOTSTRAPPERS_GROUP]
        for group in _field(secret, "auth-extra-groups").split(","):
            group = group.strip()
            if group.startswith(BOOTSTRAPPERS_GROUP + ":") and group not in groups:
                groups.append(group)
        return UserInfo(USER_PREFIX + token_id, groups=tuple(groups))


def join_token_secret(join_token: str) -> dict:
    token_id, token_secret = from_join_token(join_token)

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": SECRET_PREFIX + token_id, "namespace": SECRET_NAMESPACE},
            "data": {"description": b64("The join token of k8py server --token (agents join with it)."),
                     "token-id": b64(token_id), "token-secret": b64(token_secret),
                     "usage-bootstrap-authentication": b64("true"), "usage-bootstrap-signing": b64("true"),
                     "auth-extra-groups": b64(JOIN_TOKEN_GROUP)}}


async def ensure_join_token(api, join_token: str) -> None:
    """Create, or put back, the Secret for the server's --token (the token may have changed)."""
    wanted = join_token_secret(join_token)
    store = api.objects_for("", "v1", "secrets")
    name = wanted["metadata"]["name"]
    try:
        current = store.get_cached(SECRET_NAMESPACE, name)
    except errors.StatusError as err:  # stored under an encryption key the server no longer has
        log.error("the join token's bootstrap Secret %s/%s is unreadable (%s): agents cannot join with "
                  "--token until the key that wrote it is back in the encryption config", SECRET_NAMESPACE, name, err.message)
        return
    if current is not None and current.obj.get("data") == wanted["data"] and \
            current.obj.get("type") == SECRET_TYPE:
        return
    try:
        if current is None:
            await store.create(wanted, SECRET_NAMESPACE)
        else:
            await store.update(SECRET_NAMESPACE, name, {**wanted, "metadata": {
                **wanted["metadata"], "resourceVersion": current.obj["metadata"]["resourceVersion"]}})
    except errors.StatusError as err:
        log.warning("could not store the join token's bootstrap Secret %s: %s", name, err.message)
