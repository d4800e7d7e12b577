"""The clusterrole-aggregation controller, as upstream's.

A ClusterRole with an aggregationRule gets, as its rules, the rules of every
other ClusterRole whose labels match one of its clusterRoleSelectors (in name
order, without repeats). That is how `admin`, `edit` and `view` grow by the
roles labelled rbac.authorization.k8s.io/aggregate-to-<name>: "true", e.g.
those a CRD's installer ships.
"""

from __future__ import annotations

from k8py.apimachinery.selectors import selector_from_label_selector
from k8py.client import ApiError
from k8py.controllers.base import Controller

GV = "rbac.authorization.k8s.io/v1"


class ClusterRoleAggregationController(Controller):
    name = "clusterrole-aggregation"
    event_source = "clusterrole-aggregation-controller"

    async def setup(self) -> None:
        self.roles = self.ctx.informer(GV, "clusterroles")
        # Any role change may change what any aggregated role should hold: requeue them all.
        self.roles.add_handler(on_add=lambda role: self._enqueue_aggregated(),
                               on_update=lambda old, new: self._enqueue_aggregated(),
                               on_delete=lambda role: self._enqueue_aggregated())

    def _enqueue_aggregated(self) -> None:
        for role in self.roles.list():
            if role.get("aggregationRule") is not None:
                self.enqueue(role)

    def aggregated_rules(self, role: dict) -> list[dict]:
        selectors = [s for s in (selector_from_label_selector(spec) for spec in
                                 (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or [])
                     if s is not None]
        rules: list[dict] = []
        name = role["metadata"]["name"]
        for other in sorted(self.roles.list(), key=lambda r: r["metadata"]["name"]):
            if other["metadata"]["name"] == name:
                continue
            labels = other["metadata"].get("labels") or {}
            if not any(s.matches(labels) for s in selectors):
                continue
            rules += [rule for rule in other.get("rules") or [] if rule not in rules]
        return rules

    async def sync(self, key: str) -> None:
        role = self.roles.get(key)
        if role is None or role.get("aggregationRule") is None:
            return
        rules = self.aggregated_rules(role)
        if rules == (role.get("rules") or []):
            return
        updated = {**role, "rules": rules}
        try:
            await self.client.resource(GV, "clusterroles").update(updated)
        except ApiError as err:
            if err.not_found:
                return
            raise
