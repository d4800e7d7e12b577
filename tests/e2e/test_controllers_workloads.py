"""Workload controllers (Job, CronJob, StatefulSet, DaemonSet, PDB) driven with the real kubectl.

No kubelet runs in these servers, so the test plays its part: it binds pods
and reports their phase and readiness through the pods' status subresource,
exactly the writes a kubelet makes.
"""

from __future__ import annotations

import datetime
import json
import time

import pytest

from tests.e2e.conftest import SEED, wait_for

pytestmark = pytest.mark.simulated_kubelet  # the tests write pod (and node) status themselves


def pods(server, namespace, selector=None) -> list[dict]:
    args = ["get", "pods", "-n", namespace]
    if selector:
        args += ["-l", selector]
    return server.kubectl_json(*args)["items"]


def set_pod_status(server, namespace, name, phase, ready=False, exit_code=None, conditions=()):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conds = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now},
             *conditions]
    status = {"phase": phase, "conditions": conds}
    if exit_code is not None:
        status["containerStatuses"] = [{
            "name": "main", "ready": False, "restartCount": 0, "image": "busybox", "imageID": "",
            "state": {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                                     "startedAt": now, "finishedAt": now}}}]
    server.kubectl("patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
                   "-p", json.dumps({"status": status}))


def condition(obj, type_):
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return cond
    return None


def events(server, namespace, name) -> list[dict]:
    return [e for e in server.kubectl_json("get", "events", "-n", namespace)["items"]
            if e["involvedObject"]["name"] == name]


# ---- Job -----------------------------------------------------------------------------

def test_seed_job_completes_when_its_pod_succeeds(server, namespace):
    manifest = (SEED / "12-jobs.yaml").read_text().split("---")[0]
    server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    job_pods = wait_for(lambda: pods(server, namespace, "job-name=job-demo"), timeout=15, what="job pod")
    assert len(job_pods) == 1
    pod = job_pods[0]
    assert "batch.kubernetes.io/job-tracking" in pod["metadata"]["finalizers"]
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "job-demo"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    job = server.kubectl_json("get", "job", "job-demo", "-n", namespace)
    assert job["status"]["active"] == 1 and job["status"]["startTime"]

    set_pod_status(server, namespace, pod["metadata"]["name"], "Succeeded", exit_code=0)
    server.kubectl("wait", "-n", namespace, "--for=condition=complete", "job/job-demo", "--timeout=20s")
    job = server.kubectl_json("get", "job", "job-demo", "-n", namespace)
    assert job["status"]["succeeded"] == 1 and "active" not in job["status"]
    assert job["status"]["completionTime"]
    assert condition(job, "SuccessCriteriaMet")["reason"] == "CompletionsReached"
    assert condition(job, "Complete")["status"] == "True"
    pod = pods(server, namespace, "job-name=job-demo")[0]
    assert "batch.kubernetes.io/job-tracking" not in (pod["metadata"].get("finalizers") or [])
    out = server.kubectl("get", "job", "job-demo", "-n", namespace).stdout
    assert "Complete" in out and "1/1" in out
    reasons = {e["reason"] for e in events(server, namespace, "job-demo")}
    assert {"SuccessfulCreate", "Completed"} <= reasons


def test_job_fails_past_backoff_limit(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: Job
metadata: {name: failing}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: ["false"]}]
""")
    pod = wait_for(lambda: pods(server, namespace, "job-name=failing"), timeout=15, what="job pod")[0]
    set_pod_status(server, namespace, pod["metadata"]["name"], "Failed", exit_code=1)
    server.kubectl("wait", "-n", namespace, "--for=condition=failed", "job/failing", "--timeout=20s")
    job = server.kubectl_json("get", "job", "failing", "-n", namespace)
    assert job["status"]["failed"] == 1
    assert condition(job, "Failed")["reason"] == "BackoffLimitExceeded"
    assert condition(job, "FailureTarget")["message"] == "Job has reached the specified backoff limit"
    assert len(pods(server, namespace, "job-name=failing")) == 1  # no replacement after the limit


def test_job_replaces_a_failed_pod_after_a_back_off(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: Job
metadata: {name: retry}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
""")
    first = wait_for(lambda: pods(server, namespace, "job-name=retry"), timeout=15, what="job pod")[0]
    set_pod_status(server, namespace, first["metadata"]["name"], "Failed", exit_code=1)
    failed_at = time.time()
    second = wait_for(lambda: [p for p in pods(server, namespace, "job-name=retry")
                               if p["metadata"]["name"] != first["metadata"]["name"]], timeout=25, interval=0.5,
                      what="the replacement pod")[0]
    assert time.time() - failed_at >= 9  # the first retry waits ten seconds
    job = server.kubectl_json("get", "job", "retry", "-n", namespace)
    assert job["status"]["failed"] == 1 and job["status"]["active"] == 1
    # the retry succeeds: the Job completes despite the earlier failure
    set_pod_status(server, namespace, second["metadata"]["name"], "Succeeded", exit_code=0)
    server.kubectl("wait", "-n", namespace, "--for=condition=complete", "job/retry", "--timeout=20s")
    status = server.kubectl_json("get", "job", "retry", "-n", namespace)["status"]
    assert (status["failed"], status["succeeded"]) == (1, 1)


