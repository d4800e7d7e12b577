"""csrapproving: auto-approves kubelet client certificate requests, as upstream's sarapprove.

A request for the signer kubernetes.io/kube-apiserver-client-kubelet shaped
like a kubelet client certificate is approved when its requester may
`create certificatesigningrequests/selfnodeclient` (renewal: the requester is
the node the certificate names) or `.../nodeclient` (a first certificate, from
a bootstrap token), asked through a SubjectAccessReview for the requester.

Like upstream, it approves nothing else: other requests (kubernetes.io/kube-apiserver-client
among them) wait for someone allowed to `approve` their signer.
"""

from __future__ import annotations

import copy
import datetime
import logging

from k8py.client import ApiError
from k8py.controllers.base import Controller
from k8py.controllers.certificates import csr as csrs

log = logging.getLogger("k8py.controllers.csrapproving")

# (subresource the requester must be allowed to create, message)
SELF_NODE_CLIENT = ("selfnodeclient", "Auto approving self kubelet client certificate after SubjectAccessReview.")
NODE_CLIENT = ("nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview.")


def recognized(csr: dict, request) -> list[tuple[str, str]]:
    """The permissions that would approve this request, in the order they are tried."""
    spec = csr.get("spec") or {}
    signer, wanted = spec.get("signerName"), csrs.usages(csr)
    if signer == csrs.KUBE_APISERVER_CLIENT_KUBELET and not csrs.kubelet_client_problem(request, wanted):
        kinds = [NODE_CLIENT]
        if spec.get("username") == csrs.subject_cn(request):
            kinds.insert(0, SELF_NODE_CLIENT)
        return kinds
    return []


class CSRApprovingController(Controller):
    name = "csrapproving"
    workers = 2
    event_source = "csrapproving"

    async def setup(self) -> None:
        self.csrs = self.ctx.informer("certificates.k8s.io/v1", "certificatesigningrequests")
        self.csrs.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))

    async def sync(self, key: str) -> None:
        csr = self.csrs.get(key)
        if csr is None or csrs.finished(csr) or csrs.condition(csr, "Approved") is not None:
            return
        request = csrs.parse_request(csr)
        if request is None:
            return          # the signer marks unparsable requests Failed
        tried = []
        for subresource, message in recognized(csr, request):
            tried.append(subresource)
            if await self._allowed(csr, subresource):
                await self._approve(csr, message)
                return
        if tried:
            log.info("recognized csr %s as %s but subject access review was not approved", key, tried)

    async def _allowed(self, csr: dict, subresource: str) -> bool:
        spec = csr.get("spec") or {}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": spec.get("username", ""), "uid": spec.get("uid", ""), "groups": spec.get("groups") or [],
            "extra": spec.get("extra") or {},
            "resourceAttributes": {"group": "certificates.k8s.io", "resource": "certificatesigningrequests",
                                   "verb": "create", "subresource": subresource, "version": "*"}}}
        answer = await self.client.resource("authorization.k8s.io/v1", "subjectaccessreviews").create(review)
        return bool((answer.get("status") or {}).get("allowed"))

    async def _approve(self, csr: dict, message: str) -> None:
        csr = copy.deepcopy(csr)        # the informer's copy stays as the server sent it
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = csr.setdefault("status", {})
        status["conditions"] = [*(status.get("conditions") or []), {
            "type": "Approved", "status": "True", "reason": "AutoApproved", "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now}]
        try:
            api = self.client.resource("certificates.k8s.io/v1", "certificatesigningrequests")
            await self.client.request("PUT", api.path(csr["metadata"]["name"], "approval"), csr)
        except ApiError as e:
            if e.code != 409:
                raise
            self.enqueue(csr)       # changed meanwhile: look again
