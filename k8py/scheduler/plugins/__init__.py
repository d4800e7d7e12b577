"""The in-tree plugins, one module each, and upstream's default profile."""

from __future__ import annotations

from k8py.scheduler.framework import Profile

DEFAULT_SCHEDULER = "default-scheduler"

# Upstream's default profile: filters run in this order and stop at the first
# rejection; scores are weighted like this.
DEFAULT_SCORE_WEIGHTS = {
    "TaintToleration": 3,
    "NodeAffinity": 2,
    "NodeResourcesFit": 1,
    "PodTopologySpread": 2,
    "InterPodAffinity": 2,
    "NodeResourcesBalancedAllocation": 1,
    "ImageLocality": 1,
}


def default_plugins(scoring_strategy: dict | None = None, evictor=None) -> list:
    from k8py.scheduler.plugins.balanced_allocation import BalancedAllocation
    from k8py.scheduler.plugins.default_preemption import DefaultPreemption
    from k8py.scheduler.plugins.image_locality import ImageLocality
    from k8py.scheduler.plugins.inter_pod_affinity import InterPodAffinity
    from k8py.scheduler.plugins.node_affinity import NodeAffinity
    from k8py.scheduler.plugins.node_name import NodeName
    from k8py.scheduler.plugins.node_ports import NodePorts
    from k8py.scheduler.plugins.node_resources_fit import NodeResourcesFit
    from k8py.scheduler.plugins.node_unschedulable import NodeUnschedulable
    from k8py.scheduler.plugins.pod_topology_spread import PodTopologySpread
    from k8py.scheduler.plugins.priority_sort import PrioritySort
    from k8py.scheduler.plugins.taint_toleration import TaintToleration
    from k8py.scheduler.plugins.volume_binding import VolumeBinding
    return [
        PrioritySort(),
        NodeUnschedulable(),
        NodeName(),
        TaintToleration(),
        NodeAffinity(),
        NodePorts(),
        NodeResourcesFit(scoring_strategy),
        VolumeBinding(),
        PodTopologySpread(),
        InterPodAffinity(),
        DefaultPreemption(evictor),
        BalancedAllocation(),
        ImageLocality(),
    ]


def default_profile(name: str = DEFAULT_SCHEDULER, percentage_of_nodes_to_score: int | None = None,
                    scoring_strategy: dict | None = None, evictor=None, rng=None) -> Profile:
    return Profile(name, default_plugins(scoring_strategy, evictor), dict(DEFAULT_SCORE_WEIGHTS),
                   percentage_of_nodes_to_score, rng=rng)
