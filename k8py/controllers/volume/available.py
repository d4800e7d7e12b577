"""Available volumes, grouped and sorted the way the binder chooses among them.

Upstream's binder indexes volumes by access modes and, for each claim, walks
the groups from the fewest modes up, taking the smallest volume that fits.
Scanning every volume of a class for every claim made that quadratic (1,000
claims against 1,000 volumes: a million checks). Here each (class, access
modes) group is a list sorted by capacity, so a claim bisects to the first
volume big enough and walks up only past the ones that fail its other rules
(volumeMode, selector, being bound right now).

The lists follow the informer and the binder's own writes, and may be a
step behind either: whoever asks re-checks each volume as it is now.
"""

from __future__ import annotations

import bisect
from fractions import Fraction

from k8py.api import volume_matching as matching


def _free(volume: dict) -> bool:
    """Could be chosen for a claim that did not name it."""
    return (not (volume.get("spec") or {}).get("claimRef")
            and (volume.get("status") or {}).get("phase") == "Available"
            and not (volume.get("metadata") or {}).get("deletionTimestamp"))


class AvailableVolumes:
    def __init__(self):
        # (class, access modes) -> [(capacity, name)] sorted
        self._groups: dict[tuple[str, frozenset], list[tuple[Fraction, str]]] = {}
        self._where: dict[str, tuple[tuple[str, frozenset], tuple[Fraction, str]]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def update(self, volume: dict) -> None:
        name = volume["metadata"]["name"]
        self.remove(name)
        if not _free(volume):
            return
        group = (matching.volume_class(volume), frozenset((volume.get("spec") or {}).get("accessModes") or []))
        entry = (matching.capacity(volume), name)
        bisect.insort(self._groups.setdefault(group, []), entry)
        self._where[name] = (group, entry)

    def remove(self, name: str) -> None:
        found = self._where.pop(name, None)
        if found is None:
            return
        group, entry = found
        entries = self._groups[group]
        i = bisect.bisect_left(entries, entry)
        if i < len(entries) and entries[i] == entry:
            del entries[i]
        if not entries:
            del self._groups[group]

    def candidates(self, claim: dict):
        """Names of volumes in the order the binder tries them for `claim`: access-mode groups
        with the fewest extra modes first, then by capacity from the smallest that is big enough.
        The caller must not change the index while walking (no await in between)."""
        wanted_class = matching.claim_class(claim)
        wanted_modes = frozenset((claim.get("spec") or {}).get("accessModes") or [])
        size = matching.requested_size(claim)
        groups = sorted((modes for cls, modes in self._groups if cls == wanted_class and wanted_modes <= modes),
                        key=lambda m: (len(m), sorted(m)))
        for modes in groups:
            entries = self._groups.get((wanted_class, modes)) or []
            start = bisect.bisect_left(entries, (size, ""))
            for i in range(start, len(entries)):
                yield entries[i][1]