def test_job_pod_failure_policy_fails_job_on_exit_code(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: Job
metadata: {name: policy}
spec:
  backoffLimit: 5
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {containerName: main, operator: In, values: [42]}
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
""")
    pod = wait_for(lambda: pods(server, namespace, "job-name=policy"), timeout=15, what="job pod")[0]
    set_pod_status(server, namespace, pod["metadata"]["name"], "Failed", exit_code=42)
    server.kubectl("wait", "-n", namespace, "--for=condition=failed", "job/policy", "--timeout=20s")
    job = server.kubectl_json("get", "job", "policy", "-n", namespace)
    failed = condition(job, "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert failed["message"] == (f"Container main for pod {namespace}/{pod['metadata']['name']} failed with exit "
                                 f"code 42 matching FailJob rule at index 0")


def test_job_adopts_orphans_and_releases_relabelled_pods(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: Job
metadata: {name: adopt}
spec:
  parallelism: 2
  completions: 4
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
""")
    job_pods = wait_for(lambda: len(p := pods(server, namespace, "job-name=adopt")) == 2 and p, timeout=15,
                        what="two pods (parallelism)")
    orphan = job_pods[0]["metadata"]["name"]
    server.kubectl("patch", "pod", orphan, "-n", namespace, "--type=json",
                   "-p", '[{"op": "remove", "path": "/metadata/ownerReferences"}]')
    wait_for(lambda: (server.kubectl_json("get", "pod", orphan, "-n", namespace)["metadata"]
                      .get("ownerReferences") or [{}])[0].get("name") == "adopt", timeout=15, what="re-adoption")
    stray = job_pods[1]["metadata"]["name"]
    # the generated selector is the Job's uid label: a pod without it is not the Job's
    server.kubectl("label", "pod", stray, "-n", namespace, "batch.kubernetes.io/controller-uid=someone-else",
                   "controller-uid=someone-else", "--overwrite")
    wait_for(lambda: not server.kubectl_json("get", "pod", stray, "-n", namespace)["metadata"]
             .get("ownerReferences"), timeout=15, what="the relabelled pod released")
    # the Job makes up for the released pod
    def owned():
        return {p["metadata"]["name"] for p in pods(server, namespace, "job-name=adopt")
                if (p["metadata"].get("ownerReferences") or [{}])[0].get("name") == "adopt"}
    wait_for(lambda: len(owned()) == 2 and stray not in owned(), timeout=15,
             what="a replacement for the released pod")
    # nobody counts the released pod now: its tracking finalizer is gone too
    wait_for(lambda: not server.kubectl_json("get", "pod", stray, "-n", namespace)["metadata"].get("finalizers"),
             timeout=15, what="the released pod's finalizer removed")


def test_job_failure_policy_ignores_evictions(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: Job
metadata: {name: evictable}
spec:
  backoffLimit: 0
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions: [{type: DisruptionTarget}]
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
""")
    first = wait_for(lambda: pods(server, namespace, "job-name=evictable"), timeout=15, what="job pod")[0]
    name = first["metadata"]["name"]
    _run(server, namespace, name)
    assert _evict(server, namespace, name).returncode == 0
    evicted = server.kubectl_json("get", "pod", name, "-n", namespace)
    target = condition(evicted, "DisruptionTarget")
    assert target["reason"] == "EvictionByEvictionAPI"
    # podReplacementPolicy is Failed with a failure policy: no replacement while the pod terminates
    assert [p["metadata"]["name"] for p in pods(server, namespace, "job-name=evictable")] == [name]
    # the kubelet's part: the evicted container is killed and the pod fails, keeping its condition
    set_pod_status(server, namespace, name, "Failed", exit_code=137, conditions=[target])
    second = wait_for(lambda: [p for p in pods(server, namespace, "job-name=evictable")
                               if p["metadata"]["name"] != name], timeout=15, what="a replacement")[0]
    job = server.kubectl_json("get", "job", "evictable", "-n", namespace)
    assert not job["status"].get("failed") and not condition(job, "Failed")  # the eviction was not counted
    set_pod_status(server, namespace, second["metadata"]["name"], "Succeeded", exit_code=0)
    server.kubectl("wait", "-n", namespace, "--for=condition=complete", "job/evictable", "--timeout=20s")


def test_indexed_job_gives_each_pod_its_index(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: Job
metadata: {name: indexed}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
""")
    job_pods = wait_for(lambda: len(p := pods(server, namespace, "job-name=indexed")) == 3 and p,
                        timeout=15, what="three indexed pods")
    indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in job_pods)
    assert indexes == ["0", "1", "2"]
    for p in job_pods:
        index = p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
        assert p["spec"]["hostname"] == f"indexed-{index}"
        assert p["metadata"]["name"].startswith(f"indexed-{index}-")
        env = p["spec"]["containers"][0]["env"]
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1",
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}} in env
    for p in job_pods:
        set_pod_status(server, namespace, p["metadata"]["name"], "Succeeded", exit_code=0)
    server.kubectl("wait", "-n", namespace, "--for=condition=complete", "job/indexed", "--timeout=20s")
    job = server.kubectl_json("get", "job", "indexed", "-n", namespace)
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["succeeded"] == 3


