"""ServiceAccount admission, as upstream's plugin of that name does it for pods:

- a pod runs as `spec.serviceAccountName` (`default` when unset), and that
  ServiceAccount must exist: otherwise the create is refused (403 `error
  looking up service account ns/name: serviceaccount "name" not found`), so a
  controller making pods in a brand-new namespace retries until the
  serviceaccount controller has made `default`. For `default` the lookup is
  retried for a moment first (ten tries 100-200 ms apart, as upstream), which
  covers the usual `create namespace` then `create pod` race;
- unless the pod or its ServiceAccount opts out (automountServiceAccountToken),
  every container gets the projected `kube-api-access-*` token volume;
- a pod without imagePullSecrets gets its ServiceAccount's;
- mirror pods (the kubelet's copies of static pods) are left untouched, but may
  not refer to a ServiceAccount, Secrets or service account tokens: the kubelet
  runs them without the API.
"""

from __future__ import annotations

import asyncio
import random
import secrets

from k8py.apimachinery import errors

DEFAULT_ACCOUNT = "default"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_TOKEN_EXPIRY = 3607
# How often `default` is looked for before the pod is refused (upstream: ten tries).
DEFAULT_ACCOUNT_TRIES = 10


async def admit_pod(api, pod: dict) -> None:
    spec = pod.setdefault("spec", {})
    if MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
        _check_mirror_pod(pod)
        return
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or DEFAULT_ACCOUNT
    spec["serviceAccount"] = spec["serviceAccountName"]
    namespace = pod["metadata"].get("namespace", "")
    account = await _lookup(api, namespace, spec["serviceAccountName"])
    if account is None:
        name = spec["serviceAccountName"]
        raise _forbidden(pod, f"error looking up service account {namespace}/{name}: "
                              f'serviceaccount "{name}" not found')
    if _should_automount(account, spec):
        _mount_token(spec)
    if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [{"name": ref.get("name", "")} for ref in account["imagePullSecrets"]
                                    if isinstance(ref, dict)]


async def _lookup(api, namespace: str, name: str) -> dict | None:
    store = api.objects_for("", "v1", "serviceaccounts")
    tries = DEFAULT_ACCOUNT_TRIES if name == DEFAULT_ACCOUNT else 1
    pause = random.uniform(0.1, 0.2)
    for attempt in range(tries):
        if attempt:
            await asyncio.sleep(pause)
        cached = store.get_cached(namespace, name)
        if cached is not None:
            return cached.obj
    return None


def _should_automount(account: dict, spec: dict) -> bool:
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if account.get("automountServiceAccountToken") is not None:
        return bool(account["automountServiceAccountToken"])
    return True


def _containers(spec: dict) -> list[dict]:
    return [c for key in ("initContainers", "containers") for c in spec.get(key) or [] if isinstance(c, dict)]


def _mount_token(spec: dict) -> None:
    containers = _containers(spec)
    # A pod that already mounts something at the token path keeps its own.
    if any(m.get("mountPath") == TOKEN_MOUNT_PATH for c in containers for m in c.get("volumeMounts") or []):
        return
    volume_name = "kube-api-access-" + "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
    spec.setdefault("volumes", []).append({
        "name": volume_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": _TOKEN_EXPIRY, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                    "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    })
    for container in containers:
        container.setdefault("volumeMounts", []).append(
            {"name": volume_name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH})


def _check_mirror_pod(pod: dict) -> None:
    spec = pod["spec"]
    if spec.get("serviceAccountName"):
        raise _forbidden(pod, "a mirror pod may not reference service accounts")
    if _references_secrets(spec):
        raise _forbidden(pod, "a mirror pod may not reference secrets")
    for volume in spec.get("volumes") or []:
        sources = ((volume or {}).get("projected") or {}).get("sources") or []
        if any(isinstance(s, dict) and s.get("serviceAccountToken") for s in sources):
            raise _forbidden(pod, "a mirror pod may not use ServiceAccountToken volume projections")


def _references_secrets(spec: dict) -> bool:
    """Whether the pod names any Secret (volumes, projections, env, envFrom, pull secrets)."""
    if spec.get("imagePullSecrets"):
        return True
    for volume in spec.get("volumes") or []:
        volume = volume or {}
        if volume.get("secret") or any(isinstance(s, dict) and s.get("secret")
                                       for s in (volume.get("projected") or {}).get("sources") or []):
            return True
    for container in _containers(spec) + [c for c in spec.get("ephemeralContainers") or [] if isinstance(c, dict)]:
        if any(isinstance(e, dict) and e.get("secretRef") for e in container.get("envFrom") or []):
            return True
        if any(isinstance(e, dict) and (e.get("valueFrom") or {}).get("secretKeyRef")
               for e in container.get("env") or []):
            return True
    return False


def _forbidden(pod: dict, reason: str) -> errors.StatusError:
    # Upstream admits before a generated name exists and names such a pod by its
    # generateName in the error (`pods "web-7d4b9-" is forbidden`), as controllers' events show.
    name = pod["metadata"].get("generateName") or pod["metadata"].get("name", "")
    return errors.StatusError(403, "Forbidden", f'pods "{name}" is forbidden: {reason}', name=name, kind="pods")
