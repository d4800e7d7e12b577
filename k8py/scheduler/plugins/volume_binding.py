"""VolumeBinding: pods with PersistentVolumeClaims go where their volumes can be.

As upstream's plugin:
- PreFilter: every claim must exist and not be terminating; a claim that is
  not bound must be of a WaitForFirstConsumer class ("pod has unbound
  immediate PersistentVolumeClaims" otherwise: the PV controller binds those);
- Filter: a bound claim's volume must exist and its node affinity admit the
  node; an unbound one needs, on this node, an Available volume that fits
  (the PV controller's own rules, k8py.api.volume_matching, with the node's
  affinity checked), or else a class that can provision here (a provisioner
  other than kubernetes.io/no-provisioner, allowedTopologies matching the
  node, and no other node already chosen for the claim);
- PreBind (before the pod's Binding): a volume found is pre-bound to its claim
  (claimRef + `pv.kubernetes.io/bound-by-controller`), a claim to provision gets
  `volume.kubernetes.io/selected-node`; then it waits until the PV controller
  (and the provisioner) have bound every claim, up to BIND_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import copy
import time

from k8py.api import volume_matching as matching
from k8py.scheduler.framework import SKIPPED, unresolvable, unschedulable

ERR_REASON_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ERR_REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_REASON_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
VOLUME_CLASS_INDEX = "storage-class"  # the scheduler indexes its volume informer by class
BIND_TIMEOUT = 600.0   # upstream's default bindTimeoutSeconds
BIND_POLL = 0.2


class BindingError(Exception):
    pass


def pvc_names(pod_spec: dict) -> list[str]:
    return [v["persistentVolumeClaim"].get("claimName", "") for v in pod_spec.get("volumes") or []
            if v.get("persistentVolumeClaim")]


def _annotations(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _topology_allows(storage_class: dict, node: dict) -> bool:
    """allowedTopologies: any term whose every expression has the node's label among its values."""
    terms = storage_class.get("allowedTopologies") or []
    if not terms:
        return True
    labels = (node.get("metadata") or {}).get("labels") or {}
    return any(all(labels.get(e.get("key")) in (e.get("values") or []) for e in term.get("matchLabelExpressions") or [])
               for term in terms)