def test_job_suspend_resume_and_active_deadline(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: Job
metadata: {name: later}
spec:
  suspend: true
  activeDeadlineSeconds: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
""")
    job = wait_for(lambda: condition(j := server.kubectl_json("get", "job", "later", "-n", namespace), "Suspended")
                   and j, timeout=15, what="Suspended condition")
    assert (condition(job, "Suspended")["status"], condition(job, "Suspended")["reason"]) == ("True", "JobSuspended")
    assert not pods(server, namespace, "job-name=later") and "startTime" not in job["status"]

    server.kubectl("patch", "job", "later", "-n", namespace, "--type=merge", "-p", '{"spec": {"suspend": false}}')
    wait_for(lambda: pods(server, namespace, "job-name=later"), timeout=15, what="a pod once resumed")
    job = server.kubectl_json("get", "job", "later", "-n", namespace)
    assert condition(job, "Suspended")["reason"] == "JobResumed" and job["status"]["startTime"]
    # nobody runs the pod: two seconds after the resume the deadline fails the Job and its pod goes
    server.kubectl("wait", "-n", namespace, "--for=condition=failed", "job/later", "--timeout=20s")
    job = server.kubectl_json("get", "job", "later", "-n", namespace)
    assert condition(job, "Failed")["reason"] == "DeadlineExceeded"
    assert condition(job, "Failed")["message"] == "Job was active longer than specified deadline"
    wait_for(lambda: not [p for p in pods(server, namespace, "job-name=later")
                          if not p["metadata"].get("deletionTimestamp")], timeout=15, what="the pod deleted")
    assert {"Suspended", "Resumed", "DeadlineExceeded"} <= {e["reason"] for e in events(server, namespace, "later")}


def test_indexed_job_success_policy_ends_it_early(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: Job
metadata: {name: leader}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  successPolicy:
    rules: [{succeededIndexes: "0"}]
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
""")
    job_pods = wait_for(lambda: len(p := pods(server, namespace, "job-name=leader")) == 3 and p, timeout=15,
                        what="three indexed pods")
    leader = next(p for p in job_pods
                  if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "0")
    set_pod_status(server, namespace, leader["metadata"]["name"], "Succeeded", exit_code=0)
    server.kubectl("wait", "-n", namespace, "--for=condition=complete", "job/leader", "--timeout=20s")
    job = server.kubectl_json("get", "job", "leader", "-n", namespace)
    met = condition(job, "SuccessCriteriaMet")
    assert (met["reason"], met["message"]) == ("SuccessPolicy", "Matched rules at index 0")
    assert condition(job, "Complete")["reason"] == "SuccessPolicy"
    assert job["status"]["completedIndexes"] == "0" and job["status"]["succeeded"] == 1
    # the other indexes were stopped, not waited for
    assert not [p for p in pods(server, namespace, "job-name=leader")
                if p["status"]["phase"] not in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")]


def test_indexed_job_fail_index_policy(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: Job
metadata: {name: per-index}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  backoffLimitPerIndex: 1
  podFailurePolicy:
    rules:
    - action: FailIndex
      onExitCodes: {operator: In, values: [42]}
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
""")
    job_pods = wait_for(lambda: len(p := pods(server, namespace, "job-name=per-index")) == 2 and p, timeout=15,
                        what="two indexed pods")
    by_index = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in job_pods}
    set_pod_status(server, namespace, by_index["0"]["metadata"]["name"], "Failed", exit_code=42)
    wait_for(lambda: server.kubectl_json("get", "job", "per-index", "-n", namespace)["status"]
             .get("failedIndexes") == "0", timeout=15, what="index 0 failed without a retry")
    set_pod_status(server, namespace, by_index["1"]["metadata"]["name"], "Succeeded", exit_code=0)
    server.kubectl("wait", "-n", namespace, "--for=condition=failed", "job/per-index", "--timeout=20s")
    job = server.kubectl_json("get", "job", "per-index", "-n", namespace)
    failed = condition(job, "Failed")
    assert (failed["reason"], failed["message"]) == ("FailedIndexes", "Job has failed indexes")
    assert job["status"]["completedIndexes"] == "1" and job["status"]["failedIndexes"] == "0"
    assert len(pods(server, namespace, "job-name=per-index")) == 2  # the failed index was never retried


# ---- CronJob -------------------------------------------------------------------------

def test_seed_cronjob_runs_every_minute(server, namespace):
    manifest = (SEED / "12-jobs.yaml").read_text().split("---")[1]
    server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    # the schedule is */1: a Job appears at the next minute boundary (up to ~60 s away)
    jobs = wait_for(lambda: server.kubectl_json("get", "jobs", "-n", namespace)["items"], timeout=75,
                    interval=0.5, what="the first scheduled job")
    job = jobs[0]
    name = job["metadata"]["name"]
    minutes = int(name.rsplit("-", 1)[1])
    assert name == f"cronjob-demo-{minutes}"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minutes * 60))
    cronjob = wait_for(lambda: (c := server.kubectl_json("get", "cronjob", "cronjob-demo", "-n", namespace))
                       .get("status", {}).get("active") and c, timeout=10, what="active ref")
    assert cronjob["status"]["active"][0]["name"] == name
    assert cronjob["status"]["lastScheduleTime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minutes * 60))

    pod = wait_for(lambda: pods(server, namespace, f"job-name={name}"), timeout=15, what="job pod")[0]
    set_pod_status(server, namespace, pod["metadata"]["name"], "Succeeded", exit_code=0)
    cronjob = wait_for(lambda: (c := server.kubectl_json("get", "cronjob", "cronjob-demo", "-n", namespace))
                       .get("status", {}).get("lastSuccessfulTime") and c, timeout=15, what="lastSuccessfulTime")
    assert not cronjob["status"].get("active")
    out = server.kubectl("get", "cronjob", "cronjob-demo", "-n", namespace).stdout
    assert "*/1 * * * *" in out


def _finished_job(name: str, cronjob: dict, outcome: str | None, start: str | None) -> dict:
    """A suspended Job owned by the CronJob (its status is set by the caller, if finished)."""
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob["metadata"]["name"],
                "uid": cronjob["metadata"]["uid"], "controller": True}]},
            "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "main", "image": "busybox"}]}}}}


def test_cronjob_history_limits_delete_oldest_finished_jobs(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: CronJob
metadata: {name: history}
spec:
  schedule: "0 0 1 1 *"
  successfulJobsHistoryLimit: 1
  failedJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox}]
""")
    cronjob = server.kubectl_json("get", "cronjob", "history", "-n", namespace)
    finished = [("old-ok", "Complete", "2024-01-01T00:00:00Z"), ("new-ok", "Complete", "2024-01-02T00:00:00Z"),
                ("old-bad", "Failed", "2024-01-01T00:00:00Z"), ("new-bad", "Failed", "2024-01-02T00:00:00Z")]
    for name, outcome, start in finished:
        server.kubectl("create", "-n", namespace, "-f", "-",
                       input=json.dumps(_finished_job(name, cronjob, outcome, start)))
        reason = "CompletionsReached" if outcome == "Complete" else "BackoffLimitExceeded"
        interim = "SuccessCriteriaMet" if outcome == "Complete" else "FailureTarget"
        status = {"startTime": start, "conditions": [
            {"type": interim, "status": "True", "reason": reason, "message": "m", "lastTransitionTime": start},
            {"type": outcome, "status": "True", "reason": reason, "message": "m", "lastTransitionTime": start}]}
        if outcome == "Complete":
            status.update(completionTime=start, succeeded=1)
        server.kubectl("patch", "job", name, "-n", namespace, "--subresource=status", "--type=merge",
                       "-p", json.dumps({"status": status}))
    wait_for(lambda: sorted(j["metadata"]["name"] for j in server.kubectl_json("get", "jobs", "-n", namespace)
                            ["items"] if not j["metadata"].get("deletionTimestamp")) == ["new-bad", "new-ok"],
             timeout=20, what="only the newest finished jobs left")
    cronjob = server.kubectl_json("get", "cronjob", "history", "-n", namespace)
    assert cronjob["status"]["lastSuccessfulTime"] == "2024-01-02T00:00:00Z"


# ---- StatefulSet ---------------------------------------------------------------------

STATEFULSET = """
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: 3
  selector: {matchLabels: {app: web}}
  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Retain}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: main, image: busybox, command: [sleep, "3600"]}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Mi}}
"""


def _pod_names(server, namespace, selector):
    return sorted(p["metadata"]["name"] for p in pods(server, namespace, selector)
                  if not p["metadata"].get("deletionTimestamp"))


def _run(server, namespace, name):
    set_pod_status(server, namespace, name, "Running", ready=True)


def test_statefulset_comes_up_in_order_and_scales_down_from_the_top(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=STATEFULSET)
    for i in range(3):
        wait_for(lambda: f"web-{i}" in _pod_names(server, namespace, "app=web"), timeout=15, what=f"web-{i}")
        # OrderedReady: the next ordinal waits for this one to be Running and Ready
        assert _pod_names(server, namespace, "app=web") == [f"web-{j}" for j in range(i + 1)]
        _run(server, namespace, f"web-{i}")
    server.kubectl("rollout", "status", "-n", namespace, "statefulset/web", "--timeout=20s")

    web1 = server.kubectl_json("get", "pod", "web-1", "-n", namespace)
    assert web1["spec"]["hostname"] == "web-1" and web1["spec"]["subdomain"] == "nginx"
    labels = web1["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-1"
    assert labels["apps.kubernetes.io/pod-index"] == "1"
    sts = server.kubectl_json("get", "statefulset", "web", "-n", namespace)
    assert labels["controller-revision-hash"] == sts["status"]["updateRevision"] == sts["status"]["currentRevision"]
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}} in web1["spec"]["volumes"]
    claims = server.kubectl_json("get", "pvc", "-n", namespace)["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["www-web-0", "www-web-1", "www-web-2"]
    assert sts["status"]["readyReplicas"] == 3 and sts["status"]["replicas"] == 3
    assert sts["status"]["observedGeneration"] == sts["metadata"]["generation"]
    revisions = server.kubectl_json("get", "controllerrevisions", "-n", namespace)["items"]
    assert [r["metadata"]["name"] for r in revisions] == [sts["status"]["updateRevision"]]

    # a Failed pod (say, evicted by its node) is deleted and made again under the same name
    failed_uid = web1["metadata"]["uid"]
    set_pod_status(server, namespace, "web-1", "Failed")
    wait_for(lambda: any(p["metadata"]["name"] == "web-1" and p["metadata"]["uid"] != failed_uid
                         for p in pods(server, namespace, "app=web")), timeout=15, what="web-1 recreated")
    _run(server, namespace, "web-1")

    server.kubectl("scale", "-n", namespace, "statefulset/web", "--replicas=1")
    wait_for(lambda: _pod_names(server, namespace, "app=web") == ["web-0"], timeout=20, what="scale down to web-0")
    # whenScaled: Delete hands the condemned pods' claims to them, so they go too (garbage collector)
    wait_for(lambda: sorted(c["metadata"]["name"] for c in server.kubectl_json("get", "pvc", "-n", namespace)
                            ["items"] if not c["metadata"].get("deletionTimestamp")) == ["www-web-0"],
             timeout=20, what="claims of web-1 and web-2 deleted")
    # changing whenDeleted puts the set's ownerReference on existing claims, or takes it off
    def set_owns_claim():
        refs = server.kubectl_json("get", "pvc", "www-web-0", "-n", namespace)["metadata"].get("ownerReferences")
        return any(r["kind"] == "StatefulSet" and r["name"] == "web" for r in refs or [])
    for policy, owned in (("Delete", True), ("Retain", False)):
        server.kubectl("patch", "statefulset", "web", "-n", namespace, "--type=merge", "-p", json.dumps(
            {"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": policy}}}))
        wait_for(lambda: set_owns_claim() == owned, timeout=15, what=f"claim ownership for whenDeleted {policy}")
    # whenDeleted: Retain keeps the last claim after the set is gone
    server.kubectl("delete", "statefulset", "web", "-n", namespace)
    wait_for(lambda: not pods(server, namespace, "app=web"), timeout=20, what="the set's pods deleted")
    assert [c["metadata"]["name"] for c in server.kubectl_json("get", "pvc", "-n", namespace)["items"]] == \
        ["www-web-0"]


