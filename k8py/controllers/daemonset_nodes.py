"""Pure DaemonSet rules: which nodes get a daemon pod, and what that pod looks like.

A node should run the daemon pod when the pod's nodeSelector and required
node affinity match it and every NoSchedule/NoExecute taint on it is
tolerated. An existing pod may keep running on a node whose only objection
is a NoSchedule taint (a pod is not evicted by NoSchedule). Daemon pods get
the tolerations upstream adds so they ride out node trouble: not-ready and
unreachable (NoExecute, no time limit), disk/memory/pid pressure and
unschedulable (NoSchedule), and network-unavailable for host-network pods.
They are pinned to their node with required node affinity on
`metadata.name`, which the scheduler then honours.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from k8py.apimachinery.nodeselector import term_matches

DEFAULT_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
NETWORK_UNAVAILABLE = ("node.kubernetes.io/network-unavailable", "NoSchedule")


def add_default_tolerations(pod_spec: dict) -> None:
    wanted = list(DEFAULT_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        wanted.append(NETWORK_UNAVAILABLE)
    tolerations = pod_spec.setdefault("tolerations", [])
    for key, effect in wanted:
        if not any(t.get("key") == key and t.get("effect") == effect and t.get("operator") == "Exists"
                   for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})


def pin_to_node(pod_spec: dict, node_name: str) -> None:
    """Require the node by name. The required terms are replaced by that one
    match: the controller already checked the node against them."""
    affinity = pod_spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}


def pinned_node(pod: dict) -> str | None:
    """The node a daemon pod is for: where it runs, or what its affinity pins it to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and \
                    len(field.get("values") or []) == 1:
                return field["values"][0]
    return None


# -- matching -----------------------------------------------------------------------------

def node_selector_matches(pod_spec: dict, node: dict) -> bool:
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    return any(term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


def tolerates(toleration: dict, taint: dict) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    if not toleration.get("key") and toleration.get("operator") != "Exists":
        return False
    if toleration.get("operator") == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(pod_spec: dict, node: dict, effects: tuple[str, ...]) -> list[dict]:
    tolerations = pod_spec.get("tolerations") or []
    return [t for t in (node.get("spec") or {}).get("taints") or []
            if t.get("effect") in effects and not any(tolerates(tol, t) for tol in tolerations)]


@dataclass
class Placement:
    should_run: bool            # a daemon pod belongs here
    should_continue: bool       # an existing daemon pod may stay


def placement(template: dict, node: dict) -> Placement:
    """Where the DaemonSet's pods go, with its template as the pods will have it."""
    spec = copy.deepcopy((template or {}).get("spec") or {})
    add_default_tolerations(spec)
    if spec.get("nodeName") and spec["nodeName"] != node["metadata"]["name"]:
        return Placement(False, False)
    if not node_selector_matches(spec, node):
        return Placement(False, False)
    if untolerated(spec, node, ("NoExecute",)):
        return Placement(False, False)
    if untolerated(spec, node, ("NoSchedule",)):
        return Placement(False, True)
    return Placement(True, True)


def new_pod(ds: dict, template: dict, node_name: str, revision_hash: str) -> dict:
    template = copy.deepcopy(template)
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels["controller-revision-hash"] = revision_hash
    labels["pod-template-generation"] = str(ds["metadata"].get("generation", 1))
    meta = {"generateName": f"{ds['metadata']['name']}-", "namespace": ds["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds["metadata"]["name"],
                                 "uid": ds["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    spec = template.get("spec") or {}
    add_default_tolerations(spec)
    pin_to_node(spec, node_name)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def int_or_percent(value, total: int, round_up: bool) -> int:
    """maxUnavailable/maxSurge: an absolute number or a percentage of `total`."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        try:
            percent = int(text[:-1])
        except ValueError:
            return 0
        scaled = percent * total
        return -(-scaled // 100) if round_up else scaled // 100
    try:
        return int(text)
    except ValueError:
        return 0


def rolling_limits(ds: dict, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; at least one of them lets the rollout move."""
    rolling = (((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate")) or {}
    surge = int_or_percent(rolling.get("maxSurge", 0), desired, True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", 1), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def plan_rollout(pods_by_node: dict[str, list[dict]], is_new, is_available, max_surge: int,
                 max_unavailable: int) -> tuple[list[dict], list[str]]:
    """One step of a RollingUpdate over the eligible nodes' live pods: (pods to delete, nodes to surge on).

    Old pods that are not available go at once (nothing is lost). With
    maxSurge, a new pod starts beside an available old one on up to maxSurge
    nodes at a time, and the old one goes once the new one is available.
    Without it, available old pods go while fewer than maxUnavailable nodes
    lack an available pod.
    """
    doomed: list[dict] = []
    creates: list[str] = []
    old_available: list[tuple[str, list[dict]]] = []
    unavailable_nodes = surging = 0
    for node, live in pods_by_node.items():
        new = [p for p in live if is_new(p)]
        old = [p for p in live if not is_new(p)]
        if not any(is_available(p) for p in live):
            unavailable_nodes += 1
        if new and old:
            surging += 1
            if any(is_available(p) for p in new):
                doomed += old
        elif old:
            if any(is_available(p) for p in old):
                old_available.append((node, old))
            else:
                doomed += old
    if max_surge > 0:
        creates = [node for node, _ in old_available[:max(max_surge - surging, 0)]]
    else:
        for _, old in old_available[:max(max_unavailable - unavailable_nodes, 0)]:
            doomed += old
    return doomed, creates
