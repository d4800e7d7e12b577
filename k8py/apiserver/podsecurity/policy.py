"""Levels, versions and a namespace's policy from its labels, as upstream's
pod-security-admission `api` package reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from k8py.api.fieldcheck import go_quote
from k8py.apimachinery.errors import Cause

PRIVILEGED, BASELINE, RESTRICTED = "privileged", "baseline", "restricted"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)  # least to most strict
LABEL_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")

_VERSION = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)$")


@dataclass(frozen=True)
class LevelVersion:
    level: str
    minor: int | None  # v1.<minor>; None is "latest"

    def __str__(self) -> str:
        return f"{self.level}:{'latest' if self.minor is None else f'v1.{self.minor}'}"


LATEST_PRIVILEGED = LevelVersion(PRIVILEGED, None)


@dataclass(frozen=True)
class Policy:
    enforce: LevelVersion = LATEST_PRIVILEGED
    audit: LevelVersion = LATEST_PRIVILEGED
    warn: LevelVersion = LATEST_PRIVILEGED

    def fully_privileged(self) -> bool:
        return all(lv.level == PRIVILEGED for lv in (self.enforce, self.audit, self.warn))

    def equivalent(self, other: "Policy") -> bool:
        return all(_equivalent(getattr(self, m), getattr(other, m)) for m in MODES)


def _equivalent(a: LevelVersion, b: LevelVersion) -> bool:
    return (a.level == PRIVILEGED and b.level == PRIVILEGED) or a == b


class ParseError(ValueError):
    pass


def parse_level(text: str) -> str:
    if text not in LEVELS:
        raise ParseError("must be one of " + ", ".join(LEVELS))
    return text


def parse_version(text: str) -> int | None:
    if text == "latest":
        return None
    match = _VERSION.match(text)
    if not match:
        raise ParseError('must be "latest" or "v1.x"')
    return int(match.group(1))


def compare_levels(a: str, b: str) -> int:
    return (LEVELS.index(a) > LEVELS.index(b)) - (LEVELS.index(a) < LEVELS.index(b))


def policy_from_labels(labels: dict | None, defaults: Policy) -> tuple[Policy, list[Cause]]:
    """The policy a namespace's labels ask for, unset modes from `defaults`.

    Bad labels are reported and fall back as upstream does: a bad enforce
    level is enforced as restricted, a bad version as latest, a bad audit or
    warn level as privileged (they fail open). Warn follows a stricter
    enforce level set without a warn label of its own."""
    labels = labels or {}
    causes: list[Cause] = []
    modes = {m: getattr(defaults, m) for m in MODES}
    present = {m: LABEL_PREFIX + m in labels for m in MODES}
    enforce_level_ok = False
    for mode in MODES:
        key = LABEL_PREFIX + mode
        if key in labels:
            value = str(labels[key])
            try:
                modes[mode] = replace(modes[mode], level=parse_level(value))
                enforce_level_ok = enforce_level_ok or mode == "enforce"
            except ParseError as err:
                modes[mode] = replace(modes[mode], level=RESTRICTED if mode == "enforce" else PRIVILEGED)
                causes.append(_cause(key, value, err))
        version_key = key + "-version"
        if version_key in labels:
            value = str(labels[version_key])
            try:
                modes[mode] = replace(modes[mode], minor=parse_version(value))
            except ParseError as err:
                modes[mode] = replace(modes[mode], minor=None)
                causes.append(_cause(version_key, value, err))
    enforce, warn = modes["enforce"], modes["warn"]
    if not present["warn"] and enforce_level_ok and compare_levels(enforce.level, warn.level) > 0:
        minor = warn.minor if LABEL_PREFIX + "warn-version" in labels else enforce.minor
        modes["warn"] = LevelVersion(enforce.level, minor)
    return Policy(**modes), causes


def _cause(key: str, value: str, err: ParseError) -> Cause:
    return Cause(f"metadata.labels[{key}]", f"Invalid value: {go_quote(value)}: {err}")
