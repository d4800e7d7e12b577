"""The Event printer, shared by core/v1 and events.k8s.io/v1 Events.

Upstream serves both groups from one store and prints the internal (core)
shape, so an events.k8s.io Event is first read into core field names.
"""

from __future__ import annotations

from k8py.api.printers import duration
from k8py.api.printers.columns import NAME, Column, Printer
from k8py.api.printers.formatting import first_non_empty
from k8py.api.printers.values import as_dict, integer, name_of, text

COLUMNS = (
    Column("Last Seen", doc="core.v1.Event.lastTimestamp"),
    Column("Type", doc="core.v1.Event.type"),
    Column("Reason", doc="core.v1.Event.reason"),
    Column("Object", doc="core.v1.Event.involvedObject"),
    Column("Subobject", priority=1, doc="core.v1.ObjectReference.fieldPath"),
    Column("Source", priority=1, doc="core.v1.Event.source"),
    Column("Message", doc="core.v1.Event.message"),
    Column("First Seen", priority=1, doc="core.v1.Event.firstTimestamp"),
    Column("Count", priority=1, doc="core.v1.Event.count"),
    Column("Name", priority=1, format=NAME.format, doc=NAME.doc),
)

# events.k8s.io/v1 field -> the core/v1 field it is stored as
_FROM_EVENTS_V1 = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}


def as_core_event(event: dict) -> dict:
    """An events.k8s.io/v1 Event with core/v1 field names (core Events pass through)."""
    return {_FROM_EVENTS_V1.get(key, key): value for key, value in event.items()}


def _source(event: dict) -> str:
    """`component, host`, falling back to the reporting controller and instance."""
    source = as_dict(event.get("source"))
    component = first_non_empty(text(source.get("component")), text(event.get("reportingController")))
    instance = first_non_empty(text(source.get("host")), text(event.get("reportingInstance")))
    return f"{component}, {instance}" if instance else component


def _target(involved: dict) -> str:
    kind, name = text(involved.get("kind")).lower(), text(involved.get("name"))
    return f"{kind}/{name}" if name else kind


def event_cells(event: dict, now) -> list:
    event = as_core_event(event)
    first_seen = duration.since(event.get("firstTimestamp"), now)
    if duration.parse_time(event.get("firstTimestamp")) is None:
        first_seen = duration.since(event.get("eventTime"), now)
    last_seen = duration.since(event.get("lastTimestamp"), now)
    if duration.parse_time(event.get("lastTimestamp")) is None:
        last_seen = first_seen
    count = integer(event.get("count"))
    series = event.get("series")
    if isinstance(series, dict):
        last_seen = duration.since(series.get("lastObservedTime"), now)
        count = integer(series.get("count"))
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = as_dict(event.get("involvedObject"))
    return [
        last_seen, text(event.get("type")), text(event.get("reason")), _target(involved),
        text(involved.get("fieldPath")), _source(event), text(event.get("message")).strip(),
        first_seen, count, name_of(event),
    ]


EVENT = Printer(COLUMNS, event_cells)

PRINTERS = {("", "Event"): EVENT, ("events.k8s.io", "Event"): EVENT}
