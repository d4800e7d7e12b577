"""Join tokens as bootstrap tokens, and bootstrap-token authentication."""

import base64
import datetime

from k8py.apimachinery.bootstraptoken import bearer, from_join_token
from k8py.apiserver.bootstrap_tokens import BootstrapTokenAuthenticator, join_token_secret


def test_join_token_maps_the_same_way_for_server_and_agent():
    assert from_join_token("abcdef.0123456789abcdef") == ("abcdef", "0123456789abcdef")
    token_id, secret = from_join_token("my cluster secret")
    assert len(token_id) == 6 and len(secret) == 16 and bearer("my cluster secret") == f"{token_id}.{secret}"
    assert from_join_token("K10" + "ab" * 32 + "::server:my cluster secret") == (token_id, secret)
    assert from_join_token("another secret") != (token_id, secret)


def lookup_for(secret):
    def lookup(plural, namespace, name):
        if (plural, namespace, name) == ("secrets", "kube-system", secret["metadata"]["name"]):
            return secret
        return None
    return lookup


def test_bootstrap_token_authenticates_as_a_bootstrapper():
    secret = join_token_secret("s3cret")
    secret["metadata"]["uid"] = "x"
    authn = BootstrapTokenAuthenticator(lookup_for(secret))
    user = authn(bearer("s3cret"))
    token_id = bearer("s3cret").split(".")[0]
    assert user.name == f"system:bootstrap:{token_id}"
    assert user.groups == ("system:bootstrappers", "system:bootstrappers:k8py:default-node-token")
    assert authn(bearer("other")) is None
    assert authn("s3cret") is None                              # the plain string is no credential
    assert authn(token_id + "." + "0" * 16) is None             # right id, wrong secret


def test_expired_or_unusable_tokens_are_refused():
    secret = join_token_secret("s3cret")
    past = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    secret["data"]["expiration"] = base64.b64encode(past.encode()).decode()
    assert BootstrapTokenAuthenticator(lookup_for(secret))(bearer("s3cret")) is None
    secret = join_token_secret("s3cret")
    secret["data"]["usage-bootstrap-authentication"] = base64.b64encode(b"false").decode()
    assert BootstrapTokenAuthenticator(lookup_for(secret))(bearer("s3cret")) is None


def test_k3s_secure_token_pins_the_ca():
    from k8py.cli.agent_join import ca_hash_of
    assert ca_hash_of("K10" + "AB" * 32 + "::server:pw") == "ab" * 32
    assert ca_hash_of("plain-token") is None
