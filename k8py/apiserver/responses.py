"""Writing API responses: objects, lists, Tables and Status errors."""

from __future__ import annotations

import orjson
import yaml
from aiohttp import web

from k8py.apimachinery.errors import StatusError

JSON_CONTENT = "application/json"


def json_response(body, status: int = 200, headers: dict | None = None,
                  content_type: str = JSON_CONTENT) -> web.Response:
    raw = body if isinstance(body, (bytes, bytearray)) else orjson.dumps(body)
    return _raw(raw, status, headers, content_type)


def _raw(raw: bytes, status: int, headers: dict | None, content_type: str) -> web.Response:
    response = web.Response(body=raw, status=status, headers=headers)
    response.headers["Content-Type"] = content_type
    return response


def yaml_response(body: dict, status: int = 200, headers: dict | None = None) -> web.Response:
    text = yaml.safe_dump(body, default_flow_style=False, sort_keys=False)
    return _raw(text.encode(), status, headers, "application/yaml")


def status_response(err: StatusError, headers: dict | None = None) -> web.Response:
    # Go's encoder ends every JSON document with a newline; clients that
    # compare bodies byte for byte expect it.
    raw = orjson.dumps(err.to_status()) + b"\n"
    if err.retry_after:
        headers = dict(headers or {})
        headers["Retry-After"] = str(err.retry_after)
    return _raw(raw, err.code, headers, JSON_CONTENT)
