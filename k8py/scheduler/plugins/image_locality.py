"""ImageLocality: prefer nodes that already hold the pod's images, weighted by how widely they're spread."""

from __future__ import annotations

from k8py.scheduler.framework import MAX_NODE_SCORE
from k8py.scheduler.nodeinfo import normalized_image

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


def calculate_priority(sum_scores: int, num_containers: int) -> int:
    max_threshold = MAX_CONTAINER_THRESHOLD * num_containers
    sum_scores = min(max(sum_scores, MIN_THRESHOLD), max_threshold)
    return MAX_NODE_SCORE * (sum_scores - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)


class ImageLocality:
    name = "ImageLocality"

    def pre_score(self, state, pod, nodes, snapshot):
        spec = pod.spec
        images = [normalized_image(c.get("image") or "")
                  for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]
        total = len(snapshot.nodes)
        # Each image's size scaled by the share of all nodes that have it.
        spread = {i: snapshot.image_node_count(i) / total for i in set(images)} if total else {}
        state[self.name] = (images, spread)
        if not any(spread.values()):
            state[self.name] = (images, None)
            state.uniform_scores[self.name] = 0  # nobody has the images: 0 everywhere

    def score(self, state, pod, node):
        images, spread = state[self.name]
        if spread is None or not images:
            return 0
        total = 0
        for image in images:
            size = node.images.get(image)
            if size is not None:
                total += int(size * spread[image])
        return calculate_priority(total, len(images))
