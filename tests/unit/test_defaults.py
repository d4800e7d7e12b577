"""Defaulting and the strategies' create/update preparation, in wire form."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from k8py.api import defaults
from k8py.api.builtin import builtin_registry
from k8py.api.defaults.core import image_pull_policy

SEED = Path("/work/shared/manifests/seed")
if not SEED.exists():
    SEED = Path(__file__).resolve().parents[1] / "data" / "seed"

REG = builtin_registry()
UID = "0d1c5a7e-5f1d-4a4e-8f0a-2a7a7c1b9e11"


def resource_of(obj: dict):
    group, _, version = obj["apiVersion"].rpartition("/")
    return REG.storage_resource(REG.by_kind(group, version, obj["kind"]))


def created(obj: dict) -> dict:
    """The object as the create path stores it (before admission)."""
    obj = copy.deepcopy(obj)
    res = resource_of(obj)
    m = obj.setdefault("metadata", {})
    if res.namespaced:
        m.setdefault("namespace", "default")
    m.setdefault("uid", UID)
    m.setdefault("creationTimestamp", "2024-05-01T10:00:00Z")
    defaults.apply_defaults(res, obj)
    defaults.prepare_create(res, obj)
    return obj


def updated(old: dict, mutate, status: bool = False) -> dict:
    new = copy.deepcopy(old)
    mutate(new)
    res = resource_of(old)
    if status:
        defaults.prepare_status_update(res, new, old)
    else:
        defaults.apply_defaults(res, new)
        defaults.prepare_update(res, new, old)
    return new


def seed(name: str, index: int = 0) -> dict:
    return [d for d in yaml.safe_load_all((SEED / name).read_text()) if d][index]


DEFAULT_POD_SPEC = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
}


def test_probes_pod_gets_exactly_upstreams_defaults():
    pod = created(seed("06-probes.yaml"))
    assert pod["spec"] == {
        "restartPolicy": "Always",
        "containers": [
            {
                "name": "web",
                "image": "busybox",
                "command": ["sh", "-c", "mkdir -p /www && echo ok > /www/healthz && httpd -f -p 8080 -h /www"],
                "readinessProbe": {
                    "tcpSocket": {"port": 8080},
                    "initialDelaySeconds": 1,
                    "timeoutSeconds": 1,
                    "periodSeconds": 2,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "livenessProbe": {
                    "httpGet": {
                        "path": "/healthz",
                        "port": 8080,
                        "scheme": "HTTP",
                        "httpHeaders": [{"name": "X-Custom-Header", "value": "Awesome"}],
                    },
                    "initialDelaySeconds": 2,
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "Always",
            },
            {
                "name": "checker",
                "image": "busybox",
                "command": ["sh", "-c", "touch /tmp/healthy; sleep 3600"],
                "livenessProbe": {
                    "exec": {"command": ["cat", "/tmp/healthy"]},
                    "timeoutSeconds": 1,
                    "periodSeconds": 2,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "Always",
            },
        ],
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
    }
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert "generation" not in pod["metadata"]


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.27", "IfNotPresent"),
    ("registry.local:5000/team/app", "Always"), ("registry.local:5000/team/app:v2", "IfNotPresent"),
    ("busybox@sha256:" + "a" * 64, "IfNotPresent"), ("busybox:latest@sha256:" + "b" * 64, "Always"),
    ("Upper/Case", "IfNotPresent"),
])
def test_image_pull_policy(image, policy):
    assert image_pull_policy(image) == policy


def test_explicit_values_are_kept():
    pod = created({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "restartPolicy": "Never", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0,
        "enableServiceLinks": False,
        "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Never",
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "livenessProbe": {"grpc": {"port": 9000}, "periodSeconds": 7}}]}})
    spec = pod["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["terminationGracePeriodSeconds"],
            spec["enableServiceLinks"]) == ("Never", "Default", 0, False)
    c = spec["containers"][0]
    assert (c["imagePullPolicy"], c["terminationMessagePolicy"]) == ("Never", "FallbackToLogsOnError")
    assert c["livenessProbe"] == {"grpc": {"port": 9000, "service": ""}, "periodSeconds": 7, "timeoutSeconds": 1,
                                  "successThreshold": 1, "failureThreshold": 3}


def test_container_details():
    pod = created({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "hostNetwork": True,
        "initContainers": [{"name": "i", "image": "busybox:1.36", "resources": {"limits": {"memory": "64Mi"}}}],
        "containers": [{
            "name": "c", "image": "nginx",
            "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}, "requests": {"cpu": "0.0001"}},
            "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
        }]}})
    c = pod["spec"]["containers"][0]
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP", "hostPort": 80},
                          {"containerPort": 53, "protocol": "UDP", "hostPort": 53}]
    assert c["env"][0]["valueFrom"]["fieldRef"] == {"apiVersion": "v1", "fieldPath": "spec.nodeName"}
    # quantities are rounded up to milli units and printed canonically; requests default from limits
    assert c["resources"] == {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "1m", "memory": "1Gi"}}
    assert c["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}
    init = pod["spec"]["initContainers"][0]
    assert (init["imagePullPolicy"], init["resources"]) == ("IfNotPresent", {"limits": {"memory": "64Mi"},
                                                                             "requests": {"memory": "64Mi"}})
    assert pod["status"]["qosClass"] == "Burstable"


def test_volume_defaults():
    pod = created({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "nginx"}],
        "volumes": [
            {"name": "none"},
            {"name": "cm", "configMap": {"name": "cfg"}},
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
            {"name": "host", "hostPath": {"path": "/tmp"}},
            {"name": "dapi", "downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
            {"name": "scratch", "emptyDir": {"sizeLimit": "1000Mi"}},
            {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}},
        ]}})
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["none"] == {"name": "none", "emptyDir": {}}
    assert vols["cm"]["configMap"] == {"name": "cfg", "defaultMode": 420}
    assert vols["sec"]["secret"] == {"secretName": "s", "defaultMode": 256}
    assert vols["host"]["hostPath"] == {"path": "/tmp", "type": ""}
    assert vols["dapi"]["downwardAPI"] == {"defaultMode": 420, "items": [
        {"path": "l", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}}]}
    assert vols["proj"]["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}
    assert vols["scratch"]["emptyDir"] == {"sizeLimit": "1000Mi"}
    assert vols["eph"]["ephemeral"]["volumeClaimTemplate"] == {
        "metadata": {"creationTimestamp": None},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "volumeMode": "Filesystem"}}


@pytest.mark.parametrize("name,index,qos", [
    ("14-qos-quota.yaml", 2, "Guaranteed"),
    ("14-qos-quota.yaml", 3, "Burstable"),
    ("09-deployment-rolling.yaml", None, "Burstable"),
    ("03-configmap-subpath.yaml", 1, "BestEffort"),
])
def test_pod_qos_class(name, index, qos):
    if index is None:
        doc = seed(name)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": copy.deepcopy(doc["spec"]["template"]["spec"])}
    else:
        pod = seed(name, index)
    assert created(pod)["status"]["qosClass"] == qos


def test_limits_only_pod_is_guaranteed():
    pod = created({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}})
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert pod["status"]["qosClass"] == "Guaranteed"


def test_pod_status_is_reset_on_create():
    pod = seed("05-lifecycle-hooks.yaml")
    pod["status"] = {"phase": "Running", "podIP": "10.42.0.9"}
    assert created(pod)["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_scheduling_gated_pod_condition():
    pod = seed("05-lifecycle-hooks.yaml")
    pod["spec"]["schedulingGates"] = [{"name": "example.com/wait"}]
    assert created(pod)["status"]["conditions"] == [{
        "type": "PodScheduled", "status": "False", "lastProbeTime": None, "lastTransitionTime": None,
        "reason": "SchedulingGated", "message": "Scheduling is blocked due to non-empty scheduling gates"}]


# ---- services ---------------------------------------------------------------------------------

@pytest.mark.parametrize("index,expected", [
    (0, {"type": "NodePort", "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
         "sessionAffinity": "None", "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
         "selector": {"app": "nginx-deploy"},
         "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80, "name": "myapp-http"}]}),
    (1, {"type": "LoadBalancer", "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
         "allocateLoadBalancerNodePorts": True, "sessionAffinity": "None", "ipFamilyPolicy": "SingleStack",
         "ipFamilies": ["IPv4"], "selector": {"app": "nginx-deploy"},
         "ports": [{"protocol": "TCP", "port": 8088, "targetPort": 80}]}),
    (2, {"type": "ExternalName", "externalName": "my.database.example.com", "sessionAffinity": "None"}),
    (3, {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "internalTrafficPolicy": "Cluster",
         "sessionAffinity": "None", "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
         "selector": {"app": "nginx-deploy"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}),
])
def test_service_defaults(index, expected):
    svc = created(seed("10-services.yaml", index))
    assert svc["spec"] == expected
    assert svc["status"] == {"loadBalancer": {}}


def test_service_client_ip_affinity_and_cluster_ip():
    svc = created({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {
        "clusterIP": "10.43.0.20", "sessionAffinity": "ClientIP", "ports": [{"port": 443, "targetPort": "https"}]}})
    assert svc["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    assert svc["spec"]["clusterIPs"] == ["10.43.0.20"]
    assert svc["spec"]["ports"][0]["targetPort"] == "https"


# ---- workloads ----------------------------------------------------------------------------------

def test_deployment_defaults():
    obj = created({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    spec = obj["spec"]
    assert {k: v for k, v in spec.items() if k != "template"} == {
        "replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}}
    assert spec["template"]["metadata"] == {"creationTimestamp": None, "labels": {"app": "web"}}
    # templates get pod-spec defaults but not the Pod-only ones
    assert spec["template"]["spec"] == {**DEFAULT_POD_SPEC, "containers": [{
        "name": "c", "image": "nginx", "imagePullPolicy": "Always", "resources": {},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}]}
    assert (obj["metadata"]["generation"], obj["status"]) == (1, {})


def test_recreate_strategy_has_no_rolling_update():
    obj = created({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                   "spec": {"strategy": {"type": "Recreate"}, "template": {}}})
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


def test_replica_set_and_daemon_set_defaults():
    rs = created({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"}, "spec": {"template": {}}})
    assert (rs["spec"]["replicas"], rs["status"], rs["metadata"]["generation"]) == (1, {"replicas": 0}, 1)
    ds = created({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"}, "spec": {"template": {}}})
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10
    assert ds["status"] == {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                            "numberReady": 0}


def test_stateful_set_defaults():
    sts = created({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {
        "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "pg:16"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert (spec["replicas"], spec["revisionHistoryLimit"]) == (1, 10)
    assert spec["volumeClaimTemplates"] == [{
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "creationTimestamp": None},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "volumeMode": "Filesystem"},
        "status": {"phase": "Pending"}}]
    assert sts["status"] == {"replicas": 0, "availableReplicas": 0}


def test_replication_controller_selector_and_labels_from_template():
    rc = created(seed("18-replication-controller.yaml"))
    assert rc["spec"]["selector"] == {"name": "rc"}
    rc = created({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"}, "spec": {
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    assert (rc["spec"]["selector"], rc["metadata"]["labels"], rc["spec"]["replicas"]) == ({"app": "x"}, {"app": "x"}, 1)
    assert rc["status"] == {"replicas": 0}


def test_job_defaults_and_generated_selector():
    job = created(seed("12-jobs.yaml", 0))
    generated = {"batch.kubernetes.io/controller-uid": UID, "batch.kubernetes.io/job-name": "job-demo",
                 "controller-uid": UID, "job-name": "job-demo"}
    spec = job["spec"]
    assert {k: v for k, v in spec.items() if k != "template"} == {
        "completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed", "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}}
    assert spec["template"]["metadata"] == {"creationTimestamp": None, "labels": generated}
    # read back from storage, the Job's own labels come from its template
    assert job["metadata"]["labels"] == generated
    assert (job["metadata"]["generation"], job["status"]) == (1, {})


def test_job_with_parallelism_only_and_failure_policy():
    job = created({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {
        "parallelism": 3, "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [
            {"type": "DisruptionTarget"}]}]},
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}})
    spec = job["spec"]
    assert "completions" not in spec
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]


def test_cron_job_defaults():
    cj = created(seed("12-jobs.yaml", 1))
    spec = cj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Allow", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (10, 10)
    assert spec["jobTemplate"]["metadata"] == {"creationTimestamp": None}
    job_spec = spec["jobTemplate"]["spec"]
    assert "backoffLimit" not in job_spec  # Job defaults belong to Jobs, not templates
    assert job_spec["template"]["spec"]["schedulerName"] == "default-scheduler"
    cj = created({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
                  "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {}}}}})
    assert (cj["spec"]["successfulJobsHistoryLimit"], cj["spec"]["failedJobsHistoryLimit"]) == (3, 1)


def test_hpa_defaults():
    hpa = created({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
                   "spec": {"maxReplicas": 5, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                                 "name": "web"},
                            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}})
    spec = hpa["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    assert spec["behavior"] == {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
        "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}]}}
    assert hpa["status"] == {"currentMetrics": None, "desiredReplicas": 0}
    plain = created(seed("15-hpa.yaml"))
    assert "behavior" not in plain["spec"]


# ---- other kinds -------------------------------------------------------------------------------

def test_namespace_defaults():
    ns = created({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"},
                  "spec": {"finalizers": ["example.com/cleanup"]}, "status": {"phase": "Terminating"}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    assert ns["spec"] == {"finalizers": ["example.com/cleanup", "kubernetes"]}
    assert ns["status"] == {"phase": "Active"}


def test_storage_defaults():
    pv = created(seed("01-pv-pvc-nfs.yaml", 0))
    assert (pv["spec"]["persistentVolumeReclaimPolicy"], pv["spec"]["volumeMode"]) == ("Recycle", "Filesystem")
    assert pv["status"]["phase"] == "Pending" and pv["status"]["lastPhaseTransitionTime"].endswith("Z")
    plain = created({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "v"},
                     "spec": {"capacity": {"storage": "1024Mi"}, "hostPath": {"path": "/x"}}})
    assert plain["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert plain["spec"]["capacity"] == {"storage": "1Gi"}
    assert plain["spec"]["hostPath"] == {"path": "/x", "type": ""}
    claim = created(seed("01-pv-pvc-nfs.yaml", 1))
    assert (claim["spec"]["volumeMode"], claim["status"]) == ("Filesystem", {"phase": "Pending"})
    sc = created(seed("02-storageclass-dynamic.yaml", 0))
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")


def test_secret_and_configmap():
    assert created({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})["type"] == "Opaque"
    assert created(seed("11-secret-configmap-env.yaml", 0))["type"] == "Opaque"
    cm = created(seed("03-configmap-subpath.yaml", 0))
    assert set(cm) == {"apiVersion", "kind", "metadata", "data"}


def test_rbac_defaults():
    rb = created(seed("13-rbac-serviceaccount.yaml", 2))
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "haimaxy-sa", "namespace": "kube-system",
                               "apiGroup": ""}]
    crb = created({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
                   "subjects": [{"kind": "User", "name": "jane"}, {"kind": "Group", "name": "devs"}]})
    assert crb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert [s["apiGroup"] for s in crb["subjects"]] == ["rbac.authorization.k8s.io"] * 2


def test_small_kinds():
    pc = created({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "p"},
                  "value": 10})
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    eps = created({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"},
                   "addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]})
    assert eps["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    np_ = created({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"},
                   "spec": {"egress": [{"ports": [{"port": 53}]}]}})
    assert np_["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert np_["spec"]["egress"][0]["ports"] == [{"port": 53, "protocol": "TCP"}]
    ic = created({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "i"},
                  "spec": {"controller": "k8py.io/ingress", "parameters": {"kind": "Cfg", "name": "c"}}})
    assert ic["spec"]["parameters"]["scope"] == "Cluster"
    ing = created(seed("16-ingress.yaml"))
    assert (ing["status"], ing["metadata"]["generation"]) == ({"loadBalancer": {}}, 1)
    pdb = created({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
                   "spec": {"minAvailable": 1}, "status": {"expectedPods": 9}})
    assert pdb["status"] == {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    lease = created({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {}})
    assert lease["spec"] == {} and "status" not in lease and "generation" not in lease["metadata"]


def test_limit_range_container_defaults():
    lr = created({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}})
    assert lr["spec"]["limits"][0] == {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"},
                                       "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "64Mi"}}


def test_event_wire_fields():
    ev = created({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e.1"},
                  "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Started"})
    assert (ev["source"], ev["eventTime"], ev["firstTimestamp"], ev["reportingComponent"],
            ev["reportingInstance"]) == ({}, None, None, "", "")


# ---- updates ------------------------------------------------------------------------------------

def test_update_keeps_status_and_counts_spec_changes():
    old = created(seed("09-deployment-rolling.yaml"))
    old["status"] = {"replicas": 3, "observedGeneration": 1}
    new = updated(old, lambda o: (o["spec"].__setitem__("replicas", 5), o.__setitem__("status", {})))
    assert new["status"] == {"replicas": 3, "observedGeneration": 1}
    assert new["metadata"]["generation"] == 2
    same = updated(new, lambda o: o["metadata"].setdefault("labels", {}).__setitem__("extra", "x"))
    assert same["metadata"]["generation"] == 2
    annotated = updated(new, lambda o: o["metadata"].__setitem__("annotations", {"note": "x"}))
    assert annotated["metadata"]["generation"] == 3


def test_generation_only_for_kinds_that_track_it():
    svc = created(seed("07-init-containers.yaml", 1))
    assert "generation" not in svc["metadata"]
    new = updated(svc, lambda o: o["spec"]["ports"][0].__setitem__("port", 81))
    assert "generation" not in new["metadata"]


def test_status_update_keeps_spec_and_generation():
    old = created(seed("09-deployment-rolling.yaml"))
    new = updated(old, lambda o: (o["spec"].__setitem__("replicas", 9),
                                  o.__setitem__("status", {"replicas": 3, "readyReplicas": 3})), status=True)
    assert new["spec"] == old["spec"]
    assert new["status"] == {"replicas": 3, "readyReplicas": 3}
    assert new["metadata"]["generation"] == 1


def test_pod_status_update_keeps_qos_class():
    old = created(seed("14-qos-quota.yaml", 2))
    new = updated(old, lambda o: o.__setitem__("status", {"phase": "Running", "qosClass": "BestEffort"}),
                  status=True)
    assert new["status"] == {"phase": "Running", "qosClass": "Guaranteed"}


def test_namespace_update_keeps_finalizers_and_status():
    old = created(seed("14-qos-quota.yaml", 0))
    new = updated(old, lambda o: (o["spec"].__setitem__("finalizers", []), o.__setitem__("status", {}),
                                  o["metadata"]["labels"].__setitem__("kubernetes.io/metadata.name", "other")))
    assert new["spec"]["finalizers"] == ["kubernetes"]
    assert new["status"] == {"phase": "Active"}
    assert new["metadata"]["labels"]["kubernetes.io/metadata.name"] == "demo-namespace"


def test_service_update_keeps_ip_families_and_follows_cluster_ip():
    old = created(seed("07-init-containers.yaml", 1))
    old["spec"]["clusterIP"], old["spec"]["clusterIPs"] = "10.43.0.50", ["10.43.0.50"]
    new = updated(old, lambda o: [o["spec"].pop(k) for k in ("ipFamilies", "ipFamilyPolicy")])
    assert (new["spec"]["ipFamilies"], new["spec"]["ipFamilyPolicy"]) == (["IPv4"], "SingleStack")
    moved = updated(old, lambda o: o["spec"].__setitem__("clusterIP", "10.43.0.51"))
    assert moved["spec"]["clusterIPs"] == ["10.43.0.51"]


def test_service_type_change_drops_what_the_old_type_needed():
    old = created({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {
        "type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}})
    old["spec"]["clusterIP"], old["spec"]["clusterIPs"] = "10.43.0.5", ["10.43.0.5"]
    to_cluster_ip = updated(old, lambda o: o["spec"].__setitem__("type", "ClusterIP"))
    assert "externalTrafficPolicy" not in to_cluster_ip["spec"]
    assert to_cluster_ip["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    to_external = updated(old, lambda o: o["spec"].update(type="ExternalName", externalName="db.example.com"))
    assert not {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"} & set(to_external["spec"])


def test_persistent_volume_status_update_records_phase_changes():
    old = created(seed("01-pv-pvc-nfs.yaml", 0))
    old["status"]["lastPhaseTransitionTime"] = "2024-01-01T00:00:00Z"
    same = updated(old, lambda o: o["status"].pop("lastPhaseTransitionTime"), status=True)
    assert same["status"]["lastPhaseTransitionTime"] == "2024-01-01T00:00:00Z"
    bound = updated(old, lambda o: o["status"].__setitem__("phase", "Bound"), status=True)
    assert bound["status"]["lastPhaseTransitionTime"] != "2024-01-01T00:00:00Z"


# ---- robustness and idempotence ------------------------------------------------------------------

def _seed_docs():
    for path in sorted(SEED.glob("*.yaml")):
        for n, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                yield pytest.param(doc, id=f"{path.stem}-{n}")


@pytest.mark.parametrize("doc", list(_seed_docs()))
def test_defaults_are_idempotent(doc):
    once = created(doc)
    twice = copy.deepcopy(once)
    defaults.apply_defaults(resource_of(doc), twice)
    assert twice == once
    assert once != doc  # something was defaulted for every seed object


@pytest.mark.parametrize("doc", list(_seed_docs()))
def test_defaults_tolerate_wrong_types(doc):
    res = resource_of(doc)

    def paths(obj, prefix=()):
        yield prefix
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from paths(v, prefix + (k,))
        elif isinstance(obj, list):
            for n, v in enumerate(obj):
                yield from paths(v, prefix + (n,))

    checked = 0
    for p in [p for p in paths(doc) if p and p[0] not in ("apiVersion", "kind")]:
        for wrong in ("x", 3, None, [], {}, [1], {"a": []}):
            bad = copy.deepcopy(doc)
            target = bad
            for k in p[:-1]:
                target = target[k]
            target[p[-1]] = copy.deepcopy(wrong)
            if not isinstance(bad.get("metadata"), dict):
                bad["metadata"] = {}
            defaults.apply_defaults(res, bad)
            defaults.prepare_create(res, bad)
            defaults.prepare_update(res, copy.deepcopy(bad), bad)
            defaults.prepare_status_update(res, copy.deepcopy(bad), bad)
            checked += 1
    assert checked > 0
