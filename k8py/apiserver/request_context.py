"""What deep layers of one API request hand back to its edges.

Admission plugins run far below the HTTP handler (handler -> ObjectStore ->
Strategy -> plugin), yet what they say must reach the response and the audit
log. Like upstream's request context (`warning.AddWarning`,
`audit.AddAuditAnnotation`), each request gets a `RequestContext` in a context
variable; any code running for the request adds to it:

- `add_warning(text)`: becomes a `Warning: 299 - "text"` response header
  (kubectl prints `Warning: text`);
- `add_audit_annotation(key, value)`: an annotation for the request's audit
  event (`annotations` of audit.k8s.io/v1 Event). An audit backend reads them
  with `current().audit_annotations` once the handler has returned, in the
  same task (aiohttp serves each request in a task of its own).

Outside a request (no context begun) both are no-ops.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestContext:
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)
    task: object = None


_current: ContextVar[RequestContext | None] = ContextVar("k8py_request_context", default=None)


def _task():
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def begin() -> RequestContext:
    """The context of the request served by this task, made on first call.

    A task started from a request handler inherits the variable but is not
    that request: it gets a context of its own."""
    ctx = _current.get()
    task = _task()
    if ctx is None or ctx.task is not task:
        ctx = RequestContext(task=task)
        _current.set(ctx)
    return ctx


def current() -> RequestContext | None:
    ctx = _current.get()
    return ctx if ctx is not None and ctx.task is _task() else None


def add_warning(text: str) -> None:
    ctx = current()
    if ctx is not None and text:
        ctx.warnings.append(text)


def add_audit_annotation(key: str, value: str) -> None:
    """As upstream, the first value set for a key wins."""
    ctx = current()
    if ctx is not None:
        ctx.audit_annotations.setdefault(key, value)
