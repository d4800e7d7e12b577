"""Server-side Table printers: columns and cells as upstream v1.32 prints them."""

import datetime
import json

import pytest

from k8py.api import printers
from k8py.api.printers import duration, quantity

NOW = datetime.datetime(2024, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def ago(**delta) -> str:
    return duration.rfc3339(NOW - datetime.timedelta(**delta))


def meta(name="x", created=None, **extra) -> dict:
    out = {"name": name, "creationTimestamp": created or ago(minutes=5)}
    out.update(extra)
    return out


def cells(group, kind, obj):
    return printers.row_cells(group, kind, obj, NOW)


def column_names(group, kind, priority=None):
    return [c["name"] for c in printers.column_definitions(group, kind)
            if priority is None or c["priority"] == priority]


# --- durations ------------------------------------------------------------------

@pytest.mark.parametrize("delta,expected", [
    (datetime.timedelta(0), "0s"),
    (datetime.timedelta(seconds=45), "45s"),
    (datetime.timedelta(seconds=119), "119s"),
    (datetime.timedelta(minutes=2), "2m"),
    (datetime.timedelta(minutes=3), "3m"),
    (datetime.timedelta(minutes=3, seconds=20), "3m20s"),
    (datetime.timedelta(minutes=10, seconds=30), "10m"),
    (datetime.timedelta(minutes=179), "179m"),
    (datetime.timedelta(hours=3), "3h"),
    (datetime.timedelta(hours=5, minutes=10), "5h10m"),
    (datetime.timedelta(hours=8, minutes=30), "8h"),
    (datetime.timedelta(hours=47), "47h"),
    (datetime.timedelta(days=2), "2d"),
    (datetime.timedelta(days=2, hours=3), "2d3h"),
    (datetime.timedelta(days=7, hours=23), "7d23h"),
    (datetime.timedelta(days=8, hours=5), "8d"),
    (datetime.timedelta(days=400), "400d"),
    (datetime.timedelta(days=730), "2y"),
    (datetime.timedelta(days=3 * 365 + 20), "3y20d"),
    (datetime.timedelta(days=9 * 365 + 100), "9y"),
    (datetime.timedelta(seconds=-1), "0s"),
    (datetime.timedelta(seconds=-5), "<invalid>"),
])
def test_human_duration(delta, expected):
    assert duration.human_duration(delta) == expected


@pytest.mark.parametrize("stamp,expected", [
    ("2024-06-01T11:59:15Z", "45s"),
    ("2024-06-01T11:56:59.500000001Z", "3m"),
    ("2024-06-01T11:57:00.123456789Z", "2m59s"),
    ("2024-06-01T13:57:00+02:00", "3m"),
    (None, "<unknown>"),
    ("", "<unknown>"),
    ("0001-01-01T00:00:00Z", "<unknown>"),
    ("yesterday", "<unknown>"),
])
def test_since(stamp, expected):
    assert duration.since(stamp, NOW) == expected


def test_naive_now_is_utc():
    assert duration.since("2024-06-01T11:59:15Z", NOW.replace(tzinfo=None)) == "45s"


# --- quantities -------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("1Gi", "1Gi"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("0.5Gi", "512Mi"),
    ("0.5Ki", "512"), ("0.5", "500m"), ("1000m", "1"), ("1500m", "1500m"), ("100", "100"),
    ("1200", "1200"), ("12000", "12k"), ("2M", "2M"), ("1e3", "1e3"), ("0", "0"), (None, "0"),
    (5, "5"), ("-2Gi", "-2Gi"), ("0.0000000001", "1n"), ("bogus", "bogus"),
])
def test_quantity_canonical(raw, expected):
    assert quantity.canonical(raw) == expected


# --- pods -------------------------------------------------------------------------

