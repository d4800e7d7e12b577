"""Resources that are computed, not stored (reviews, component statuses).

A create-only kind (SelfSubjectAccessReview, TokenReview, TokenRequest...)
registers an async function here that turns the decoded request body into
the response object; read-only computed lists (componentstatuses) register a
function that returns the current items. handlers.py consults these tables
before falling back to the object store.
"""

from __future__ import annotations

from typing import Awaitable, Callable

# (group, kind) -> async fn(req, body: dict) -> dict (the response object, served with 201)
CREATE: dict[tuple[str, str], Callable[..., Awaitable[dict]]] = {}
# (group, kind) -> fn(api) -> list[dict] (current objects, cluster-scoped)
READ: dict[tuple[str, str], Callable[..., list]] = {}
