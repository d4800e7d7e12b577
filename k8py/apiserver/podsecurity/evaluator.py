"""Which checks run for a level and version, and their results put together.

As upstream's registry: for each policy version the baseline level runs every
baseline check in the form that version had; restricted runs those too,
except the ones a restricted check replaces, then its own. Checks run
baseline first, each level in the order of the check IDs, so messages list
violations in upstream's order. Versions past the newest any check knows
(and "latest") are evaluated as that newest version.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from k8py.apiserver.podsecurity.checks import BASELINE, CHECKS, Check, CheckFn, Violation
from k8py.apiserver.podsecurity.policy import PRIVILEGED, LevelVersion

NEWEST_MINOR = max(v.since for check in CHECKS for v in check.versions)


def _form_at(check: Check, minor: int):
    """The versioned form of `check` in force at v1.<minor>, or None before it existed."""
    current = None
    for versioned in check.versions:
        if versioned.since <= minor:
            current = versioned
    return current


@lru_cache(maxsize=None)
def checks_for(level: str, minor: int) -> tuple[CheckFn, ...]:
    ordered = sorted((c for c in CHECKS if c.level == BASELINE), key=lambda c: c.id) + \
        sorted((c for c in CHECKS if c.level != BASELINE), key=lambda c: c.id)
    forms = {c.id: f for c in ordered if (f := _form_at(c, minor)) is not None}
    if level == BASELINE:
        return tuple(forms[c.id].check for c in ordered if c.level == BASELINE and c.id in forms)
    overridden = {o for c in ordered if c.level != BASELINE and c.id in forms for o in forms[c.id].overrides}
    return tuple(forms[c.id].check for c in ordered if c.id in forms and c.id not in overridden)


@dataclass(frozen=True)
class Result:
    violations: tuple[Violation, ...]

    @property
    def allowed(self) -> bool:
        return not self.violations

    def reasons(self) -> str:
        """`host namespaces, privileged`: for the namespace check's summaries."""
        return ", ".join(v.reason for v in self.violations)

    def details(self) -> str:
        """`host namespaces (hostNetwork=true), privileged (container "c" must ...)`."""
        return ", ".join(f"{v.reason} ({v.detail})" if v.detail else v.reason for v in self.violations)


ALLOWED = Result(())


def evaluate(lv: LevelVersion, metadata: dict, spec: dict) -> Result:
    if lv.level == PRIVILEGED:
        return ALLOWED
    minor = NEWEST_MINOR if lv.minor is None else min(lv.minor, NEWEST_MINOR)
    violations = []
    for check in checks_for(lv.level, minor):
        violation = check(metadata or {}, spec or {})
        if violation is not None:
            violations.append(violation if violation.reason else Violation("unknown forbidden reason",
                                                                           violation.detail))
    return Result(tuple(violations))
