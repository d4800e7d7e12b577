"""Which PersistentVolume a claim may bind to: the rules of upstream's binder.

Pure functions over plain dicts, so the PV controller, the scheduler's
VolumeBinding plugin and the tests read the same rules:

- a claim's class is the legacy `volume.beta.kubernetes.io/storage-class`
  annotation when present, else `spec.storageClassName`, else "" (a volume's
  likewise); classes must be equal, so "" binds only to class-less volumes;
- the volume's access modes must include every mode the claim asks for;
  among the volumes that qualify, the ones whose mode set is smallest are
  tried first (upstream's index by access modes), then the smallest capacity;
- volumeMode (default Filesystem on both sides) must be equal;
- the claim's label selector must match the volume's labels;
- a volume pre-bound to the claim (`spec.claimRef` naming it) wins over any
  other, if big enough; a volume pre-bound to another claim is never taken;
- node affinity is checked only when a node is given (the scheduler's path;
  the controller binds Immediate-mode claims without looking at nodes).
"""

from __future__ import annotations

from fractions import Fraction

from k8py.api.validation import quantity
from k8py.apimachinery.selectors import selector_from_label_selector
from k8py.apimachinery.nodeselector import term_matches

BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"


def _annotations(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def claim_class(claim: dict) -> str:
    annotations = _annotations(claim)
    if BETA_STORAGE_CLASS in annotations:
        return annotations[BETA_STORAGE_CLASS]
    return (claim.get("spec") or {}).get("storageClassName") or ""


def volume_class(volume: dict) -> str:
    annotations = _annotations(volume)
    if BETA_STORAGE_CLASS in annotations:
        return annotations[BETA_STORAGE_CLASS]
    return (volume.get("spec") or {}).get("storageClassName") or ""


def storage_size(resources: dict | None) -> Fraction:
    parsed = quantity.try_parse((resources or {}).get("storage"))
    return parsed.value if parsed is not None else Fraction(0)


def requested_size(claim: dict) -> Fraction:
    return storage_size(((claim.get("spec") or {}).get("resources") or {}).get("requests"))


def capacity(volume: dict) -> Fraction:
    return storage_size((volume.get("spec") or {}).get("capacity"))


def volume_mode_mismatch(claim: dict, volume: dict) -> bool:
    wanted = (claim.get("spec") or {}).get("volumeMode") or "Filesystem"
    offered = (volume.get("spec") or {}).get("volumeMode") or "Filesystem"
    return wanted != offered


def access_modes_fit(claim: dict, volume: dict) -> bool:
    offered = set((volume.get("spec") or {}).get("accessModes") or [])
    return set((claim.get("spec") or {}).get("accessModes") or []) <= offered


def is_bound_to_claim(volume: dict, claim: dict) -> bool:
    """The volume's claimRef names this claim (and, once it has a uid, this very claim)."""
    ref = (volume.get("spec") or {}).get("claimRef")
    meta = claim.get("metadata") or {}
    if not ref or ref.get("name") != meta.get("name") or ref.get("namespace") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def node_affinity_matches(volume: dict, node: dict) -> bool:
    required = (((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required"))
    if required is None:
        return True
    return any(term_matches(term, node) for term in required.get("nodeSelectorTerms") or [])


class SelectorError(ValueError):
    pass


def claim_selector(claim: dict):
    """The claim's label selector (None without one); SelectorError when it is broken."""
    spec = (claim.get("spec") or {}).get("selector")
    if spec is None:
        return None
    for expr in spec.get("matchExpressions") or []:
        if expr.get("operator") not in ("In", "NotIn", "Exists", "DoesNotExist"):
            meta = claim.get("metadata") or {}
            raise SelectorError(f"error creating internal label selector for claim: "
                                f"{meta.get('namespace')}/{meta.get('name')}: "
                                f'"{expr.get("operator")}" is not a valid label selector operator')
    return selector_from_label_selector(spec)


def _pick(claim: dict, volumes: list[dict], selector, delay_binding: bool,
          node: dict | None, excluded: set[str]) -> tuple[dict | None, bool]:
    """The best volume of one access-mode group; (volume, True) when it is pre-bound to the claim."""
    wanted_size, wanted_class = requested_size(claim), claim_class(claim)
    best, best_size = None, None
    for volume in volumes:
        if volume["metadata"].get("name") in excluded:
            continue
        spec = volume.get("spec") or {}
        pre_bound = is_bound_to_claim(volume, claim)
        if spec.get("claimRef") and not pre_bound:
            continue
        if not pre_bound and (volume.get("status") or {}).get("phase") != "Available":
            continue  # (checked again below in upstream's order; here first, as it is cheapest)
        size = capacity(volume)
        if size < wanted_size or volume_mode_mismatch(claim, volume):
            continue
        if (volume.get("metadata") or {}).get("deletionTimestamp"):
            continue
        fits_node = node is None or node_affinity_matches(volume, node)
        if pre_bound:
            return (volume, True) if fits_node else (None, True)
        if node is None and delay_binding:
            continue  # the scheduler binds these once it has picked a node
        if (volume.get("status") or {}).get("phase") != "Available":
            continue
        if selector is not None and not selector.matches((volume.get("metadata") or {}).get("labels") or {}):
            continue
        if volume_class(volume) != wanted_class or not fits_node:
            continue
        if best is None or size < best_size:
            best, best_size = volume, size
    return best, False


def find_best_match(claim: dict, volumes: list[dict], delay_binding: bool = False,
                    node: dict | None = None, excluded: set[str] = frozenset()) -> dict | None:
    """The volume the claim should bind to, or None; `excluded` names volumes not to consider
    (being bound to another claim right now). Raises SelectorError for a broken selector."""
    selector = claim_selector(claim)
    wanted_modes = set((claim.get("spec") or {}).get("accessModes") or [])
    groups: dict[frozenset, list[dict]] = {}
    for volume in volumes:
        modes = frozenset((volume.get("spec") or {}).get("accessModes") or [])
        if wanted_modes <= modes:
            groups.setdefault(modes, []).append(volume)
    # Fewest extra modes first: a ReadWriteOnce claim takes a RWO volume before a RWO+RWX one.
    for modes in sorted(groups, key=lambda m: (len(m), sorted(m))):
        volume, pre_bound = _pick(claim, groups[modes], selector, delay_binding, node, excluded)
        if volume is not None or pre_bound:
            return volume
    return None


def unsatisfied_reason(volume: dict, claim: dict) -> str | None:
    """Why a volume the claim names in spec.volumeName cannot serve it (upstream's wording), or None."""
    if (volume.get("metadata") or {}).get("deletionTimestamp"):
        return f'the volume is marked for deletion "{volume["metadata"]["name"]}"'
    if capacity(volume) < requested_size(claim):
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode_mismatch(claim, volume):
        return "incompatible volumeMode"
    if not access_modes_fit(claim, volume):
        return "incompatible accessMode"
    return None
