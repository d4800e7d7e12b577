"""Resource quantities in their canonical spelling.

Upstream prints quantities (PV capacity, quota usage, HPA targets) through
resource.Quantity.String(), which re-spells the value canonically: `1024Mi`
prints as `1Gi`, `0.5` as `500m`, `1000m` as `1`. Clients may send any
spelling, so printers canonicalise before showing a value.
"""

from __future__ import annotations

from k8py.apimachinery import quantity


def canonical(value) -> str:
    """The canonical spelling of a quantity; "0" for an unset one.

    Text that is not a quantity at all is shown as it came.
    """
    if value is None:
        return "0"
    parsed = quantity.try_parse(value.strip() if isinstance(value, str) else value)
    return str(value) if parsed is None else quantity.canonical(parsed)
