"""Workload controllers with the real kubectl and real runc containers.

One single-node cluster in its own network namespace (tests/e2e/netns_cluster.py)
serves the whole module. Its server runs without a controller-manager: the module
runs `k8py controller-manager` as its own process inside the namespace, so one
test can kill it in the middle of a rollout and start it again. Images come from
the registry mirror of docker.io (busybox, nginx); a new pod template for a
rollout is spelled as another reference to the same image (`nginx:latest`,
`docker.io/library/nginx`, ...). Every test works in its own namespace, deleted
afterwards. CronJobs start at module start-up, so their minute boundaries pass
while the other tests run; the last test checks them.
"""

from __future__ import annotations

import calendar
import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import REPO, SEED, wait_for
from tests.e2e.controller_fixtures import PodCensus
from tests.e2e.netns_cluster import node_in_namespace, sh

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="containers and network namespaces need root"),
    pytest.mark.host_network,  # a network-namespace cluster
]

MANAGER_PORT = 10257  # inside the cluster's own network namespace: no clash with anything on the host


class Cluster:
    """The node in its namespace, plus the controller-manager process the module runs."""

    def __init__(self, node):
        self.node = node
        self.manager: subprocess.Popen | None = None
        self.kubectl_argv = node.enter("kubectl", f"--kubeconfig={node.data / 'kubeconfig.yaml'}",
                                       f"--cache-dir={node.workdir / 'kube-cache'}")

    def kubectl(self, *args, check=True, input=None, timeout=60):
        return sh(*self.kubectl_argv, *args, check=check, input=input, timeout=timeout)

    def kubectl_json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def exists(self, *args) -> bool:
        return self.kubectl("get", *args, check=False).returncode == 0

    def start_manager(self) -> None:
        log = open(self.node.workdir / "controller-manager.log", "ab")
        self.manager = subprocess.Popen(
            self.node.enter(sys.executable, "-m", "k8py", "controller-manager", "--kubeconfig",
                            str(self.node.data / "kubeconfig.yaml"), "--port", str(MANAGER_PORT),
                            "--no-leader-elect"), stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        wait_for(lambda: self.manager.poll() is not None or sh(*self.node.enter(
            "busybox", "wget", "-q", "-O-", f"http://127.0.0.1:{MANAGER_PORT}/healthz"), check=False).stdout == "ok",
            timeout=30, interval=0.2, what="controller-manager /healthz")
        assert self.manager.poll() is None, "the controller-manager exited"

    def stop_manager(self, sig=signal.SIGTERM) -> None:
        # `nsenter --net` execs the command, so this pid is the controller-manager itself.
        if self.manager is not None and self.manager.poll() is None:
            os.kill(self.manager.pid, sig)
            try:
                self.manager.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.manager.kill()
                self.manager.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # metrics-server scrapes every 2 s here (15 s by default) for the `kubectl top` test
    nodes = node_in_namespace(tmp_path_factory, server_args=("--disable", "controller-manager",
                                                             "--metric-resolution", "2s"))
    c = Cluster(next(nodes))
    try:
        c.start_manager()
        yield c
    finally:
        c.stop_manager()
        next(nodes, None)  # the node's own teardown


def make_namespace(cluster, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(2)}"
    cluster.kubectl("create", "namespace", name)
    # Pods are admitted only once the namespace's default ServiceAccount exists.
    wait_for(lambda: cluster.exists("serviceaccount", "default", "-n", name), timeout=20, what="default SA")
    return name


@pytest.fixture
def ns(cluster, request):
    name = make_namespace(cluster, "wl-" + request.node.name[5:25].replace("_", "-").strip("-"))
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


# ---- helpers -------------------------------------------------------------------------

def pods(cluster, ns, selector=None, live=True) -> list[dict]:
    args = ["get", "pods", "-n", ns] + (["-l", selector] if selector else [])
    items = cluster.kubectl_json(*args)["items"]
    return [p for p in items if not (live and p["metadata"].get("deletionTimestamp"))]


def running_in_runc(pod: dict) -> bool:
    """Ready, with every container running under runc (not a status someone wrote)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(statuses) and all(s.get("ready") and "running" in (s.get("state") or {})
                                  and s.get("containerID", "").startswith("runc://") for s in statuses)


def all_running(cluster, ns, selector, count) -> list[dict] | None:
    found = pods(cluster, ns, selector)
    return found if len(found) == count and all(map(running_in_runc, found)) else None


def replica_sets(cluster, ns, selector) -> dict[str, dict]:
    return {rs["metadata"]["name"]: rs for rs in cluster.kubectl_json("get", "rs", "-n", ns, "-l", selector)["items"]}


def rollout_status(cluster, ns, what, timeout=120) -> str:
    """`kubectl rollout status` to the end (a StatefulSet with the defaulted partition 0 says "partitioned")."""
    out = cluster.kubectl("rollout", "status", what, "-n", ns, f"--timeout={timeout}s", timeout=timeout + 10).stdout
    assert "successfully rolled out" in out or "partitioned roll out complete" in out, out
    return out


def image_of(cluster, ns, deployment) -> str:
    d = cluster.kubectl_json("get", "deploy", deployment, "-n", ns)
    return d["spec"]["template"]["spec"]["containers"][0]["image"]


def census(cluster, ns, **kw) -> PodCensus:
    return PodCensus(None, ns, kubectl=cluster.kubectl_argv, **kw)


def deployment(name, replicas=2, image="nginx", surge=1, unavailable=1, min_ready=0, grace=None,
               command=None) -> str:
    pod_extra = f"\n      terminationGracePeriodSeconds: {grace}" if grace is not None else ""
    cmd = f"\n        command: {command}" if command else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  minReadySeconds: {min_ready}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: {surge}, maxUnavailable: {unavailable}}}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:{pod_extra}
      containers:
      - name: main
        image: {image}{cmd}
"""


# ---- CronJobs: started with the module, checked by its last test --------------------------

def cronjob(name: str, command: str, restart: str = "Never", **spec) -> str:
    extra = "".join(f"  {k}: {v}\n" for k, v in spec.items())
    return f"""apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}}}
spec:
  schedule: "*/1 * * * *"
{extra}  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: {restart}
          terminationGracePeriodSeconds: 1
          containers: [{{name: main, image: busybox, command: [sh, -c, "{command}"]}}]
"""


@pytest.fixture(scope="module", autouse=True)
def cronjobs(cluster):
    name = make_namespace(cluster, "wl-cron")
    cluster.kubectl("apply", "-n", name, "-f", "-", input=(SEED / "12-jobs.yaml").read_text().split("---")[1])
    cluster.kubectl("apply", "-n", name, "-f", "-", input="---\n".join((
        cronjob("keep-one-ok", "exit 0", successfulJobsHistoryLimit=1),
        cronjob("keep-one-failed", "exit 1", failedJobsHistoryLimit=1),
        cronjob("overlapping", "exec sleep 600", concurrencyPolicy="Allow"))))
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


# ---- Deployments ---------------------------------------------------------------------

def test_seed_deployment_rolls_out_and_set_image_keeps_surge_and_availability(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", str(SEED / "09-deployment-rolling.yaml"))
    rollout_status(cluster, ns, "deploy/nginx-deploy")
    first = wait_for(lambda: all_running(cluster, ns, "app=nginx-deploy", 3), timeout=30, what="three nginx pods")
    # nginx really serves, from the node, on a pod's own address
    page = sh(*cluster.node.enter("busybox", "wget", "-q", "-O-", f"http://{first[0]['status']['podIP']}/"))
    assert "nginx" in page.stdout.lower()

    watch = census(cluster, ns, min_ready_seconds=5)  # the seed's minReadySeconds
    try:
        wait_for(lambda: len(watch.samples) >= 3, what="the pod watch to list the three pods")
        start = len(watch.samples)
        cluster.kubectl("set", "image", "deploy/nginx-deploy", "nginx=nginx:latest", "-n", ns)
        waited = rollout_status(cluster, ns, "deploy/nginx-deploy")
    finally:
        watch.stop()
    # replicas 3, maxSurge 1, maxUnavailable 1
    assert watch.most_live_pods <= 4, watch.live
    assert watch.fewest_available_after(start) >= 2, watch.samples[start:]
    assert len(watch.names_seen) == 6, sorted(watch.names_seen)  # three old, three new: nothing made twice
    assert 'Waiting for deployment "nginx-deploy" rollout to finish' in waited  # it did wait for the rollout
    sets = replica_sets(cluster, ns, "app=nginx-deploy")
    sizes = sorted((rs["spec"]["replicas"], rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
                   for rs in sets.values())
    assert sizes == [(0, "1"), (3, "2")]
    now = wait_for(lambda: all_running(cluster, ns, "app=nginx-deploy", 3), timeout=30, what="three new pods")
    assert {p["spec"]["containers"][0]["image"] for p in now} == {"nginx:latest"}
    assert not {p["metadata"]["name"] for p in first} & {p["metadata"]["name"] for p in now}
    d = cluster.kubectl_json("get", "deploy", "nginx-deploy", "-n", ns)
    assert d["status"]["updatedReplicas"] == 3 and d["status"]["availableReplicas"] == 3
    conditions = {c["type"]: c["reason"] for c in d["status"]["conditions"]}
    assert conditions == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}


def test_pause_resume_history_undo_scale_replace_and_rollover(cluster, ns):
    # maxSurge 2, maxUnavailable 0: every rollout is one round of new pods, then the old ones go
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=deployment("roll", surge=2, unavailable=0))
    rollout_status(cluster, ns, "deploy/roll")
    cluster.kubectl("set", "image", "deploy/roll", "main=nginx:latest", "-n", ns)
    rollout_status(cluster, ns, "deploy/roll")

    cluster.kubectl("rollout", "pause", "deploy/roll", "-n", ns)
    before = {p["metadata"]["name"] for p in pods(cluster, ns, "app=roll")}
    cluster.kubectl("set", "image", "deploy/roll", "main=docker.io/library/nginx:latest", "-n", ns)

    def seen_paused():
        d = cluster.kubectl_json("get", "deploy", "roll", "-n", ns)
        return d["status"].get("observedGeneration") == d["metadata"]["generation"] and d
    d = wait_for(seen_paused, timeout=20, what="the controller to see the paused template change")
    paused = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
    assert (paused["status"], paused["reason"]) == ("Unknown", "DeploymentPaused")
    assert len(replica_sets(cluster, ns, "app=roll")) == 2  # nothing rolls while paused
    assert {p["metadata"]["name"] for p in pods(cluster, ns, "app=roll")} == before
    cluster.kubectl("rollout", "resume", "deploy/roll", "-n", ns)
    rollout_status(cluster, ns, "deploy/roll")
    assert len(replica_sets(cluster, ns, "app=roll")) == 3

    history = cluster.kubectl("rollout", "history", "deploy/roll", "-n", ns).stdout.splitlines()
    assert history[0].strip() == "deployment.apps/roll" and history[1].split() == ["REVISION", "CHANGE-CAUSE"]
    assert [line.split()[0] for line in history[2:] if line.strip()] == ["1", "2", "3"]
    second = cluster.kubectl("rollout", "history", "deploy/roll", "-n", ns, "--revision=2").stdout
    assert second.startswith("deployment.apps/roll with revision #2"), second
    assert [line.split()[-1] for line in second.splitlines() if "Image:" in line] == ["nginx:latest"], second

    cluster.kubectl("rollout", "undo", "deploy/roll", "-n", ns, "--to-revision=2")
    rollout_status(cluster, ns, "deploy/roll")
    assert image_of(cluster, ns, "roll") == "nginx:latest"
    d = cluster.kubectl_json("get", "deploy", "roll", "-n", ns)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
    live = [rs for rs in replica_sets(cluster, ns, "app=roll").values() if rs["spec"]["replicas"] > 0]
    assert len(live) == 1 and live[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "2"
    cluster.kubectl("rollout", "undo", "deploy/roll", "-n", ns)  # back to the revision before: 3
    rollout_status(cluster, ns, "deploy/roll")
    assert image_of(cluster, ns, "roll") == "docker.io/library/nginx:latest"
    running = wait_for(lambda: all_running(cluster, ns, "app=roll", 2), timeout=30, what="two running pods")
    assert {p["spec"]["containers"][0]["image"] for p in running} == {"docker.io/library/nginx:latest"}

    cluster.kubectl("scale", "deploy/roll", "--replicas=3", "-n", ns)
    rollout_status(cluster, ns, "deploy/roll")
    running = wait_for(lambda: all_running(cluster, ns, "app=roll", 3), timeout=60, what="three running pods")

    victim = running[0]["metadata"]["name"]
    owner = running[0]["metadata"]["ownerReferences"][0]
    cluster.kubectl("delete", "pod", victim, "-n", ns, "--wait=false")
    replaced = wait_for(lambda: (r := all_running(cluster, ns, "app=roll", 3)) and
                        victim not in {p["metadata"]["name"] for p in r} and r, timeout=60, what="a replacement pod")
    newcomer = next(p for p in replaced if p["metadata"]["name"] not in {q["metadata"]["name"] for q in running})
    assert newcomer["metadata"]["ownerReferences"][0]["uid"] == owner["uid"]  # made by the same ReplicaSet

    # Rollover: a rollout that cannot finish (no such image) is overtaken by the next change of template.
    cluster.kubectl("set", "image", "deploy/roll", "main=busybox:no-such-tag", "-n", ns)

    def stuck():
        sets = replica_sets(cluster, ns, "app=roll").values()
        bad = [rs for rs in sets if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:no-such-tag"]
        waiting = [s["state"]["waiting"].get("reason") for p in pods(cluster, ns, "app=roll")
                   for s in p["status"].get("containerStatuses") or [] if "waiting" in s["state"]]
        return bad and bad[0]["spec"]["replicas"] > 0 and {"ErrImagePull", "ImagePullBackOff"} & set(waiting) and bad
    (bad,) = wait_for(stuck, timeout=60, what="the rollout stuck on an image that cannot be pulled")
    cluster.kubectl("set", "image", "deploy/roll", "main=docker.io/library/nginx", "-n", ns)
    rollout_status(cluster, ns, "deploy/roll")
    running = wait_for(lambda: all_running(cluster, ns, "app=roll", 3), timeout=60, what="three running pods")
    assert {p["spec"]["containers"][0]["image"] for p in running} == {"docker.io/library/nginx"}
    assert replica_sets(cluster, ns, "app=roll")[bad["metadata"]["name"]]["spec"]["replicas"] == 0


def test_killing_the_controller_manager_mid_rollout_loses_and_duplicates_nothing(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-",
                    input=deployment("crash", replicas=4, surge=1, unavailable=1, min_ready=2))
    rollout_status(cluster, ns, "deploy/crash")
    watch = census(cluster, ns, min_ready_seconds=2)
    try:
        wait_for(lambda: len(watch.samples) >= 4, what="the pod watch to list the four pods")
        start = len(watch.samples)
        cluster.kubectl("set", "image", "deploy/crash", "main=nginx:latest", "-n", ns)

        def under_way():
            sets = replica_sets(cluster, ns, "app=crash").values()
            return len(sets) == 2 and all(rs["spec"]["replicas"] > 0 for rs in sets)
        wait_for(under_way, timeout=30, interval=0.1, what="the rollout to be under way")
        cluster.stop_manager(signal.SIGKILL)
        assert under_way()  # killed mid-way: both ReplicaSets still have pods
        cluster.start_manager()
        rollout_status(cluster, ns, "deploy/crash")
    finally:
        watch.stop()
    assert watch.most_live_pods <= 5, watch.live  # replicas + maxSurge, even across the crash
    assert watch.fewest_available_after(start) >= 3, watch.samples[start:]  # replicas - maxUnavailable
    assert len(watch.names_seen) == 8, sorted(watch.names_seen)  # four old, four new, none made twice
    now = wait_for(lambda: all_running(cluster, ns, "app=crash", 4), timeout=30, what="four running pods")
    assert len({p["metadata"]["labels"]["pod-template-hash"] for p in now}) == 1
    assert {p["spec"]["containers"][0]["image"] for p in now} == {"nginx:latest"}
    assert sorted(rs["spec"]["replicas"] for rs in replica_sets(cluster, ns, "app=crash").values()) == [0, 4]


# ---- ReplicationController, Job, StatefulSet --------------------------------------------

def test_seed_replication_controller_replaces_a_deleted_pod_and_scales(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", str(SEED / "18-replication-controller.yaml"))
    first = wait_for(lambda: all_running(cluster, ns, "name=rc", 3), timeout=60, what="the RC's three pods")
    assert cluster.kubectl("get", "rc", "rc-demo", "-n", ns).stdout.splitlines()[1].split()[:4] == \
        ["rc-demo", "3", "3", "3"]
    victim = first[0]["metadata"]["name"]
    # `sleep` as pid 1 ignores SIGTERM: a short grace period instead of the default 30 s
    cluster.kubectl("delete", "pod", victim, "-n", ns, "--grace-period=1", "--wait=false")
    now = wait_for(lambda: (r := all_running(cluster, ns, "name=rc", 3)) and
                   victim not in {p["metadata"]["name"] for p in r} and r, timeout=60, what="a replacement pod")
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController" for p in now)
    cluster.kubectl("scale", "rc/rc-demo", "--replicas=1", "-n", ns)
    wait_for(lambda: len(pods(cluster, ns, "name=rc")) == 1, timeout=30, what="scaled down to one pod")
    wait_for(lambda: cluster.kubectl_json("get", "rc", "rc-demo", "-n", ns)["status"].get("replicas") == 1,
             timeout=20, what="status.replicas 1")
    cluster.kubectl("delete", "rc", "rc-demo", "-n", ns, "--cascade=orphan")
    cluster.kubectl("delete", "pods", "-l", "name=rc", "-n", ns, "--grace-period=1", "--wait=false")


def serve_hostname(kind: str, name: str) -> str:
    """A ReplicationController or ReplicaSet of two pods that answer HTTP with their own name."""
    api, selector = ("v1", f"{{app: {name}}}") if kind == "ReplicationController" else \
        ("apps/v1", f"{{matchLabels: {{app: {name}}}}}")
    return f"""apiVersion: {api}
kind: {kind}
metadata: {{name: {name}}}
spec:
  replicas: 2
  selector: {selector}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: [sh, -c, "mkdir /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{{containerPort: 8080}}]
"""


def test_rc_and_replica_set_run_a_basic_image_that_answers_and_kubectl_scales_the_rc(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=serve_hostname("ReplicationController", "serve-rc") +
                    "---\n" + serve_hostname("ReplicaSet", "serve-rs"))

    def answers(selector, count):
        running = wait_for(lambda: all_running(cluster, ns, selector, count), timeout=60,
                           what=f"{count} running pods of {selector}")
        for pod in running:  # each pod answers, from the node, with its own name
            got = wait_for(lambda: sh(*cluster.node.enter("busybox", "wget", "-q", "-O-",
                                                          f"http://{pod['status']['podIP']}:8080/"),
                                      check=False).stdout.strip(), timeout=20, what="an answer")
            assert got == pod["metadata"]["name"]
        return running
    answers("app=serve-rs", 2)
    answers("app=serve-rc", 2)
    cluster.kubectl("scale", "rc/serve-rc", "--replicas=1", "-n", ns)
    wait_for(lambda: len(pods(cluster, ns, "app=serve-rc")) == 1, timeout=30, what="one pod left")
    answers("app=serve-rc", 1)
    cluster.kubectl("scale", "rc/serve-rc", "--replicas=2", "-n", ns)
    answers("app=serve-rc", 2)


def test_seed_job_runs_its_container_to_completion(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=(SEED / "12-jobs.yaml").read_text().split("---")[0])
    cluster.kubectl("wait", "-n", ns, "--for=condition=complete", "job/job-demo", "--timeout=90s", timeout=100)
    job = cluster.kubectl_json("get", "job", "job-demo", "-n", ns)
    assert job["status"]["succeeded"] == 1 and not job["status"].get("failed")
    pod = pods(cluster, ns, "job-name=job-demo")[0]
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert cluster.kubectl("logs", "job/job-demo", "-n", ns).stdout.split() == list("987654321")


STATEFULSET = """apiVersion: v1
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
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: nginx, ports: [{containerPort: 80}]}]
"""


def test_statefulset_comes_up_in_order_and_scales_down_from_the_top(cluster, ns):
    watch = census(cluster, ns)
    try:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=STATEFULSET)
        rollout_status(cluster, ns, "statefulset/web")
        running = wait_for(lambda: all_running(cluster, ns, "app=web", 3), timeout=30, what="three running pods")
        assert sorted(p["metadata"]["name"] for p in running) == ["web-0", "web-1", "web-2"]
        # the stable identity is the container's own hostname
        assert cluster.kubectl("exec", "-n", ns, "web-1", "--", "hostname").stdout.strip() == "web-1"
        cluster.kubectl("scale", "statefulset/web", "--replicas=1", "-n", ns)
        wait_for(lambda: [p["metadata"]["name"] for p in pods(cluster, ns, "app=web", live=False)] == ["web-0"],
                 timeout=60, what="web-1 and web-2 gone")
    finally:
        watch.stop()
    assert watch.first_seen_order() == ["web-0", "web-1", "web-2"]
    for before, after in (("web-0", "web-1"), ("web-1", "web-2")):
        # OrderedReady: a pod is created only once the one before it is Running and Ready
        assert watch.first_index(before, ready=True) < watch.first_index(after), watch.events
    # and scaled down from the highest ordinal, the next only once the one above is gone
    assert watch.first_index("web-2", type_="DELETED") < watch.first_index("web-1", deleting=True), watch.events


# ---- delete --cascade -------------------------------------------------------------------

def test_delete_cascade_background_foreground_and_orphan(cluster, ns):
    # Containers that ignore SIGTERM (sleep as pid 1) take their whole grace period to stop,
    # long enough to see which object goes first.
    for name in ("bg", "fg", "or"):
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=deployment(
            name, replicas=2, image="busybox", grace=5, command='[sleep, "3600"]'))
    for name in ("bg", "fg", "or"):
        rollout_status(cluster, ns, f"deploy/{name}")

    # background: the Deployment goes at once; its ReplicaSet and pods after it
    cluster.kubectl("delete", "deploy", "bg", "-n", ns, "--cascade=background", "--wait=false")
    assert not cluster.exists("deploy", "bg", "-n", ns)
    assert pods(cluster, ns, "app=bg", live=False), "the pods went before their owner"
    wait_for(lambda: not pods(cluster, ns, "app=bg", live=False) and not replica_sets(cluster, ns, "app=bg"),
             timeout=30, what="the background deletion of the ReplicaSet and pods")

    # foreground: the Deployment stays, marked, until its dependents are gone
    cluster.kubectl("delete", "deploy", "fg", "-n", ns, "--cascade=foreground", "--wait=false")
    seen_waiting = False
    deadline = time.monotonic() + 40
    while True:
        assert time.monotonic() < deadline, "the foreground deletion never finished"
        got = cluster.kubectl("get", "deploy", "fg", "-n", ns, "-o", "json", check=False)
        remaining = pods(cluster, ns, "app=fg", live=False)  # looked at after the Deployment
        if got.returncode != 0:
            assert "NotFound" in got.stderr, got.stderr
            # the Deployment was gone first, so its ReplicaSet and pods had gone before it
            assert not remaining and not replica_sets(cluster, ns, "app=fg")
            break
        d = json.loads(got.stdout)
        assert d["metadata"]["deletionTimestamp"] and "foregroundDeletion" in d["metadata"]["finalizers"]
        if remaining:
            seen_waiting = True
            for rs in replica_sets(cluster, ns, "app=fg").values():  # deleted in the foreground too
                assert "foregroundDeletion" in rs["metadata"].get("finalizers", []), rs["metadata"]
    assert seen_waiting, "the Deployment never waited for its pods"

    # orphan: the ReplicaSet and its pods stay, running, without an owner
    kept = {p["metadata"]["uid"] for p in pods(cluster, ns, "app=or")}
    cluster.kubectl("delete", "deploy", "or", "-n", ns, "--cascade=orphan")
    assert not cluster.exists("deploy", "or", "-n", ns)
    (rs,) = replica_sets(cluster, ns, "app=or").values()
    assert not rs["metadata"].get("ownerReferences") and "orphan" not in rs["metadata"].get("finalizers", [])
    still = all_running(cluster, ns, "app=or", 2)
    assert still and {p["metadata"]["uid"] for p in still} == kept
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in still)
    cluster.kubectl("delete", "rs", rs["metadata"]["name"], "-n", ns, "--wait=false")


# ---- CronJobs (created at module start) ------------------------------------------------------

def jobs_of(cluster, ns, cronjob) -> list[dict]:
    return [j for j in cluster.kubectl_json("get", "jobs", "-n", ns)["items"]
            if any(r["name"] == cronjob for r in j["metadata"].get("ownerReferences") or [])
            and not j["metadata"].get("deletionTimestamp")]


def finished(job: dict, kind: str) -> bool:
    return any(c["type"] == kind and c["status"] == "True" for c in job.get("status", {}).get("conditions") or [])


def event_messages(cluster, ns, name) -> list[str]:
    return [e["message"] for e in cluster.kubectl_json("get", "events", "-n", ns)["items"]
            if e["involvedObject"]["name"] == name]


def parse_time(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def test_cronjobs_run_each_minute_keep_their_history_limits_and_overlap(cluster, cronjobs):
    ns = cronjobs
    seed = cluster.kubectl_json("get", "cronjob", "cronjob-demo", "-n", ns)
    created = parse_time(seed["metadata"]["creationTimestamp"])
    jobs = wait_for(lambda: jobs_of(cluster, ns, "cronjob-demo"), timeout=90, interval=0.5, what="a scheduled job")
    first = min(jobs, key=lambda j: j["metadata"]["creationTimestamp"])
    # The first run is the first minute boundary after the CronJob was made, started soon after it.
    scheduled = (created // 60 + 1) * 60
    assert first["metadata"]["name"] == f"cronjob-demo-{scheduled // 60}"
    assert first["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(scheduled))
    assert parse_time(first["metadata"]["creationTimestamp"]) - scheduled <= 15
    cluster.kubectl("wait", "-n", ns, "--for=condition=complete", f"job/{first['metadata']['name']}",
                    "--timeout=60s", timeout=70)
    out = cluster.kubectl("logs", f"job/{first['metadata']['name']}", "-n", ns).stdout
    assert "Hello from the Kubernetes cluster" in out

    # History limits of 1: once a second run has finished, the older one is deleted.
    for name, kind in (("keep-one-ok", "Complete"), ("keep-one-failed", "Failed")):
        def trimmed():
            gone = [m.split()[-1] for m in event_messages(cluster, ns, name) if m.startswith("Deleted job ")]
            left = [j["metadata"]["name"] for j in jobs_of(cluster, ns, name) if finished(j, kind)]
            return gone and len(left) == 1 and (gone, left)
        gone, left = wait_for(trimmed, timeout=150, interval=1, what=f"{name} to keep one finished job")
        assert all(int(g.rsplit("-", 1)[1]) < int(left[0].rsplit("-", 1)[1]) for g in gone), (gone, left)
    # the seed's limit of 10 is far off: none of its finished jobs was deleted
    assert not [m for m in event_messages(cluster, ns, "cronjob-demo") if m.startswith("Deleted job ")]

    # concurrencyPolicy Allow: a run still going does not stop the next one
    def two_running():
        active = cluster.kubectl_json("get", "cronjob", "overlapping", "-n", ns)["status"].get("active") or []
        running = [p for p in pods(cluster, ns) if p["metadata"]["labels"].get("job-name") in
                   {a["name"] for a in active} and running_in_runc(p)]
        return len(active) >= 2 and len(running) >= 2
    wait_for(two_running, timeout=150, interval=1, what="two overlapping runs at once")


def test_top_pod_tracks_a_container_burning_a_core(cluster, ns):
    """The built-in metrics-server over the kubelet's cgroup figures: `kubectl top` shows what a busy
    loop really uses (one core on an idle machine) within 20%, measured against the process's own
    CPU time in /proc over the same few seconds; its memory is busybox's shell, some hundred KiB."""
    cluster.kubectl("run", "burn", "-n", ns, "--image=busybox", "--restart=Never", "--",
                    "sh", "-c", "while :; do :; done")
    try:
        wait_for(lambda: all_running(cluster, ns, "run=burn", 1), timeout=60, what="the busy pod running")
        container_id = cluster.kubectl_json("get", "pod", "burn", "-n", ns)["status"]["containerStatuses"][0][
            "containerID"].split("://", 1)[1]
        state = sh("runc", "--root", str(cluster.node.data / "agent" / "runc" / "runc"), "state", container_id)
        pid = json.loads(state.stdout)["pid"]

        def cpu_seconds() -> float:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        seen = []

        def top_matches_the_process():
            before, began = cpu_seconds(), time.monotonic()
            time.sleep(3)                      # a measuring window, as long as metrics-server's (2 s) and more
            actual = (cpu_seconds() - before) / (time.monotonic() - began) * 1000
            out = cluster.kubectl("top", "pod", "burn", "-n", ns, "--containers", check=False)
            seen.append((round(actual), out.stdout.strip().splitlines()[-1:], out.stderr.strip()))
            if out.returncode != 0:
                return None
            [(_pod, container, cpu, memory)] = [line.split() for line in out.stdout.strip().splitlines()[1:]]
            shown = int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)
            return (container, memory) if actual > 0 and abs(shown - actual) <= 0.2 * actual else None
        try:
            container, memory = wait_for(top_matches_the_process, timeout=60, interval=0.1,
                                         what="kubectl top tracking the busy loop")
        except AssertionError as e:
            raise AssertionError(f"{e}; (actual millicores, top, error) seen: {seen}") from None
        assert container == "burn" and memory.endswith("Mi") and int(memory[:-2]) < 64
        kubelet = cluster.kubectl("get", "--raw", "/api/v1/nodes/svcnode/proxy/stats/summary").stdout
        [pod] = [p for p in json.loads(kubelet)["pods"] if p["podRef"]["name"] == "burn"]
        [stats] = pod["containers"]
        assert 0 < stats["memory"]["workingSetBytes"] <= stats["memory"]["usageBytes"]
        assert stats["rootfs"]["capacityBytes"] > 0 and stats["logs"]["usedBytes"] >= 0
        assert pod["network"]["name"] == "eth0" and pod["network"]["rxBytes"] >= 0
    finally:
        cluster.kubectl("delete", "pod", "burn", "-n", ns, "--grace-period=0", "--force", check=False)
