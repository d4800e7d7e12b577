"""The AdmissionConfiguration file (`--admission-control-config-file`), as
upstream's apiserver reads it:

    apiVersion: apiserver.config.k8s.io/v1
    kind: AdmissionConfiguration
    plugins:
    - name: PodSecurity
      configuration: {...}      # inline, or
      path: podsecurity.yaml    # a file, relative to this one

Each plugin asks for its own entry with `plugin_configuration`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

API_VERSIONS = ("apiserver.config.k8s.io/v1", "apiserver.k8s.io/v1alpha1")
KIND = "AdmissionConfiguration"


class ConfigError(ValueError):
    """A configuration the server must refuse to start with."""


def _read_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"unable to read admission control configuration from {str(path)!r} [{err}]") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"unable to decode {str(path)!r}: {err}") from None


def plugin_configuration(path: Path, plugin: str) -> dict | None:
    """The configuration object for `plugin`, or None when the file has none."""
    doc = _read_yaml(path)
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("apiVersion") not in API_VERSIONS:
        raise ConfigError(f"{path}: expected kind {KIND} of apiVersion {API_VERSIONS[0]}")
    plugins = doc.get("plugins") or []
    if not isinstance(plugins, list):
        raise ConfigError(f"{path}: plugins must be a list")
    for entry in plugins:
        if not isinstance(entry, dict) or entry.get("name") != plugin:
            continue
        if entry.get("configuration") is not None:
            body = entry["configuration"]
        elif entry.get("path"):
            target = Path(entry["path"])
            body = _read_yaml(target if target.is_absolute() else path.parent / target)
        else:
            return None
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: the configuration of {plugin} must be an object")
        return body
    return None
