"""Safe reads from wire-form objects.

Printers must never fail on a partial or odd object (a missing `status`, a
`spec: null`, a number where a string belongs). Upstream prints from Go
structs, where a missing field simply has its zero value; these helpers give
printers the same footing: a missing or mistyped field reads as "", 0, {} or [].
"""

from __future__ import annotations


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def dig(obj, *keys):
    """obj[k1][k2]..., or None as soon as a step is missing or not a dict."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def text(value) -> str:
    """A string field: "" when missing; scalars of another type as text."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def optional_int(value) -> int | None:
    """A pointer-to-int field: None when unset or not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def integer(value, default: int = 0) -> int:
    """An integer field: `default` when missing or not a whole number."""
    number = optional_int(value)
    return default if number is None else number


def flag(value, default: bool = False) -> bool:
    """A bool field; anything but a real bool reads as `default`."""
    return value if isinstance(value, bool) else default


def name_of(obj) -> str:
    return text(dig(obj, "metadata", "name"))


def conditions(obj) -> list[dict]:
    """status.conditions, keeping only well-formed entries."""
    return [c for c in as_list(dig(obj, "status", "conditions")) if isinstance(c, dict)]


def is_condition_true(conds: list[dict], kind: str) -> bool:
    """Whether the first condition of that type has status True."""
    for cond in conds:
        if cond.get("type") == kind:
            return cond.get("status") == "True"
    return False
