"""Files for the API-backed volumes (configMap, secret, downwardAPI, projected).

Each function returns {relative path: (bytes, mode)}; the atomic writer puts
them on disk. Errors carry the kubelet's FailedMount wording.
"""

from __future__ import annotations

import base64
import posixpath

from k8py.kubelet.env import ContainerConfigError, field_value, format_map, resource_value
from k8py.kubelet.volumes.base import VolumeContext, VolumeError, mode_of


def _check_path(path: str) -> str:
    clean = posixpath.normpath(path)
    if path.startswith("/") or clean.startswith("..") or clean == ".":
        raise VolumeError(f"invalid path {path!r}: must be relative and may not contain '..'")
    return clean


def _from_items(data: dict[str, bytes], items, default_mode, optional: bool, what: str) -> dict:
    if not items:
        return {k: (v, mode_of(None, default_mode)) for k, v in data.items()}
    out = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"configmap references non-existent config key: {key}" if what == "configmap"
                              else f"references non-existent secret key: {key}")
        out[_check_path(item.get("path") or key)] = (data[key], mode_of(item.get("mode"), default_mode))
    return out


async def config_map(ctx: VolumeContext, namespace: str, source: dict, default_mode=None) -> dict:
    name = source.get("name", "")
    obj = await ctx.config_map(namespace, name)
    if obj is None:
        if source.get("optional"):
            return {}
        raise VolumeError(f'configmap "{name}" not found')
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return _from_items(data, source.get("items"), default_mode, bool(source.get("optional")), "configmap")


async def secret(ctx: VolumeContext, namespace: str, source: dict, default_mode=None, name_key="name") -> dict:
    name = source.get(name_key, "")
    obj = await ctx.secret(namespace, name)
    if obj is None:
        if source.get("optional"):
            return {}
        raise VolumeError(f'secret "{name}" not found')
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    return _from_items(data, source.get("items"), default_mode, bool(source.get("optional")), "secret")


def downward_api(ctx: VolumeContext, pod: dict, source: dict, default_mode=None) -> dict:
    out = {}
    for item in source.get("items") or []:
        path = _check_path(item.get("path", ""))
        try:
            if item.get("fieldRef"):
                field_path = item["fieldRef"].get("fieldPath", "")
                if field_path in ("metadata.labels", "metadata.annotations"):
                    value = format_map((pod.get("metadata") or {}).get(field_path.split(".")[1]) or {})
                else:
                    value = field_value(pod, field_path)
            elif item.get("resourceFieldRef"):
                ref = item["resourceFieldRef"]
                value = resource_value(pod, ref.get("containerName", ""), ref, ctx.node_allocatable)
            else:
                continue
        except ContainerConfigError as e:
            raise VolumeError(str(e)) from None
        out[path] = (value.encode(), mode_of(item.get("mode"), default_mode))
    return out


async def service_account_token(ctx: VolumeContext, pod: dict, source: dict, default_mode=None) -> dict:
    path = _check_path(source.get("path") or "token")
    if ctx.service_account_token is None:
        return {}
    m = pod.get("metadata") or {}
    token = await ctx.service_account_token(
        m.get("namespace", "default"), (pod.get("spec") or {}).get("serviceAccountName") or "default",
        [source["audience"]] if source.get("audience") else [], source.get("expirationSeconds") or 3600, pod)
    # Tokens are private to the pod's user: 0600 unless a mode was asked for.
    return {path: (token.encode(), mode_of(default_mode, 0o600) if default_mode is not None else 0o600)}


async def projected(ctx: VolumeContext, pod: dict, source: dict) -> dict:
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    default_mode = source.get("defaultMode")
    out: dict = {}
    for s in source.get("sources") or []:
        if s.get("configMap") is not None:
            out.update(await config_map(ctx, namespace, s["configMap"], default_mode))
        elif s.get("secret") is not None:
            out.update(await secret(ctx, namespace, s["secret"], default_mode))
        elif s.get("downwardAPI") is not None:
            out.update(downward_api(ctx, pod, s["downwardAPI"], default_mode))
        elif s.get("serviceAccountToken") is not None:
            out.update(await service_account_token(ctx, pod, s["serviceAccountToken"], default_mode))
        elif s.get("clusterTrustBundle") is not None:
            continue     # no ClusterTrustBundle API here yet
    return out
