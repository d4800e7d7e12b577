"""Pull a container's image as imagePullPolicy says, with ErrImagePull/ImagePullBackOff back-off."""

from __future__ import annotations

import base64
import json
import time

from k8py.kubelet.runtime.interface import ImageError


class ImagePullFailed(Exception):
    def __init__(self, reason: str, message: str, retry_in: float):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_in = retry_in


async def pull_credentials(ctx, pod: dict) -> list[dict]:
    """`auths` entries of the pod's dockerconfigjson imagePullSecrets."""
    from k8py.client import ApiError
    namespace = pod["metadata"].get("namespace", "default")
    out = []
    for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
        try:
            secret = await ctx.client.resource("v1", "secrets", namespace=namespace).get(ref.get("name", ""))
        except ApiError:
            continue
        data = secret.get("data") or {}
        raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
        if not raw:
            continue
        try:
            config = json.loads(base64.b64decode(raw))
        except ValueError:
            continue
        auths = config.get("auths", config)
        for registry, entry in auths.items():
            if isinstance(entry, dict):
                out.append({"registry": registry, **entry})
    return out


async def ensure_image(ctx, pod: dict, container: dict, event) -> str:
    """The image reference to run; raises ImagePullFailed with the waiting reason to show."""
    image = container.get("image", "")
    if not image:
        raise ImagePullFailed("InvalidImageName", "Failed to apply default image tag \"\": couldn't parse "
                              "image name \"\": invalid reference format", 10)
    policy = container.get("imagePullPolicy") or ("Always" if _is_latest(image) else "IfNotPresent")
    if ctx.images is None:
        event("Normal", "Pulled", f'Container image "{image}" already present on machine')
        return image
    present = ctx.images.get(image)
    if present is not None and policy != "Always":
        event("Normal", "Pulled", f'Container image "{image}" already present on machine')
        return image
    if policy == "Never":
        message = f'Container image "{image}" is not present with pull policy of Never'
        event("Warning", "ErrImageNeverPull", message)
        raise ImagePullFailed("ErrImageNeverPull", message, 10)
    key = f"{pod['metadata'].get('uid', '')}/{image}"
    backoff = ctx.image_backoff
    last_failure = backoff.last_failure(key)
    if last_failure is not None and backoff.in_backoff_since(key, last_failure):
        event("Normal", "BackOff", f'Back-off pulling image "{image}"')
        event("Warning", "Failed", "Error: ImagePullBackOff")
        raise ImagePullFailed("ImagePullBackOff", f'Back-off pulling image "{image}"',
                              backoff.remaining(key, last_failure))
    event("Normal", "Pulling", f'Pulling image "{image}"')
    started = time.monotonic()
    try:
        info = await ctx.images.pull(image, await pull_credentials(ctx, pod))
    except ImageError as e:
        backoff.record_failure(key)
        event("Warning", "Failed", f'Failed to pull image "{image}": {e.message}')
        event("Warning", "Failed", "Error: ErrImagePull")
        raise ImagePullFailed("ErrImagePull", f'Failed to pull image "{image}": {e.message}', backoff.delay(key))
    except Exception as e:      # registry unreachable and the like
        backoff.record_failure(key)
        event("Warning", "Failed", f'Failed to pull image "{image}": {e}')
        event("Warning", "Failed", "Error: ErrImagePull")
        raise ImagePullFailed("ErrImagePull", f'Failed to pull image "{image}": {e}', backoff.delay(key))
    backoff.reset(key)
    took = time.monotonic() - started
    event("Normal", "Pulled", f'Successfully pulled image "{image}" in {_go_seconds(took)} '
                              f'({_go_seconds(took)} including waiting). Image size: {info.size} bytes.')
    return image


def _is_latest(image: str) -> bool:
    name = image.split("@", 1)[0]
    if "@" in image:
        return False
    last = name.rsplit("/", 1)[-1]
    return ":" not in last or last.endswith(":latest")


def _go_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:.3f}s"