def container_status(name="app", ready=False, restarts=0, last_finished=None, **state):
    out = {"name": name, "ready": ready, "restartCount": restarts, "state": state or {"running": {}}}
    if last_finished:
        out["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last_finished}}
    return out


def pod(statuses=(), init_statuses=None, containers=("app",), init=(), phase="Running",
        conditions=(), deleted=False, reason=None, **spec):
    obj = {
        "metadata": meta("p", deletionTimestamp=ago(seconds=5) if deleted else None),
        "spec": {"containers": [{"name": n, "image": "busybox"} for n in containers],
                 **({"initContainers": list(init)} if init else {}), **spec},
        "status": {"phase": phase, "conditions": list(conditions),
                   "containerStatuses": list(statuses)},
    }
    if init_statuses is not None:
        obj["status"]["initContainerStatuses"] = list(init_statuses)
    if reason:
        obj["status"]["reason"] = reason
    return obj


READY = {"type": "Ready", "status": "True"}
INITIALIZED = {"type": "Initialized", "status": "True"}


@pytest.mark.parametrize("case,obj,ready,status,restarts", [
    ("pending, nothing started", pod(phase="Pending"), "0/1", "Pending", "0"),
    ("running and ready", pod([container_status(ready=True)], conditions=[READY]), "1/1", "Running", "0"),
    ("creating", pod([container_status(waiting={"reason": "ContainerCreating"})], phase="Pending"),
     "0/1", "ContainerCreating", "0"),
    ("crash loop with last restart", pod([container_status(
        restarts=5, last_finished=ago(minutes=3), waiting={"reason": "CrashLoopBackOff"})]),
     "0/1", "CrashLoopBackOff", "5 (3m ago)"),
    ("restarts without a finish time", pod([container_status(ready=True, restarts=2)]), "1/1", "Running", "2"),
    ("completed", pod([container_status(terminated={"exitCode": 0, "reason": "Completed"})],
                      phase="Succeeded"), "0/1", "Completed", "0"),
    ("exit code without reason", pod([container_status(terminated={"exitCode": 2})], phase="Failed"),
     "0/1", "ExitCode:2", "0"),
    ("killed by a signal", pod([container_status(terminated={"exitCode": 137, "signal": 9})],
                               phase="Failed"), "0/1", "Signal:9", "0"),
    ("second init container running",
     pod(init=[{"name": "a"}, {"name": "b"}], phase="Pending",
         init_statuses=[container_status("a", terminated={"exitCode": 0, "reason": "Completed"}),
                        container_status("b", running={})],
         statuses=[container_status(waiting={"reason": "PodInitializing"})]),
     "0/1", "Init:1/2", "0"),
    ("init waiting on PodInitializing counts as progress",
     pod(init=[{"name": "a"}], phase="Pending",
         init_statuses=[container_status("a", waiting={"reason": "PodInitializing"})]),
     "0/1", "Init:0/1", "0"),
    ("init crash loop", pod(init=[{"name": "a"}], phase="Pending", init_statuses=[
        container_status("a", restarts=3, waiting={"reason": "CrashLoopBackOff"})]),
     "0/1", "Init:CrashLoopBackOff", "3"),
    ("init failed", pod(init=[{"name": "a"}], phase="Pending", init_statuses=[
        container_status("a", terminated={"exitCode": 1, "reason": "Error"})]), "0/1", "Init:Error", "0"),
    ("init failed without reason", pod(init=[{"name": "a"}], phase="Pending", init_statuses=[
        container_status("a", terminated={"exitCode": 3})]), "0/1", "Init:ExitCode:3", "0"),
    ("terminating", pod([container_status(ready=True)], conditions=[READY], deleted=True),
     "1/1", "Terminating", "0"),
    ("deleted after it succeeded", pod([container_status(terminated={"exitCode": 0, "reason": "Completed"})],
                                       phase="Succeeded", deleted=True), "0/1", "Completed", "0"),
    ("deleted on a lost node", pod([container_status(ready=True)], deleted=True, reason="NodeLost"),
     "1/1", "Unknown", "0"),
    ("scheduling gated", pod(phase="Pending", conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
     "0/1", "SchedulingGated", "0"),
    ("evicted", pod(phase="Failed", reason="Evicted"), "0/1", "Evicted", "0"),
    ("one done, one running, ready", pod(
        [container_status("a", ready=True), container_status("b", terminated={"exitCode": 0,
                                                                             "reason": "Completed"})],
        containers=("a", "b"), conditions=[READY]), "1/2", "Running", "0"),
    ("one done, one running, not ready", pod(
        [container_status("a", ready=True), container_status("b", terminated={"exitCode": 0,
                                                                             "reason": "Completed"})],
        containers=("a", "b")), "1/2", "NotReady", "0"),
    ("first container's state wins", pod(
        [container_status("a", waiting={"reason": "ImagePullBackOff"}),
         container_status("b", waiting={"reason": "CrashLoopBackOff"})], containers=("a", "b")),
     "0/2", "ImagePullBackOff", "0"),
    ("sidecar counts as a container", pod(
        init=[{"name": "proxy", "restartPolicy": "Always"}],
        init_statuses=[{"name": "proxy", "ready": True, "started": True, "restartCount": 1,
                        "state": {"running": {}}}],
        statuses=[container_status(ready=True, restarts=2)], conditions=[INITIALIZED, READY]),
     "2/2", "Running", "3"),
])
def test_pod_status_column(case, obj, ready, status, restarts):
    row = cells("", "Pod", obj)
    assert row[:4] == ["p", ready, status, restarts], case
    assert row[4] == "5m"


def test_pod_wide_cells():
    obj = pod([container_status(ready=True)], nodeName="node-1",
              readinessGates=[{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}],
              conditions=[READY, {"type": "example.com/lb", "status": "True"},
                          {"type": "example.com/dns", "status": "False"}])
    obj["status"].update(podIP="10.42.0.7", podIPs=[{"ip": "10.42.0.7"}], nominatedNodeName="node-2")
    assert cells("", "Pod", obj)[5:] == ["10.42.0.7", "node-1", "node-2", "1/2"]
    obj["status"].pop("podIP")
    assert cells("", "Pod", obj)[5] == "10.42.0.7"
    assert cells("", "Pod", pod())[5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_pod_columns():
    assert column_names("", "Pod", priority=0) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert column_names("", "Pod", priority=1) == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    columns = {c["name"]: c for c in printers.column_definitions("", "Pod")}
    assert columns["Name"]["format"] == "name"
    assert columns["Restarts"]["type"] == "string"
    assert columns["IP"]["description"].startswith("podIP address allocated to the pod")


# --- nodes --------------------------------------------------------------------------

def node(ready="True", unschedulable=False, labels=None, **status):
    return {
        "metadata": meta("n1", created=ago(days=2, hours=3), labels=labels or {}),
        "spec": {"unschedulable": unschedulable} if unschedulable else {},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                  {"type": "Ready", "status": ready}] if ready else [],
                   "nodeInfo": {"kubeletVersion": "v1.32.0"}, **status},
    }


@pytest.mark.parametrize("obj,status,roles", [
    (node(), "Ready", "<none>"),
    (node(ready="False"), "NotReady", "<none>"),
    (node(ready="Unknown"), "NotReady", "<none>"),
    (node(ready=None), "Unknown", "<none>"),
    (node(unschedulable=True, labels={"node-role.kubernetes.io/control-plane": "",
                                      "node-role.kubernetes.io/master": "", "kubernetes.io/role": "etcd",
                                      "node-role.kubernetes.io/": "ignored"}),
     "Ready,SchedulingDisabled", "control-plane,etcd,master"),
])
def test_node_status_and_roles(obj, status, roles):
    assert cells("", "Node", obj)[:5] == ["n1", status, roles, "2d3h", "v1.32.0"]


def test_node_wide_cells():
    obj = node(addresses=[{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}])
    obj["status"]["nodeInfo"].update(osImage="Debian GNU/Linux 12", kernelVersion="6.1.0",
                                     containerRuntimeVersion="runc://1.1.5")
    assert cells("", "Node", obj)[5:] == ["10.0.0.5", "<none>", "Debian GNU/Linux 12", "6.1.0", "runc://1.1.5"]
    assert cells("", "Node", node())[5:] == ["<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]
    assert column_names("", "Node", priority=1) == [
        "Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"]


# --- services --------------------------------------------------------------------------

def service(kind=None, ports=(), status=None, **spec):
    obj = {"metadata": meta("svc"), "spec": {"ports": list(ports), **spec}}
    if kind:
        obj["spec"]["type"] = kind
    if status:
        obj["status"] = status
    return obj


@pytest.mark.parametrize("obj,expected", [
    (service("ClusterIP", [{"port": 443, "protocol": "TCP", "targetPort": 6443}], clusterIP="10.43.0.1",
             clusterIPs=["10.43.0.1"], selector={"app": "web", "tier": "fe"}),
     ["svc", "ClusterIP", "10.43.0.1", "<none>", "443/TCP", "5m", "app=web,tier=fe"]),
    (service(None, [{"port": 53, "protocol": "UDP"}, {"port": 53}], clusterIP="None"),
     ["svc", "ClusterIP", "None", "<none>", "53/UDP,53/TCP", "5m", "<none>"]),
    (service("ClusterIP", [], clusterIP="10.43.0.9", externalIPs=["192.0.2.1", "192.0.2.2"]),
     ["svc", "ClusterIP", "10.43.0.9", "192.0.2.1,192.0.2.2", "<none>", "5m", "<none>"]),
    (service("NodePort", [{"port": 80, "nodePort": 30080, "protocol": "TCP"}], clusterIPs=["10.43.1.2"]),
     ["svc", "NodePort", "10.43.1.2", "<none>", "80:30080/TCP", "5m", "<none>"]),
    (service("LoadBalancer", [{"port": 80, "nodePort": 31000, "protocol": "TCP"}], clusterIP="10.43.1.3"),
     ["svc", "LoadBalancer", "10.43.1.3", "<pending>", "80:31000/TCP", "5m", "<none>"]),
    (service("LoadBalancer", [{"port": 80, "protocol": "TCP"}], clusterIP="10.43.1.3",
             status={"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"},
                                                  {"ip": "203.0.113.10"}]}}),
     ["svc", "LoadBalancer", "10.43.1.3", "203.0.113.10,203.0.113.9,lb.example.com", "80/TCP", "5m",
      "<none>"]),
    (service("LoadBalancer", [], clusterIP="10.43.1.3", externalIPs=["192.0.2.7"],
             status={"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}),
     ["svc", "LoadBalancer", "10.43.1.3", "203.0.113.9,192.0.2.7", "<none>", "5m", "<none>"]),
    (service("ExternalName", [], externalName="db.example.com"),
     ["svc", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"]),
])
def test_service_cells(obj, expected):
    assert cells("", "Service", obj) == expected


def test_service_columns():
    assert column_names("", "Service") == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age",
                                           "Selector"]
    assert column_names("", "Service", priority=1) == ["Selector"]


# --- workloads ------------------------------------------------------------------------

def template(*containers):
    return {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": n, "image": f"{n}:1"} for n in containers]}}


def test_deployment():
    obj = {"metadata": meta("web", created=ago(hours=5, minutes=10)),
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": template("web", "sidecar")},
           "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert cells("apps", "Deployment", obj) == ["web", "2/3", 3, 2, "5h10m", "web,sidecar", "web:1,sidecar:1",
                                                "app=web"]
    assert column_names("apps", "Deployment") == ["Name", "Ready", "Up-to-date", "Available", "Age",
                                                  "Containers", "Images", "Selector"]
    assert column_names("apps", "Deployment", priority=1) == ["Containers", "Images", "Selector"]


@pytest.mark.parametrize("selector,expected", [
    ({"matchLabels": {"tier": "fe", "app": "web"}}, "app=web,tier=fe"),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                           {"key": "canary", "operator": "DoesNotExist"},
                           {"key": "zone", "operator": "Exists"},
                           {"key": "arch", "operator": "NotIn", "values": ["arm"]}]},
     "app=web,arch notin (arm),!canary,env in (dev,prod),zone"),
    ({}, ""),
    ({"matchExpressions": [{"key": "env", "operator": "Near", "values": ["x"]}]}, "<invalid>"),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": []}]}, "<invalid>"),
])
def test_deployment_selector(selector, expected):
    obj = {"metadata": meta("web"), "spec": {"selector": selector}}
    assert cells("apps", "Deployment", obj)[-1] == expected


