"""resource.Quantity: parse, compare and print in upstream's canonical form.

Upstream keeps a quantity as a number plus the format its suffix implies
(BinarySI for Ki/Mi/..., DecimalSI for m/k/M/... or none, DecimalExponent for
e3) and always serialises it canonically: `1000` -> `1k`, `0.5` -> `500m`,
`1024Mi` -> `1Gi`, `1.5Gi` -> `1536Mi`. Values are exact fractions here;
precision beyond nano units is rounded up, as upstream does when parsing.

Arithmetic keeps upstream's rule for the format of a result: a sum or
difference takes the format of its left operand, unless that operand is zero,
when it takes the right one's (so `64Mi + 32Mi` is `96Mi`, `0 + 100m` is
`100m`, `1 + 500m` is `1500m`). Everything that adds or subtracts quantities
(quota usage, LimitRange pod sums) goes through `add`, `subtract` and `total`
here, so results print as upstream's do.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction

BINARY_SI, DECIMAL_SI, DECIMAL_EXPONENT = "BinarySI", "DecimalSI", "DecimalExponent"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v // 10: k for k, v in _BINARY.items()}
_NUMBER = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?(.*)$")
_EXPONENT = re.compile(r"^[eE]([+-]?\d+)$")


class QuantityError(ValueError):
    pass


@dataclass(frozen=True)
class Quantity:
    value: Fraction
    format: str

    def sign(self) -> int:
        return (self.value > 0) - (self.value < 0)

    def __str__(self) -> str:
        return canonical(self)


def _round_up(value: Fraction, scale: int) -> Fraction:
    """Round away from zero to a multiple of 10**scale (RoundUp)."""
    unit = Fraction(10) ** scale
    steps = value / unit
    if steps.denominator == 1:
        return value
    rounded = math.ceil(steps) if value > 0 else math.floor(steps)
    return rounded * unit


def parse(text) -> Quantity:
    """ParseQuantity. Numbers from JSON are accepted as upstream's decoder does."""
    if type(text) is str and len(text) <= _CACHED_LENGTH:
        return _parse_cached(text)
    return _parse(text)


# Objects repeat the same few quantities ("100m", "64Mi") in every container,
# and each write parses them for defaulting and again for validation: exact
# Fraction arithmetic makes that a hot path. Quantity is immutable; the cache
# is bounded, short texts only.
_CACHED_LENGTH = 40


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Quantity:
    return _parse(text)


def _parse(text) -> Quantity:
    if isinstance(text, bool) or text is None:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    if isinstance(text, int):
        return Quantity(Fraction(text), DECIMAL_SI)
    if isinstance(text, float):
        text = repr(text)
    if not isinstance(text, str) or not text:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    m = _NUMBER.match(text)
    sign, whole, frac, suffix = m.group(1), m.group(2), m.group(3), m.group(4)
    if not whole and not frac:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    number = Fraction(int(whole or "0"))
    if frac:
        number += Fraction(int(frac), 10 ** len(frac))
    if suffix in _BINARY:
        value, fmt = number * (2 ** _BINARY[suffix]), BINARY_SI
    elif suffix in _DECIMAL:
        value, fmt = number * Fraction(10) ** _DECIMAL[suffix], DECIMAL_SI
    else:
        e = _EXPONENT.match(suffix)
        if not e:
            raise QuantityError("unable to parse quantity's suffix")
        value, fmt = number * Fraction(10) ** int(e.group(1)), DECIMAL_EXPONENT
    if sign == "-":
        value = -value
    return Quantity(_round_up(value, -9), fmt)


def try_parse(text) -> Quantity | None:
    try:
        return parse(text)
    except QuantityError:
        return None


def round_up(q: Quantity, scale: int) -> Quantity:
    return Quantity(_round_up(q.value, scale), q.format)


def canonical(q: Quantity) -> str:
    value, fmt = q.value, q.format
    if value == 0:
        return "0"
    if fmt == BINARY_SI and (abs(value) < 1024 or value.denominator != 1):
        fmt = DECIMAL_SI
    sign = "-" if value < 0 else ""
    mag = abs(value)
    if fmt == BINARY_SI:
        n, k = int(mag), 0
        while k < 6 and n % 1024 == 0:
            n //= 1024
            k += 1
        return f"{sign}{n}{_BINARY_SUFFIX[k] if k else ''}"
    # Decimal: mantissa * 10**exp with the mantissa an integer and the
    # exponent lowered to a multiple of three.
    exp = 0
    while mag.denominator != 1:
        mag *= 10
        exp -= 1
    n = int(mag)
    while n % 10 == 0:
        n //= 10
        exp += 1
    drop = exp % 3
    n *= 10 ** drop
    exp -= drop
    if fmt == DECIMAL_SI and exp in _DECIMAL_SUFFIX:
        return f"{sign}{n}{_DECIMAL_SUFFIX[exp]}"
    return f"{sign}{n}" + (f"e{exp}" if exp else "")


def add(a: Quantity, b: Quantity) -> Quantity:
    """Quantity.Add: the left operand's format, or the right one's when the left is zero."""
    return Quantity(a.value + b.value, b.format if a.value == 0 else a.format)


def subtract(a: Quantity, b: Quantity) -> Quantity:
    """Quantity.Sub, with Add's rule for the format."""
    return Quantity(a.value - b.value, b.format if a.value == 0 else a.format)


ZERO = Quantity(Fraction(0), DECIMAL_SI)


def total(quantities) -> Quantity:
    """The sum of quantities, added left to right (a zero DecimalSI quantity when there are none)."""
    result = ZERO
    for q in quantities:
        result = add(result, q)
    return result


def largest(a: Quantity, b: Quantity) -> Quantity:
    """The larger of two quantities; the left one on a tie (as a Cmp > 0 check keeps it)."""
    return b if b.value > a.value else a


def canonical_text(text):
    """The canonical string for a quantity, or the input unchanged if it does not parse."""
    q = try_parse(text)
    return canonical(q) if q is not None else text


def milli_value(q: Quantity) -> Fraction:
    return q.value * 1000


def scaled_value(q: Quantity, scale: int) -> int:
    """Quantity.ScaledValue: the value in units of 10**scale, rounded up (away from zero)."""
    return int(_round_up(q.value, scale) / Fraction(10) ** scale)
