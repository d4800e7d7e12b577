"""A container's environment: env, envFrom, downward values, service links.

Missing references that are not optional raise ContainerConfigError; the pod
worker reports it as the `CreateContainerConfigError` waiting reason with the
same message the kubelet uses.
"""

from __future__ import annotations

import base64
import re
from typing import Awaitable, Callable

from k8py.kubelet import quantity
from k8py.kubelet.expansion import expand

Fetch = Callable[[str, str], Awaitable[dict | None]]   # (namespace, name) -> object or None when absent


class ContainerConfigError(Exception):
    """The container can't be configured yet (missing ConfigMap, Secret or key)."""


_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvSources:
    """Where env values come from: the API (ConfigMaps, Secrets) and this node."""

    def __init__(self, config_map: Fetch, secret: Fetch, node_allocatable: dict | None = None,
                 services: list[dict] | None = None, master_services: list[dict] | None = None):
        self.config_map = config_map
        self.secret = secret
        self.node_allocatable = node_allocatable or {}
        self.services = services or []
        self.master_services = master_services or []


def field_value(pod: dict, path: str) -> str:
    """The downward API value of `fieldPath` for this pod."""
    m, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": m.get("name", ""),
        "metadata.namespace": m.get("namespace", ""),
        "metadata.uid": m.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
        "status.podIPs": ",".join(p.get("ip", "") for p in status.get("podIPs") or []),
        "status.hostIPs": ",".join(p.get("ip", "") for p in status.get("hostIPs") or []),
    }
    if path in simple:
        return simple[path]
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(m.get(path.split(".")[1]) or {})
    match = _LABEL_REF.match(path)
    if match:
        return (m.get(match.group(1)) or {}).get(match.group(2), "")
    raise ContainerConfigError(f"unsupported fieldPath: {path}")


def format_map(values: dict) -> str:
    """labels/annotations as the downward API writes them: key="value" lines, sorted."""
    import json
    return "\n".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(values.items()))