def test_deployment_without_spec_or_status():
    # spec.replicas is always defaulted to 1 before anything reads it.
    assert cells("apps", "Deployment", {"metadata": meta("web")}) == ["web", "0/1", 0, 0, "5m", "", "", ""]


def test_replica_set_stateful_set_daemon_set():
    rs = {"metadata": meta("web-5d4f"), "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                                                 "template": template("web")},
          "status": {"replicas": 2, "readyReplicas": 1}}
    assert cells("apps", "ReplicaSet", rs) == ["web-5d4f", 2, 2, 1, "5m", "web", "web:1", "app=web"]
    sts = {"metadata": meta("db"), "spec": {"replicas": 3, "template": template("db")},
           "status": {"readyReplicas": 3}}
    assert cells("apps", "StatefulSet", sts) == ["db", "3/3", "5m", "db", "db:1"]
    ds = {"metadata": meta("agent"),
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                         "containers": [{"name": "a", "image": "a:1"}]}}},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                     "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert cells("apps", "DaemonSet", ds) == ["agent", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "5m", "a", "a:1",
                                              "app=agent"]
    assert column_names("apps", "DaemonSet", priority=0) == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"]


def test_controller_revision():
    obj = {"metadata": meta("agent-7b9", ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": True}]), "revision": 4}
    assert cells("apps", "ControllerRevision", obj) == ["agent-7b9", "daemonset.apps/agent", 4, "5m"]
    assert cells("apps", "ControllerRevision", {"metadata": meta("orphan")})[1] == "<none>"


def test_replication_controller_and_pod_template():
    rc = {"metadata": meta("rc"), "spec": {"replicas": 2, "selector": {"app": "web"}, "template": template("w")},
          "status": {"replicas": 2, "readyReplicas": 2}}
    assert cells("", "ReplicationController", rc) == ["rc", 2, 2, 2, "5m", "w", "w:1", "app=web"]
    pt = {"metadata": meta("pt"), "template": template("a", "b")}
    assert cells("", "PodTemplate", pt) == ["pt", "a,b", "a:1,b:1", "app=web"]


# --- batch -------------------------------------------------------------------------------

def job(conditions=(), start=None, done=None, deleted=False, **spec):
    return {"metadata": meta("job", deletionTimestamp=ago(seconds=1) if deleted else None),
            "spec": {"template": template("work"), **spec},
            "status": {"succeeded": spec.pop("succeeded", 0), "conditions": list(conditions),
                       **({"startTime": start} if start else {}),
                       **({"completionTime": done} if done else {})}}


def cond(kind, status="True"):
    return {"type": kind, "status": status}


@pytest.mark.parametrize("obj,status,completions,took", [
    (job([cond("Complete")], start=ago(minutes=4), done=ago(minutes=1, seconds=30), completions=1,
         succeeded=1), "Complete", "1/1", "2m30s"),
    (job(start=ago(seconds=45), completions=3, succeeded=1), "Running", "1/3", "45s"),
    (job(), "Running", "0/1", ""),
    (job(parallelism=4), "Running", "0/1 of 4", ""),
    (job([cond("Failed")], start=ago(minutes=10), done=ago(minutes=7)), "Failed", "0/1", "3m"),
    (job([cond("Complete", "False"), cond("Suspended")]), "Suspended", "0/1", ""),
    (job([cond("FailureTarget")]), "FailureTarget", "0/1", ""),
    (job(deleted=True), "Terminating", "0/1", ""),
])
def test_job(obj, status, completions, took):
    assert cells("batch", "Job", obj)[:5] == ["job", status, completions, took, "5m"]


def test_job_columns_and_wide_cells():
    assert column_names("batch", "Job") == ["Name", "Status", "Completions", "Duration", "Age", "Containers",
                                            "Images", "Selector"]
    obj = job(selector={"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}})
    assert cells("batch", "Job", obj)[5:] == ["work", "work:1", "batch.kubernetes.io/controller-uid=u1"]


def test_cron_job():
    obj = {"metadata": meta("nightly"),
           "spec": {"schedule": "0 3 * * *", "timeZone": "Etc/UTC",
                    "jobTemplate": {"spec": {"template": template("backup")}}},
           "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(minutes=3)}}
    assert cells("batch", "CronJob", obj) == ["nightly", "0 3 * * *", "Etc/UTC", "False", 1, "3m", "5m",
                                              "backup", "backup:1", "<none>"]
    obj["spec"].update(suspend=True)
    del obj["spec"]["timeZone"], obj["status"]
    assert cells("batch", "CronJob", obj)[2:6] == ["<none>", "True", 0, "<none>"]


# --- autoscaling ---------------------------------------------------------------------------

def hpa(metrics=None, current=None, **spec):
    obj = {"metadata": meta("web"),
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 2, "maxReplicas": 10, **spec},
           "status": {"currentReplicas": 3}}
    if metrics is not None:
        obj["spec"]["metrics"] = metrics
    if current is not None:
        obj["status"]["currentMetrics"] = current
    return obj


def resource(name, target, current=None):
    spec = {"type": "Resource", "resource": {"name": name, "target": target}}
    status = {"type": "Resource", "resource": {"name": name, "current": current}} if current else None
    return spec, status


CPU_50 = resource("cpu", {"type": "Utilization", "averageUtilization": 50}, {"averageUtilization": 20})
MEM = resource("memory", {"type": "AverageValue", "averageValue": "512Mi"}, {"averageValue": "0.25Gi"})
PODS = ({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue",
                                                                         "averageValue": "1k"}}},
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "current": {"averageValue": "300"}}})
OBJECT = ({"type": "Object", "object": {"target": {"type": "Value", "value": "10"}}}, None)
EXTERNAL_AVG = ({"type": "External", "external": {"target": {"type": "AverageValue", "averageValue": "30"}}},
                {"type": "External", "external": {"current": {"averageValue": "12"}}})