def test_statefulset_rolling_update_respects_partition(server, namespace):
    manifest = STATEFULSET.replace("  persistentVolumeClaimRetentionPolicy", "  podManagementPolicy: Parallel\n"
                                   "  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}\n"
                                   "  persistentVolumeClaimRetentionPolicy").replace(
                                       "whenDeleted: Retain", "whenDeleted: Delete")
    server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    # Parallel: all three are created without waiting for readiness
    wait_for(lambda: _pod_names(server, namespace, "app=web") == ["web-0", "web-1", "web-2"], timeout=15,
             what="three pods at once")
    for i in range(3):
        _run(server, namespace, f"web-{i}")
    old = server.kubectl_json("get", "statefulset", "web", "-n", namespace)
    wait_for(lambda: server.kubectl_json("get", "statefulset", "web", "-n", namespace)["status"]
             .get("readyReplicas") == 3, timeout=15, what="ready")
    server.kubectl("set", "image", "-n", namespace, "statefulset/web", "main=busybox:1.36")

    def revision_of(name):
        p = server.kubectl_json("get", "pod", name, "-n", namespace, check=False) if name in \
            _pod_names(server, namespace, "app=web") else None
        return p and p["metadata"]["labels"]["controller-revision-hash"]

    new_revision = wait_for(lambda: (s := server.kubectl_json("get", "statefulset", "web", "-n", namespace))
                            ["status"]["updateRevision"] != old["status"]["updateRevision"] and
                            s["status"]["updateRevision"], timeout=15, what="update revision")
    for name in ("web-2", "web-1"):  # highest ordinal first, down to the partition
        wait_for(lambda: revision_of(name) == new_revision, timeout=20, what=f"{name} updated")
        _run(server, namespace, name)
    sts = wait_for(lambda: (s := server.kubectl_json("get", "statefulset", "web", "-n", namespace))
                   ["status"].get("updatedReplicas") == 2 and s, timeout=15, what="two updated")
    assert revision_of("web-0") == old["status"]["updateRevision"]
    assert sts["status"]["currentRevision"] == old["status"]["updateRevision"]
    image = server.kubectl_json("get", "pod", "web-0", "-n", namespace)["spec"]["containers"][0]["image"]
    assert image == "busybox"

    # rollout undo goes back to the first revision, which becomes revision 3
    history = server.kubectl("rollout", "history", "-n", namespace, "statefulset/web").stdout.split()
    assert history[-4:] == ["1", "<none>", "2", "<none>"]
    server.kubectl("rollout", "undo", "-n", namespace, "statefulset/web")
    sts = wait_for(lambda: (s := server.kubectl_json("get", "statefulset", "web", "-n", namespace))
                   ["status"]["updateRevision"] == old["status"]["updateRevision"] and s, timeout=15,
                   what="the old revision to be the update revision again")
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    revision = server.kubectl_json("get", "controllerrevision", old["status"]["updateRevision"], "-n", namespace)
    assert revision["revision"] == 3

    # whenDeleted: Delete makes the set own its claims: deleting the set removes them
    server.kubectl("delete", "statefulset", "web", "-n", namespace)
    wait_for(lambda: not server.kubectl_json("get", "pvc", "-n", namespace)["items"], timeout=20,
             what="the claims deleted with the set")


