"""resource.Quantity arithmetic (k8py.apimachinery.quantity): sums keep the
format of their operands and print as upstream's Quantity.String() does."""

from __future__ import annotations

import pytest

from k8py.apimachinery import quantity
from k8py.apimachinery.quantity import add, canonical, parse, subtract, total


def q(text):
    return parse(text)


@pytest.mark.parametrize("left,right,expected", [
    # binarySI: a power-of-two sum keeps its suffix
    ("64Mi", "32Mi", "96Mi"), ("512Mi", "512Mi", "1Gi"), ("1Gi", "512Mi", "1536Mi"), ("252Mi", "0", "252Mi"),
    # binarySI below 1Ki, or not a whole number of bytes, prints as decimalSI
    ("1Ki", "1", "1025"), ("0.5Ki", "100", "612"), ("1Ki", "500m", "1024500m"),
    # decimalSI: milli units, and back to whole units when they add up
    ("500m", "1", "1500m"), ("1", "500m", "1500m"), ("500m", "500m", "1"), ("1k", "1", "1001"), ("1M", "1M", "2M"),
    # decimalExponent keeps its exponent form
    ("1e3", "1e3", "2e3"), ("1e3", "500m", "1000500e-3"), ("1e3", "1", "1001"),
    # the left operand's format wins, unless it is zero
    ("64Mi", "1", "67108865"), ("1", "64Mi", "67108865"), ("100M", "100Mi", "204857600"),
    ("0", "64Mi", "64Mi"), ("0", "100m", "100m"), ("0", "1e3", "1e3"),
    # nano units survive
    ("1n", "1n", "2n"), ("1u", "1n", "1001n"),
])
def test_add_keeps_the_operands_format(left, right, expected):
    assert canonical(add(q(left), q(right))) == expected


@pytest.mark.parametrize("left,right,expected", [
    ("1Gi", "512Mi", "512Mi"), ("1", "1500m", "-500m"), ("2", "2", "0"), ("0", "100m", "-100m"),
    ("96Mi", "32Mi", "64Mi"), ("2e3", "1e3", "1e3"),
])
def test_subtract_keeps_the_operands_format(left, right, expected):
    assert canonical(subtract(q(left), q(right))) == expected


def test_total_starts_from_a_zero_that_takes_the_first_format():
    assert canonical(total([q("64Mi"), q("32Mi")])) == "96Mi"
    assert canonical(total([q("250m"), q("250m"), q("1")])) == "1500m"
    assert canonical(total([])) == "0"


def test_parse_rounds_finer_than_nano_up_away_from_zero():
    assert canonical(q("0.1n")) == "1n"
    assert canonical(q("1.0000000001")) == "1000000001n"
    assert canonical(q("-0.5n")) == "-1n"


def test_sub_milli_values_round_up_to_milli_where_upstream_does():
    # SetDefaults_ResourceList rounds requests and limits up to milli units.
    assert canonical(quantity.round_up(q("0.1m"), -3)) == "1m"
    assert canonical(quantity.round_up(q("1500u"), -3)) == "2m"
    # MilliValue()/Value() round up too.
    assert quantity.scaled_value(q("1.5m"), -3) == 2
    assert quantity.scaled_value(q("100m"), 0) == 1
    assert quantity.scaled_value(q("1Ki"), 0) == 1024


def test_largest_keeps_the_left_one_on_a_tie():
    assert quantity.largest(q("1Gi"), q("1024Mi")).format == quantity.BINARY_SI
    assert canonical(quantity.largest(q("1"), q("1500m"))) == "1500m"