@pytest.mark.parametrize("obj,targets", [
    (hpa([CPU_50[0]], [CPU_50[1]]), "cpu: 20%/50%"),
    (hpa([CPU_50[0]]), "cpu: <unknown>/50%"),
    (hpa([MEM[0]], [MEM[1]]), "memory: 256Mi/512Mi"),
    (hpa([PODS[0]], [PODS[1]]), "300/1k"),
    (hpa([OBJECT[0]]), "<unknown>/10"),
    (hpa([EXTERNAL_AVG[0]], [EXTERNAL_AVG[1]]), "12/30 (avg)"),
    (hpa([CPU_50[0], MEM[0], PODS[0]], [CPU_50[1], MEM[1], PODS[1]]),
     "cpu: 20%/50%, memory: 256Mi/512Mi + 1 more..."),
    (hpa([{"type": "Mystery"}]), "<unknown type>"),
    # v2 defaulting gives a metric-less HPA an 80% CPU target
    (hpa(), "cpu: <unknown>/80%"),
    # the autoscaling/v1 shape
    (hpa(targetCPUUtilizationPercentage=60), "cpu: <unknown>/60%"),
])
def test_hpa_targets(obj, targets):
    assert cells("autoscaling", "HorizontalPodAutoscaler", obj) == ["web", "Deployment/web", targets, "2", 10,
                                                                    3, "5m"]


