"""The HorizontalPodAutoscaler controller end to end: seed 09's Deployment and seed 15's HPA,
applied unchanged, over a hollow node whose pods report synthetic CPU usage.

One server (metrics scraped every second, HPA sync 1 s, downscale stabilization 5 s) and
one hollow agent (two nodes) serve the module.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import SEED, HollowAgent, start_server, wait_for, wait_for_default_service_account

ANNOTATION = "k8py.io/simulated-usage"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hpa")
    srv = start_server(tmp / "server", extra=[
        "--metric-resolution", "1s", "--horizontal-pod-autoscaler-sync-period", "1s",
        "--horizontal-pod-autoscaler-downscale-stabilization", "5s",
        "--disable", "dns", "--disable", "local-storage"])
    try:
        # every pod burns 20m: 40% of the seed's 50m request, four times the HPA's 10% target
        with HollowAgent(srv, tmp, "hpahollow", 2, "--simulated-usage", "cpu=20m,memory=16Mi"):
            wait_for_default_service_account(srv, "default")
            yield srv
    finally:
        srv.stop()


def hpa_json(srv, name):
    return json.loads(srv.kubectl("get", "hpa", name, "-o", "json").stdout)


def condition(hpa, kind):
    return next((c for c in (hpa.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def deployment_replicas(srv) -> int:
    return int(srv.kubectl("get", "deployment", "nginx-deploy", "-o", "jsonpath={.spec.replicas}").stdout)


def test_seed_hpa_scales_the_deployment_up_then_back_down(cluster):
    cluster.kubectl("apply", "-f", str(SEED / "09-deployment-rolling.yaml"))
    cluster.kubectl("apply", "-f", str(SEED / "15-hpa.yaml"))
    # 3 pods at 40% against 10%: the HPA asks for 12, first limited to max(2 x 3, 4) = 6, then to max 10
    wait_for(lambda: deployment_replicas(cluster) == 10, timeout=60, interval=0.5, what="nginx-deploy at 10")
    hpa = hpa_json(cluster, "hpa-nginx-deploy")
    assert hpa["status"]["desiredReplicas"] == 10 and hpa["status"].get("lastScaleTime")
    assert condition(hpa, "AbleToScale")["status"] == "True"
    assert condition(hpa, "ScalingActive")["reason"] == "ValidMetricFound"

    def shows_usage():
        row = cluster.kubectl("get", "hpa", "hpa-nginx-deploy").stdout.splitlines()[1]
        return row if re.search(r"cpu: \d+%/10%", row) else None
    row = shows_usage() or wait_for(shows_usage, timeout=30, interval=0.5, what="usage in kubectl get hpa")
    cols = row.split()
    assert cols[:2] == ["hpa-nginx-deploy", "Deployment/nginx-deploy"]
    assert 30 <= int(re.search(r"cpu: (\d+)%", row).group(1)) <= 50          # 20m of a 50m request
    assert cols[-4:-1] == ["1", "10", cols[-2]] and int(cols[-2]) >= 3        # MINPODS MAXPODS REPLICAS

    described = cluster.kubectl("describe", "hpa", "hpa-nginx-deploy").stdout
    assert re.search(r"AbleToScale\s+True", described)
    assert re.search(r"ScalingActive\s+True\s+ValidMetricFound", described)
    # each step at most max(2 x current, 4): 3 -> 5 or 6 (pods not yet sampled count as idle) -> ... -> 10
    steps = [int(n) for n in re.findall(r"SuccessfulRescale\s.*New size: (\d+); reason: cpu resource utilization "
                                        r"\(percentage of request\) above target", described)]
    assert steps and steps[-1] == 10 and steps[0] <= 6, described
    assert re.search(r"ScalingLimited\s+True\s+TooManyReplicas", described)

    # the load stops: every pod now burns 1m (2%), and after the 5 s window the HPA scales back to 1
    cluster.kubectl("annotate", "pods", "-l", "app=nginx-deploy", "--overwrite",
                    f'{ANNOTATION}={json.dumps({"cpu": "1m"})}')
    wait_for(lambda: deployment_replicas(cluster) == 1, timeout=60, interval=0.5, what="nginx-deploy back at 1")
    described = cluster.kubectl("describe", "hpa", "hpa-nginx-deploy").stdout
    assert "reason: All metrics below target" in described
    # it ran as its own account (system:controller:horizontal-pod-autoscaler) and was refused nothing
    log = cluster.log_path.read_text()
    assert "forbidden: user 'system:serviceaccount:kube-system:horizontal-pod-autoscaler'" not in log
    assert "controller horizontal-pod-autoscaler failed" not in log


def test_hpa_on_a_missing_target_reports_failed_get_scale(cluster):
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "orphan"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nope"},
                 "minReplicas": 1, "maxReplicas": 3}}))
    able = wait_for(lambda: condition(hpa_json(cluster, "orphan"), "AbleToScale") or None, timeout=30,
                    interval=0.5, what="AbleToScale on the orphan HPA")
    assert (able["status"], able["reason"]) == ("False", "FailedGetScale")
    assert able["message"] == ("the HPA controller was unable to get the target's current scale: "
                               'deployments.apps "nope" not found')
    events = wait_for(lambda: cluster.kubectl("get", "events", "--field-selector",
                                              "involvedObject.name=orphan,reason=FailedGetScale").stdout.strip(),
                      timeout=30, interval=0.5, what="the FailedGetScale event")
    assert 'deployments.apps "nope" not found' in events
    assert "<unknown>/80%" in cluster.kubectl("get", "hpa", "orphan").stdout
    assert cluster.kubectl("get", "deployment", "nope", check=False).returncode != 0



def test_pods_without_cpu_requests_get_failed_get_resource_metric_and_a_zero_target_is_left_alone(cluster):
    # a ReplicationController (its /scale too) whose pods request no CPU
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "norequests"},
        "spec": {"replicas": 2, "selector": {"app": "norequests"}, "template": {
            "metadata": {"labels": {"app": "norequests"}},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}}))
    cluster.kubectl("autoscale", "rc", "norequests", "--min=1", "--max=5", "--cpu-percent=50")
    active = wait_for(lambda: condition(hpa_json(cluster, "norequests"), "ScalingActive") or None, timeout=60,
                      interval=0.5, what="ScalingActive on the norequests HPA")
    assert (active["status"], active["reason"]) == ("False", "FailedGetResourceMetric")
    assert active["message"].startswith("the HPA was unable to compute the replica count: failed to get cpu "
                                        "utilization: ")
    wait_for(lambda: "missing request for cpu in container app of Pod norequests-" in condition(
        hpa_json(cluster, "norequests"), "ScalingActive")["message"], timeout=30, interval=0.5,
        what="the missing request reported once metrics exist")
    described = cluster.kubectl("describe", "hpa", "norequests").stdout
    assert "FailedGetResourceMetric" in described and "FailedComputeMetricsReplicas" in described
    assert cluster.kubectl("get", "rc", "norequests", "-o", "jsonpath={.spec.replicas}").stdout == "2"
    # a target scaled to 0 by hand switches autoscaling off, and stays at 0
    cluster.kubectl("scale", "rc", "norequests", "--replicas=0")
    wait_for(lambda: condition(hpa_json(cluster, "norequests"), "ScalingActive").get("reason") == "ScalingDisabled",
             timeout=30, interval=0.5, what="ScalingDisabled")
    active = condition(hpa_json(cluster, "norequests"), "ScalingActive")
    assert (active["status"], active["message"]) == (
        "False", "scaling is disabled since the replica count of the target is zero")
    assert cluster.kubectl("get", "rc", "norequests", "-o", "jsonpath={.spec.replicas}").stdout == "0"
