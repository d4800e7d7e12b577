"""The root-CA publisher: `kube-root-ca.crt` in every namespace holds the cluster CA.

Pods use it (through the projected service-account volume) to verify the API
server. The ConfigMap is (re)created when missing and put back when its data
drifts from the CA, like upstream's root-ca-cert-publisher.

The CA comes from the controller-manager's options: `root_ca_file`, else the
server's `<data_dir>/server/tls/server-ca.crt`.
"""

from __future__ import annotations

import copy
from pathlib import Path

from k8py.client import ApiError
from k8py.controllers.base import Controller

CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


def root_ca_path(options: dict) -> Path | None:
    if options.get("root_ca_file"):
        return Path(options["root_ca_file"])
    if options.get("data_dir"):
        return Path(options["data_dir"]) / "server" / "tls" / "server-ca.crt"
    return None


class RootCACertPublisher(Controller):
    name = "root-ca-cert-publisher"
    workers = 2
    event_source = "root-ca-cert-publisher"

    async def setup(self) -> None:
        options = self.ctx.options
        path = root_ca_path(options)
        self.ca = options.get("root_ca_data") or (path.read_text() if path and path.exists() else None)
        self.namespaces = self.ctx.informer("v1", "namespaces")
        self.configmaps = self.ctx.informer("v1", "configmaps")
        self.namespaces.add_handler(on_add=self.enqueue)
        self.configmaps.add_handler(on_update=self._configmap_changed, on_delete=self._configmap_gone)

    def _configmap_changed(self, old: dict, new: dict) -> None:
        if new["metadata"]["name"] == CONFIGMAP:
            self.enqueue(new["metadata"]["namespace"])

    def _configmap_gone(self, cm: dict) -> None:
        if cm["metadata"]["name"] == CONFIGMAP:
            self.enqueue(cm["metadata"]["namespace"])

    async def sync(self, key: str) -> None:
        if self.ca is None:
            return
        ns = self.namespaces.get(key)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return
        api = self.client.resource("v1", "configmaps", key)
        existing = self.configmaps.get(f"{key}/{CONFIGMAP}")
        if existing is None:
            try:
                await api.create({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": CONFIGMAP,
                                               "annotations": {"kubernetes.io/description": DESCRIPTION}},
                                  "data": {"ca.crt": self.ca}})
            except ApiError as e:
                if not e.already_exists and not (e.code == 403 and "being terminated" in str(e)):
                    raise
            return
        if (existing.get("data") or {}) != {"ca.crt": self.ca}:
            fixed = copy.deepcopy(existing)
            fixed["data"] = {"ca.crt": self.ca}
            fixed.pop("binaryData", None)
            await api.update(fixed)