def test_hpa_v1_current_and_default_min():
    obj = hpa(targetCPUUtilizationPercentage=50)
    obj["status"]["currentCPUUtilizationPercentage"] = 35
    del obj["spec"]["minReplicas"]
    assert cells("autoscaling", "HorizontalPodAutoscaler", obj)[2:4] == ["cpu: 35%/50%", "1"]
    assert column_names("autoscaling", "HorizontalPodAutoscaler") == [
        "Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]


# --- the rest of core ------------------------------------------------------------------------

@pytest.mark.parametrize("kind,obj,expected", [
    ("Namespace", {"metadata": meta("dev"), "status": {"phase": "Terminating"}}, ["dev", "Terminating", "5m"]),
    ("ConfigMap", {"metadata": meta("cm"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}},
     ["cm", 3, "5m"]),
    ("Secret", {"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}},
     ["tls", "kubernetes.io/tls", 2, "5m"]),
    ("Secret", {"metadata": meta("s"), "stringData": {"a": "x"}, "data": {"a": "eA==", "b": ""}},
     ["s", "Opaque", 2, "5m"]),
    ("ServiceAccount", {"metadata": meta("default"), "secrets": [{"name": "t"}]}, ["default", 1, "5m"]),
    ("ComponentStatus", {"metadata": meta("etcd-0"), "conditions": [
        {"type": "Healthy", "status": "True", "message": "ok"}]}, ["etcd-0", "Healthy", "ok", ""]),
    ("ComponentStatus", {"metadata": meta("scheduler"), "conditions": [
        {"type": "Healthy", "status": "False", "error": "refused"}]}, ["scheduler", "Unhealthy", "", "refused"]),
    ("ResourceQuota", {"metadata": meta("q"), "status": {
        "hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2048Mi", "limits.cpu": "4"},
        "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1"}}},
     ["q", "pods: 3/10, requests.cpu: 500m/2", "limits.cpu: 1/4, limits.memory: 0/2Gi", "5m"]),
])
def test_core_kinds(kind, obj, expected):
    assert cells("", kind, obj) == expected


