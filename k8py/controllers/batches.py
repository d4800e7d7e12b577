"""Creating many pods without hammering the API server on a doomed template.

Creates go out in slow-start batches (1, 2, 4, ...), each batch concurrently;
the first batch with a failure stops the rest, so a quota or admission error
costs one request instead of hundreds (upstream's slowStartBatch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from k8py.controllers import podutil


@dataclass
class BatchResult:
    created: list[tuple[object, dict]] = field(default_factory=list)   # (item, created object)
    errors: list[tuple[object, BaseException]] = field(default_factory=list)
    unsent: list = field(default_factory=list)                         # never tried after a failure


async def create_in_batches(items: list, create: Callable[[object], Awaitable[dict]]) -> BatchResult:
    result = BatchResult()
    start = 0
    for size in podutil.slow_start_batches(len(items)):
        batch = items[start:start + size]
        start += size
        outcomes = await asyncio.gather(*(create(item) for item in batch), return_exceptions=True)
        for item, outcome in zip(batch, outcomes):
            if isinstance(outcome, BaseException):
                result.errors.append((item, outcome))
            else:
                result.created.append((item, outcome))
        if result.errors:
            result.unsent = items[start:]
            break
    return result
