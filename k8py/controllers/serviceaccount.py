"""The service-account controller: every active namespace has a `default` ServiceAccount.

It makes one when a namespace appears and makes it again if someone deletes
it, as upstream's ServiceAccountsController does.
"""

from __future__ import annotations

from k8py.client import ApiError
from k8py.controllers.base import Controller

DEFAULT_ACCOUNTS = ("default",)


class ServiceAccountController(Controller):
    name = "serviceaccount"
    workers = 2

    async def setup(self) -> None:
        self.namespaces = self.ctx.informer("v1", "namespaces")
        self.accounts = self.ctx.informer("v1", "serviceaccounts")
        self.namespaces.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))
        self.accounts.add_handler(on_delete=lambda sa: self.enqueue(sa["metadata"]["namespace"]))

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == \
                "Terminating":
            return
        api = self.client.resource("v1", "serviceaccounts", key)
        for name in DEFAULT_ACCOUNTS:
            if self.accounts.get(f"{key}/{name}") is not None:
                continue
            try:
                await api.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
            except ApiError as e:
                if e.already_exists:
                    continue
                if e.code == 403 and "being terminated" in str(e):
                    return  # the namespace started terminating meanwhile
                raise