@pytest.mark.parametrize("subsets,expected", [
    ([], "<none>"),
    ([{"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}], "ports": [{"port": 8080}]}],
     "10.42.0.5:8080,10.42.0.6:8080"),
    ([{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"port": 80}, {"port": 443}]},
      {"addresses": [{"ip": "10.42.1.5"}, {"ip": "10.42.1.6"}], "ports": [{"port": 80}]}],
     "10.42.0.5:80,10.42.0.5:443,10.42.1.5:80 + 1 more..."),
    ([{"addresses": [{"ip": "10.42.0.5"}]}], "10.42.0.5"),
    ([{"addresses": [{"ip": "fd00::5"}], "ports": [{"port": 53}]}], "[fd00::5]:53"),
])
def test_endpoints(subsets, expected):
    assert cells("", "Endpoints", {"metadata": meta("ep"), "subsets": subsets}) == ["ep", expected, "5m"]


def test_persistent_volume_and_claim():
    pv = {"metadata": meta("pv1", annotations={"volume.beta.kubernetes.io/storage-class": "legacy"}),
          "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                   "persistentVolumeReclaimPolicy": "Delete", "claimRef": {"namespace": "ns", "name": "data"},
                   "storageClassName": "local-path", "volumeMode": "Block"},
          "status": {"phase": "Bound"}}
    assert cells("", "PersistentVolume", pv) == ["pv1", "1Gi", "RWO,RWX", "Delete", "Bound", "ns/data", "legacy",
                                                 "<unset>", "", "5m", "Block"]
    assert column_names("", "PersistentVolume", priority=1) == ["VolumeMode"]
    bound = {"metadata": meta("data"),
             "spec": {"volumeName": "pv1", "storageClassName": "local-path",
                      "resources": {"requests": {"storage": "1Gi"}}},
             "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOncePod"]}}
    assert cells("", "PersistentVolumeClaim", bound) == ["data", "Bound", "pv1", "1Gi", "RWOP", "local-path",
                                                         "<unset>", "5m", "Filesystem"]
    pending = {"metadata": meta("new", deletionTimestamp=ago(seconds=3)), "spec": {}, "status": {"phase": "Pending"}}
    assert cells("", "PersistentVolumeClaim", pending)[1:6] == ["Terminating", "", "", "", ""]


def test_core_event():
    event = {"metadata": meta("web.17a"), "type": "Warning", "reason": "BackOff",
             "message": "Back-off restarting failed container\n",
             "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
             "source": {"component": "kubelet", "host": "node-1"},
             "firstTimestamp": ago(minutes=30), "lastTimestamp": ago(minutes=2), "count": 7}
    assert cells("", "Event", event) == ["2m", "Warning", "BackOff", "pod/web", "spec.containers{web}",
                                         "kubelet, node-1", "Back-off restarting failed container", "30m", 7,
                                         "web.17a"]
    assert column_names("", "Event", priority=0) == ["Last Seen", "Type", "Reason", "Object", "Message"]
    name_column = printers.column_definitions("", "Event")[-1]
    assert (name_column["name"], name_column["priority"], name_column["format"]) == ("Name", 1, "name")


def test_events_k8s_io_event_uses_the_same_printer():
    event = {"metadata": meta("e1"), "type": "Normal", "reason": "Scheduled", "note": " assigned ",
             "regarding": {"kind": "Pod", "name": "web"}, "eventTime": "2024-06-01T11:59:00.000000Z",
             "reportingController": "default-scheduler", "reportingInstance": "sched-1"}
    assert cells("events.k8s.io", "Event", event) == ["60s", "Normal", "Scheduled", "pod/web", "",
                                                      "default-scheduler, sched-1", "assigned", "60s", 1, "e1"]
    series = dict(event, series={"count": 4, "lastObservedTime": "2024-06-01T11:59:50.000000Z"})
    assert cells("events.k8s.io", "Event", series)[0] == "10s"
    assert cells("events.k8s.io", "Event", series)[8] == 4


# --- other groups ----------------------------------------------------------------------------

