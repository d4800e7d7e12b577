"""A ServiceAccount token obtained through TokenRequest and renewed before it expires.

For a process that runs as a ServiceAccount outside any pod (the agent's
kube-proxy, as kubeadm runs kube-proxy as kube-system/kube-proxy): `requester`
may create the account's `serviceaccounts/token`; every client in `clients`
gets each new token. Renewal happens at 80% of the token's life, as the kubelet
renews projected tokens.
"""

from __future__ import annotations

import asyncio
import datetime
import logging

from k8py.client.rest import ApiError, Client

log = logging.getLogger("k8py.client.sa_tokens")

RETRY_SECONDS = 10.0


class ServiceAccountToken:
    def __init__(self, namespace: str, name: str, expiration_seconds: int = 3600):
        self.namespace, self.name = namespace, name
        self.expiration_seconds = expiration_seconds
        self.token = ""
        self.expires: datetime.datetime | None = None
        self.clients: list[Client] = []
        self._task: asyncio.Task | None = None

    async def request(self, requester: Client) -> str:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": self.expiration_seconds}}
        path = requester.resource("v1", "serviceaccounts", self.namespace).path(self.name, "token")
        answer = await requester.request("POST", path, body)
        status = answer.get("status") or {}
        self.token = status["token"]
        self.expires = datetime.datetime.fromisoformat(status["expirationTimestamp"].replace("Z", "+00:00"))
        for client in self.clients:
            client.set_token(self.token)
        return self.token

    def renew_in(self) -> float:
        """Seconds until the token should be renewed (80% of what was granted)."""
        if self.expires is None:
            return 0.0
        left = (self.expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        return max(0.0, left - 0.2 * self.expiration_seconds)

    def start_renewal(self, requester: Client) -> None:
        self._task = asyncio.create_task(self._renew(requester))

    async def _renew(self, requester: Client) -> None:
        while True:
            await asyncio.sleep(self.renew_in())
            try:
                await self.request(requester)
            except (ApiError, OSError, KeyError, ValueError) as e:
                log.warning("could not renew the token of %s/%s: %s", self.namespace, self.name, e)
                await asyncio.sleep(RETRY_SECONDS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


async def client_as(requester: Client, namespace: str, name: str, user_agent: str) -> tuple[Client, ServiceAccountToken]:
    """A client of requester's server that is the ServiceAccount namespace/name, its token kept fresh."""
    token = ServiceAccountToken(namespace, name)
    client = requester.with_token(await token.request(requester), user_agent)
    token.clients.append(client)
    token.start_renewal(requester)
    return client, token
