"""What every volume type shares: the error type and the context they read from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable


class VolumeError(Exception):
    """Setting a volume up failed; the message goes into the FailedMount event."""


Fetch = Callable[[str, str], Awaitable[dict | None]]


@dataclass
class VolumeContext:
    config_map: Fetch                                    # (namespace, name) -> object or None
    secret: Fetch
    # (namespace, service account, audiences, expirationSeconds, pod) -> token text
    service_account_token: Callable[..., Awaitable[str]] | None = None
    # (namespace, claim name) -> (claim or None, bound PersistentVolume or None)
    persistent_volume_claim: Callable[[str, str], Awaitable[tuple]] | None = None
    node_allocatable: dict = field(default_factory=dict)
    run_as_root: bool = True


def mode_of(item_mode, default_mode) -> int:
    return int(item_mode if item_mode is not None else default_mode if default_mode is not None else 0o644)
