"""The text of FailedScheduling events and PodScheduled=False conditions, as upstream writes it."""

from __future__ import annotations


def fit_error_message(num_all_nodes: int, diagnosis) -> str:
    message = f"0/{num_all_nodes} nodes are available:"
    if diagnosis.pre_filter_msg:
        message += f" {diagnosis.pre_filter_msg}."
    else:
        histogram: dict[str, int] = {}
        for status in diagnosis.node_status.values():
            for reason in status.reasons:
                histogram[reason] = histogram.get(reason, 0) + 1
        # Upstream sorts the "<count> <reason>" strings themselves, count first.
        parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
        if parts:
            message += f" {', '.join(parts)}."
    if diagnosis.post_filter_msg:
        post = diagnosis.post_filter_msg
        message += f" {post}" if post.endswith(".") else f" {post}."
    return message