def test_statefulset_claims_follow_when_scaled_and_when_deleted_delete(server, namespace):
    """Delete/Delete, as upstream v1.32 sets it up: a claim of a pod in range is controlled by
    the set, a scaled-down pod's claim by that pod (so the garbage collector takes it with
    the pod, the set still there); the ordinal's next pod waits for that claim to go and gets
    a new one; deleting the set deletes the remaining claims."""
    manifest = STATEFULSET.replace("whenScaled: Delete, whenDeleted: Retain", "whenScaled: Delete, whenDeleted: Delete")
    manifest = manifest.replace("replicas: 3", "replicas: 2\n  podManagementPolicy: Parallel")
    server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    sts_uid = server.kubectl_json("get", "statefulset", "web", "-n", namespace)["metadata"]["uid"]

    def claim(name):
        result = server.kubectl("get", "pvc", name, "-n", namespace, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def owners(name):
        return [(r["kind"], r["name"], r["uid"], r.get("controller"), r.get("blockOwnerDeletion"))
                for r in (claim(name) or {"metadata": {}})["metadata"].get("ownerReferences") or []]

    wait_for(lambda: _pod_names(server, namespace, "app=web") == ["web-0", "web-1"], timeout=15, what="web-0, web-1")
    for name in ("web-0", "web-1"):
        _run(server, namespace, name)
    for name in ("www-web-0", "www-web-1"):
        wait_for(lambda: owners(name) == [("StatefulSet", "web", sts_uid, True, True)], timeout=10,
                 what=f"{name} controlled by the set")
    old_claim_uid = claim("www-web-1")["metadata"]["uid"]

    server.kubectl("scale", "-n", namespace, "statefulset/web", "--replicas=1")
    wait_for(lambda: (c := claim("www-web-1")) is None or c["metadata"].get("deletionTimestamp"), timeout=20,
             what="www-web-1 deleted with its pod")
    assert owners("www-web-0") == [("StatefulSet", "web", sts_uid, True, True)]

    server.kubectl("scale", "-n", namespace, "statefulset/web", "--replicas=2")
    fresh = wait_for(lambda: (c := claim("www-web-1")) is not None and c["metadata"]["uid"] != old_claim_uid and c,
                     timeout=20, what="www-web-1 made again")
    assert not fresh["metadata"].get("deletionTimestamp")
    wait_for(lambda: "web-1" in _pod_names(server, namespace, "app=web"), timeout=20, what="web-1 made again")
    assert owners("www-web-1") == [("StatefulSet", "web", sts_uid, True, True)]

    server.kubectl("delete", "statefulset", "web", "-n", namespace)
    wait_for(lambda: not [c for c in server.kubectl_json("get", "pvc", "-n", namespace)["items"]
                          if not c["metadata"].get("deletionTimestamp")], timeout=30,
             what="the claims deleted with the set")


def test_statefulset_with_an_invalid_claim_template_reports_it_and_makes_no_pod(server, namespace):
    """Upstream validates only the retention policy with the set; a claim template the API
    server refuses shows as FailedCreate events on the set, and its pod is not made."""
    server.kubectl("apply", "-n", namespace, "-f", "-", input="""apiVersion: apps/v1
kind: StatefulSet
metadata: {name: bad}
spec:
  serviceName: bad
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers: [{name: main, image: busybox}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec: {accessModes: [ReadWriteOnce]}
""")
    refused = 'PersistentVolumeClaim "www-bad-0" is invalid: spec.resources[storage]: Required value'
    wait_for(lambda: {e["message"] for e in events(server, namespace, "bad") if e["reason"] == "FailedCreate"} >= {
        f"create Claim www-bad-0 for Pod bad-0 in StatefulSet bad failed error: {refused}",
        f"create Pod bad-0 in StatefulSet bad failed error: failed to create PVC www-bad-0: {refused}"},
        timeout=15, what="the FailedCreate events")
    assert pods(server, namespace, "app=bad") == []
    assert server.kubectl_json("get", "pvc", "-n", namespace)["items"] == []
    bad_policy = server.kubectl("patch", "statefulset", "bad", "-n", namespace, "--type=merge", "-p",
                                '{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenScaled":"Sometimes"}}}',
                                check=False)
    assert bad_policy.returncode != 0
    assert 'spec.persistentVolumeClaimRetentionPolicy.whenScaled: Unsupported value: "Sometimes": supported ' \
           'values: "Retain", "Delete"' in bad_policy.stderr, bad_policy.stderr


# ---- DaemonSet -----------------------------------------------------------------------

@pytest.fixture
def nodes(server, namespace):
    """Four nodes for this test: two plain, one unschedulable (cordoned), one with a foreign taint."""
    names = {kind: f"{namespace}-{kind}"[:63] for kind in ("a", "b", "cordoned", "tainted")}
    taints = {"cordoned": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
              "tainted": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}
    for kind, name in names.items():
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "e2e-ns": namespace}},
                "spec": {"taints": taints.get(kind, []), "unschedulable": kind == "cordoned"}}
        server.kubectl("create", "-f", "-", input=json.dumps(node))
        server.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                        "message": "ready", "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                                        "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}))
    yield names
    for name in names.values():
        server.kubectl("delete", "node", name, "--wait=false", check=False)