class VolumeBinding:
    name = "VolumeBinding"

    def __init__(self):
        self.listers = None
        self._assumed: set[str] = set()  # volumes chosen for a pod whose PreBind has not finished

    # ---- PreFilter / Filter -----------------------------------------------------------

    def pre_filter(self, state, pod, snapshot):
        names = pvc_names(pod.spec)
        if not names:
            return SKIPPED
        listers = snapshot.listers
        if not (hasattr(listers, "watches") and listers.watches("persistentvolumeclaims")):
            return None  # nobody feeds us claims (a bare scheduler in tests): don't block on what we can't see
        self.listers = listers
        bound, to_bind = [], []
        for name in names:
            claim = listers.named("persistentvolumeclaims", pod.namespace, name)
            if claim is None:
                return unresolvable(f'persistentvolumeclaim "{name}" not found')
            if claim["metadata"].get("deletionTimestamp"):
                return unresolvable(f'persistentvolumeclaim "{name}" is being deleted')
            volume_name = (claim.get("spec") or {}).get("volumeName")
            if volume_name:
                bound.append(volume_name)
                continue
            storage_class = self._class(matching.claim_class(claim))
            if storage_class is None or storage_class.get("volumeBindingMode") != "WaitForFirstConsumer":
                return unresolvable(ERR_REASON_UNBOUND_IMMEDIATE)
            to_bind.append((claim, storage_class))
        # The volumes each claim could take, looked up once per pod (upstream lists them by class too).
        candidates = {_key(claim): self._volumes_of_class(matching.claim_class(claim)) for claim, _ in to_bind}
        state[self.name] = {"bound": bound, "to_bind": to_bind, "candidates": candidates, "decisions": {}}
        return None

    def _class(self, name: str) -> dict | None:
        return self.listers.named("storageclasses", "", name) if name else None

    def filter(self, state, pod, node):
        data = state.get(self.name)
        if data is None or node.node is None:
            return None
        for volume_name in data["bound"]:
            volume = self.listers.named("persistentvolumes", "", volume_name)
            if volume is None:
                return unschedulable(ERR_REASON_PV_NOT_EXIST)
            if not matching.node_affinity_matches(volume, node.node):
                return unschedulable(ERR_REASON_NODE_CONFLICT)
        decisions, chosen = {}, set(self._assumed)
        for claim, storage_class in data["to_bind"]:
            volume = self._static_match(claim, data["candidates"][_key(claim)], node.node, chosen)
            if volume is not None:
                chosen.add(volume["metadata"]["name"])
                decisions[_key(claim)] = volume["metadata"]["name"]
            elif self._can_provision(claim, storage_class, node.node):
                decisions[_key(claim)] = None
            else:
                return unschedulable(ERR_REASON_BIND_CONFLICT)
        data["decisions"][node.name] = decisions
        return None

    def _volumes_of_class(self, class_name: str) -> list[dict]:
        if hasattr(self.listers, "by_index"):
            return self.listers.by_index("persistentvolumes", VOLUME_CLASS_INDEX, class_name)
        return [v for v in self.listers.get("persistentvolumes", []) if matching.volume_class(v) == class_name]

    @staticmethod
    def _static_match(claim: dict, volumes: list[dict], node: dict, excluded: set[str]) -> dict | None:
        if not volumes:
            return None
        try:
            return matching.find_best_match(claim, volumes, delay_binding=True, node=node, excluded=excluded)
        except matching.SelectorError:
            return None

    @staticmethod
    def _can_provision(claim: dict, storage_class: dict, node: dict) -> bool:
        if (claim.get("spec") or {}).get("selector") is not None:
            return False  # dynamic provisioning never serves a selector
        if storage_class.get("provisioner") in (None, "", NO_PROVISIONER):
            return False
        selected = _annotations(claim).get(ANN_SELECTED_NODE)
        if selected and selected != node["metadata"]["name"]:
            return False
        return _topology_allows(storage_class, node)

    # ---- PreBind ------------------------------------------------------------------------

    def needs_pre_bind(self, state) -> bool:
        data = state.get(self.name)
        return bool(data and data["to_bind"])

    def reserve(self, state, node_name: str) -> None:
        data = state.get(self.name)
        if data:
            self._assumed.update(v for v in data["decisions"].get(node_name, {}).values() if v)

    async def pre_bind(self, client, state, pod, node_name: str) -> None:
        data = state.get(self.name)
        decisions = data["decisions"].get(node_name, {})
        try:
            selected_at: dict[str, int] = {}  # claim -> resourceVersion carrying our selected-node
            for claim, _ in data["to_bind"]:
                volume_name = decisions.get(_key(claim))
                if volume_name:
                    await self._pre_bind_volume(client, volume_name, claim)
                else:
                    selected_at[_key(claim)] = await self._select_node(client, claim, node_name)
            await self._wait_bound([c for c, _ in data["to_bind"]], selected_at, node_name)
        finally:
            self._assumed.difference_update(v for v in decisions.values() if v)

    async def _pre_bind_volume(self, client, name: str, claim: dict) -> None:
        api = client.resource("v1", "persistentvolumes")
        volume = copy.deepcopy(await api.get(name))
        meta = claim["metadata"]
        volume["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                                      "name": meta["name"], "uid": meta["uid"], "apiVersion": "v1",
                                      "resourceVersion": meta.get("resourceVersion", "")}
        volume["metadata"].setdefault("annotations", {})
        if volume["metadata"]["annotations"] is None:
            volume["metadata"]["annotations"] = {}
        volume["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] = "yes"
        await api.update(volume)

    async def _select_node(self, client, claim: dict, node_name: str) -> int:
        if _annotations(claim).get(ANN_SELECTED_NODE) == node_name:
            return _rv(claim)
        meta = claim["metadata"]
        patched = await client.resource("v1", "persistentvolumeclaims", meta["namespace"]).patch(
            meta["name"], {"metadata": {"annotations": {ANN_SELECTED_NODE: node_name}}})
        return _rv(patched)

    async def _wait_bound(self, claims: list[dict], selected_at: dict[str, int], node_name: str) -> None:
        """Until every claim is bound. A claim gone, or one to provision whose selected-node the
        provisioner took back (it failed for good), fails the PreBind: the pod is rescheduled."""
        deadline = time.monotonic() + BIND_TIMEOUT
        while True:
            done = True
            for claim in claims:
                meta = claim["metadata"]
                current = self.listers.named("persistentvolumeclaims", meta["namespace"], meta["name"])
                if current is None or current["metadata"].get("uid") != meta.get("uid"):
                    raise BindingError(f'failed to get pvc "{meta["namespace"]}/{meta["name"]}": not found')
                if ANN_BIND_COMPLETED in _annotations(current) and (current.get("spec") or {}).get("volumeName"):
                    continue
                done = False
                ours = selected_at.get(_key(claim))
                if ours is not None and _rv(current) >= ours and \
                        _annotations(current).get(ANN_SELECTED_NODE) != node_name:
                    raise BindingError(f'selectedNode annotation reset for PVC "{meta["name"]}"')
            if done:
                return
            if time.monotonic() > deadline:
                raise BindingError("binding volumes: context deadline exceeded")
            await asyncio.sleep(BIND_POLL)

def _rv(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _key(claim: dict) -> str:
    return f"{claim['metadata'].get('namespace', '')}/{claim['metadata']['name']}"
