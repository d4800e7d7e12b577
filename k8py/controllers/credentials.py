"""Per-controller credentials, as kube-controller-manager --use-service-account-credentials.

Each controller talks to the API as its own ServiceAccount in kube-system
(`system:serviceaccount:kube-system:<account>`), so RBAC gives it exactly the
upstream bootstrap role system:controller:<account>. The controller-manager's
own identity (system:kube-controller-manager) creates the account when it is
missing and asks for its tokens (TokenRequest), renewed at 80% of their life;
the shared informers and event recorders keep using that identity (its role
lists and watches everything and writes events).

A controller missing from ACCOUNTS keeps the manager's identity, which may not
write anything but events: add its account here, with a role in
apiserver/authz/bootstrap-policy.yaml when upstream has none.
"""

from __future__ import annotations

import logging

from k8py.client import ApiError, Client
from k8py.client.sa_tokens import ServiceAccountToken, client_as

log = logging.getLogger("k8py.controller-manager")

NAMESPACE = "kube-system"

# k8py controller name -> the account upstream's kube-controller-manager runs it as
ACCOUNTS: dict[str, str] = {
    "namespace": "namespace-controller",
    "serviceaccount": "service-account-controller",
    "root-ca-cert-publisher": "root-ca-cert-publisher",
    "nodeipam": "node-controller",
    "garbage-collector": "generic-garbage-collector",
    "replicaset": "replicaset-controller",
    "replicationcontroller": "replication-controller",
    "deployment": "deployment-controller",
    "podgc": "pod-garbage-collector",
    "daemonset": "daemon-set-controller",
    "statefulset": "statefulset-controller",
    "job": "job-controller",
    "cronjob": "cronjob-controller",
    "ttl-after-finished": "ttl-after-finished-controller",
    "disruption": "disruption-controller",
    "resourcequota": "resourcequota-controller",
    "endpoint": "endpoint-controller",
    "endpointslice": "endpointslice-controller",
    "endpointslicemirroring": "endpointslicemirroring-controller",
    # k3s's ServiceLB writes LoadBalancer status, as the cloud service controller does upstream
    "service-lb": "service-controller",
    "taint-eviction": "node-controller",
    "node-lifecycle": "node-controller",
    "clusterrole-aggregation": "clusterrole-aggregation-controller",
    "persistentvolume-binder": "persistent-volume-binder",
    "persistentvolumeclaim-protection": "pvc-protection-controller",
    "persistentvolume-protection": "pv-protection-controller",
    "persistentvolume-expander": "expand-controller",
    "csrapproving": "certificate-controller",
    "csrsigning": "certificate-controller",
    "horizontal-pod-autoscaler": "horizontal-pod-autoscaler",
}


class ServiceAccountCredentials:
    def __init__(self, manager_client: Client):
        self.manager_client = manager_client
        self.tokens: dict[str, ServiceAccountToken] = {}
        self.clients: dict[str, Client] = {}

    async def client_for(self, controller: str) -> Client:
        account = ACCOUNTS.get(controller)
        if account is None:
            log.warning("controller %s has no ServiceAccount of its own; it runs as the controller-manager",
                        controller)
            return self.manager_client
        if account not in self.clients:
            await self._ensure_account(account)
            self.clients[account], self.tokens[account] = await client_as(
                self.manager_client, NAMESPACE, account, f"k8py-controller-manager/{account}")
        return self.clients[account]

    async def _ensure_account(self, account: str) -> None:
        accounts = self.manager_client.resource("v1", "serviceaccounts", NAMESPACE)
        try:
            await accounts.get(account)
        except ApiError as e:
            if e.code != 404:
                raise
            try:
                await accounts.create({"apiVersion": "v1", "kind": "ServiceAccount",
                                       "metadata": {"name": account, "namespace": NAMESPACE}})
            except ApiError as err:
                if err.code != 409:
                    raise

    async def close(self) -> None:
        for token in self.tokens.values():
            await token.stop()
        for client in self.clients.values():
            await client.close()
        self.tokens, self.clients = {}, {}
