"""Pure StatefulSet rules: pod identity, ordinals, claims, and what to do next.

A StatefulSet's pod `<set>-<i>` is a stable identity: its hostname is its
name, its subdomain the governing Service, it carries the labels
`statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`, and
its volumes for `volumeClaimTemplates` point at claims `<tmpl>-<set>-<i>`
that outlive it (unless the retention policy says otherwise).
"""

from __future__ import annotations

import copy
import re

from k8py.controllers.ownership import new_controller_ref
from k8py.controllers.statefulset_claims import claim_name, claim_templates
from k8py.controllers.revisions import REVISION_HASH_LABEL

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def start_ordinal(sts: dict) -> int:
    return ((sts.get("spec") or {}).get("ordinals") or {}).get("start", 0) or 0


def replicas(sts: dict) -> int:
    value = (sts.get("spec") or {}).get("replicas")
    return 1 if value is None else value


def pod_name(sts: dict, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def ordinal_of(sts: dict, pod: dict) -> int | None:
    """The ordinal in `<set>-<ordinal>`, or None when the name is not of this set."""
    match = re.fullmatch(re.escape(sts["metadata"]["name"]) + r"-(\d+)", pod["metadata"]["name"])
    return int(match.group(1)) if match else None


def wanted_ordinals(sts: dict) -> range:
    start = start_ordinal(sts)
    return range(start, start + replicas(sts))


def new_pod(sts: dict, template: dict, revision_name: str, ordinal: int) -> dict:
    """The pod for `ordinal` from `template` (the revision's template)."""
    template = copy.deepcopy(template)
    tmeta = template.get("metadata") or {}
    name = pod_name(sts, ordinal)
    labels = dict(tmeta.get("labels") or {})
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    labels[REVISION_HASH_LABEL] = revision_name
    meta = {"name": name, "namespace": sts["metadata"]["namespace"], "labels": labels,
            "ownerReferences": [new_controller_ref(sts, "apps/v1", "StatefulSet")]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    spec = template.get("spec") or {}
    spec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        spec["subdomain"] = service
    _attach_claims(sts, spec, ordinal)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _attach_claims(sts: dict, spec: dict, ordinal: int) -> None:
    """A claim template replaces any pod volume of the same name."""
    claims = {t["metadata"]["name"]: claim_name(t["metadata"]["name"], sts, ordinal)
              for t in claim_templates(sts) if (t.get("metadata") or {}).get("name")}
    if not claims:
        return
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
    for volume_name, claim in claims.items():
        volumes.append({"name": volume_name, "persistentVolumeClaim": {"claimName": claim}})
    spec["volumes"] = volumes


def identity_matches(sts: dict, pod: dict, ordinal: int) -> bool:
    labels = pod["metadata"].get("labels") or {}
    spec = pod.get("spec") or {}
    service = (sts.get("spec") or {}).get("serviceName")
    return (labels.get(POD_NAME_LABEL) == pod["metadata"]["name"] and labels.get(POD_INDEX_LABEL) == str(ordinal)
            and spec.get("hostname") == pod["metadata"]["name"] and (not service or spec.get("subdomain") == service))


def identity_patch(sts: dict, pod: dict, ordinal: int) -> dict:
    """The labels a pod must carry (the fixable part of its identity)."""
    return {"metadata": {"labels": {POD_NAME_LABEL: pod["metadata"]["name"], POD_INDEX_LABEL: str(ordinal)}}}


def pod_revision(pod: dict) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL)


def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_running_and_ready(pod: dict) -> bool:
    if phase(pod) != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def is_terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_failed(pod: dict) -> bool:
    return phase(pod) == "Failed"


def is_healthy(pod: dict) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def revision_for_new_pod(sts: dict, ordinal: int, current: str, update: str) -> str:
    """Which revision a (re)created pod gets: rolling updates with a partition keep
    ordinals below it on the current revision; pods not yet reached by an
    unpartitioned rollout keep theirs too."""
    strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return update
    partition = (strategy.get("rollingUpdate") or {}).get("partition")
    if partition is not None:
        return current if ordinal < partition else update
    current_replicas = (sts.get("status") or {}).get("currentReplicas", 0)
    return current if ordinal - start_ordinal(sts) < current_replicas and current != update else update


def rollout_step(sts: dict, pods_by_ordinal: dict[int, dict], update: str) -> int | None:
    """The ordinal whose pod the rolling update deletes next, or None to wait.

    From the highest ordinal down to the partition: the first pod on an old
    revision goes (unless already terminating); an up-to-date pod that is not
    yet healthy holds the rollout until it is.
    """
    strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return None
    partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
    for ordinal in sorted(pods_by_ordinal, reverse=True):
        if ordinal < partition:
            break
        pod = pods_by_ordinal[ordinal]
        if pod_revision(pod) != update and not is_terminating(pod):
            return ordinal
        if not is_healthy(pod):
            return None
    return None