@pytest.mark.parametrize("group,kind,obj,expected", [
    ("policy", "PodDisruptionBudget",
     {"metadata": meta("pdb"), "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}},
     ["pdb", "2", "N/A", 1, "5m"]),
    ("policy", "PodDisruptionBudget", {"metadata": meta("pdb"), "spec": {"maxUnavailable": "25%"}},
     ["pdb", "N/A", "25%", 0, "5m"]),
    ("networking.k8s.io", "Ingress",
     {"metadata": meta("ing"), "spec": {"ingressClassName": "traefik", "tls": [{"hosts": ["a.example"]}],
                                        "rules": [{"host": "a.example"}, {"host": "b.example"}]},
      "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}},
     ["ing", "traefik", "a.example,b.example", "192.0.2.10", "80, 443", "5m"]),
    ("networking.k8s.io", "Ingress",
     {"metadata": meta("ing"), "spec": {"rules": [{"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"}]}},
     ["ing", "<none>", "a,b,c + 2 more...", "", "80", "5m"]),
    ("networking.k8s.io", "Ingress", {"metadata": meta("ing"), "spec": {"rules": [{}]}},
     ["ing", "<none>", "*", "", "80", "5m"]),
    ("networking.k8s.io", "IngressClass",
     {"metadata": meta("traefik"), "spec": {"controller": "traefik.io/ingress-controller", "parameters": {
         "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external"}}},
     ["traefik", "traefik.io/ingress-controller", "IngressParameters.k8s.example.com/external", "5m"]),
    ("networking.k8s.io", "NetworkPolicy", {"metadata": meta("deny"), "spec": {"podSelector": {}}},
     ["deny", "<none>", "5m"]),
    ("networking.k8s.io", "NetworkPolicy",
     {"metadata": meta("web"), "spec": {"podSelector": {"matchLabels": {"app": "web"}}}}, ["web", "app=web", "5m"]),
    ("discovery.k8s.io", "EndpointSlice",
     {"metadata": meta("web-abc"), "addressType": "IPv4",
      "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}],
      "endpoints": [{"addresses": ["10.42.0.1"]}, {"addresses": ["10.42.0.2", "10.42.0.3"]},
                    {"addresses": ["10.42.0.4"]}]},
     ["web-abc", "IPv4", "80,named,*", "10.42.0.1,10.42.0.2,10.42.0.3 + 1 more...", "5m"]),
    ("discovery.k8s.io", "EndpointSlice", {"metadata": meta("empty"), "addressType": "IPv4"},
     ["empty", "IPv4", "<unset>", "<unset>", "5m"]),
    ("storage.k8s.io", "StorageClass",
     {"metadata": meta("local-path", annotations={"storageclass.kubernetes.io/is-default-class": "true"}),
      "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"},
     ["local-path (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", False, "5m"]),
    ("storage.k8s.io", "CSIDriver",
     {"metadata": meta("csi.example.com"), "spec": {"attachRequired": False, "tokenRequests": [
         {"audience": "vault"}, {"audience": "gcp"}], "volumeLifecycleModes": ["Persistent", "Ephemeral"]}},
     ["csi.example.com", False, False, False, "vault,gcp", False, "Persistent,Ephemeral", "5m"]),
    ("storage.k8s.io", "CSINode", {"metadata": meta("n1"), "spec": {"drivers": [{"name": "a"}]}}, ["n1", 1, "5m"]),
    ("storage.k8s.io", "VolumeAttachment",
     {"metadata": meta("csi-1"), "spec": {"attacher": "csi.example.com", "nodeName": "n1",
                                          "source": {"persistentVolumeName": "pv1"}},
      "status": {"attached": True}}, ["csi-1", "csi.example.com", "pv1", "n1", True, "5m"]),
    ("rbac.authorization.k8s.io", "RoleBinding",
     {"metadata": meta("rb"), "roleRef": {"kind": "ClusterRole", "name": "view"},
      "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                   {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
                   {"kind": "User", "name": "bob"}]},
     ["rb", "ClusterRole/view", "5m", "alice, bob", "devs", "tools/ci"]),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding",
     {"metadata": meta("admin"), "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
      "subjects": [{"kind": "Group", "name": "system:masters"}]},
     ["admin", "ClusterRole/cluster-admin", "5m", "", "system:masters", ""]),
    ("coordination.k8s.io", "Lease", {"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "s1_ab"}},
     ["kube-scheduler", "s1_ab", "5m"]),
    ("scheduling.k8s.io", "PriorityClass", {"metadata": meta("high"), "value": 1000000, "globalDefault": True},
     ["high", 1000000, True, "5m", "PreemptLowerPriority"]),
    ("node.k8s.io", "RuntimeClass", {"metadata": meta("gvisor"), "handler": "runsc"}, ["gvisor", "runsc", "5m"]),
    ("certificates.k8s.io", "CertificateSigningRequest",
     {"metadata": meta("csr-1"), "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
                                          "username": "alice", "expirationSeconds": 86400},
      "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}},
     ["csr-1", "5m", "kubernetes.io/kube-apiserver-client", "alice", "24h", "Approved,Issued"]),
    ("certificates.k8s.io", "CertificateSigningRequest",
     {"metadata": meta("csr-2"), "spec": {"username": "bob"},
      "status": {"conditions": [{"type": "Denied"}, {"type": "Failed"}]}},
     ["csr-2", "5m", "<none>", "bob", "<none>", "Denied,Failed"]),
    ("apiregistration.k8s.io", "APIService",
     {"metadata": meta("v1.apps"), "spec": {"group": "apps", "version": "v1"},
      "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}},
     ["v1.apps", "Local", "True", "5m"]),
    ("apiregistration.k8s.io", "APIService",
     {"metadata": meta("v1beta1.metrics.k8s.io"), "spec": {"service": {"namespace": "kube-system",
                                                                        "name": "metrics-server"}},
      "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}},
     ["v1beta1.metrics.k8s.io", "kube-system/metrics-server", "False (MissingEndpoints)", "5m"]),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration",
     {"metadata": meta("hooks"), "webhooks": [{"name": "a"}, {"name": "b"}]}, ["hooks", 2, "5m"]),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration", {"metadata": meta("none")},
     ["none", 0, "5m"]),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy",
     {"metadata": meta("p"), "spec": {"validations": [{"expression": "true"}],
                                      "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}},
     ["p", 1, "v1/ConfigMap", "5m"]),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding",
     {"metadata": meta("b"), "spec": {"policyName": "p", "paramRef": {"name": "limits"}}},
     ["b", "p", "*/limits", "5m"]),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration",
     {"metadata": meta("workload-low"), "spec": {"type": "Limited", "limited": {
         "nominalConcurrencyShares": 100, "limitResponse": {"type": "Queue", "queuing": {"queues": 128}}}}},
     ["workload-low", "Limited", 100, 128, 8, 50, "5m"]),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema",
     {"metadata": meta("catch-all"), "spec": {"priorityLevelConfiguration": {"name": "catch-all"},
                                              "matchingPrecedence": 10000,
                                              "distinguisherMethod": {"type": "ByUser"}},
      "status": {"conditions": [{"type": "Dangling", "status": "False"}]}},
     ["catch-all", "catch-all", 10000, "ByUser", "5m", "False"]),
])
def test_group_kinds(group, kind, obj, expected):
    assert cells(group, kind, obj) == expected


