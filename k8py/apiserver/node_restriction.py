"""NodeRestriction admission: a kubelet may change only what belongs to its node.

As upstream's plugin, for users identified as nodes (system:node:<name> in
system:nodes):
- Node: only its own; not its taints, nor labels outside the kubelet's own set
  (kubernetes.io/k8s.io labels other than upstream's kubelet labels, and any
  node-restriction.kubernetes.io/ label), nor a configSource;
- pods: create only mirror pods bound to itself, owned by its Node and using
  no service account, secret, configmap, PVC or resource claim; delete only
  pods bound to itself; status and evictions only of pods bound to itself;
- Lease: only its own, in kube-node-lease;
- service-account tokens: only bound to a pod on itself;
- PVC status: only capacity and conditions.
Deleting Nodes is refused earlier, by the Node authorizer (NODE_RULES grant no delete).
"""

from __future__ import annotations

import copy

from k8py.apimachinery import errors
from k8py.api.validation.pods import MIRROR_ANNOTATION
from k8py.apiserver.authz.node import NODE_LEASE_NAMESPACE, node_identity
from k8py.apiserver.authz.node_graph import pod_references

NODE_RESTRICTION_LABEL_DOMAIN = "node-restriction.kubernetes.io"
# Labels a kubelet may set on its own Node (upstream's kubeletapis.IsKubeletLabel).
KUBELET_LABELS = {
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type", "kubernetes.io/os",
    "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch",
}
KUBELET_LABEL_DOMAINS = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _node_of(user) -> str | None:
    if user is None:
        return None
    node, is_node = node_identity(user)
    return node if is_node and node else None


def _forbidden(kind: str, name: str, group: str, reason: str) -> errors.StatusError:
    what = f"{kind}.{group}" if group else kind
    subject = f'{what} "{name}"' if name else what
    return errors.StatusError(403, "Forbidden", f"{subject} is forbidden: {reason}", name=name, group=group,
                              kind=kind)


# ---- create / update / delete hooks ------------------------------------------------------

def admit_create(api, resource, obj: dict, user) -> None:
    node = _node_of(user)
    if node is None:
        return
    key, name = (resource.group, resource.plural), obj["metadata"].get("name", "")
    if key == ("", "nodes"):
        _admit_node(node, name, obj, None)
    elif key == ("", "pods"):
        _admit_mirror_pod(api, node, obj)
    elif key == ("coordination.k8s.io", "leases"):
        _admit_lease(node, obj["metadata"].get("namespace", ""), name)


def admit_update(api, resource, new: dict, old: dict, user, subresource: str) -> None:
    node = _node_of(user)
    if node is None:
        return
    key, name = (resource.group, resource.plural), old["metadata"].get("name", "")
    if key == ("", "nodes"):
        _admit_node(node, name, new, old)
    elif key == ("", "pods"):
        if subresource != "status":
            raise _forbidden("pods", name, "", f'unexpected operation "UPDATE", node "{node}" can only create '
                                               f"and delete mirror pods")
        if (old.get("spec") or {}).get("nodeName") != node:
            raise _forbidden("pods", name, "", f'node "{node}" can only update pod status for pods with '
                                               f"spec.nodeName set to itself")
        if (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {}):
            raise _forbidden("pods", name, "", f'node "{node}" cannot update labels through pod status')
        if (old.get("status") or {}).get("resourceClaimStatuses") != \
                (new.get("status") or {}).get("resourceClaimStatuses"):
            raise _forbidden("pods", name, "", f'node "{node}" cannot update resource claim statues')
    elif key == ("coordination.k8s.io", "leases"):
        _admit_lease(node, old["metadata"].get("namespace", ""), name)
    elif key == ("", "persistentvolumeclaims"):
        _admit_pvc_status(node, name, new, old, subresource)


def admit_delete(api, resource, obj: dict, user) -> None:
    node = _node_of(user)
    if node is None:
        return
    key, name = (resource.group, resource.plural), obj["metadata"].get("name", "")
    if key == ("", "nodes") and name != node:
        raise _forbidden("nodes", name, "", f'node "{node}" is not allowed to modify node "{name}"')
    if key == ("", "pods") and (obj.get("spec") or {}).get("nodeName") != node:
        raise _forbidden("pods", name, "", f'node "{node}" can only delete pods with spec.nodeName set to itself')
    if key == ("coordination.k8s.io", "leases"):
        _admit_lease(node, obj["metadata"].get("namespace", ""), name)


def admit_eviction(api, pod: dict, user) -> None:
    node = _node_of(user)
    if node is not None and (pod.get("spec") or {}).get("nodeName") != node:
        raise _forbidden("pods", pod["metadata"]["name"], "",
                         f"node {node} can only evict pods with spec.nodeName set to itself")


def admit_token_request(api, namespace: str, service_account: str, request: dict, user) -> None:
    """A node's TokenRequest must be bound to a pod scheduled on that node."""
    node = _node_of(user)
    if node is None:
        return

    def refuse(reason: str) -> errors.StatusError:
        return _forbidden("serviceaccounts", service_account, "", reason)
    ref = (request.get("spec") or {}).get("boundObjectRef") or {}
    if ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
        raise refuse("node requested token not bound to a pod")
    if not ref.get("uid"):
        raise refuse("node requested token with a pod binding without a uid")
    pod = api.lookup_object("pods", namespace, ref["name"])
    if pod is None:
        raise errors.not_found("pods", ref["name"])
    if pod["metadata"].get("uid") != ref["uid"]:
        raise refuse(f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                     f"The object might have been deleted and then recreated")
    if (pod.get("spec") or {}).get("nodeName") != node:
        raise refuse("node requested token bound to a pod scheduled on a different node")