def dn_pinned(pod) -> str:
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    return terms[0]["matchFields"][0]["values"][0]


def _bind_and_run(server, namespace, pod):
    """Play scheduler and kubelet for a daemon pod: bind it where its affinity pins it, report it running."""
    term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    node = term[0]["matchFields"][0]["values"][0]
    if not pod["spec"].get("nodeName"):
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod["metadata"]["name"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        server.kubectl("create", "-n", namespace, "--raw",
                       f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/binding", "-f", "-",
                       input=json.dumps(binding))
    _run(server, namespace, pod["metadata"]["name"])
    return node


def test_daemonset_runs_one_pod_per_eligible_node_and_rolls(server, namespace, nodes):
    server.kubectl("create", "-n", namespace, "-f", "-", input=f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  updateStrategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: 1}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      nodeSelector: {{e2e-ns: {namespace}}}
      containers: [{{name: main, image: busybox, command: [sleep, "3600"]}}]
""")
    eligible = {nodes["a"], nodes["b"], nodes["cordoned"]}  # the foreign taint is not tolerated
    daemon_pods = wait_for(lambda: len(p := pods(server, namespace, "app=agent")) == 3 and p, timeout=15,
                           what="three daemon pods")
    placed = {_bind_and_run(server, namespace, p) for p in daemon_pods}
    assert placed == eligible
    pod = daemon_pods[0]
    tolerations = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert {("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule")} <= tolerations
    assert ("node.kubernetes.io/network-unavailable", "NoSchedule") not in tolerations
    ds = wait_for(lambda: (d := server.kubectl_json("get", "ds", "agent", "-n", namespace))["status"]
                  .get("numberReady") == 3 and d, timeout=15, what="three ready")
    status = ds["status"]
    assert (status["desiredNumberScheduled"], status["currentNumberScheduled"], status["numberMisscheduled"],
            status["updatedNumberScheduled"], status["numberAvailable"]) == (3, 3, 0, 3, 3)
    old_hash = pod["metadata"]["labels"]["controller-revision-hash"]
    assert server.kubectl_json("get", "controllerrevision", f"agent-{old_hash}", "-n", namespace)["revision"] == 1

    # a deleted daemon pod is replaced on its node; so is one that failed
    for how in ("deleted", "failed"):
        victim = next(p for p in pods(server, namespace, "app=agent") if p["spec"].get("nodeName") == nodes["a"]
                      and not p["metadata"].get("deletionTimestamp"))
        if how == "deleted":
            server.kubectl("delete", "pod", "-n", namespace, victim["metadata"]["name"], "--grace-period=0",
                           "--force")
        else:
            set_pod_status(server, namespace, victim["metadata"]["name"], "Failed", exit_code=1)
        replacement = wait_for(lambda: [p for p in pods(server, namespace, "app=agent")
                                        if p["metadata"]["name"] != victim["metadata"]["name"] and
                                        dn_pinned(p) == nodes["a"] and not p["spec"].get("nodeName")],
                               timeout=15, what=f"a replacement for the {how} pod")[0]
        if how == "failed":
            server.kubectl("delete", "pod", "-n", namespace, victim["metadata"]["name"], "--grace-period=0",
                           "--force", check=False)
        _bind_and_run(server, namespace, replacement)
    assert {"FailedDaemonPod", "SuccessfulCreate", "SuccessfulDelete"} <= \
        {e["reason"] for e in events(server, namespace, "agent")}

    # a rolling update replaces the pods one node at a time (maxUnavailable 1)
    server.kubectl("set", "image", "-n", namespace, "ds/agent", "main=busybox:1.36")
    seen_unavailable = 0
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        listed = pods(server, namespace, "app=agent")
        for p in listed:  # the kubelet's part of a graceful deletion: containers stopped, pod removed
            if p["metadata"].get("deletionTimestamp"):
                server.kubectl("delete", "pod", "-n", namespace, p["metadata"]["name"], "--grace-period=0",
                               "--force", check=False)
        current = [p for p in listed if not p["metadata"].get("deletionTimestamp")]
        fresh = [p for p in current if p["metadata"]["labels"]["controller-revision-hash"] != old_hash]
        for p in fresh:
            if (p.get("status") or {}).get("phase") != "Running":
                _bind_and_run(server, namespace, p)
        running_nodes = {p["spec"].get("nodeName") for p in current if (p.get("status") or {}).get("phase") ==
                         "Running"}
        seen_unavailable = max(seen_unavailable, len(eligible - running_nodes))
        if len(fresh) == 3 and all((p.get("status") or {}).get("phase") == "Running" for p in fresh):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the rolling update did not finish")
    assert seen_unavailable <= 1
    server.kubectl("rollout", "status", "-n", namespace, "ds/agent", "--timeout=20s")

    # labelling a node out of the selector removes its pod
    server.kubectl("label", "node", nodes["b"], "e2e-ns=elsewhere", "--overwrite")
    wait_for(lambda: {p["spec"].get("nodeName") for p in pods(server, namespace, "app=agent")
                      if not p["metadata"].get("deletionTimestamp")} == eligible - {nodes["b"]}, timeout=15,
             what="pod leaves the relabelled node")


# ---- TTL after finished, PodDisruptionBudget and eviction ---------------------------------

def test_finished_job_is_deleted_after_its_ttl(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: Job
metadata: {name: short-lived}
spec:
  ttlSecondsAfterFinished: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
""")
    pod = wait_for(lambda: pods(server, namespace, "job-name=short-lived"), timeout=15, what="job pod")[0]
    set_pod_status(server, namespace, pod["metadata"]["name"], "Succeeded", exit_code=0)
    server.kubectl("wait", "-n", namespace, "--for=condition=complete", "job/short-lived", "--timeout=20s")
    job = server.kubectl_json("get", "job", "short-lived", "-n", namespace)
    finished = datetime.datetime.strptime(condition(job, "Complete")["lastTransitionTime"],
                                          "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    wait_for(lambda: server.kubectl("get", "job", "short-lived", "-n", namespace, check=False).returncode != 0,
             timeout=20, what="the job to be deleted")
    gone = datetime.datetime.now(datetime.timezone.utc)
    assert (gone - finished).total_seconds() >= 2  # not before its TTL ran out
    wait_for(lambda: not pods(server, namespace, "job-name=short-lived"), timeout=20, what="its pod deleted too")


