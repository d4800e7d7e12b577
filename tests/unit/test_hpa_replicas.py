"""The HPA's replica calculation and normalization, against upstream's documented behaviour."""

from __future__ import annotations

import datetime

import pytest

from k8py.apimachinery.meta import rfc3339
from k8py.controllers.podautoscaler import behavior as rules
from k8py.controllers.podautoscaler.metrics import pod_samples
from k8py.controllers.podautoscaler.replicas import (
    MetricError, PodSample, resource_utilization_replicas, resource_value_replicas)

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
LONG_AGO = NOW - datetime.timedelta(minutes=30)


def pod(name, cpu_request="1000m", phase="Running", ready=True, started=LONG_AGO, transition=LONG_AGO,
        deleting=False):
    meta = {"name": name, "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW)
    container = {"name": "app", "resources": {"requests": {"cpu": cpu_request}} if cpu_request else {}}
    return {"metadata": meta, "spec": {"containers": [container]},
            "status": {"phase": phase, "startTime": rfc3339(started),
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": rfc3339(transition)}]}}


def samples(**millis):
    return {name: PodSample(value, NOW, 15.0) for name, value in millis.items()}


def utilization(current, target, pods, usage, **kw):
    return resource_utilization_replicas(current, target, "cpu", pods, usage, NOW, **kw)


def test_scale_up_is_ceil_of_ratio_times_ready_pods():
    pods = [pod("a"), pod("b"), pod("c")]
    # 3 pods at 100% of a 1-core request against a 50% target: ratio 2 -> 6
    proposal = utilization(3, 50, pods, samples(a=1000, b=1000, c=1000))
    assert (proposal.replicas, proposal.utilization, proposal.raw) == (6, 100, 1000)
    # ceil: 3 x 70/50 = 4.2 -> 5
    assert utilization(3, 50, pods, samples(a=700, b=700, c=700)).replicas == 5


def test_within_tolerance_nothing_changes():
    pods = [pod("a"), pod("b")]
    assert utilization(2, 50, pods, samples(a=540, b=540)).replicas == 2      # ratio 1.08
    assert utilization(2, 50, pods, samples(a=460, b=460)).replicas == 2      # ratio 0.92
    assert utilization(2, 50, pods, samples(a=560, b=560)).replicas == 3      # ratio 1.12
    assert utilization(2, 50, pods, samples(a=560, b=560), tolerance=0.2).replicas == 2


def test_scale_down():
    pods = [pod(n) for n in "abcd"]
    assert utilization(4, 50, pods, samples(a=100, b=100, c=100, d=100)).replicas == 1


def test_missing_metrics_count_as_full_request_when_scaling_down():
    pods = [pod("a"), pod("b"), pod("c")]
    # ready pods at 10% of a 50% target would ask for 1; the pod without a sample is assumed at
    # 100% of its request: (100+100+1000)/3000 = 40% -> ratio 0.8 -> ceil(0.8 x 3) = 3, no change
    assert utilization(3, 50, pods, samples(a=100, b=100)).replicas == 3
    # with one of many missing, a scale-down still happens, but less far
    pods = [pod(n) for n in "abcdef"]
    assert utilization(6, 50, pods, samples(a=0, b=0, c=0, d=0, e=0)).replicas == 2


def test_missing_metrics_count_as_zero_when_scaling_up():
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    # ready: 2 x 100% of a 50% target (ratio 2); 2 missing at 0 -> 50% -> ratio 1.0: no change
    assert utilization(4, 50, pods, samples(a=1000, b=1000)).replicas == 4
    # ready at 150%: with the missing at 0, 75% -> ratio 1.5 -> 6
    assert utilization(4, 50, pods, samples(a=1500, b=1500)).replicas == 6


def test_unready_pods_count_as_zero_on_scale_up_and_are_ignored_on_scale_down():
    pending = pod("p", phase="Pending")
    pods = [pod("a"), pod("b"), pending]
    # ready pods at 100% of a 50% target; the pending one at 0: 2000/3000 = 66% -> ratio 1.33 -> 4
    assert utilization(3, 50, pods, samples(a=1000, b=1000, p=5000)).replicas == 4
    # scaling down: the unready pod is just left out (2 ready pods at 10% -> 1)
    assert utilization(3, 50, pods, samples(a=100, b=100, p=5000)).replicas == 1


def test_cpu_of_a_pod_still_starting_counts_only_a_window_after_it_became_ready():
    just_ready = pod("new", started=NOW - datetime.timedelta(seconds=60), transition=NOW - datetime.timedelta(seconds=5))
    pods = [pod("a"), just_ready]
    usage = samples(a=1000, new=5000)     # sampled before a full 15 s window after readiness: unready
    # only "a" counts (ratio 2, scale-up), the starting pod at 0: 1000/2000 = 50% -> ratio 1 -> no change
    assert utilization(2, 50, pods, usage).replicas == 2
    settled = pod("new", started=NOW - datetime.timedelta(seconds=60), transition=NOW - datetime.timedelta(seconds=30))
    assert utilization(2, 50, [pod("a"), settled], usage).replicas == 12


def test_deleted_and_failed_pods_are_ignored():
    pods = [pod("a"), pod("gone", deleting=True), pod("dead", phase="Failed")]
    assert utilization(3, 50, pods, samples(a=1000, gone=0, dead=0)).replicas == 2


def test_errors_have_upstream_wording():
    with pytest.raises(MetricError, match="^missing request for cpu in container app of Pod a$"):
        utilization(1, 50, [pod("a", cpu_request=None)], samples(a=10))
    with pytest.raises(MetricError, match="^no pods returned by selector while calculating replica count$"):
        utilization(1, 50, [], samples(a=10))
    with pytest.raises(MetricError, match=r"did not receive metrics for targeted pods \(pods might be unready\)"):
        utilization(1, 50, [pod("a", phase="Pending")], samples(a=10))


def test_average_value_target():
    pods = [pod("a"), pod("b")]
    proposal = resource_value_replicas(2, 200, "cpu", pods, samples(a=400, b=400), NOW)
    assert (proposal.replicas, proposal.raw, proposal.utilization) == (4, 400, None)
    # a missing pod is assumed at the target when scaling down: (100 + 200)/2 = 150 -> 0.75 -> 2
    assert resource_value_replicas(2, 200, "cpu", pods, samples(a=100), NOW).replicas == 2


def test_pod_samples_sum_containers_and_skip_pods_lacking_the_resource():
    got = pod_samples([
        {"metadata": {"name": "a"}, "timestamp": "2026-01-01T12:00:00Z", "window": "15s",
         "containers": [{"name": "x", "usage": {"cpu": "250m"}}, {"name": "y", "usage": {"cpu": "100000n"}}]},
        {"metadata": {"name": "b"}, "containers": [{"name": "x", "usage": {"memory": "1Mi"}}]},
        {"metadata": {"name": "c"}, "containers": []}], "cpu")
    assert set(got) == {"a"} and got["a"].value == 251 and got["a"].window == 15.0


# -- normalization


def test_legacy_rules_clamp_to_min_max_and_limit_scale_up_rate():
    history = rules.History()
    out = rules.normalize_legacy(history, 2, 50, 1, 10, now=1000)
    assert (out.replicas, out.limited, out.limit[0]) == (4, True, "ScaleUpLimit")    # max(2 x 2, 4)
    out = rules.normalize_legacy(rules.History(), 8, 50, 1, 10, now=1000)
    assert (out.replicas, out.limit[0]) == (10, "TooManyReplicas")
    out = rules.normalize_legacy(rules.History(), 3, 0, 2, 10, now=1000)
    assert (out.replicas, out.limit[0], out.able_to_scale[0]) == (2, "TooFewReplicas", "ReadyForNewScale")
    out = rules.normalize_legacy(rules.History(), 3, 5, 1, 10, now=1000)
    assert (out.replicas, out.limited, out.limit[0]) == (5, False, "DesiredWithinRange")


def test_legacy_scale_down_waits_for_the_stabilization_window():
    history = rules.History(recommendations=[(5, 1000)])
    out = rules.normalize_legacy(history, 5, 2, 1, 10, downscale_window=300, now=1100)
    assert (out.replicas, out.able_to_scale[0]) == (5, "ScaleDownStabilized")
    out = rules.normalize_legacy(history, 5, 2, 1, 10, downscale_window=300, now=1401)
    # the 5 from t=1000 has left the window; the 2 from t=1100 is the highest left
    assert (out.replicas, out.able_to_scale[0]) == (2, "ReadyForNewScale")


DEFAULT_BEHAVIOR = {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                             {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                    "scaleDown": {"selectPolicy": "Max",
                                  "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}


def test_default_behavior_scale_up_is_the_larger_of_4_pods_and_100_percent_per_15s():
    out = rules.normalize_with_behavior(rules.History(), DEFAULT_BEHAVIOR, 1, 20, 1, 100, now=1000)
    assert (out.replicas, out.limit[0]) == (5, "ScaleUpLimit")          # 1 + 4 beats 1 x 2
    out = rules.normalize_with_behavior(rules.History(), DEFAULT_BEHAVIOR, 10, 50, 1, 100, now=1000)
    assert out.replicas == 20                                           # 10 x 2 beats 10 + 4
    # a scale-up already made in the period counts against the next one
    history = rules.History()
    rules.record_scale(history, DEFAULT_BEHAVIOR, 10, 20, now=1000)
    out = rules.normalize_with_behavior(history, DEFAULT_BEHAVIOR, 20, 50, 1, 100, now=1005)
    assert out.replicas == 20 and out.limit[0] == "ScaleUpLimit"
    out = rules.normalize_with_behavior(history, DEFAULT_BEHAVIOR, 20, 50, 1, 100, now=1016)
    assert out.replicas == 40


def test_default_behavior_scale_down_uses_the_flag_window():
    history = rules.History(recommendations=[(8, 1000)])
    out = rules.normalize_with_behavior(history, DEFAULT_BEHAVIOR, 8, 2, 1, 10, downscale_window=60, now=1030)
    assert (out.replicas, out.able_to_scale[0]) == (8, "ScaleDownStabilized")
    out = rules.normalize_with_behavior(history, DEFAULT_BEHAVIOR, 8, 2, 1, 10, downscale_window=60, now=1100)
    assert out.replicas == 2


def test_custom_policies_and_select_policy():
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Min",
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60},
                                         {"type": "Percent", "value": 50, "periodSeconds": 60}]},
                "scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                              "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60},
                                           {"type": "Percent", "value": 10, "periodSeconds": 60}]}}
    assert rules.normalize_with_behavior(rules.History(), behavior, 10, 30, 1, 100, now=1).replicas == 11
    # Max on the way down: the policy allowing the bigger change (2 pods over 10%)
    assert rules.normalize_with_behavior(rules.History(), behavior, 10, 1, 1, 100, now=1).replicas == 8
    disabled = {**behavior, "scaleDown": {"selectPolicy": "Disabled", "policies": behavior["scaleDown"]["policies"],
                                          "stabilizationWindowSeconds": 0}}
    out = rules.normalize_with_behavior(rules.History(), disabled, 10, 1, 1, 100, now=1)
    assert (out.replicas, out.limit[0]) == (10, "ScaleDownLimit")


def test_scale_up_stabilization_window_takes_the_lowest_recent_recommendation():
    behavior = {**DEFAULT_BEHAVIOR, "scaleUp": {**DEFAULT_BEHAVIOR["scaleUp"], "stabilizationWindowSeconds": 60}}
    history = rules.History(recommendations=[(3, 1000)])
    out = rules.normalize_with_behavior(history, behavior, 3, 6, 1, 10, now=1030)
    assert (out.replicas, out.able_to_scale[0]) == (3, "ScaleUpStabilized")
