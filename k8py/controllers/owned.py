"""Finding the objects a controller owns, through a shared informer index.

Every controller of mine indexes its children (pods, jobs, revisions, PVCs)
by the uid of their controller ownerReference, so a sync reads "my children"
without scanning a namespace. The index has one name for all informers so
controllers sharing an informer share it.
"""

from __future__ import annotations

from k8py.client import ApiError, Informer
from k8py.controllers.ownership import controller_ref

BY_CONTROLLER = "controller-uid"


def _controller_uid(obj: dict) -> list[str]:
    ref = controller_ref(obj)
    return [ref["uid"]] if ref and ref.get("uid") else []


def index_by_controller(ctx, informer: Informer) -> None:
    """`ctx` is the ControllerContext: it adds the index once per shared informer."""
    ctx.ensure_index(informer, BY_CONTROLLER, _controller_uid)


def owned_by(informer: Informer, owner: dict) -> list[dict]:
    return informer.by_index(BY_CONTROLLER, owner["metadata"].get("uid", ""))


def owner_key(obj: dict, kind: str) -> str | None:
    """'ns/name' of the `kind` controlling obj, or None."""
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    namespace = obj["metadata"].get("namespace")
    return f"{namespace}/{ref['name']}" if namespace else ref["name"]


def enqueue_owner(controller, kind: str):
    """An informer handler that queues the `kind` owning the changed object."""
    def handler(*objs) -> None:
        for obj in objs:
            key = owner_key(obj, kind)
            if key:
                controller.enqueue(key)
    return handler


def namespace_terminating(e: ApiError) -> bool:
    """Creating in a namespace being deleted is refused; nothing to retry there."""
    return e.code == 403 and "being terminated" in str(e)
