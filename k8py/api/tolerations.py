"""Taint/toleration matching (shared by TaintToleration, PodTopologySpread and taint eviction)."""

from __future__ import annotations


def tolerates(toleration: dict, taint: dict) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        # An empty key with Exists tolerates every taint.
        return not key or key == taint.get("key")
    if key != taint.get("key"):
        return False
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerated_by(taint: dict, tolerations: list) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def first_untolerated(taints: list, tolerations: list, effects: tuple[str, ...]) -> dict | None:
    for taint in taints:
        if taint.get("effect") in effects and not tolerated_by(taint, tolerations):
            return taint
    return None
