"""CustomResourceDefinitions: serving the resources they define.

When a CRD is created or changed, each served version becomes a `Resource`
in the registry (discovery and OpenAPI follow from that), with a watch cache
and ObjectStore over `/registry/<group>/<plural>/`, its structural schema for
validation and pruning, and its additionalPrinterColumns for `kubectl get`.
The CRD then reports NamesAccepted and Established. Deleting a CRD deletes
its objects first (the `customresourcecleanup` finalizer), then the CRD.
"""

from __future__ import annotations

import asyncio
import copy
import logging

from k8py.api.registry import Resource, Scale
from k8py.api.schema import OBJECT_META, REF_PREFIX, schemas
from k8py.apimachinery import errors, meta
from k8py.apiserver import tables
from k8py.apiserver.objects import DeleteOptions, ObjectStore
from k8py.storage.cache import WatchCache

log = logging.getLogger("k8py.crds")

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
CRD_KEY = ("apiextensions.k8s.io", "CustomResourceDefinition")


def _with_type_meta(schema: dict | None) -> dict:
    """The version's schema plus what every object has: apiVersion, kind, metadata."""
    schema = copy.deepcopy(schema) if isinstance(schema, dict) else {"type": "object",
                                                                      "x-kubernetes-preserve-unknown-fields": True}
    props = schema.setdefault("properties", {})
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    props["metadata"] = {"$ref": REF_PREFIX + OBJECT_META}
    _embedded_type_meta(props)
    return schema


def _embedded_type_meta(node) -> None:
    """x-kubernetes-embedded-resource objects have apiVersion, kind and a real
    ObjectMeta too (validated and pruned like the root's)."""
    if isinstance(node, dict):
        if node.get("x-kubernetes-embedded-resource"):
            props = node.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props["metadata"] = {"$ref": REF_PREFIX + OBJECT_META}
        for value in list(node.values()):
            _embedded_type_meta(value)
    elif isinstance(node, list):
        for value in node:
            _embedded_type_meta(value)


LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"


def definition_name(group: str, version: str, kind: str) -> str:
    """Upstream names CRD schemas by the reversed group: com.example.stable.v1.CronTab."""
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def _publish_schema(resource: Resource, schema: dict) -> None:
    """Add the kind (and its list) to the shared definitions, so OpenAPI
    documents, `kubectl explain` and client-side validation see it."""
    defs = schemas()
    gvk = {"group": resource.group, "version": resource.version, "kind": resource.kind}
    name = definition_name(resource.group, resource.version, resource.kind)
    defs.definitions[name] = {**schema, "x-kubernetes-group-version-kind": [gvk]}
    defs.by_gvk[(resource.group, resource.version, resource.kind)] = name
    list_name = name + "List"
    defs.definitions[list_name] = {
        "type": "object", "required": ["items"],
        "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                       "metadata": {"$ref": REF_PREFIX + LIST_META},
                       "items": {"type": "array", "items": {"$ref": REF_PREFIX + name}}},
        "x-kubernetes-group-version-kind": [{**gvk, "kind": resource.list_kind}],
    }
    defs.by_gvk[(resource.group, resource.version, resource.list_kind)] = list_name


def _withdraw_schema(resource: Resource) -> None:
    defs = schemas()
    for kind in (resource.kind, resource.list_kind):
        name = defs.by_gvk.pop((resource.group, resource.version, kind), None)
        if name:
            defs.definitions.pop(name, None)


def _json_path_value(obj, path: str):
    """The value at a simple JSONPath like `.spec.replicas` (printer columns)."""
    cur = obj
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _columns(version: dict) -> tuple[list[dict], list[str]]:
    columns = [{"name": "Name", "type": "string", "format": "name",
                "description": "Name must be unique within a namespace.", "priority": 0}]
    paths = [".metadata.name"]
    printer_columns = version.get("additionalPrinterColumns")
    if printer_columns is None:
        printer_columns = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    for column in printer_columns:
        columns.append({"name": column.get("name", ""), "type": column.get("type", "string"),
                        "format": column.get("format", ""), "description": column.get("description", ""),
                        "priority": column.get("priority", 0)})
        paths.append(column.get("jsonPath", ""))
    return columns, paths


def _printer(columns: list[dict], paths: list[str]):
    def cells(obj: dict, now) -> list:
        out = []
        for column, path in zip(columns, paths):
            value = _json_path_value(obj, path)
            if column["type"] == "date" and isinstance(value, str):
                created = meta.parse_time(value)
                from k8py.api.printers import human_duration
                value = human_duration(now - created) if created else "<unknown>"
            out.append(value if value is not None else "<none>" if column["type"] == "string" else None)
        return out
    return cells