def _running_pod(server, namespace, name, labels):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
           "spec": {"nodeName": f"{namespace}-node"[:63], "containers": [{"name": "main", "image": "busybox"}]}}
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    _run(server, namespace, name)


def _evict(server, namespace, name):
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
    return server.kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction", "-f", "-",
                          input=json.dumps(body), check=False)


def test_pdb_status_and_eviction_honours_it(server, namespace):
    for name in ("db-0", "db-1", "db-2"):
        _running_pod(server, namespace, name, {"app": "db"})
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: db}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: db}}
""")
    pdb = wait_for(lambda: (p := server.kubectl_json("get", "pdb", "db", "-n", namespace)).get("status", {})
                   .get("observedGeneration") and p, timeout=15, what="pdb status")
    status = pdb["status"]
    assert (status["expectedPods"], status["desiredHealthy"], status["currentHealthy"],
            status["disruptionsAllowed"]) == (3, 2, 3, 1)
    allowed = condition(pdb, "DisruptionAllowed")
    assert (allowed["status"], allowed["reason"]) == ("True", "SufficientPods")
    assert "ALLOWED DISRUPTIONS" in server.kubectl("get", "pdb", "-n", namespace).stdout

    first = _evict(server, namespace, "db-0")
    assert first.returncode == 0, first.stderr
    # bound to a node, it terminates gracefully and meanwhile carries the reason it goes
    evicted = server.kubectl_json("get", "pod", "db-0", "-n", namespace)
    assert evicted["metadata"]["deletionTimestamp"]
    target = condition(evicted, "DisruptionTarget")
    assert (target["reason"], target["message"]) == ("EvictionByEvictionAPI", "Eviction API: evicting")
    second = _evict(server, namespace, "db-1")
    assert second.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in second.stderr
    assert "TooManyRequests" in second.stderr or "429" in second.stderr
    pdb = wait_for(lambda: (p := server.kubectl_json("get", "pdb", "db", "-n", namespace))["status"]
                   .get("currentHealthy") == 2 and p, timeout=15, what="the evicted pod no longer healthy")
    assert pdb["status"]["disruptionsAllowed"] == 0
    assert condition(pdb, "DisruptionAllowed")["reason"] == "InsufficientPods"
    # the blocked eviction goes through once the budget is relaxed
    server.kubectl("patch", "pdb", "db", "-n", namespace, "--type=merge", "-p", '{"spec": {"minAvailable": 1}}')
    wait_for(lambda: _evict(server, namespace, "db-1").returncode == 0, timeout=15, interval=0.3,
             what="the eviction allowed by the relaxed budget")
    # a pod that is not running yet disrupts nothing: it may always be evicted
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db-pending", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}}))
    assert _evict(server, namespace, "db-pending").returncode == 0


def test_cronjob_after_downtime_forbid_then_replace(server, namespace):
    """A CronJob whose last start was hours ago (as after a controller outage) owes one start only."""
    server.kubectl("create", "-n", namespace, "-f", "-", input="""
