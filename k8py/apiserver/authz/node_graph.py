"""Which objects each node's pods use: the graph behind the Node authorizer.

Upstream keeps a graph of vertices (pods, nodes, secrets, ...) and edges fed by
informers. What the authorizer asks of it is only "does a pod bound to node N
use this object?", so k8py keeps exactly that: for every bound pod the node
and the set of objects it references, counted per node, plus which PVC each
PersistentVolume is bound to (a node may read a PV when it may read its claim).

The graph is fed synchronously from the watch cache's commits (see
`NodeGraph.on_change`), so it is current by the time the kubelet hears of a
pod through its own watch.
"""

from __future__ import annotations

from collections import Counter

# Object kinds the graph knows, by the resource (plural) a request names.
SECRET, CONFIGMAP, PVC, PV, SERVICEACCOUNT, RESOURCECLAIM, POD = (
    "secrets", "configmaps", "persistentvolumeclaims", "persistentvolumes", "serviceaccounts",
    "resourceclaims", "pods")

# Volume sources whose secret reference is a `secretRef` / `nodePublishSecretRef` /
# `controllerPublishSecretRef`-like object with a name (upstream's VisitPodSecretNames).
_SECRET_REF_VOLUMES = {
    "azureFile": ("secretName",), "cephfs": ("secretRef",), "cinder": ("secretRef",),
    "flexVolume": ("secretRef",), "iscsi": ("secretRef",), "rbd": ("secretRef",),
    "scaleIO": ("secretRef",), "storageos": ("secretRef",), "csi": ("nodePublishSecretRef",),
}


def _containers(spec: dict):
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                yield container


def pod_references(pod: dict) -> set[tuple[str, str, str]]:
    """(resource, namespace, name) of every object a pod makes its node read."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    ns, refs = meta.get("namespace", ""), set()

    def add(kind: str, name) -> None:
        if isinstance(name, str) and name:
            refs.add((kind, ns, name))

    add(SERVICEACCOUNT, spec.get("serviceAccountName"))
    for ref in spec.get("imagePullSecrets") or []:
        add(SECRET, (ref or {}).get("name"))
    for container in _containers(spec):
        for source in container.get("envFrom") or []:
            add(SECRET, ((source or {}).get("secretRef") or {}).get("name"))
            add(CONFIGMAP, ((source or {}).get("configMapRef") or {}).get("name"))
        for env in container.get("env") or []:
            value_from = (env or {}).get("valueFrom") or {}
            add(SECRET, (value_from.get("secretKeyRef") or {}).get("name"))
            add(CONFIGMAP, (value_from.get("configMapKeyRef") or {}).get("name"))
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        add(SECRET, (volume.get("secret") or {}).get("secretName"))
        add(CONFIGMAP, (volume.get("configMap") or {}).get("name"))
        add(PVC, (volume.get("persistentVolumeClaim") or {}).get("claimName"))
        if volume.get("ephemeral"):     # the generic ephemeral volume's claim is <pod>-<volume>
            add(PVC, f"{meta.get('name', '')}-{volume.get('name', '')}")
        for source in (volume.get("projected") or {}).get("sources") or []:
            add(SECRET, ((source or {}).get("secret") or {}).get("name"))
            add(CONFIGMAP, ((source or {}).get("configMap") or {}).get("name"))
        for kind, fields in _SECRET_REF_VOLUMES.items():
            source = volume.get(kind)
            if isinstance(source, dict):
                for field in fields:
                    ref = source.get(field)
                    add(SECRET, ref if isinstance(ref, str) else (ref or {}).get("name"))
    for claim in spec.get("resourceClaims") or []:
        add(RESOURCECLAIM, (claim or {}).get("resourceClaimName"))
    for status in (pod.get("status") or {}).get("resourceClaimStatuses") or []:
        add(RESOURCECLAIM, (status or {}).get("resourceClaimName"))
    return refs


class NodeGraph:
    def __init__(self):
        self._pods: dict[tuple[str, str], tuple[str, frozenset]] = {}   # (ns, name) -> (node, refs)
        self._uses: Counter = Counter()                                  # (node, kind, ns, name) -> pods
        self._pv_claims: dict[str, tuple[str, str]] = {}                # pv -> (ns, claim)
        self._nodes: set[str] = set()

    # ---- feeding ------------------------------------------------------------

    def on_change(self, resource: str, old: dict | None, new: dict | None) -> None:
        """A committed change of a pod, PV or node (old None: created; new None: deleted)."""
        obj = new if new is not None else old
        meta = obj.get("metadata") or {}
        if resource == POD:
            self._set_pod(meta.get("namespace", ""), meta.get("name", ""), new)
        elif resource == PV:
            claim = ((new or {}).get("spec") or {}).get("claimRef") or {}
            if claim.get("name"):
                self._pv_claims[meta.get("name", "")] = (claim.get("namespace", ""), claim["name"])
            else:
                self._pv_claims.pop(meta.get("name", ""), None)
        elif resource == "nodes":
            (self._nodes.add if new is not None else self._nodes.discard)(meta.get("name", ""))

    def _set_pod(self, namespace: str, name: str, pod: dict | None) -> None:
        key = (namespace, name)
        before = self._pods.pop(key, None)
        if before is not None:
            node, refs = before
            for ref in refs:
                self._uses[(node, *ref)] -= 1
                if self._uses[(node, *ref)] <= 0:
                    del self._uses[(node, *ref)]
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        if not node:        # only pods bound to a node give that node anything
            return
        refs = frozenset(pod_references(pod))
        self._pods[key] = (node, refs)
        for ref in refs:
            self._uses[(node, *ref)] += 1

    # ---- asking -------------------------------------------------------------

    def node_of(self, namespace: str, pod: str) -> str | None:
        entry = self._pods.get((namespace, pod))
        return entry[0] if entry else None

    def has_node(self, node: str) -> bool:
        return node in self._nodes

    def related(self, node: str, resource: str, namespace: str, name: str) -> bool:
        """Does a pod bound to `node` use this object (directly, or a PV through its claim)?"""
        if resource == POD:
            return self.node_of(namespace, name) == node
        if resource == PV:
            claim = self._pv_claims.get(name)
            return claim is not None and (node, PVC, *claim) in self._uses
        return (node, resource, namespace, name) in self._uses


def feed_from_caches(graph: NodeGraph, caches: dict) -> None:
    """Fill the graph from started watch caches ({resource: WatchCache} for pods,
    persistentvolumes and nodes) and keep it current with their changes."""
    for resource, cache in caches.items():
        for cached in cache.list(cache.prefix)[0]:
            graph.on_change(resource, None, cached.obj)
        cache.add_listener(lambda old, new, resource=resource: graph.on_change(resource, old, new))
