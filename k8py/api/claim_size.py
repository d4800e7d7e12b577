"""A claim's storage sizes, as the expand controller, the resizers and the resize
admission compare them (bytes; a missing or unparsable size is 0)."""

from __future__ import annotations

from k8py.apimachinery import quantity


def storage_value(resources: dict | None) -> int:
    raw = (resources or {}).get("storage")
    parsed = quantity.try_parse(raw) if raw is not None else None
    return int(parsed.value) if parsed is not None else 0


def requested(claim: dict) -> int:
    return storage_value(((claim.get("spec") or {}).get("resources") or {}).get("requests"))


def capacity(claim: dict) -> int:
    return storage_value((claim.get("status") or {}).get("capacity"))


def needs_expansion(claim: dict) -> bool:
    """Bound, and asking for more than its volume has."""
    return (bool((claim.get("spec") or {}).get("volumeName"))
            and (claim.get("status") or {}).get("phase") == "Bound"
            and requested(claim) > capacity(claim))
