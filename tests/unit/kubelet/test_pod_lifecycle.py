"""Pod workers end to end against the in-process API server, with an in-memory runtime."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from k8py.kubelet.agent import AgentConfig, Kubelet
from k8py.kubelet.backoff import Backoff
from tests.unit.kubelet.conftest import eventually
from tests.unit.kubelet.memory_runtime import FakeRuntime

NODE = "kc-node"


def pod(name, containers, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "containers": containers, **spec}}


def ctr(name, command=("sleep",), **extra):
    return {"name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent", "command": list(command), **extra}


async def start_kubelet(api, tmp_path, runtime, **config) -> Kubelet:
    # What the root-CA publisher puts in every namespace; service account volumes need it.
    # What the controllers put in every namespace: service account volumes need both.
    for plural, obj in (("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "test-ca"}}),
                        ("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                             "metadata": {"name": "default"}})):
        try:
            await api.resource("v1", plural, namespace="default").create(obj)
        except Exception:
            pass
    kubelet = Kubelet(api, AgentConfig(node_name=NODE, data_dir=tmp_path / "agent", node_ip="127.0.0.1",
                                       relist_seconds=0.05, **config), runtime)
    await kubelet.start()
    kubelet.ctx.crash_backoff = Backoff(initial=0.3, maximum=1.2, clock=time.time)
    kubelet.ctx.volume_refresh_seconds = 0.2
    return kubelet


@pytest.fixture
async def kubelet(api, tmp_path):
    runtime = FakeRuntime()
    k = await start_kubelet(api, tmp_path, runtime)
    k.fake = runtime
    yield k
    await k.stop()


async def get_pod(api, name):
    return await api.resource("v1", "pods", namespace="default").get(name)


def status_of(p, name, init=False):
    key = "initContainerStatuses" if init else "containerStatuses"
    return next(s for s in (p.get("status") or {}).get(key) or [] if s["name"] == name)


def condition(p, ctype):
    return next((c for c in (p.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


async def events_for(api, name):
    await asyncio.sleep(0)
    listed = await api.resource("v1", "events", namespace="default").list()
    return [(e["reason"], e["message"]) for e in listed["items"] if e["involvedObject"]["name"] == name]


async def wait_pod(api, name, check, timeout=5.0, what=""):
    async def probe():
        p = await get_pod(api, name)
        return p if check(p) else None
    return await eventually(probe, timeout, what or f"pod {name}")


async def test_pod_runs_and_reports_status(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("web", [ctr("main", resources={"limits": {"cpu": "100m", "memory": "64Mi"}})]))
    p = await wait_pod(api, "web", lambda p: p.get("status", {}).get("phase") == "Running"
                       and condition(p, "Ready").get("status") == "True")
    st = p["status"]
    assert st["qosClass"] == "Guaranteed"
    assert st["hostIP"] == "127.0.0.1" and st["podIP"] == "127.0.0.1"
    assert st["startTime"]
    assert {c["type"] for c in st["conditions"]} >= {"PodScheduled", "Initialized", "ContainersReady", "Ready",
                                                     "PodReadyToStartContainers"}
    cs = status_of(p, "main")
    assert "running" in cs["state"] and cs["ready"] is True and cs["started"] is True
    assert cs["restartCount"] == 0 and cs["containerID"].startswith("fake://")
    config = kubelet.fake.configs[cs["containerID"].split("://")[1]]
    assert config.memory_limit_bytes == 64 * 2**20 and config.cpu_quota_us == 10_000
    assert config.log_path.endswith("/main/0.log")
    await kubelet.recorder.flush()
    ev = await events_for(api, "web")
    assert ("Created", "Created container: main") in ev and ("Started", "Started container main") in ev
    assert ("Pulled", 'Container image "busybox" already present on machine') in ev


async def test_init_containers_run_in_order_before_app(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("init", [ctr("app")], initContainers=[ctr("one", ["exit", "0"]),
                                                                   ctr("two", ["exit", "0"])]))
    p = await wait_pod(api, "init", lambda p: p.get("status", {}).get("phase") == "Running")
    for name in ("one", "two"):
        term = status_of(p, name, init=True)["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (0, "Completed")
    assert condition(p, "Initialized")["status"] == "True"
    created = [c.name for c in sorted(kubelet.fake.configs.values(), key=lambda c: c.labels and 0)]
    assert created.index("one") < created.index("two") < created.index("app")


async def test_failing_init_container_blocks_app_and_is_retried(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("init-fail", [ctr("app")], initContainers=[ctr("wait", ["exit", "1"])]))
    p = await wait_pod(api, "init-fail", lambda p: status_of(p, "wait", True)["restartCount"] >= 1
                       if p.get("status", {}).get("initContainerStatuses") else False)
    assert p["status"]["phase"] == "Pending"
    assert status_of(p, "app")["state"]["waiting"]["reason"] == "PodInitializing"
    init_cond = condition(p, "Initialized")
    assert (init_cond["status"], init_cond["reason"], init_cond["message"]) == \
        ("False", "ContainersNotInitialized", "containers with incomplete status: [wait]")
    assert not any(c.name == "app" for c in kubelet.fake.configs.values())


async def test_never_restart_policy_fails_the_pod(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("never", [ctr("main", ["exit", "3"])], restartPolicy="Never"))
    p = await wait_pod(api, "never", lambda p: p.get("status", {}).get("phase") == "Failed")
    term = status_of(p, "main")["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (3, "Error")
    ready = condition(p, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PodFailed")


async def test_succeeded_with_on_failure(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("done", [ctr("main", ["exit", "0"])], restartPolicy="OnFailure"))
    p = await wait_pod(api, "done", lambda p: p.get("status", {}).get("phase") == "Succeeded")
    assert status_of(p, "main")["state"]["terminated"]["reason"] == "Completed"
    assert status_of(p, "main")["restartCount"] == 0


async def test_crash_loop_back_off_and_oom(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("crash", [ctr("main", ["oom"])]))
    p = await wait_pod(api, "crash", lambda p: (status_of(p, "main")["state"].get("waiting") or {}).get("reason")
                       == "CrashLoopBackOff" if p.get("status", {}).get("containerStatuses") else False)
    cs = status_of(p, "main")
    assert cs["restartCount"] >= 1
    assert cs["state"]["waiting"]["message"].startswith("back-off ")
    assert "restarting failed container=main pod=crash_default(" in cs["state"]["waiting"]["message"]
    last = cs["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("OOMKilled", 137)
    assert p["status"]["phase"] == "Running"
    # Back-off doubles: restarts keep coming, slower each time.
    await wait_pod(api, "crash", lambda p: status_of(p, "main")["restartCount"] >= 3, timeout=8)
    await kubelet.recorder.flush()
    reasons = [r for r, _ in await events_for(api, "crash")]
    assert "BackOff" in reasons


async def test_missing_secret_is_create_container_config_error_until_it_exists(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "kc-secret", "key": "password"}}},
           {"name": "GREETING", "value": "hello $(TOKEN) $$(TOKEN)"},
           {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    await pods.create(pod("envpod", [ctr("main", ["echo", "$(NAME)"], env=env)]))
    p = await wait_pod(api, "envpod", lambda p: (status_of(p, "main")["state"].get("waiting") or {}).get("reason")
                       == "CreateContainerConfigError" if p.get("status", {}).get("containerStatuses") else False)
    assert status_of(p, "main")["state"]["waiting"]["message"] == 'secret "kc-secret" not found'
    await api.resource("v1", "secrets", namespace="default").create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kc-secret"}, "data": {"password": "czNjcjN0"}})
    p = await wait_pod(api, "envpod", lambda p: p["status"]["phase"] == "Running", timeout=8)
    config = next(c for c in kubelet.fake.configs.values() if c.name == "main")
    env_map = dict(config.env)
    assert env_map["TOKEN"] == "s3cr3t"
    assert env_map["GREETING"] == "hello s3cr3t $(TOKEN)"
    assert env_map["NAME"] == "envpod"
    assert config.command == ["echo", "envpod"]
    await kubelet.recorder.flush()
    assert ("Failed", 'Error: secret "kc-secret" not found') in await events_for(api, "envpod")


async def test_graceful_deletion_runs_pre_stop_then_deletes(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    lifecycle = {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}}
    await pods.create(pod("bye", [ctr("main", lifecycle=lifecycle)], terminationGracePeriodSeconds=7))
    p = await wait_pod(api, "bye", lambda p: p.get("status", {}).get("phase") == "Running")
    cid = status_of(p, "main")["containerID"].split("://")[1]
    await pods.delete("bye")

    async def gone():
        try:
            await get_pod(api, "bye")
            return False
        except Exception as e:
            return getattr(e, "code", None) == 404
    await eventually(gone, 5, "pod deleted by the kubelet")
    assert (cid, ["nginx", "-s", "quit"]) in kubelet.fake.execs
    stop_timeout = next(t for c, t in kubelet.fake.stopped if c == cid)
    assert 2.0 <= stop_timeout <= 7.0
    assert not kubelet.fake.sandboxes and cid not in kubelet.fake.containers
    assert not (kubelet.ctx.logs_dir / f"default_bye_{p['metadata']['uid']}").exists()


async def test_liveness_failure_restarts_container(api, kubelet):
    kubelet.fake.exec_results["cat"] = (1, b"cat: /tmp/healthy: No such file or directory")
    pods = api.resource("v1", "pods", namespace="default")
    probe = {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}
    await pods.create(pod("live", [ctr("main", livenessProbe=probe)]))
    await wait_pod(api, "live", lambda p: p.get("status", {}).get("containerStatuses")
                   and status_of(p, "main")["restartCount"] >= 1, timeout=6)
    await kubelet.recorder.flush()
    ev = await events_for(api, "live")
    assert ("Unhealthy", "Liveness probe failed: cat: /tmp/healthy: No such file or directory") in ev
    assert ("Killing", "Container main failed liveness probe, will be restarted") in ev


class SigtermIgnoringRuntime(FakeRuntime):
    """Containers whose PID 1 ignores SIGTERM: a stop takes the whole grace period, then SIGKILL."""

    async def stop_container(self, container_id: str, timeout: float) -> None:
        self.stopped.append((container_id, timeout))
        cs = self.containers.get(container_id)
        if cs is not None and cs.state == "running":
            await asyncio.sleep(timeout)
            self.finish(container_id, 137)


async def test_a_container_failing_liveness_is_killed_once_and_not_probed_while_it_dies(api, tmp_path):
    runtime = SigtermIgnoringRuntime()
    runtime.exec_results["cat"] = (1, b"cat: /tmp/healthy: No such file or directory")
    kubelet = await start_kubelet(api, tmp_path, runtime)
    try:
        pods = api.resource("v1", "pods", namespace="default")
        probe = {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}
        await pods.create(pod("dying", [ctr("main", livenessProbe=probe)], terminationGracePeriodSeconds=3))
        await wait_pod(api, "dying", lambda p: p.get("status", {}).get("containerStatuses")
                       and status_of(p, "main")["restartCount"] >= 1, timeout=10)
        first = runtime.stopped[0][0]
        # three probe periods passed while it died: none of them probed or killed it again
        assert [cid for cid, _ in runtime.stopped].count(first) == 1, runtime.stopped
        assert [cid for cid, _ in runtime.execs].count(first) == 1, runtime.execs
    finally:
        await kubelet.stop()


async def test_readiness_probe_gates_ready(api, kubelet):
    kubelet.fake.exec_results["check"] = (1, b"not yet")
    pods = api.resource("v1", "pods", namespace="default")
    probe = {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 1}
    await pods.create(pod("ready", [ctr("main", readinessProbe=probe)]))
    p = await wait_pod(api, "ready", lambda p: p.get("status", {}).get("phase") == "Running")
    await eventually(lambda: ["check"] in [argv for _, argv in kubelet.fake.execs], 5, "a failed readiness probe")
    p = await get_pod(api, "ready")
    ready = condition(p, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == \
        ("False", "ContainersNotReady", "containers with unready status: [main]")
    kubelet.fake.exec_results["check"] = (0, b"")
    await wait_pod(api, "ready", lambda p: condition(p, "Ready").get("status") == "True", timeout=4)


async def test_failed_post_start_hook_kills_container(api, kubelet):
    kubelet.fake.exec_results["false"] = (1, b"")
    pods = api.resource("v1", "pods", namespace="default")
    lifecycle = {"postStart": {"exec": {"command": ["false"]}}}
    await pods.create(pod("hook", [ctr("main", lifecycle=lifecycle)], restartPolicy="Never"))
    p = await wait_pod(api, "hook", lambda p: p.get("status", {}).get("phase") == "Failed")
    await kubelet.recorder.flush()
    reasons = [r for r, _ in await events_for(api, "hook")]
    assert "FailedPostStartHook" in reasons
    assert status_of(p, "main")["state"]["terminated"]["exitCode"] == 143


async def test_restarted_kubelet_adopts_containers_and_cleans_up_deleted_pods(api, tmp_path):
    runtime = FakeRuntime()
    first = await start_kubelet(api, tmp_path, runtime)
    pods = api.resource("v1", "pods", namespace="default")
    probe = {"exec": {"command": ["alive"]}, "periodSeconds": 1}
    await pods.create(pod("keep", [ctr("main", livenessProbe=probe)]))
    await pods.create(pod("drop", [ctr("main")]))
    keep = await wait_pod(api, "keep", lambda p: condition(p, "Ready").get("status") == "True")
    await wait_pod(api, "drop", lambda p: condition(p, "Ready").get("status") == "True")
    keep_cid = status_of(keep, "main")["containerID"]
    await first.stop()
    # While the agent is away: "drop" is force-deleted.
    await pods.delete("drop", grace_period_seconds=0)
    second = await start_kubelet(api, tmp_path, runtime)
    try:
        await eventually(lambda: len(runtime.sandboxes) == 1, 5, "orphan sandbox removed")
        relisted = runtime.relists      # any of the next relists would have replaced "keep" if it were not adopted
        await eventually(lambda: runtime.relists >= relisted + 3, 5, "three relists by the restarted kubelet")
        keep = await get_pod(api, "keep")
        assert status_of(keep, "main")["containerID"] == keep_cid
        assert status_of(keep, "main")["restartCount"] == 0
        running = [c for c in runtime.containers.values() if c.state == "running"]
        assert [c.id for c in running] == [keep_cid.split("://")[1]]
        # The adopted container is probed again.
        probed = len(runtime.execs)
        await eventually(lambda: len(runtime.execs) > probed, 3, "liveness probe after adoption")
    finally:
        await second.stop()


async def test_unique_names_do_not_leak_between_tests():
    # The fake runtime is per test: nothing global to reset.
    assert FakeRuntime().containers == {} and uuid.uuid4()


async def test_termination_message_from_file_and_from_logs(tmp_path):
    from k8py.kubelet.pod_worker import termination_message
    from k8py.kubelet.runtime.interface import ContainerStatus
    msg = tmp_path / "msg"
    msg.write_text("bye now")
    failed = ContainerStatus(id="c", sandbox_id="s", name="c", state="exited", exit_code=2,
                             log_path=str(tmp_path / "log"))
    assert termination_message({}, failed, msg) == "bye now"
    (tmp_path / "log").write_text("2026-01-01T00:00:00.000000000Z stdout F first\n"
                                  "2026-01-01T00:00:01.000000000Z stderr F boom: it broke\n")
    empty = tmp_path / "empty"
    empty.write_text("")
    policy = {"terminationMessagePolicy": "FallbackToLogsOnError"}
    assert termination_message(policy, failed, empty) == "first\nboom: it broke"
    assert termination_message({}, failed, empty) == ""


async def test_pods_that_do_not_fit_are_rejected(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    huge = ctr("main", resources={"requests": {"cpu": "100000"}})
    await pods.create(pod("huge", [huge]))
    p = await wait_pod(api, "huge", lambda p: p.get("status", {}).get("phase") == "Failed")
    assert p["status"]["reason"] == "OutOfcpu"
    assert p["status"]["message"].startswith("Pod was rejected: Node didn't have enough resource: cpu, "
                                             "requested: 100000000, used: 0, capacity: ")
    await pods.create(pod("picky", [ctr("main")], nodeSelector={"disk": "ssd"}))
    p = await wait_pod(api, "picky", lambda p: p.get("status", {}).get("phase") == "Failed")
    assert (p["status"]["reason"], p["status"]["message"]) == \
        ("NodeAffinity", "Pod was rejected: Predicate NodeAffinity failed")
    assert not kubelet.fake.containers


async def test_active_deadline_fails_the_pod(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("deadline", [ctr("main")], activeDeadlineSeconds=1))
    p = await wait_pod(api, "deadline", lambda p: p.get("status", {}).get("phase") == "Failed", timeout=6)
    assert (p["status"]["reason"], p["status"]["message"]) == \
        ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
    assert status_of(p, "main")["state"]["terminated"]["exitCode"] == 143


async def test_sidecar_runs_beside_the_app_and_stops_when_it_completes(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    sidecar = ctr("proxy", restartPolicy="Always")
    await pods.create(pod("sidecar", [ctr("job", ["exit", "0"])], restartPolicy="Never",
                          initContainers=[sidecar, ctr("setup", ["exit", "0"])]))
    p = await wait_pod(api, "sidecar", lambda p: p.get("status", {}).get("phase") == "Succeeded")
    names = [c.name for c in kubelet.fake.configs.values()]
    assert names.index("proxy") < names.index("setup") < names.index("job")
    proxy = status_of(p, "proxy", init=True)
    assert "terminated" in proxy["state"]          # stopped once the job was done
    assert condition(p, "Initialized")["status"] == "True"


async def test_empty_dir_over_its_size_limit_evicts_the_pod(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    volumes = [{"name": "cache", "emptyDir": {"sizeLimit": "1Ki"}}]
    container = ctr("main", volumeMounts=[{"name": "cache", "mountPath": "/cache"}])
    created = await pods.create(pod("hoarder", [container], volumes=volumes))
    await wait_pod(api, "hoarder", lambda p: p.get("status", {}).get("phase") == "Running")
    cache = kubelet.ctx.volumes.volume_dir(created["metadata"]["uid"], "emptyDir", "cache")
    (cache / "big").write_bytes(b"x" * 4096)          # what the container would have written
    p = await wait_pod(api, "hoarder", lambda p: p["status"]["phase"] == "Failed", timeout=5)
    assert (p["status"]["reason"], p["status"]["message"]) == \
        ("Evicted", 'Usage of EmptyDir volume "cache" exceeds the limit "1Ki". ')


async def test_config_map_volume_follows_updates_and_token_is_issued(api, kubelet):
    cms = api.resource("v1", "configmaps", namespace="default")
    await cms.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kc-conf"},
                      "data": {"app.conf": "one"}})
    pods = api.resource("v1", "pods", namespace="default")
    container = ctr("main", volumeMounts=[{"name": "conf", "mountPath": "/etc/app"}])
    created = await pods.create(pod("watcher", [container], volumes=[{"name": "conf",
                                                                       "configMap": {"name": "kc-conf"}}]))
    await wait_pod(api, "watcher", lambda p: p.get("status", {}).get("phase") == "Running")
    uid = created["metadata"]["uid"]
    conf = kubelet.ctx.volumes.volume_dir(uid, "configMap", "conf") / "app.conf"
    assert conf.read_text() == "one"
    config = next(c for c in kubelet.fake.configs.values() if c.labels.get("io.kubernetes.pod.uid") == uid)
    mounts = {m.container_path: m for m in config.mounts}
    assert mounts["/etc/app"].read_only and "/etc/hosts" in mounts and "/etc/resolv.conf" in mounts
    sa_mount = mounts["/var/run/secrets/kubernetes.io/serviceaccount"]
    from pathlib import Path
    token = (Path(sa_mount.host_path) / "token").read_text()
    assert token.count(".") == 2                      # a JWT from the TokenRequest API
    assert (Path(sa_mount.host_path) / "namespace").read_text() == "default"

    await cms.patch("kc-conf", {"data": {"app.conf": "two"}})
    await eventually(lambda: conf.read_text() == "two", 5, "configMap volume updated in place")
    # That refresh wrote the projected token volume again too: the token is reused, not re-issued.
    assert (Path(sa_mount.host_path) / "token").read_text() == token
    assert config is next(c for c in kubelet.fake.configs.values()
                          if c.labels.get("io.kubernetes.pod.uid") == uid)   # no restart for that


class SlowStopRuntime(FakeRuntime):
    """Like runc: the process is dead a while before stop_container returns (waits, status reads),
    long enough for the relist to notice the exit and wake the pod's worker."""

    async def stop_container(self, container_id: str, timeout: float) -> None:
        await super().stop_container(container_id, timeout)
        await asyncio.sleep(0.4)


