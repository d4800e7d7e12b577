"""Go's way of printing values, for error messages that must read as upstream's.

`go_quote` is Go's %q (strconv.Quote); `go_value_text` is %+v of a decoded JSON
value. JSON objects parsed with their duplicate keys kept are `JSONPairs`.
Shared by the patch code here and by field validation in `api`.
"""

from __future__ import annotations


class JSONPairs(list):
    """A JSON object as its (key, value) pairs, duplicates kept."""


def pairs_of(value):
    """The (key, value) pairs of a JSON object, parsed as a dict or as JSONPairs."""
    return value if isinstance(value, JSONPairs) else value.items()


def go_quote(text: str) -> str:
    """Go's %q for a string (strconv.Quote)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_value_text(value) -> str:
    """Go's %+v of a decoded JSON value (map[string]interface{} and friends)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, JSONPairs)):
        items = dict(pairs_of(value))
        return "map[" + " ".join(f"{k}:{go_value_text(items[k])}" for k in sorted(items)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_value_text(v) for v in value) + "]"
    return str(value)


def _go_float(value: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64): shortest digits, exponent form
    (at least two exponent digits) when the exponent is < -4 or >= 21."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    int_part, _, frac = mantissa.partition(".")
    frac = "" if frac == "0" else frac
    all_digits = int_part + frac
    leading = len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits.strip("0") or "0"
    point = len(int_part) + int(exp_text or 0) - leading  # digits before the decimal point
    exponent = point - 1
    if exponent < -4 or exponent >= 21:
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{head}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"