apiVersion: batch/v1
kind: CronJob
metadata: {name: catchup}
spec:
  schedule: "* * * * *"
  timeZone: Asia/Tokyo
  suspend: true
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox}]
""")
    cronjob = server.kubectl_json("get", "cronjob", "catchup", "-n", namespace)
    running = _finished_job("catchup-running", cronjob, None, None)
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(running))
    three_hours_ago = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(time.time() - 3 * 3600))
    server.kubectl("patch", "cronjob", "catchup", "-n", namespace, "--subresource=status", "--type=merge",
                   "-p", json.dumps({"status": {"lastScheduleTime": three_hours_ago}}))
    server.kubectl("patch", "cronjob", "catchup", "-n", namespace, "--type=merge", "-p",
                   '{"spec": {"suspend": false}}')
    reasons = wait_for(lambda: {"JobAlreadyActive", "TooManyMissedTimes", "UnexpectedJob"} <=
                       (r := {e["reason"] for e in events(server, namespace, "catchup")}) and r,
                       timeout=15, what="Forbid to hold the start back")
    assert "SuccessfulCreate" not in reasons
    jobs = server.kubectl_json("get", "jobs", "-n", namespace)["items"]
    assert [j["metadata"]["name"] for j in jobs] == ["catchup-running"]
    active = server.kubectl_json("get", "cronjob", "catchup", "-n", namespace)["status"]["active"]
    assert [ref["name"] for ref in active] == ["catchup-running"]

    started = time.time()
    server.kubectl("patch", "cronjob", "catchup", "-n", namespace, "--type=merge", "-p",
                   '{"spec": {"concurrencyPolicy": "Replace"}}')
    names = wait_for(lambda: (n := sorted(j["metadata"]["name"] for j in server.kubectl_json(
        "get", "jobs", "-n", namespace)["items"] if not j["metadata"].get("deletionTimestamp"))) and
        n != ["catchup-running"] and n, timeout=15, what="Replace to start a new job")
    assert len(names) == 1  # the running one replaced, one new start (the most recent minute), not 180
    minutes = int(names[0].rsplit("-", 1)[1])
    assert int(started // 60) - 1 <= minutes <= int(time.time() // 60)
    cronjob = server.kubectl_json("get", "cronjob", "catchup", "-n", namespace)
    assert [ref["name"] for ref in cronjob["status"]["active"]] == names
    job = server.kubectl_json("get", "job", names[0], "-n", namespace)
    scheduled = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert scheduled == time.strftime("%Y-%m-%dT%H:%M:00+09:00", time.gmtime(minutes * 60 + 9 * 3600))


def test_daemonset_rollback_without_unnecessary_restarts(server, namespace, nodes):
    server.kubectl("create", "-n", namespace, "-f", "-", input=f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: undo}}
spec:
  selector: {{matchLabels: {{app: undo}}}}
  template:
    metadata: {{labels: {{app: undo}}}}
    spec:
      nodeSelector: {{e2e-ns: {namespace}}}
      containers: [{{name: main, image: busybox}}]
""")
    first = wait_for(lambda: len(p := pods(server, namespace, "app=undo")) == 3 and p, timeout=15,
                     what="three daemon pods")
    for pod in first:
        _bind_and_run(server, namespace, pod)
    wait_for(lambda: server.kubectl_json("get", "ds", "undo", "-n", namespace)["status"].get("numberAvailable")
             == 3, timeout=15, what="all available")
    original = {p["metadata"]["uid"] for p in first}
    server.kubectl("set", "image", "-n", namespace, "ds/undo", "main=busybox:does-not-exist")

    def live_pods():
        """The daemon pods, after playing the kubelet for those being deleted."""
        listed = pods(server, namespace, "app=undo")
        for p in listed:
            if p["metadata"].get("deletionTimestamp"):
                server.kubectl("delete", "pod", "-n", namespace, p["metadata"]["name"], "--grace-period=0",
                               "--force", check=False)
        return [p for p in listed if not p["metadata"].get("deletionTimestamp")]

    # one old pod goes (maxUnavailable 1); its replacement never becomes ready
    wait_for(lambda: len([p for p in live_pods() if p["metadata"]["uid"] not in original]) == 1, timeout=15,
             what="one new pod")
    untouched = {p["metadata"]["uid"] for p in live_pods()} & original
    assert len(untouched) == 2

    server.kubectl("rollout", "undo", "-n", namespace, "ds/undo")
    live = wait_for(lambda: len(p := live_pods()) == 3 and
                    {x["spec"]["containers"][0]["image"] for x in p} == {"busybox"} and p,
                    timeout=20, what="the bad pod replaced by the old template")
    assert untouched <= {p["metadata"]["uid"] for p in live}  # the pods never updated were not restarted


def test_pdb_max_unavailable_counts_the_controllers_replicas(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input="""
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: quorum}
spec:
  serviceName: quorum
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: quorum}}
  template:
    metadata: {labels: {app: quorum}}
    spec:
      containers: [{name: main, image: busybox}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: quorum}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: quorum}}
""")
    wait_for(lambda: len(pods(server, namespace, "app=quorum")) == 3, timeout=15, what="three pods")
    _run(server, namespace, "quorum-0")  # one of three ready: expected 3, so 2 must stay healthy
    pdb = wait_for(lambda: (p := server.kubectl_json("get", "pdb", "quorum", "-n", namespace))
                   .get("status", {}).get("currentHealthy") == 1 and p, timeout=15, what="pdb status")
    assert (pdb["status"]["expectedPods"], pdb["status"]["desiredHealthy"],
            pdb["status"]["disruptionsAllowed"]) == (3, 2, 0)
    for name in ("quorum-1", "quorum-2"):
        _run(server, namespace, name)
    wait_for(lambda: server.kubectl_json("get", "pdb", "quorum", "-n", namespace)["status"]
             .get("disruptionsAllowed") == 1, timeout=15, what="one disruption allowed")
