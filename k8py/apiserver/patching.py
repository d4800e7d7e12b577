"""PATCH: JSON patch, merge patch, strategic merge patch and apply.

The patch is applied to the current object in the client's version inside a
read-modify-write loop, so a concurrent writer makes us re-read and re-apply
rather than fail (unless the patch itself pins a resourceVersion).
"""

from __future__ import annotations

from k8py.api import conversion
from k8py.api.schema import schemas
from k8py.apimachinery import errors, patch as patches
from k8py.apiserver import codec


def _apply(patch_type: str, current: dict, raw: bytes, schema: dict | None) -> dict:
    if patch_type == codec.JSON_PATCH:
        return patches.apply_json_patch(current, raw)
    if patch_type == codec.MERGE_PATCH:
        return patches.apply_merge_patch(current, raw)
    if patch_type == codec.STRATEGIC_PATCH:
        return patches.apply_strategic_merge_patch(current, raw, schema)
    raise errors.unsupported_media_type(patch_type)


def _schema(resource):
    # Custom resources have no patch metadata: strategic merge patch is refused (415).
    if resource.custom:
        return None
    return schemas().for_kind(resource.group, resource.version, resource.kind)


async def patch(req, raw: bytes) -> tuple[dict, bool]:
    """Apply the request's patch; returns (stored object, created)."""
    patch_type = codec.media_type(req.http.headers.get("Content-Type"))
    if patch_type not in codec.PATCH_TYPES:
        raise errors.unsupported_media_type(patch_type)
    resource, info = req.resource, req.info
    if patch_type == codec.APPLY_PATCH:
        from k8py.apiserver import apply
        return await apply.server_side_apply(req, raw)
    schema = _schema(resource)
    field_validation = req.query.get("fieldValidation")
    warnings: list[str] = []

    def mutate(current: dict) -> dict:
        current_rv = current["metadata"].get("resourceVersion")
        client_view = conversion.from_storage(resource, current)
        patched = _apply(patch_type, client_view, raw, schema)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch did not produce a JSON object")
        wanted_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != current_rv:
            raise errors.conflict(resource.plural, info.name, errors.STALE_OBJECT, resource.group)
        warnings[:] = req.api.validate_fields(resource, patched, field_validation, "PatchOptions")
        patched.setdefault("apiVersion", resource.api_version)
        patched.setdefault("kind", resource.kind)
        return conversion.to_storage(resource, patched)

    objects = req.api.objects(resource)
    if objects.get_cached(info.namespace, info.name) is None:
        raise errors.not_found(resource.plural, info.name, resource.group)
    subresource = info.subresource if info.subresource in ("status", "approval", "ephemeralcontainers") else ""
    result = await objects.guaranteed_update(info.namespace, info.name, mutate, subresource=subresource,
                                             dry_run=req.dry_run, user=req.user,
                                             field_manager=req.field_manager)
    req.warnings += warnings
    return result, False
