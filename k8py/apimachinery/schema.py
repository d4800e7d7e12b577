"""The upstream v1.32 type definitions, loaded once.

The `kubernetes-validate` package ships upstream's OpenAPI definitions converted
to JSON Schema (`$defs`, `$ref: #/$defs/<name>`, nullable types written as
`["string", "null"]`). Everything schema-driven in k8py (OpenAPI documents,
`kubectl explain`, field validation, strategic-merge keys) reads them through
this module, so there is one place that knows that format.
"""

from __future__ import annotations

import functools
from importlib import resources

import orjson

SCHEMA_VERSION = "v1.32.0-local"
REF_PREFIX = "#/$defs/"

# Definitions whose JSON form is a string or number rather than an object.
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class Schemas:
    def __init__(self, definitions: dict):
        self.definitions = definitions
        self.by_gvk: dict[tuple[str, str, str], str] = {}
        for name, node in definitions.items():
            for gvk in node.get("x-kubernetes-group-version-kind", ()):
                key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
                # A kind listed by several definitions (meta types reused by
                # every group) keeps its first, most specific owner.
                self.by_gvk.setdefault(key, name)

    def name_for(self, group: str, version: str, kind: str) -> str | None:
        return self.by_gvk.get((group, version, kind))

    def for_kind(self, group: str, version: str, kind: str) -> dict | None:
        name = self.name_for(group, version, kind)
        return self.definitions.get(name) if name else None

    @staticmethod
    def ref_name(node: dict) -> str | None:
        ref = node.get("$ref")
        if ref and ref.startswith(REF_PREFIX):
            return ref[len(REF_PREFIX):]
        return None

    def resolve(self, node: dict | None) -> dict | None:
        """Follow `$ref` (possibly nested via allOf) to the definition it names."""
        while node is not None:
            name = self.ref_name(node)
            if name is None:
                all_of = node.get("allOf")
                if all_of and len(all_of) == 1:
                    node = all_of[0]
                    continue
                return node
            node = self.definitions.get(name)
        return None

    def property(self, node: dict | None, key: str) -> dict | None:
        """The raw (unresolved) schema of `key` inside the object `node`."""
        node = self.resolve(node)
        if not node:
            return None
        return (node.get("properties") or {}).get(key)

    @staticmethod
    def types(node: dict) -> set[str]:
        """The JSON types a node allows, without the 'null' the converter adds."""
        t = node.get("type")
        if t is None:
            return set()
        if isinstance(t, str):
            return {t}
        return {x for x in t if x != "null"}


@functools.cache
def schemas() -> Schemas:
    base = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_VERSION
    raw = orjson.loads((base / "_definitions.json").read_bytes())
    return Schemas(raw["$defs"])
