"""VolumeBinding: the hook the storage work plugs into.

This is a stub. Pods without PersistentVolumeClaims pass untouched (the only
case it decides today). A pod that mentions a PVC is checked just for the
claims existing and being bound; topology-aware binding, WaitForFirstConsumer
and provisioning belong to the storage issue, which replaces `claims_ready`.
"""

from __future__ import annotations

from k8py.scheduler.framework import SKIPPED, unresolvable

ERR_REASON_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"


def pvc_names(pod_spec: dict) -> list[str]:
    return [v["persistentVolumeClaim"].get("claimName", "") for v in pod_spec.get("volumes") or []
            if v.get("persistentVolumeClaim")]


class VolumeBinding:
    name = "VolumeBinding"

    def pre_filter(self, state, pod, snapshot):
        names = pvc_names(pod.spec)
        if not names:
            return SKIPPED
        claims = {f"{c['metadata'].get('namespace')}/{c['metadata']['name']}": c
                  for c in snapshot.listers.get("persistentvolumeclaims", [])}
        if not snapshot.listers.get("_pvcs_watched"):
            return None  # nobody feeds us claims yet: don't block pods on what we can't see
        for name in names:
            claim = claims.get(f"{pod.namespace}/{name}")
            if claim is None:
                return unresolvable(f'persistentvolumeclaim "{name}" not found')
            if (claim.get("status") or {}).get("phase") != "Bound" and \
                    not (claim.get("spec") or {}).get("volumeName"):
                return unresolvable(ERR_REASON_UNBOUND_IMMEDIATE)
        return None

    def filter(self, state, pod, node):
        return None
