"""Leader election on a coordination.k8s.io Lease, as client-go does it.

Only one of several identical components (controller-manager, scheduler) acts
at a time: the one whose identity holds the Lease and keeps renewing it. A
holder that cannot renew within `renew_deadline` steps down; others take over
once `lease_duration` has passed without a renewal.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable

from k8py.client.rest import ApiError, Client

log = logging.getLogger("k8py.client.leaderelection")


def _micro_time(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.strptime(value.replace("Z", ""), "%Y-%m-%dT%H:%M:%S.%f" if "." in value
                                      else "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)


class LeaderElector:
    def __init__(self, client: Client, lease_name: str, namespace: str, identity: str,
                 lease_duration: float = 15, renew_deadline: float = 10, retry_period: float = 2):
        self.leases = client.resource("coordination.k8s.io/v1", "leases", namespace)
        self.lease_name = lease_name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False

    async def run(self, on_started_leading: Callable[[], Awaitable[None]],
                  on_stopped_leading: Callable[[], None] | None = None) -> None:
        """Acquire the lease, run `on_started_leading` while holding it; return when leadership is lost."""
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self.retry_period)
        self.is_leader = True
        log.info("%s became leader of %s/%s", self.identity, self.namespace, self.lease_name)
        work = asyncio.create_task(on_started_leading())
        try:
            await self._keep_renewing(work)
        finally:
            self.is_leader = False
            work.cancel()
            if on_stopped_leading is not None:
                on_stopped_leading()

    async def _keep_renewing(self, work: asyncio.Task) -> None:
        loop = asyncio.get_running_loop()
        last_renewal = loop.time()
        while not work.done():
            await asyncio.wait({work}, timeout=self.retry_period)
            if work.done():
                break
            if await self._try_acquire_or_renew():
                last_renewal = loop.time()
            elif loop.time() - last_renewal > self.renew_deadline:
                log.warning("%s lost the lease %s/%s", self.identity, self.namespace, self.lease_name)
                return
        work.result()

    async def _try_acquire_or_renew(self) -> bool:
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            lease = await self.leases.get(self.lease_name)
        except ApiError as e:
            if e.code != 404:
                return False
            try:
                await self.leases.create({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.lease_name, "namespace": self.namespace},
                    "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                             "acquireTime": _micro_time(now), "renewTime": _micro_time(now),
                             "leaseTransitions": 0}})
                return True
            except ApiError:
                return False
        spec = lease.setdefault("spec", {})
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds") or self.lease_duration
        if holder and holder != self.identity and renewed is not None and \
                (now - renewed).total_seconds() < duration:
            return False
        if holder != self.identity:
            spec["acquireTime"] = _micro_time(now)
            spec["leaseTransitions"] = (spec.get("leaseTransitions") or 0) + 1
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=int(self.lease_duration),
                    renewTime=_micro_time(now))
        try:
            await self.leases.update(lease)
            return True
        except ApiError:
            return False