async def test_a_changed_spec_restarts_a_restart_never_container_even_if_a_sync_sees_it_dead(api, tmp_path):
    runtime = SlowStopRuntime()
    kubelet = await start_kubelet(api, tmp_path, runtime)
    try:
        pods = api.resource("v1", "pods", namespace="default")
        await pods.create(pod("swap", [ctr("main")], restartPolicy="Never"))
        p = await wait_pod(api, "swap", lambda p: condition(p, "Ready").get("status") == "True")
        first = status_of(p, "main")["containerID"]
        phases = []
        await pods.patch("swap", {"spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}},
                         patch_type="strategic")
        p = await wait_pod(api, "swap", lambda p: phases.append(p["status"]["phase"]) or (
            status_of(p, "main")["containerID"] != first and "running" in status_of(p, "main")["state"]),
            timeout=6, what="the container replaced")
        assert p["status"]["phase"] == "Running" and status_of(p, "main")["restartCount"] == 1
        # the worker never called the pod finished while the old container was down
        assert not {"Succeeded", "Failed"} & set(phases), phases
    finally:
        await kubelet.stop()


async def test_a_status_answer_that_crosses_a_spec_change_does_not_undo_it(api, kubelet, monkeypatch):
    from k8py.client.rest import ResourceClient
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("crossed", [ctr("main"), ctr("side")], restartPolicy="Never"))
    p = await wait_pod(api, "crossed", lambda p: condition(p, "Ready").get("status") == "True")
    first = status_of(p, "main")["containerID"]
    patch = ResourceClient.patch

    side_exit_in_flight = asyncio.Event()

    async def late_status_answers(self, name, body, *args, **kwargs):
        answer = await patch(self, name, body, *args, **kwargs)
        if kwargs.get("subresource") == "status":
            if "terminated" in json.dumps(body):
                side_exit_in_flight.set()
            await asyncio.sleep(0.5)        # applied at once, answered late: a spec update overtakes it
        return answer
    monkeypatch.setattr(ResourceClient, "patch", late_status_answers)
    kubelet.fake.finish(kubelet.fake.running("side").id, 0)     # a status change: its patch is in flight
    await asyncio.wait_for(side_exit_in_flight.wait(), 5)
    await pods.patch("crossed", {"spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}},
                     patch_type="strategic")
    await wait_pod(api, "crossed", lambda p: status_of(p, "main")["containerID"] != first
                   and "running" in status_of(p, "main")["state"], timeout=6, what="main replaced")


async def test_changed_container_spec_replaces_the_container(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("upgrade", [ctr("main")], restartPolicy="Never"))
    p = await wait_pod(api, "upgrade", lambda p: condition(p, "Ready").get("status") == "True")
    first = status_of(p, "main")["containerID"]
    await pods.patch("upgrade", {"spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}},
                     patch_type="strategic")
    p = await wait_pod(api, "upgrade", lambda p: status_of(p, "main")["containerID"] != first
                       and "running" in status_of(p, "main")["state"], timeout=6)
    cs = status_of(p, "main")
    assert cs["restartCount"] == 1 and cs["lastState"]["terminated"]["exitCode"] == 143
    assert kubelet.fake.configs[cs["containerID"].split("://")[1]].image == "busybox:1.36"
    await kubelet.recorder.flush()
    ev = await events_for(api, "upgrade")
    assert ("Killing", "Container main definition changed, will be restarted") in ev
    assert ("Killing", "Stopping container main") not in ev
