"""Server-side Table printers: the columns and cells `kubectl get` shows.

kubectl asks for `as=Table` and prints what the server returns, so these
printers decide what users see. They follow upstream v1.32's printers
(pkg/printers/internalversion) column for column and cell for cell.
Upstream builds server-side tables in wide mode, so every row carries the
priority-1 (`-o wide`) cells too; kubectl hides them unless asked.

Kinds without a printer upstream (Role, ClusterRole, LimitRange,
CustomResourceDefinition, CSIStorageCapacity, ...) get the apiserver's
default table: Name and Created At.

    column_definitions(group, kind) -> list of {name, type, format, description, priority}
    row_cells(group, kind, obj, now) -> list of JSON-serialisable cells
"""

from __future__ import annotations

import datetime
import functools
import logging

from k8py.api.printers import (admission, apps, autoscaling, batch, cluster, core, event, networking,
                               pod, rbac, storage)
from k8py.api.printers.columns import DEFAULT, Column, Printer
from k8py.api.printers.duration import human_duration
from k8py.api.printers.values import name_of

__all__ = ["column_definitions", "row_cells", "has_printer", "human_duration", "Column", "Printer"]

log = logging.getLogger(__name__)

_MODULES = (pod, core, event, apps, batch, autoscaling, networking, storage, rbac, cluster, admission)

PRINTERS: dict[tuple[str, str], Printer] = {
    key: printer for module in _MODULES for key, printer in module.PRINTERS.items()
}


def _normalise_group(group: str | None) -> str:
    # The core group is "" on the wire; accept its conventional names too.
    return "" if group in (None, "core", "v1") else group


def printer_for(group: str | None, kind: str) -> Printer:
    return PRINTERS.get((_normalise_group(group), kind), DEFAULT)


def has_printer(group: str | None, kind: str) -> bool:
    """Whether the kind has a printer of its own (else it gets the default table)."""
    return (_normalise_group(group), kind) in PRINTERS


@functools.cache
def _definitions(group: str, kind: str) -> tuple[dict, ...]:
    return tuple(column.definition() for column in printer_for(group, kind).columns)


def column_definitions(group: str, kind: str) -> list[dict]:
    """The Table columnDefinitions for a kind, in upstream's order."""
    return [dict(column) for column in _definitions(_normalise_group(group), kind)]


def row_cells(group: str, kind: str, obj: dict, now: datetime.datetime) -> list:
    """The cells of one object's row, one per column of `column_definitions`.

    Never raises: a printer that trips over a malformed object yields a row
    with the name and blanks, so one bad object cannot break a whole list.
    """
    printer = printer_for(group, kind)
    obj = obj if isinstance(obj, dict) else {}
    try:
        return printer.cells(obj, now)
    except Exception:  # noqa: BLE001 - a listing must survive one odd object
        log.exception("printing %s %r failed", kind, name_of(obj))
        return _fallback_cells(printer, obj)


def _fallback_cells(printer: Printer, obj: dict) -> list:
    cells: list = []
    for column in printer.columns:
        if column.format == "name" and not cells:
            cells.append(name_of(obj))
        else:
            cells.append(0 if column.type == "integer" else False if column.type == "boolean" else "")
    return cells
