"""resource.Quantity now lives in k8py.apimachinery.quantity; this name stays for
the validation modules (and branches) that import it from here."""

from k8py.apimachinery.quantity import (BINARY_SI, DECIMAL_EXPONENT, DECIMAL_SI, ZERO, Quantity, QuantityError, add,
                                        canonical, canonical_text, largest, milli_value, parse, round_up,
                                        scaled_value, subtract, total, try_parse)

__all__ = ["BINARY_SI", "DECIMAL_EXPONENT", "DECIMAL_SI", "ZERO", "Quantity", "QuantityError", "add", "canonical",
           "canonical_text", "largest", "milli_value", "parse", "round_up", "scaled_value", "subtract", "total",
           "try_parse"]
