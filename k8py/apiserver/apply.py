"""Server-side apply (`application/apply-patch+yaml`), first cut.

An apply creates the object when it is missing and otherwise merges the
applied configuration into the live object with strategic-merge semantics.
Field ownership (managedFields, conflicts between managers, removal of fields
a manager stops applying) is not tracked yet: that is issue 3's work.
"""

from __future__ import annotations

from k8py.api import conversion
from k8py.api.schema import schemas
from k8py.apimachinery import errors, patch as patches
from k8py.apiserver import codec


async def server_side_apply(req, raw: bytes) -> tuple[dict, bool]:
    resource, info = req.resource, req.info
    if not req.query.get("fieldManager"):
        raise errors.bad_request("PATCH, application/apply-patch+yaml requests require the fieldManager "
                                 "parameter to be set")
    applied = codec.decode_yaml(raw)
    if not isinstance(applied, dict):
        raise errors.bad_request("the applied configuration must be an object")
    from k8py.apiserver.handlers import check_type_meta
    check_type_meta(resource, applied)
    req.warnings += req.api.validate_fields(resource, applied, req.query.get("fieldValidation"),
                                            "PatchOptions")
    m = applied.setdefault("metadata", {})
    if m.get("name") and m["name"] != info.name:
        raise errors.bad_request(f"the name of the object ({m['name']}) does not match the name on the URL "
                                 f"({info.name})")
    m["name"] = info.name
    objects = req.api.objects(resource)
    if objects.get_cached(info.namespace, info.name) is None:
        if info.subresource:
            raise errors.not_found(resource.plural, info.name, resource.group)
        created = await objects.create(conversion.to_storage(resource, applied), info.namespace,
                                       dry_run=req.dry_run, user=req.user)
        return created, True
    schema = schemas().for_kind(resource.group, resource.version, resource.kind)

    def mutate(current: dict) -> dict:
        client_view = conversion.from_storage(resource, current)
        merged = patches.apply_strategic_merge_patch(client_view, applied, schema) if schema \
            else patches.apply_merge_patch(client_view, applied)
        return conversion.to_storage(resource, merged)

    subresource = info.subresource if info.subresource == "status" else ""
    result = await objects.guaranteed_update(info.namespace, info.name, mutate, subresource=subresource,
                                             dry_run=req.dry_run, user=req.user)
    return result, False
