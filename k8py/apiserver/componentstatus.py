"""`kubectl get componentstatuses`: the health of the control plane's parts.

Upstream probes each component's /healthz; here the scheduler and the
controller-manager prove they are alive the way they coordinate anyway, by
renewing their leader-election Lease in kube-system, so they are healthy
while their lease is fresh, wherever they run. etcd-0 is the datastore.
"""

from __future__ import annotations

import datetime

from k8py.apiserver import virtual

LEASES = (("scheduler", "kube-scheduler"), ("controller-manager", "kube-controller-manager"))


def _condition(healthy: bool, message: str = "", error: str = "") -> dict:
    condition = {"type": "Healthy", "status": "True" if healthy else "False"}
    if message:
        condition["message"] = message
    if error:
        condition["error"] = error
    return condition


def _status(name: str, condition: dict) -> dict:
    return {"kind": "ComponentStatus", "apiVersion": "v1",
            "metadata": {"name": name, "creationTimestamp": None}, "conditions": [condition]}


def _parse_time(value: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def lease_health(lease: dict | None, lease_name: str, now: datetime.datetime) -> dict:
    where = f"kube-system/{lease_name}"
    if lease is None:
        return _condition(False, error=f"no leader: lease {where} does not exist")
    spec = lease.get("spec") or {}
    renewed = _parse_time(spec.get("renewTime") or "")
    if not spec.get("holderIdentity") or renewed is None:
        return _condition(False, error=f"no leader holds lease {where}")
    age = (now - renewed).total_seconds()
    if age > (spec.get("leaseDurationSeconds") or 15):
        return _condition(False, error=f"lease {where} held by {spec['holderIdentity']} was last renewed "
                                       f"{int(age)}s ago")
    return _condition(True, message="ok")


def component_statuses(api) -> list[dict]:
    now = datetime.datetime.now(datetime.timezone.utc)
    items = [_status(name, lease_health(api.lookup_object("leases", "kube-system", lease), lease, now))
             for name, lease in LEASES]
    store_ok = api.ready and api.store is not None
    items.append(_status("etcd-0", _condition(True, message='{"health":"true","reason":""}') if store_ok
                         else _condition(False, error="the datastore is not open")))
    return items


virtual.READ[("", "ComponentStatus")] = component_statuses
