"""Resource quantities in their canonical spelling.

Upstream prints quantities (PV capacity, quota usage, HPA targets) through
resource.Quantity.String(), which re-spells the value canonically: `1024Mi`
prints as `1Gi`, `0.5` as `500m`, `1000m` as `1`. Clients may send any
spelling, so printers canonicalise before showing a value.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_BINARY_SHIFT = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_EXPONENT = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_BINARY_SUFFIX = {shift: suffix for suffix, shift in _BINARY_SHIFT.items()}
_DECIMAL_SUFFIX = {exp: suffix for suffix, exp in _DECIMAL_EXPONENT.items()}

_NUMBER = re.compile(r"^([+-]?)(\d+\.?\d*|\.\d+)(.*)$")
_EXPONENT = re.compile(r"^[eE]([+-]?\d+)$")

# Quantities keep nine decimal places; finer values round away from zero.
_NANO = 10**9

BINARY_SI, DECIMAL_SI, DECIMAL_EXPONENT = "BinarySI", "DecimalSI", "DecimalExponent"


def parse(value) -> tuple[Fraction, str] | None:
    """(exact value, format) of a quantity in any accepted spelling, or None."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    match = _NUMBER.match(str(value).strip())
    if not match:
        return None
    sign, digits, suffix = match.groups()
    scaled = _apply_suffix(Fraction(digits.rstrip(".") or "0"), suffix)
    if scaled is None:
        return None
    amount, fmt = scaled
    amount = _round_to_nano(amount)
    return (-amount if sign == "-" else amount), fmt


def _apply_suffix(number: Fraction, suffix: str) -> tuple[Fraction, str] | None:
    if suffix in _BINARY_SHIFT:
        return number * 2 ** _BINARY_SHIFT[suffix], BINARY_SI
    if suffix in _DECIMAL_EXPONENT:
        return number * Fraction(10) ** _DECIMAL_EXPONENT[suffix], DECIMAL_SI
    exponent = _EXPONENT.match(suffix)
    if exponent:
        return number * Fraction(10) ** int(exponent.group(1)), DECIMAL_EXPONENT
    return None


def _round_to_nano(amount: Fraction) -> Fraction:
    nanos = amount * _NANO
    if nanos.denominator == 1:
        return amount
    return Fraction(math.ceil(nanos), _NANO)


def canonical(value) -> str:
    """The canonical spelling of a quantity; "0" for an unset one.

    Text that is not a quantity at all is shown as it came.
    """
    if value is None:
        return "0"
    parsed = parse(value)
    if parsed is None:
        return str(value)
    amount, fmt = parsed
    if amount == 0:
        return "0"
    if fmt == BINARY_SI and (abs(amount) < 1024 or amount.denominator != 1):
        # Small or fractional binary values read better (and exactly) in decimal.
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        return _binary(int(amount))
    return _decimal(amount, fmt)


def _binary(amount: int) -> str:
    shift = 0
    while amount % 1024 == 0 and shift < 60:
        amount //= 1024
        shift += 10
    return f"{amount}{_BINARY_SUFFIX[shift]}"


def _decimal(amount: Fraction, fmt: str) -> str:
    mantissa, exponent = int(amount * _NANO), -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    # Exponents move in steps of three so a suffix (or e-notation) names them.
    extra = exponent % 3
    mantissa, exponent = mantissa * 10**extra, exponent - extra
    if fmt == DECIMAL_SI and exponent in _DECIMAL_SUFFIX:
        return f"{mantissa}{_DECIMAL_SUFFIX[exponent]}"
    return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
