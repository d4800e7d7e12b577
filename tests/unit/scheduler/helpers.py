"""Tiny builders for pods and nodes as plain dicts."""

from __future__ import annotations

import random

from k8py.scheduler.framework import CycleState
from k8py.scheduler.nodeinfo import NodeInfo, Snapshot
from k8py.scheduler.plugins import default_profile
from k8py.scheduler.podinfo import PodInfo


def node(name, cpu="4", memory="8Gi", pods="110", labels=None, taints=None, unschedulable=False, images=None,
         extra=None):
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": alloc, "images": images or []}}


def pod(name, ns="default", cpu=None, memory=None, labels=None, spec=None, priority=0, node_name=None, **kw):
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container = {"name": "c", "image": kw.pop("image", "busybox")}
    if requests:
        container["resources"] = {"requests": requests}
    s = {"containers": [container], "priority": priority, **(spec or {})}
    if node_name:
        s["nodeName"] = node_name
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "labels": labels or {},
                         "creationTimestamp": "2024-01-01T00:00:00Z"}, "spec": s, "status": kw.get("status", {})}


def snapshot(nodes, pods=(), namespaces=None, listers=None):
    infos = {n["metadata"]["name"]: NodeInfo(n) for n in nodes}
    for p in pods:
        infos[p["spec"]["nodeName"]].add_pod(PodInfo(p))
    return Snapshot(list(infos.values()), namespaces or {"default": {"kubernetes.io/metadata.name": "default"}},
                    listers or {})


def run_filter(plugin, p, snap):
    """{node: reasons or None} for one plugin (its pre_filter first)."""
    state = CycleState()
    info = PodInfo(p)
    out = {}
    if hasattr(plugin, "pre_filter"):
        st = plugin.pre_filter(state, info, snap)
        if st is not None and getattr(st, "code", None) == "Skip":
            return {n.name: None for n in snap.nodes}
        if st is not None and hasattr(st, "reasons"):
            return {n.name: st.reasons for n in snap.nodes}
    for n in snap.nodes:
        st = plugin.filter(state, info, n)
        out[n.name] = st.reasons if st else None
    return out


def run_score(plugin, p, snap, nodes=None):
    state = CycleState()
    info = PodInfo(p)
    nodes = nodes or snap.nodes
    if hasattr(plugin, "pre_score"):
        st = plugin.pre_score(state, info, nodes, snap)
        if st is not None and st.code == "Skip":
            return {n.name: 0 for n in nodes}
    scores = [plugin.score(state, info, n) for n in nodes]
    if hasattr(plugin, "normalize_score"):
        plugin.normalize_score(state, info, scores)
    return dict(zip((n.name for n in nodes), scores))


def schedule(p, snap, **kw):
    prof = default_profile(rng=random.Random(1), **kw)
    return prof.schedule(CycleState(), PodInfo(p), snap)