class CustomResources:
    def __init__(self, api):
        self.api = api
        self.served: dict[str, list[Resource]] = {}  # CRD name -> resources it serves

    @property
    def crd_store(self) -> ObjectStore:
        return self.api.objects_for(*CRD_KEY[:1], "v1", "customresourcedefinitions")

    async def start(self) -> None:
        store = self.crd_store
        for cached in store.cache.list(store.resource.key_prefix())[0]:
            await self.sync(cached.obj["metadata"]["name"])

    def changed(self, name: str) -> None:
        asyncio.get_running_loop().create_task(self._sync_logged(name))

    async def _sync_logged(self, name: str) -> None:
        try:
            await self.sync(name)
        except Exception:
            log.exception("customresourcedefinition %s: sync failed", name)

    async def sync(self, name: str) -> None:
        cached = self.crd_store.get_cached("", name)
        if cached is None:
            self._unserve(name)
            return
        crd = cached.obj
        if crd["metadata"].get("deletionTimestamp"):
            await self._clean_up(crd)
            return
        await self._serve(crd)
        await self._mark_established(crd)

    # ---- serving ------------------------------------------------------------

    def _resources(self, crd: dict) -> list[tuple[Resource, dict]]:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        versions = spec.get("versions") or []
        # Validation keeps nameless versions out; a CRD stored before it did must not stop the sync.
        versions = [v for v in versions if isinstance(v, dict) and v.get("name")]
        storage = next((v["name"] for v in versions if v.get("storage")), versions[0]["name"] if versions else "")
        out = []
        for version in versions:
            if not version.get("served", True):
                continue
            declared = version.get("subresources") or {}
            subresources = tuple(k for k in declared if k in ("status", "scale"))
            scale = None
            if "scale" in declared:
                paths = declared["scale"] or {}
                scale = Scale(spec_replicas_path=paths.get("specReplicasPath", ".spec.replicas"),
                              status_replicas_path=paths.get("statusReplicasPath", ".status.replicas"),
                              label_selector_path=paths.get("labelSelectorPath", ""))
            out.append((Resource(
                spec.get("group", ""), version["name"], names.get("kind", ""), names.get("plural", ""),
                namespaced=spec.get("scope") == "Namespaced", short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()), subresources=subresources,
                storage_version=storage if storage != version["name"] else "", custom=True, scale=scale), version))
        return out

    async def _serve(self, crd: dict) -> None:
        name = crd["metadata"]["name"]
        self._unserve(name)
        served = []
        for resource, version in self._resources(crd):
            self.api.registry.add(resource)
            _publish_schema(resource, _with_type_meta((version.get("schema") or {}).get("openAPIV3Schema")))
            columns, paths = _columns(version)
            tables.CUSTOM_PRINTERS[(resource.group, resource.kind)] = (columns, _printer(columns, paths))
            served.append(resource)
        for resource in served:
            if not resource.stores_elsewhere:
                prefix = resource.key_prefix()
                if prefix not in self.api.caches:
                    cache = WatchCache(self.api.store_for(resource), prefix)
                    await cache.start()
                    self.api.caches[prefix] = cache
                self.api.object_stores[(resource.group, resource.version, resource.plural)] = ObjectStore(
                    resource, self.api.store_for(resource), self.api.caches[prefix], self.api.strategy)
        self.served[name] = served
        self.api.openapi.invalidate()

    def _unserve(self, name: str) -> None:
        for resource in self.served.pop(name, []):
            self.api.registry.remove(resource)
            _withdraw_schema(resource)
            tables.CUSTOM_PRINTERS.pop((resource.group, resource.kind), None)
            self.api.object_stores.pop((resource.group, resource.version, resource.plural), None)
        self.api.openapi.invalidate()

    async def _mark_established(self, crd: dict) -> None:
        names = (crd.get("spec") or {}).get("names") or {}
        accepted = dict(names)
        accepted.setdefault("singular", names.get("kind", "").lower())
        accepted.setdefault("listKind", names.get("kind", "") + "List")
        storage = [v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if v.get("storage")]

        def establish(obj: dict) -> dict:
            status = obj.setdefault("status", {})
            now = meta.rfc3339()
            old = {c.get("type"): c for c in status.get("conditions") or []}

            def condition(kind, reason, message):
                prev = old.get(kind)
                if prev and prev.get("status") == "True":
                    return prev
                return {"type": kind, "status": "True", "lastTransitionTime": now, "reason": reason,
                        "message": message}
            # Conditions others set (through /status) are theirs to keep.
            status["conditions"] = [
                condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ] + [c for kind, c in old.items() if kind not in ("NamesAccepted", "Established")]
            status["acceptedNames"] = accepted
            status["storedVersions"] = sorted(set(status.get("storedVersions") or []) | set(storage))
            return obj
        await self.crd_store.guaranteed_update("", crd["metadata"]["name"], establish, subresource="status")

    # ---- deletion -----------------------------------------------------------

    async def _clean_up(self, crd: dict) -> None:
        name = crd["metadata"]["name"]
        for resource in self.served.get(name, []):
            if resource.stores_elsewhere:
                continue
            store = self.api.object_stores.get((resource.group, resource.version, resource.plural))
            if store is None:
                continue
            for item in store.cache.list(resource.key_prefix())[0]:
                m = item.obj["metadata"]
                try:
                    await store.delete(m.get("namespace", ""), m["name"], DeleteOptions(grace_period=0))
                except errors.StatusError as err:
                    if err.code != 404:
                        raise
        self._unserve(name)

        def release(obj: dict) -> dict:
            finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != CLEANUP_FINALIZER]
            obj["metadata"]["finalizers"] = finalizers
            if not finalizers:
                obj["metadata"].pop("finalizers")
            return obj
        await self.crd_store.guaranteed_update("", name, release)
