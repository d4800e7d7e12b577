"""Score helpers shared by plugins (upstream's DefaultNormalizeScore)."""

from __future__ import annotations


def default_normalize(scores: list[int], max_priority: int, reverse: bool) -> None:
    """Scale scores so the highest becomes max_priority (or, reversed, the lowest does)."""
    highest = max(scores, default=0)
    if highest == 0:
        if reverse:
            for i in range(len(scores)):
                scores[i] = max_priority
        return
    for i, s in enumerate(scores):
        s = max_priority * s // highest
        scores[i] = max_priority - s if reverse else s
