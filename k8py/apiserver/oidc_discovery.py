"""Service account issuer discovery: the OpenID Connect documents of the token issuer.

As kube-apiserver (ServiceAccountIssuerDiscovery, GA): GET
/.well-known/openid-configuration and /openid/v1/jwks, for whoever RBAC lets
read them (the bootstrap policy binds system:service-account-issuer-discovery
to every ServiceAccount), so that a relying party can verify ServiceAccount
tokens without the API. jwks_uri names the API server's own address, as
upstream does when --service-account-jwks-uri is not given.
"""

from __future__ import annotations

import base64

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from k8py.apiserver.responses import json_response

CONFIGURATION_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
PATHS = (CONFIGURATION_PATH, JWKS_PATH)
# upstream serves both with these headers
CACHE_CONTROL = {"Cache-Control": "public, max-age=3600"}


def _b64_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def configuration(issuer: str, external_address: str) -> dict:
    return {"issuer": issuer, "jwks_uri": f"https://{external_address}{JWKS_PATH}",
            "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"]}


def key_set(public_key: rsa.RSAPublicKey, key_id: str) -> dict:
    numbers = public_key.public_numbers()
    return {"keys": [{"use": "sig", "kty": "RSA", "kid": key_id, "alg": "RS256",
                      "n": _b64_int(numbers.n), "e": _b64_int(numbers.e)}]}


def response(path: str, tokens, external_address: str) -> web.Response:
    if path == CONFIGURATION_PATH:
        return json_response(configuration(tokens.issuer, external_address), headers=dict(CACHE_CONTROL))
    return json_response(key_set(tokens.public_key, tokens.key_id), headers=dict(CACHE_CONTROL),
                         content_type="application/jwk-set+json")
