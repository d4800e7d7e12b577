"""What a printer is: its columns and a function from object to cells.

Column descriptions are upstream's: most are the API documentation of the
field the column shows, so a column names its field (`doc=`) and the text is
read from the shipped OpenAPI definitions; the rest are literal text.
Where upstream documents a column with a field of a removed API version
(extensions/v1beta1, autoscaling/v2beta1, ...), the field's current
counterpart is used; the wording is the same or nearly so.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
from typing import Callable

from k8py.api.printers import duration
from k8py.api.printers.values import dig, name_of

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    description: str = ""
    doc: str = ""  # "<definition>.<field>", e.g. "core.v1.PodStatus.podIP"
    format: str = ""
    priority: int = 0

    def definition(self) -> dict:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description or field_doc(self.doc),
                "priority": self.priority}


Cells = Callable[[dict, datetime.datetime], list]


@dataclass(frozen=True)
class Printer:
    columns: tuple[Column, ...]
    cells: Cells


def field_doc(ref: str) -> str:
    """The OpenAPI description of `definition.field`; "" when unknown."""
    if not ref:
        return ""
    definition, _, field = ref.rpartition(".")
    if not definition.startswith("io.k8s."):
        definition = "io.k8s.api." + definition
    return _descriptions(definition).get(field, "")


@functools.cache
def _descriptions(definition: str) -> dict[str, str]:
    try:
        from k8py.api.schema import schemas
        node = schemas().definitions.get(definition) or {}
    except Exception:  # descriptions are a nicety: no schema data, no text
        return {}
    return {key: prop.get("description", "") for key, prop in (node.get("properties") or {}).items()
            if isinstance(prop, dict)}


# The two columns nearly every printer starts and ends with.
NAME = Column("Name", format="name", doc=f"{OBJECT_META}.name")
AGE = Column("Age", doc=f"{OBJECT_META}.creationTimestamp")
CONTAINERS = Column("Containers", description="Names of each container in the template.", priority=1)
IMAGES = Column("Images", description="Images referenced by each container in the template.", priority=1)


def age(obj: dict, now: datetime.datetime) -> str:
    return duration.since(dig(obj, "metadata", "creationTimestamp"), now)


# Kinds without a printer of their own get the apiserver's default table.
DEFAULT = Printer(
    columns=(NAME, Column("Created At", type="date", doc=f"{OBJECT_META}.creationTimestamp")),
    cells=lambda obj, now: [name_of(obj), duration.rfc3339(dig(obj, "metadata", "creationTimestamp"))],
)
