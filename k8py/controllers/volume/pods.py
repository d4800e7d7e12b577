"""Which claims a pod uses, as the volume controllers index pods."""

from __future__ import annotations

# The shared pod informer's index: "namespace/claim" -> pods that mention the claim.
CLAIM_INDEX = "pvc"


def pod_claim_keys(pod: dict) -> list[str]:
    """persistentVolumeClaim volumes by claim name; generic ephemeral volumes by the name of the
    claim made for them (`<pod>-<volume>`)."""
    namespace = pod["metadata"].get("namespace", "")
    keys = []
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        if (vol.get("persistentVolumeClaim") or {}).get("claimName"):
            keys.append(f"{namespace}/{vol['persistentVolumeClaim']['claimName']}")
        elif vol.get("ephemeral") is not None:
            keys.append(f"{namespace}/{pod['metadata']['name']}-{vol.get('name', '')}")
    return keys


def is_terminated(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_shut_down(pod: dict) -> bool:
    """The kubelet is done with the pod (deleted with a zero grace period) or it was force-deleted."""
    meta = pod.get("metadata") or {}
    return bool(meta.get("deletionTimestamp")) and meta.get("deletionGracePeriodSeconds") == 0
