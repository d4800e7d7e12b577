"""Default locations, as k3s lays them out."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/k8py")
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "k8py"


def default_kubeconfig(data_dir: Path) -> Path:
    return data_dir / "kubeconfig.yaml"
