"""meta.k8s.io Table responses for `kubectl get`.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io`; each row
carries its cells and the object as PartialObjectMetadata (or the whole
object with `includeObject=Object`, which `--sort-by` sends).
"""

from __future__ import annotations

from k8py.api import printers
from k8py.apimachinery import meta

INCLUDE_OBJECT_VALUES = ("", "None", "Metadata", "Object")
# (group, kind) -> (columnDefinitions, cells(obj, now)) for custom resources,
# filled in from CRDs' additionalPrinterColumns.
CUSTOM_PRINTERS: dict[tuple[str, str], tuple[list[dict], object]] = {}


def _columns(group: str, kind: str) -> list[dict]:
    custom = CUSTOM_PRINTERS.get((group, kind))
    return [dict(c) for c in custom[0]] if custom else printers.column_definitions(group, kind)


def _cells(group: str, kind: str, obj: dict, now) -> list:
    custom = CUSTOM_PRINTERS.get((group, kind))
    return custom[1](obj, now) if custom else printers.row_cells(group, kind, obj, now)


def partial_metadata(obj: dict, version: str = "v1") -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": obj.get("metadata") or {}}


def _row(group: str, kind: str, obj: dict, include: str, version: str, now) -> dict:
    row = {"cells": _cells(group, kind, obj, now)}
    if include == "Object":
        row["object"] = obj
    elif include != "None":
        row["object"] = partial_metadata(obj, version)
    return row


def table(group: str, kind: str, objects: list[dict], *, include: str = "Metadata", version: str = "v1",
          list_meta: dict | None = None, with_columns: bool = True) -> dict:
    now = meta.now()
    out = {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": list_meta or {}}
    # Watch events after the first carry rows only, as upstream's do.
    out["columnDefinitions"] = _columns(group, kind) if with_columns else None
    out["rows"] = [_row(group, kind, o, include, version, now) for o in objects]
    return out
