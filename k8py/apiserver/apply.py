"""Server-side apply (`application/apply-patch+yaml`).

The applied configuration is merged into the live object by the field
manager (fieldmanager/): fields are owned per manager, conflicting changes to
another manager's fields are refused with 409 unless `force=true`, and fields
a manager stops applying are removed when nobody else owns them. A missing
object is created from the configuration.
"""

from __future__ import annotations

from k8py.api import conversion
from k8py.api.schema import schemas
from k8py.apimachinery import errors, meta
from k8py.apiserver import codec, managedfields
from k8py.apiserver.decoding import check_type_meta


def _reset_fields(resource, subresource: str):
    if subresource == "status":
        return managedfields.reset_field_set("spec")
    if not subresource and resource.has_subresource("status"):
        return managedfields.reset_field_set("status")
    return None


async def server_side_apply(req, raw: bytes) -> tuple[dict, bool]:
    resource, info = req.resource, req.info
    manager = req.query.get("fieldManager")
    if not manager:
        raise errors.bad_request("PATCH, application/apply-patch+yaml requests require the fieldManager "
                                 "parameter to be set")
    force = req.query.get("force") == "true"
    applied = codec.decode_yaml(raw)
    if not isinstance(applied, dict):
        raise errors.bad_request("the applied configuration must be an object")
    check_type_meta(resource, applied)
    req.warnings += req.api.validate_fields(resource, applied, req.query.get("fieldValidation"), "PatchOptions")
    m = applied.setdefault("metadata", {})
    if m.get("name") and m["name"] != info.name:
        raise errors.bad_request(f"the name of the object ({m['name']}) does not match the name on the URL "
                                 f"({info.name})")
    m["name"] = info.name
    schema = schemas().for_kind(resource.group, resource.version, resource.kind)
    subresource = info.subresource if info.subresource == "status" else ""
    reset = _reset_fields(resource, subresource)
    objects = req.api.objects(resource)
    if objects.get_cached(info.namespace, info.name) is None:
        if info.subresource:
            raise errors.not_found(resource.plural, info.name, resource.group)
        created = managedfields.apply(None, applied, manager, force, meta.rfc3339(), schema, reset_fields=reset)
        stored = await objects.create(conversion.to_storage(resource, created), info.namespace,
                                      dry_run=req.dry_run, user=req.user)
        return stored, True

    def mutate(current: dict) -> dict:
        live = conversion.from_storage(resource, current)
        merged = managedfields.apply(live, applied, manager, force, meta.rfc3339(), schema,
                                     subresource=subresource, reset_fields=reset)
        return conversion.to_storage(resource, merged)

    result = await objects.guaranteed_update(info.namespace, info.name, mutate, subresource=subresource,
                                             dry_run=req.dry_run, user=req.user)
    return result, False
