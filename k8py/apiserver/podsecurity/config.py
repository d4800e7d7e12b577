"""PodSecurityConfiguration (pod-security.admission.config.k8s.io/v1): the
cluster-wide defaults for namespaces without labels, and the exemptions.

It comes from the `PodSecurity` entry of the AdmissionConfiguration file
given with `--admission-control-config-file`; without one, everything is
privileged:latest and nothing is exempt, as upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from k8py.api.fieldcheck import go_quote
from k8py.api.validation.names import is_dns1123_label, is_dns1123_subdomain
from k8py.apiserver.admission_config import ConfigError, plugin_configuration
from k8py.apiserver.podsecurity.policy import (LevelVersion, ParseError, Policy, parse_level,
                                               parse_version)

PLUGIN_NAME = "PodSecurity"
GROUP = "pod-security.admission.config.k8s.io"
API_VERSIONS = tuple(f"{GROUP}/{v}" for v in ("v1", "v1beta1", "v1alpha1"))
KIND = "PodSecurityConfiguration"


@dataclass(frozen=True)
class Configuration:
    defaults: Policy = Policy()
    exempt_usernames: frozenset = field(default_factory=frozenset)
    exempt_namespaces: frozenset = field(default_factory=frozenset)
    exempt_runtime_classes: frozenset = field(default_factory=frozenset)


def load(admission_config_file: Path | None) -> Configuration:
    """The PodSecurity configuration of an AdmissionConfiguration file;
    ConfigError (for the server to refuse to start) when it is not valid."""
    if admission_config_file is None:
        return Configuration()
    body = plugin_configuration(admission_config_file, PLUGIN_NAME)
    return Configuration() if body is None else from_object(body)


def from_object(body: dict) -> Configuration:
    if body.get("apiVersion") not in API_VERSIONS or body.get("kind") != KIND:
        raise ConfigError(f"{PLUGIN_NAME}: expected {KIND} of {API_VERSIONS[0]}, got kind "
                          f"{body.get('kind')!r} of {body.get('apiVersion')!r}")
    defaults = body.get("defaults") or {}
    exemptions = body.get("exemptions") or {}
    if not isinstance(defaults, dict) or not isinstance(exemptions, dict):
        raise ConfigError(f"{PLUGIN_NAME}: defaults and exemptions must be objects")
    problems: list[str] = []
    modes = {}
    for mode in ("enforce", "audit", "warn"):
        level_text = str(defaults.get(mode) or "privileged")
        version_text = str(defaults.get(f"{mode}-version") or "latest")
        level, minor = "privileged", None
        try:
            level = parse_level(level_text)
        except ParseError as err:
            problems.append(f"defaults.{mode}: Invalid value: {go_quote(level_text)}: {err}")
        try:
            minor = parse_version(version_text)
        except ParseError as err:
            problems.append(f"defaults.{mode}-version: Invalid value: {go_quote(version_text)}: {err}")
        modes[mode] = LevelVersion(level, minor)
    exempt = {}
    for key, check in (("usernames", _username_problems), ("namespaces", is_dns1123_label),
                       ("runtimeClasses", is_dns1123_subdomain)):
        values = exemptions.get(key) or []
        if not isinstance(values, list):
            problems.append(f"exemptions.{key}: must be a list of strings")
            values = []
        seen = set()
        for i, value in enumerate(values):
            value = str(value)
            errs = check(value)
            if errs:
                problems.append(f"exemptions.{key}[{i}]: Invalid value: {go_quote(value)}: {', '.join(errs)}")
            elif value in seen:
                problems.append(f"exemptions.{key}[{i}]: Duplicate value: {go_quote(value)}")
            seen.add(value)
        exempt[key] = frozenset(seen)
    if problems:
        raise ConfigError(f"{PLUGIN_NAME} invalid: " + ", ".join(problems))
    return Configuration(Policy(**modes), exempt["usernames"], exempt["namespaces"], exempt["runtimeClasses"])


def _username_problems(value: str) -> list[str]:
    return [] if value else ["username must not be empty"]
