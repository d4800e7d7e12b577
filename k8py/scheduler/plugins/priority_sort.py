"""PrioritySort: higher priority first, then whoever has waited longest."""

from __future__ import annotations


class PrioritySort:
    name = "PrioritySort"

    @staticmethod
    def less(a_priority: int, a_timestamp: float, b_priority: int, b_timestamp: float) -> bool:
        return a_priority > b_priority or (a_priority == b_priority and a_timestamp < b_timestamp)

    @staticmethod
    def sort_key(priority: int, timestamp: float) -> tuple:
        return (-priority, timestamp)
