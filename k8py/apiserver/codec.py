"""Request body decoding and response media-type negotiation."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass

import orjson
import yaml

from k8py.apimachinery import errors

MAX_BODY_BYTES = 3 * 1024 * 1024  # upstream's request size limit

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

try:
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # libyaml missing: the pure-Python loader is slower, not wrong
    _BaseLoader = yaml.SafeLoader


class _YamlLoader(_BaseLoader):
    """Safe loading, but a date stays the string it was written as (the
    YAML-to-JSON step upstream does not turn `2001-12-14` into a time)."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()}


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header (no parameters)."""
    if not content_type:
        return JSON  # the Python client sometimes sends no Content-Type
    return content_type.split(";", 1)[0].strip().lower() or JSON


def decode_json(raw: bytes, what: str = "object"):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise errors.bad_request(f"error decoding {what}: {_json_error(err, raw)}") from None


def _json_error(err: orjson.JSONDecodeError, raw: bytes) -> str:
    # Go's messages name the offset; ours say the same in Python's words.
    return f"invalid character at line {err.lineno} column {err.colno}: {err.msg}"


def decode_yaml(raw: bytes):
    try:
        return _jsonable(yaml.load(raw, Loader=_YamlLoader))
    except yaml.YAMLError as err:
        raise errors.bad_request(f"error converting YAML to JSON: {err}".replace("\n", " ")) from None
    except RecursionError:
        raise errors.bad_request("error converting YAML to JSON: nested too deeply") from None


def _jsonable(value):
    """YAML values as the JSON the YAML-to-JSON step makes of them: keys become
    strings (`1: a` has key "1", `?` alone has key "null"), timestamps and
    binary become strings, so nothing later meets a type JSON cannot hold."""
    if isinstance(value, dict):
        return {_json_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (datetime.datetime, datetime.date)):
        return _yaml_time(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, (set, frozenset)):
        return {_json_key(k): None for k in value}
    return str(value)


def _json_key(key) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (int, float)):
        return str(key)
    if isinstance(key, (datetime.datetime, datetime.date)):
        return _yaml_time(key)
    if isinstance(key, (bytes, bytearray)):
        return base64.b64encode(key).decode()
    # A YAML key can be a list or a map; JSON has no such key.
    raise errors.bad_request(f"error converting YAML to JSON: unsupported map key {key!r}")


def _yaml_time(value) -> str:
    if isinstance(value, datetime.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value.isoformat()


def decode_object(raw: bytes, content_type: str | None) -> dict:
    """A create/update body as a JSON object, or a 400/415 Status error."""
    kind = media_type(content_type)
    if kind in (JSON, "*/*"):
        body = decode_json(raw)
    elif kind in (YAML, "application/x-yaml", "text/yaml"):
        body = decode_yaml(raw)
    elif kind == PROTOBUF:
        from k8py.apimachinery.protobuf import decode_protobuf_object
        body = decode_protobuf_object(raw)
    else:
        raise errors.unsupported_media_type(kind)
    if not isinstance(body, dict):
        raise errors.bad_request("Object 'Kind' is missing in '" + raw[:200].decode("utf-8", "replace") + "'")
    return body


@dataclass(frozen=True)
class Accept:
    table: bool = False
    table_version: str = "v1"
    yaml: bool = False
    partial_metadata: bool = False  # as=PartialObjectMetadata(List)


def negotiate(accept_header: str | None) -> Accept:
    """Pick the response form from an Accept header, the first usable entry winning."""
    if not accept_header:
        return Accept()
    for entry in accept_header.split(","):
        parts = [p.strip() for p in entry.split(";")]
        media = parts[0].lower()
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        as_kind = params.get("as")
        if as_kind == "Table" and media in (JSON, PROTOBUF):
            if params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
                return Accept(table=True, table_version=params["v"])
            continue
        if as_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            if params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
                return Accept(partial_metadata=True, table_version=params["v"])
            continue
        if as_kind:
            continue
        if media in (JSON, "*/*", "application/*", PROTOBUF):
            return Accept()
        if media in (YAML,):
            return Accept(yaml=True)
    return Accept()


def negotiate_untransformed(accept_header: str | None) -> Accept:
    """For kinds that cannot be shown as a Table or as metadata only (the
    computed reviews): skip the `as=` entries; 406 when nothing else is
    acceptable, as upstream answers a Table request for a SelfSubjectAccessReview."""
    if not accept_header:
        return Accept()
    for entry in accept_header.split(","):
        parts = [p.strip() for p in entry.split(";")]
        if any(p.startswith("as=") for p in parts[1:]):
            continue
        media = parts[0].lower()
        if media in (JSON, "*/*", "application/*", PROTOBUF):
            return Accept()
        if media == YAML:
            return Accept(yaml=True)
    raise errors.not_acceptable(accept_header)
