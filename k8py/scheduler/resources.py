"""Resource quantities and what a pod asks of a node.

CPU is counted in millicores, everything else in whole units (bytes, counts),
rounding fractions up like resource.Quantity's Value()/MilliValue() do.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_SUFFIX = {
    "": 1, "m": Fraction(1, 1000), "u": Fraction(1, 10**6), "n": Fraction(1, 10**9),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL = "ephemeral-storage"
PODS = "pods"

# Upstream's defaults for a container that requests nothing, used only to
# spread best-effort pods when scoring (never for fit).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 2**20

_cache: dict[str, Fraction] = {}
_QUANTITY = re.compile(r"([+-]?[0-9]*\.?[0-9]+|[+-]?[0-9]+\.)(?:[eE]([+-]?[0-9]+))?(Ki|Mi|Gi|Ti|Pi|Ei|[munkMGTPE])?")


def quantity(value) -> Fraction:
    """Parse a Kubernetes quantity ("100m", "1Gi", "1e3", 2) exactly; bad input is 0."""
    if isinstance(value, (int, float)):
        return Fraction(value)
    text = str(value).strip()
    hit = _cache.get(text)
    if hit is not None:
        return hit
    m = _QUANTITY.fullmatch(text)
    if m is None:
        result = Fraction(0)
    else:
        number, exponent, suffix = m.group(1), m.group(2), m.group(3) or ""
        result = Fraction(number) * _SUFFIX[suffix]
        if exponent:
            result *= Fraction(10) ** int(exponent)
    if len(_cache) < 10000:
        _cache[text] = result
    return result


_amounts: dict[tuple, int] = {}


def amount(name: str, value) -> int:
    """A resource amount as an int: millicores for cpu, units otherwise (rounded up)."""
    key = (name == CPU, value)
    hit = _amounts.get(key)
    if hit is not None:
        return hit
    q = quantity(value)
    result = math.ceil(q * 1000) if name == CPU else math.ceil(q)
    if len(_amounts) < 10000 and isinstance(value, str):
        _amounts[key] = result
    return result


def amounts(resource_list: dict | None) -> dict[str, int]:
    return {name: amount(name, value) for name, value in (resource_list or {}).items()}


def _add(into: dict, more: dict) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict, other: dict) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def _non_zero(req: dict) -> dict:
    return {CPU: req.get(CPU) or DEFAULT_MILLI_CPU, MEMORY: req.get(MEMORY) or DEFAULT_MEMORY}


def pod_requests(pod: dict, non_zero: bool = False) -> dict[str, int]:
    """What the pod reserves on a node.

    App containers and sidecars (restartable init containers) add up; each
    ordinary init container runs alone beside the sidecars started before it,
    so the pod needs the larger of the two. Pod overhead comes on top.
    With non_zero, containers asking for no cpu/memory count the defaults.
    """
    spec = pod.get("spec") or {}
    shape = _non_zero if non_zero else (lambda r: r)
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        _add(total, shape(amounts((c.get("resources") or {}).get("requests"))))
    init_peak: dict[str, int] = {}
    sidecars: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        req = shape(amounts((c.get("resources") or {}).get("requests")))
        if c.get("restartPolicy") == "Always":
            _add(total, req)
            _add(sidecars, req)
            running = dict(sidecars)
        else:
            running = dict(sidecars)
            _add(running, req)
        _max(init_peak, running)
    _max(total, init_peak)
    overhead = spec.get("overhead")
    if overhead:
        _add(total, shape(amounts(overhead)) if non_zero else amounts(overhead))
    if non_zero:
        return {CPU: total.get(CPU, 0), MEMORY: total.get(MEMORY, 0)}
    return {k: v for k, v in total.items() if v}
