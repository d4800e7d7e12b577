"""pytest plugin: one local image registry per session (busybox + nginx, mirror of docker.io).

Use with `pytest_plugins = ["tests.e2e.registry"]` in a test module (one registry per session) and
the `image_registry` fixture;
`image_registry.mirrors_config` is a registries.yaml for ImageStore / the agent.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test_registry.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("k8py_test_registry", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def image_registry(tmp_path_factory):
    registry = _load_script().start_registry(tmp_path_factory.mktemp("registry"))
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def registry_script():
    """scripts/test_registry.py as a module: start more registries (auth, TLS) or build test images."""
    return _load_script()
