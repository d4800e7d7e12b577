"""Request bodies decoded as a kind: the type-meta check every write makes, and
bodies of another kind than the endpoint's (Binding, Eviction, TokenRequest).
Shared by the handlers, apply, subresources and reviews, below all of them."""

from __future__ import annotations

from k8py.api.registry import Resource
from k8py.apimachinery import errors
from k8py.apiserver import codec


def check_type_meta(resource: Resource, body: dict, *, expected_kind: str | None = None,
                    expected_api_version: str | None = None) -> None:
    kind = body.get("kind")
    api_version = body.get("apiVersion")
    expected_kind = expected_kind or resource.kind
    expected_api_version = expected_api_version or resource.api_version
    # Like upstream's decoder, a body without type meta takes the endpoint's
    # (the Python client sends objects built without kind and apiVersion).
    kind = kind or expected_kind
    body["kind"] = kind
    if api_version and api_version != expected_api_version:
        raise errors.bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                 f"API version ({expected_api_version})")
    if kind != expected_kind:
        raise errors.bad_request(f'the kind in the data ({kind}) does not match the expected kind '
                                 f'({expected_kind})')
    body["apiVersion"] = expected_api_version


def decode_as(req, raw: bytes, group: str, version: str, kind: str,
              options_kind: str = "CreateOptions") -> dict:
    """A body that is not the endpoint's own kind (Binding, Eviction,
    TokenRequest, DeleteOptions), decoded and type-checked against that kind's
    schema the way upstream's typed decoder would: wrong types are a 400, never
    a crash further in."""
    body = codec.decode_object(raw, req.http.headers.get("Content-Type"))
    req.warnings += req.api.validate_fields(Resource(group, version, kind, ""), body,
                                            req.query.get("fieldValidation"), options_kind)
    return body