# ---- per kind -------------------------------------------------------------------------------

def _admit_node(node: str, name: str, new: dict, old: dict | None) -> None:
    if name != node:
        raise _forbidden("nodes", name, "", f'node "{node}" is not allowed to modify node "{name}"')
    spec, labels = new.get("spec") or {}, new["metadata"].get("labels") or {}
    if old is None:
        if spec.get("configSource") is not None:
            raise _forbidden("nodes", name, "", f'node "{node}" is not allowed to create pods with a non-nil '
                                                f"configSource")
        forbidden = forbidden_labels(modified_labels(labels, {}))
        if forbidden:
            raise _forbidden("nodes", name, "", f'node "{node}" is not allowed to set the following labels: '
                                                f"{', '.join(forbidden)}")
        return
    old_spec = old.get("spec") or {}
    if spec.get("configSource") is not None and spec.get("configSource") != old_spec.get("configSource"):
        raise _forbidden("nodes", name, "", f'node "{node}" is not allowed to update configSource to a new '
                                            f"non-nil configSource")
    if (spec.get("taints") or []) != (old_spec.get("taints") or []):
        raise _forbidden("nodes", name, "", f'node "{node}" is not allowed to modify taints')
    forbidden = forbidden_labels(modified_labels(labels, old["metadata"].get("labels") or {}))
    if forbidden:
        raise _forbidden("nodes", name, "", f"is not allowed to modify labels: {', '.join(forbidden)}")


def modified_labels(new: dict, old: dict) -> set[str]:
    return {k for k in set(new) | set(old) if new.get(k) != old.get(k) or (k in new) != (k in old)}


def _label_domain(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else ""


def _in_domain(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith("." + parent)


def is_kubelet_label(key: str) -> bool:
    return key in KUBELET_LABELS or any(_in_domain(_label_domain(key), d) for d in KUBELET_LABEL_DOMAINS)


def forbidden_labels(keys: set[str]) -> list[str]:
    """Sorted labels a kubelet may not set or change on its Node."""
    bad = set()
    for key in keys:
        domain = _label_domain(key)
        if _in_domain(domain, NODE_RESTRICTION_LABEL_DOMAIN):
            bad.add(key)
        if (_in_domain(domain, "kubernetes.io") or _in_domain(domain, "k8s.io")) and not is_kubelet_label(key):
            bad.add(key)
    return sorted(bad)


def _admit_mirror_pod(api, node: str, pod: dict) -> None:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    name = meta.get("name", "")

    def refuse(reason: str) -> errors.StatusError:
        return _forbidden("pods", name, "", reason)
    if MIRROR_ANNOTATION not in (meta.get("annotations") or {}):
        raise refuse(f'pod does not have "{MIRROR_ANNOTATION}" annotation, node "{node}" can only create '
                     f"mirror pods")
    if spec.get("nodeName") != node:
        raise refuse(f'node "{node}" can only create pods with spec.nodeName set to itself')
    owners = meta.get("ownerReferences") or []
    if len(owners) > 1:
        raise refuse(f'node "{node}" can only create pods with a single owner reference set to itself')
    if not owners:
        raise refuse(f'node "{node}" can only create pods with an owner reference set to itself')
    owner = owners[0]
    if owner.get("apiVersion") != "v1" or owner.get("kind") != "Node" or owner.get("name") != node:
        raise refuse(f'node "{node}" can only create pods with an owner reference set to itself')
    if not owner.get("controller"):
        raise refuse(f'node "{node}" can only create pods with a controller owner reference set to itself')
    if owner.get("blockOwnerDeletion"):
        raise refuse(f'node "{node}" must not set blockOwnerDeletion on an owner reference')
    live = api.node(node)
    if live is None:
        raise errors.not_found("nodes", node)
    if owner.get("uid") != live["metadata"].get("uid"):
        raise refuse(f"node {node} UID mismatch: expected {live['metadata'].get('uid')} got {owner.get('uid')}")
    if spec.get("serviceAccountName"):
        raise refuse(f'node "{node}" can not create pods that reference a service account')
    kinds = {kind for kind, _, _ in pod_references(pod)}
    for kind in ("secrets", "configmaps", "persistentvolumeclaims", "resourceclaims"):
        if kind in kinds:
            raise refuse(f'node "{node}" can not create pods that reference {kind}')


def _admit_lease(node: str, namespace: str, name: str) -> None:
    if namespace != NODE_LEASE_NAMESPACE:
        raise _forbidden("leases", name, "coordination.k8s.io",
                         f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
    if name != node:
        raise _forbidden("leases", name, "coordination.k8s.io",
                         "can only access node lease with the same name as the requesting node")


def _admit_pvc_status(node: str, name: str, new: dict, old: dict, subresource: str) -> None:
    if subresource != "status":
        return      # the Node authorizer grants nodes no other PVC write

    def comparable(pvc: dict) -> dict:
        pvc = copy.deepcopy(pvc)
        for field in ("resourceVersion", "managedFields"):
            pvc["metadata"].pop(field, None)
        for field in ("capacity", "conditions", "allocatedResources", "allocatedResourceStatuses"):
            (pvc.get("status") or {}).pop(field, None)
        return pvc
    if comparable(new) != comparable(old):
        raise _forbidden("persistentvolumeclaims", name, "",
                         f'node "{node}" is not allowed to update fields other than status.capacity and '
                         f"status.conditions")
