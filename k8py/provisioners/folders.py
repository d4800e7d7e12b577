"""Making and removing the directories behind volumes (blocking: run in a thread)."""

from __future__ import annotations

import os
import shutil

from k8py.provisioners.controller import ProvisioningError


def make_directory(path: str) -> None:
    """Create a volume's directory world-writable (as both upstream provisioners do: any
    pod user may write to its volume)."""
    try:
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)
    except OSError as e:
        raise ProvisioningError(f"failed to create {path}: {e.strerror or e}") from None


def remove_directory(path: str) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ProvisioningError(f"failed to delete {path}: {e.strerror or e}") from None


def rename_directory(path: str, new_path: str) -> None:
    try:
        os.replace(path, new_path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ProvisioningError(f"failed to archive {path}: {e.strerror or e}") from None