def resource_value(pod: dict, container_name: str, ref: dict, node_allocatable: dict) -> str:
    """resourceFieldRef: limits fall back to the node's allocatable, as upstream."""
    containers = list((pod.get("spec") or {}).get("containers") or []) + \
        list((pod.get("spec") or {}).get("initContainers") or [])
    name = ref.get("containerName") or container_name
    container = next((c for c in containers if c.get("name") == name), None)
    if container is None:
        raise ContainerConfigError(f"container {name} not found")
    resource = ref.get("resource", "")
    kind, _, what = resource.partition(".")
    res = container.get("resources") or {}
    value = (res.get(kind) or {}).get(what)
    if value is None and kind == "requests":
        value = (res.get("limits") or {}).get(what)
    if value is None:
        value = node_allocatable.get(what, 0)
    divisor = quantity.parse(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = quantity.parse("1")
    if what == "cpu" and kind == "requests" and quantity.parse(value) == 0:
        value = 0
    result = quantity.parse(value) / divisor
    return str(int(result.to_integral_value(rounding="ROUND_CEILING")))


async def container_env(pod: dict, container: dict, sources: EnvSources) -> list[tuple[str, str]]:
    """The ordered (name, value) list for a container; later entries override earlier ones."""
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = {}
    for attr in ("services", "master_services"):
        value = getattr(sources, attr)
        if hasattr(value, "load"):          # listed lazily from the API
            setattr(sources, attr, await value.load())
    for name, value in service_env(pod, sources):
        env[name] = value
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if source.get("configMapRef"):
            ref = source["configMapRef"]
            data = await _config_map_data(sources, namespace, ref.get("name", ""), ref.get("optional"))
        elif source.get("secretRef"):
            ref = source["secretRef"]
            data = await _secret_data(sources, namespace, ref.get("name", ""), ref.get("optional"))
        else:
            continue
        for key, value in (data or {}).items():
            if "=" not in prefix + key:      # the runtime can't carry a name holding "="
                env[prefix + key] = value
    for var in container.get("env") or []:
        name = var.get("name", "")
        if "valueFrom" not in var:
            env[name] = expand(var.get("value") or "", env)
            continue
        value = await _value_from(pod, container, var["valueFrom"], sources, namespace)
        if value is not None:
            env[name] = value
    return list(env.items())


async def _value_from(pod, container, source: dict, sources: EnvSources, namespace: str) -> str | None:
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"].get("fieldPath", ""))
    if "resourceFieldRef" in source:
        return resource_value(pod, container.get("name", ""), source["resourceFieldRef"], sources.node_allocatable)
    for kind, ref_key, fetch_data in (("ConfigMap", "configMapKeyRef", _config_map_data),
                                      ("Secret", "secretKeyRef", _secret_data)):
        if ref_key in source:
            ref = source[ref_key]
            optional = bool(ref.get("optional"))
            data = await fetch_data(sources, namespace, ref.get("name", ""), optional)
            if data is None:
                return None
            key = ref.get("key", "")
            if key not in data:
                if optional:
                    return None
                raise ContainerConfigError(f"couldn't find key {key} in {kind} {namespace}/{ref.get('name', '')}")
            return data[key]
    return None


async def _config_map_data(sources: EnvSources, namespace: str, name: str, optional) -> dict | None:
    obj = await sources.config_map(namespace, name)
    if obj is None:
        if optional:
            return None
        raise ContainerConfigError(f'configmap "{name}" not found')
    data = dict(obj.get("data") or {})
    for key, raw in (obj.get("binaryData") or {}).items():
        data.setdefault(key, base64.b64decode(raw).decode("utf-8", "replace"))
    return data


async def _secret_data(sources: EnvSources, namespace: str, name: str, optional) -> dict | None:
    obj = await sources.secret(namespace, name)
    if obj is None:
        if optional:
            return None
        raise ContainerConfigError(f'secret "{name}" not found')
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}


def service_env(pod: dict, sources: EnvSources) -> list[tuple[str, str]]:
    """Docker-link style variables for services: the `kubernetes` service always, the
    pod's namespace's services when enableServiceLinks is on (the default)."""
    spec = pod.get("spec") or {}
    chosen: dict[str, dict] = {}
    if spec.get("enableServiceLinks", True):
        for svc in sources.services:
            chosen[svc["metadata"]["name"]] = svc
    for svc in sources.master_services:
        chosen.setdefault(svc["metadata"]["name"], svc)
    out: list[tuple[str, str]] = []
    for name in sorted(chosen):
        svc = chosen[name]
        ip = (svc.get("spec") or {}).get("clusterIP")
        if not ip or ip == "None":
            continue
        prefix = name.upper().replace("-", "_")
        ports = (svc.get("spec") or {}).get("ports") or []
        out.append((f"{prefix}_SERVICE_HOST", ip))
        if not ports:
            continue
        out.append((f"{prefix}_SERVICE_PORT", str(ports[0].get("port"))))
        for p in ports:
            if p.get("name"):
                out.append((f"{prefix}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}", str(p.get("port"))))
        first = ports[0]
        proto = (first.get("protocol") or "TCP").lower()
        out.append((f"{prefix}_PORT", f"{proto}://{ip}:{first.get('port')}"))
        for p in ports:
            proto = (p.get("protocol") or "TCP")
            base = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
            out.append((base, f"{proto.lower()}://{ip}:{p.get('port')}"))
            out.append((f"{base}_PROTO", proto.lower()))
            out.append((f"{base}_PORT", str(p.get("port"))))
            out.append((f"{base}_ADDR", ip))
    return out


def expand_command(container: dict, env: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    values = dict(env)
    return ([expand(a, values) for a in container.get("command") or []],
            [expand(a, values) for a in container.get("args") or []])