# --- kinds without a printer: the default table -------------------------------------------------

@pytest.mark.parametrize("group,kind", [
    ("rbac.authorization.k8s.io", "Role"), ("rbac.authorization.k8s.io", "ClusterRole"), ("", "LimitRange"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"), ("storage.k8s.io", "CSIStorageCapacity"),
    ("example.com", "Widget"),
])
def test_default_table(group, kind):
    assert not printers.has_printer(group, kind)
    columns = printers.column_definitions(group, kind)
    assert [(c["name"], c["type"], c["format"]) for c in columns] == [("Name", "string", "name"),
                                                                      ("Created At", "date", "")]
    assert columns[1]["description"].startswith("CreationTimestamp is a timestamp")
    obj = {"metadata": {"name": "view", "creationTimestamp": "2024-05-30T08:00:00Z"}}
    assert cells(group, kind, obj) == ["view", "2024-05-30T08:00:00Z"]
    assert cells(group, kind, {"metadata": {"name": "new"}}) == ["new", "0001-01-01T00:00:00Z"]


def test_core_group_aliases():
    assert printers.column_definitions("core", "Pod") == printers.column_definitions("", "Pod")


# --- every printer: shape and robustness -----------------------------------------------------------

ALL_KINDS = sorted(printers.PRINTERS)
ODD_OBJECTS = [
    {},
    {"metadata": None, "spec": None, "status": None},
    {"metadata": {"name": 7, "creationTimestamp": "not a time", "labels": "x"}, "spec": "x", "status": [],
     "data": [1], "subsets": "x", "conditions": {"a": 1}, "webhooks": None, "roleRef": "x", "type": 3},
    {"spec": {"containers": None, "initContainers": [None, 3], "ports": [None, {"port": "x"}],
              "metrics": [None, {"type": "Resource"}], "rules": [None], "template": {"spec": None},
              "selector": {"matchExpressions": [None, {"operator": "In"}]}},
     "status": {"containerStatuses": [None, {"state": None}], "conditions": [None],
                "initContainerStatuses": [{"state": {"terminated": None}}], "currentMetrics": "x",
                "loadBalancer": {"ingress": [None]}, "addresses": [None]}},
]


@pytest.mark.parametrize("group,kind", ALL_KINDS)
def test_every_printer_matches_its_columns_and_never_raises(group, kind, caplog):
    columns = printers.column_definitions(group, kind)
    assert columns and all(set(c) == {"name", "type", "format", "description", "priority"} for c in columns)
    assert all(c["priority"] in (0, 1) for c in columns)
    for obj in ODD_OBJECTS:
        row = cells(group, kind, obj)
        assert len(row) == len(columns), (kind, obj)
        json.dumps(row)  # cells go straight into the JSON response
    # The odd objects are handled by the printers themselves, not by the safety net.
    assert "printing" not in caplog.text


def test_column_definitions_are_copies():
    printers.column_definitions("", "Pod")[0]["name"] = "changed"
    assert printers.column_definitions("", "Pod")[0]["name"] == "Name"


def test_table_response_uses_the_printers():
    from k8py.apiserver import tables
    table = tables.table("", "Pod", [pod([container_status(ready=True)], conditions=[READY])])
    assert [c["name"] for c in table["columnDefinitions"]][:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][:4] == ["p", "1/1", "Running", "0"]
