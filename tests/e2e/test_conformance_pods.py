"""Upstream node conformance behaviours with real pods: a `k8py server` with
its own node agent (runc, CNI, the local registry's busybox), the real kubectl.

The run-to-completion pods are created together up front (they take a few
seconds each) and every test then checks its own one.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import time

import pytest

from tests.e2e.conftest import wait_for, wait_for_default_service_account
from tests.e2e.test_node_agent import AgentServer

pytest_plugins = ["tests.e2e.registry"]

pytestmark = pytest.mark.host_network  # test_node_agent's AgentServer: its network is in the root namespace

NS = "conformance-pods"


def container(command, **extra) -> dict:
    return {"name": "c", "image": "busybox", "command": command, **extra}


def job_pod(name: str, command, *, container_extra=None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [container(command, **(container_extra or {}))],
                     **spec}}


SH = ["sh", "-c"]
FINISHING = {
    "uid-65534": job_pod("uid-65534", SH + ["id -u"], container_extra={"securityContext": {"runAsUser": 65534}}),
    "container-ids": job_pod("container-ids", SH + ["echo $(id -u) $(id -g)"],
                             container_extra={"securityContext": {"runAsUser": 1001, "runAsGroup": 2002}}),
    "pod-ids": job_pod("pod-ids", SH + ["echo $(id -u) $(id -g)"],
                       securityContext={"runAsUser": 1001, "runAsGroup": 2002}),
    "unprivileged": job_pod("unprivileged", SH + ["ip link add dummy0 type dummy || echo refused"],
                            container_extra={"securityContext": {"privileged": False}}),
    "writable-root": job_pod("writable-root", SH + ["echo hi > /file && cat /file"],
                             container_extra={"securityContext": {"readOnlyRootFilesystem": False}}),
    "readonly-root": job_pod("readonly-root", SH + ["echo hi > /file || echo write-refused"],
                             container_extra={"securityContext": {"readOnlyRootFilesystem": True}}),
    "env-compose": job_pod("env-compose", SH + ["env"], container_extra={"env": [
        {"name": "FOO", "value": "foo-value"}, {"name": "BAR", "value": "bar-value"},
        {"name": "FOOBAR", "value": "$(FOO);;$(BAR)"}]}),
    "env-command": job_pod("env-command", ["/bin/echo", "test-value: $(TEST_VAR)"],
                           container_extra={"env": [{"name": "TEST_VAR", "value": "test-value"}]}),
    "env-args": job_pod("env-args", ["/bin/echo"], container_extra={
        "args": ["args-value: $(TEST_VAR)"], "env": [{"name": "TEST_VAR", "value": "test-value"}]}),
    # `env` itself: a shell would drop the names with a dash
    "env-from-secret": job_pod("env-from-secret", ["env"], container_extra={
        "envFrom": [{"secretRef": {"name": "conf-secret"}, "prefix": "p-"}]}),
    "env-from-configmap": job_pod("env-from-configmap", ["env"], container_extra={
        "envFrom": [{"configMapRef": {"name": "conf-configmap"}, "prefix": "p-"}]}),
    "downward-env": job_pod("downward-env", SH + ["env"], container_extra={"env": [
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "HOST_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}}]}),
    "failing": job_pod("failing", ["/bin/false"]),
    "logging": job_pod("logging", SH + ["echo 'Hello World'; echo to-stderr >&2"]),
    "host-aliases": job_pod("host-aliases", ["cat", "/etc/hosts"], hostAliases=[
        {"ip": "123.45.67.89", "hostnames": ["foo", "bar"]}]),
    "message-ok-from-logs": job_pod("message-ok-from-logs", SH + ["echo DONE"], container_extra={
        "terminationMessagePolicy": "FallbackToLogsOnError"}),
    "message-failed-from-logs": job_pod("message-failed-from-logs", SH + ["echo DONE; exit 1"], container_extra={
        "terminationMessagePolicy": "FallbackToLogsOnError"}),
    "message-from-file": job_pod("message-from-file", SH + ["echo -n OK > /dev/termination-log"], container_extra={
        "terminationMessagePolicy": "FallbackToLogsOnError"}),
    "message-custom-path": job_pod("message-custom-path", SH + ["echo -n DONE > /dev/termination-custom-log"],
                                   container_extra={"terminationMessagePath": "/dev/termination-custom-log",
                                                    "securityContext": {"runAsUser": 1000}}),
}


def volume_pod(name: str, volume: dict, path: str) -> dict:
    """Prints the mode (as ls shows it, following the atomic-writer links) and the content of one file."""
    body = job_pod(name, SH + [f"ls -lL {path} | cut -c1-10; cat {path}"],
                   container_extra={"volumeMounts": [{"name": "vol", "mountPath": "/etc/vol"}]})
    body["spec"]["volumes"] = [{"name": "vol", **volume}]
    return body


# id -> (pod, expected mode, expected content)
VOLUMES = {
    "secret-default": (volume_pod("secret-default", {"secret": {"secretName": "conf-secret"}},
                                  "/etc/vol/data-1"), "-rw-r--r--", "value-1"),
    "secret-mode-0400": (volume_pod("secret-mode-0400", {"secret": {"secretName": "conf-secret", "defaultMode": 0o400}},
                                    "/etc/vol/data-1"), "-r--------", "value-1"),
    "secret-mapped": (volume_pod("secret-mapped", {"secret": {"secretName": "conf-secret", "items": [
        {"key": "data-1", "path": "new-path-data-1"}]}}, "/etc/vol/new-path-data-1"), "-rw-r--r--", "value-1"),
    "configmap-default": (volume_pod("configmap-default", {"configMap": {"name": "conf-configmap"}},
                                     "/etc/vol/data-1"), "-rw-r--r--", "value-1"),
    "configmap-mode-0400": (volume_pod("configmap-mode-0400", {"configMap": {"name": "conf-configmap",
                                                                             "defaultMode": 0o400}},
                                       "/etc/vol/data-1"), "-r--------", "value-1"),
    "configmap-mapped": (volume_pod("configmap-mapped", {"configMap": {"name": "conf-configmap", "items": [
        {"key": "data-1", "path": "path/to/data-2"}]}}, "/etc/vol/path/to/data-2"), "-rw-r--r--", "value-1"),
    "configmap-mapped-mode": (volume_pod("configmap-mapped-mode", {"configMap": {"name": "conf-configmap", "items": [
        {"key": "data-1", "path": "path/to/data-2", "mode": 0o400}]}}, "/etc/vol/path/to/data-2"),
        "-r--------", "value-1"),
    "downward-podname": (volume_pod("downward-podname", {"downwardAPI": {"items": [
        {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}}]}}, "/etc/vol/podname"),
        "-rw-r--r--", "downward-podname"),
    "projected-secret": (volume_pod("projected-secret", {"projected": {"sources": [
        {"secret": {"name": "conf-secret"}}]}}, "/etc/vol/data-1"), "-rw-r--r--", "value-1"),
    "projected-configmap": (volume_pod("projected-configmap", {"projected": {"sources": [
        {"configMap": {"name": "conf-configmap"}}]}}, "/etc/vol/data-1"), "-rw-r--r--", "value-1"),
    "projected-podname": (volume_pod("projected-podname", {"projected": {"sources": [
        {"downwardAPI": {"items": [{"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
        "/etc/vol/podname"), "-rw-r--r--", "projected-podname"),
}


def with_security(body: dict, **context) -> dict:
    body["spec"]["securityContext"] = context
    return body


def with_resources(body: dict) -> dict:
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "250m", "memory": "32Mi"},
                                                  "limits": {"cpu": "1250m", "memory": "64Mi"}}
    return body


def resource_item(path: str, resource: str) -> dict:
    return {"path": path, "resourceFieldRef": {"containerName": "c", "resource": resource}}


RESOURCES = {"cpu-limit": ("limits.cpu", "2"), "cpu-request": ("requests.cpu", "1"),
             "memory-limit": ("limits.memory", str(64 * 1024 * 1024)),
             "memory-request": ("requests.memory", str(32 * 1024 * 1024))}
for key, (field, value) in RESOURCES.items():
    VOLUMES[f"downward-{key}"] = (with_resources(volume_pod(f"downward-{key}", {"downwardAPI": {"items": [
        resource_item(key, field)]}}, f"/etc/vol/{key}")), "-rw-r--r--", value)
    VOLUMES[f"projected-{key}"] = (with_resources(volume_pod(f"projected-{key}", {"projected": {"sources": [
        {"downwardAPI": {"items": [resource_item(key, field)]}}]}}, f"/etc/vol/{key}")), "-rw-r--r--", value)
VOLUMES.update({
    "configmap-non-root": (with_security(volume_pod("configmap-non-root", {"configMap": {"name": "conf-configmap"}},
                                                    "/etc/vol/data-1"), runAsUser=1000), "-rw-r--r--", "value-1"),
    "configmap-mapped-non-root": (with_security(volume_pod("configmap-mapped-non-root", {"configMap": {
        "name": "conf-configmap", "items": [{"key": "data-1", "path": "path/to/data-2"}]}},
        "/etc/vol/path/to/data-2"), runAsUser=1000), "-rw-r--r--", "value-1"),
    "projected-configmap-non-root": (with_security(volume_pod("projected-configmap-non-root", {"projected": {
        "sources": [{"configMap": {"name": "conf-configmap"}}]}}, "/etc/vol/data-1"), runAsUser=1000),
        "-rw-r--r--", "value-1"),
    "projected-configmap-mode-0400": (volume_pod("projected-configmap-mode-0400", {"projected": {
        "defaultMode": 0o400, "sources": [{"configMap": {"name": "conf-configmap"}}]}}, "/etc/vol/data-1"),
        "-r--------", "value-1"),
    "projected-configmap-mapped": (volume_pod("projected-configmap-mapped", {"projected": {"sources": [
        {"configMap": {"name": "conf-configmap", "items": [{"key": "data-1", "path": "path/to/data-2"}]}}]}},
        "/etc/vol/path/to/data-2"), "-rw-r--r--", "value-1"),
    "projected-secret-mode-0400": (volume_pod("projected-secret-mode-0400", {"projected": {
        "defaultMode": 0o400, "sources": [{"secret": {"name": "conf-secret"}}]}}, "/etc/vol/data-1"),
        "-r--------", "value-1"),
    "downward-volume-mode-0400": (volume_pod("downward-volume-mode-0400", {"downwardAPI": {"defaultMode": 0o400,
        "items": [{"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}}]}}, "/etc/vol/podname"),
        "-r--------", "downward-volume-mode-0400"),
    "downward-file-mode-0400": (volume_pod("downward-file-mode-0400", {"downwardAPI": {"items": [
        {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400}]}}, "/etc/vol/podname"),
        "-r--------", "downward-file-mode-0400"),
    "projected-downward-mode-0400": (volume_pod("projected-downward-mode-0400", {"projected": {
        "defaultMode": 0o400, "sources": [{"downwardAPI": {"items": [
            {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}, "/etc/vol/podname"),
        "-r--------", "projected-downward-mode-0400"),
    "projected-downward-item-mode-0400": (volume_pod("projected-downward-item-mode-0400", {"projected": {
        "sources": [{"downwardAPI": {"items": [
            {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400}]}}]}},
        "/etc/vol/podname"), "-r--------", "projected-downward-item-mode-0400"),
    "secret-other-namespace": (volume_pod("secret-other-namespace", {"secret": {"secretName": "conf-secret"}},
                                          "/etc/vol/data-1"), "-rw-r--r--", "value-1"),
})
FINISHING.update({name: pod for name, (pod, _, _) in VOLUMES.items()})


def two_mounts_pod(name: str, volume: dict, file: str) -> dict:
    body = job_pod(name, SH + [f"cat /etc/vol-1/{file} /etc/vol-2/{file}"], container_extra={
        "volumeMounts": [{"name": "vol-1", "mountPath": "/etc/vol-1"}, {"name": "vol-2", "mountPath": "/etc/vol-2"}]})
    body["spec"]["volumes"] = [{"name": "vol-1", **volume}, {"name": "vol-2", **volume}]
    return body


TWO_MOUNTS = {
    "secret-two-paths": two_mounts_pod("secret-two-paths", {"secret": {"secretName": "conf-secret"}}, "data-1"),
    "configmap-two-paths": two_mounts_pod("configmap-two-paths", {"configMap": {"name": "conf-configmap"}}, "data-1"),
    "projected-configmap-two-paths": two_mounts_pod("projected-configmap-two-paths", {"projected": {"sources": [
        {"configMap": {"name": "conf-configmap"}}]}}, "data-1"),
    "projected-secret-two-paths": two_mounts_pod("projected-secret-two-paths", {"projected": {"sources": [
        {"secret": {"name": "conf-secret", "items": [{"key": "data-1", "path": "new-path-data-1"}]}}]}},
        "new-path-data-1"),
}
FINISHING.update(TWO_MOUNTS)
MULTIPLE = job_pod("projected-all", SH + ["cat /etc/vol/secret-data /etc/vol/configmap-data /etc/vol/podname"],
                   container_extra={"volumeMounts": [{"name": "vol", "mountPath": "/etc/vol"}]})
MULTIPLE["spec"]["volumes"] = [{"name": "vol", "projected": {"sources": [
    {"secret": {"name": "conf-secret", "items": [{"key": "data-1", "path": "secret-data"}]}},
    {"configMap": {"name": "conf-configmap", "items": [{"key": "data-1", "path": "configmap-data"}]}},
    {"downwardAPI": {"items": [{"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}]
FINISHING["projected-all"] = MULTIPLE



def empty_dir_pod(name: str, medium: str, mode: str | None, user: int | None) -> dict:
    """Makes a file of `mode` in the emptyDir (or, without a mode, looks at the volume itself) and
    prints its mode and the volume's filesystem type."""
    look = f"touch f && chmod {mode} f && ls -l f" if mode else "ls -ld ."
    body = job_pod(name, SH + [f"cd /test-volume && {look} | cut -c1-10 && "
                               "awk '$2 == \"/test-volume\" {print $3}' /proc/mounts"],
                   container_extra={"volumeMounts": [{"name": "vol", "mountPath": "/test-volume"}]})
    body["spec"]["volumes"] = [{"name": "vol", "emptyDir": {"medium": "Memory"} if medium == "memory" else {}}]
    if user is not None:
        body["spec"]["securityContext"] = {"runAsUser": user}
    return body


MODE_TEXT = {"0644": "-rw-r--r--", "0666": "-rw-rw-rw-", "0777": "-rwxrwxrwx", None: "drwxrwxrwx"}
EMPTY_DIRS = {}
for medium in ("default", "memory"):
    for mode in ("0644", "0666", "0777", None):
        for user in ((None, 1001) if mode else (None,)):
            name = f"emptydir-{medium}-{mode or 'dir'}-{'non-root' if user else 'root'}"
            EMPTY_DIRS[name] = (empty_dir_pod(name, medium, mode, user), MODE_TEXT[mode], medium)
FINISHING.update({name: pod for name, (pod, _, _) in EMPTY_DIRS.items()})

SHARED = job_pod("emptydir-shared", SH + ["until [ -f /v/shared ]; do sleep 0.1; done; cat /v/shared"],
                 container_extra={"volumeMounts": [{"name": "v", "mountPath": "/v"}]})
SHARED["spec"]["containers"].append(container(SH + ["echo Hello from the busy-box sub-container > /v/shared"],
                                              name="writer", volumeMounts=[{"name": "v", "mountPath": "/v"}]))
SHARED["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
FINISHING["emptydir-shared"] = SHARED

WRAPPED = job_pod("wrapped-volumes", SH + ["cat /etc/secret-volume/data-1 /etc/configmap-volume/data-1"],
                  container_extra={"volumeMounts": [{"name": "s", "mountPath": "/etc/secret-volume"},
                                                    {"name": "c", "mountPath": "/etc/configmap-volume"}]})
WRAPPED["spec"]["volumes"] = [{"name": "s", "secret": {"secretName": "conf-secret"}},
                              {"name": "c", "configMap": {"name": "conf-configmap"}}]
FINISHING["wrapped-volumes"] = WRAPPED


def subpath_pod(name: str, volume: dict, sub_path: str, mount_path: str = "/test/sub") -> dict:
    body = job_pod(name, ["cat", mount_path], container_extra={
        "volumeMounts": [{"name": "vol", "mountPath": mount_path, "subPath": sub_path}]})
    body["spec"]["volumes"] = [{"name": "vol", **volume}]
    return body


SUBPATHS = {
    "subpath-configmap": (subpath_pod("subpath-configmap", {"configMap": {"name": "conf-configmap"}}, "data-1"),
                          "value-1"),
    "subpath-configmap-over-file": (subpath_pod("subpath-configmap-over-file", {"configMap": {
        "name": "conf-configmap"}}, "data-1", "/etc/group"), "value-1"),
    "subpath-secret": (subpath_pod("subpath-secret", {"secret": {"secretName": "conf-secret"}}, "data-1"),
                       "value-1"),
    "subpath-downward": (subpath_pod("subpath-downward", {"downwardAPI": {"items": [
        {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}}]}}, "podname"), "subpath-downward"),
    "subpath-projected": (subpath_pod("subpath-projected", {"projected": {"sources": [
        {"configMap": {"name": "conf-configmap"}}]}}, "data-1"), "value-1"),
}
FINISHING.update({name: pod for name, (pod, _) in SUBPATHS.items()})


FINISHING["service-env"] = job_pod("service-env", ["env"])
INIT_OK = job_pod("init-never", ["/bin/true"], initContainers=[container(["/bin/true"], name="init1"),
                                                               container(["/bin/true"], name="init2")])
INIT_FAIL = job_pod("init-fails-never", ["/bin/true"], initContainers=[container(["/bin/false"], name="init1")])
FINISHING.update({"init-never": INIT_OK, "init-fails-never": INIT_FAIL})


# Long-running pods (restartPolicy Always), also created up front.
def long_running(name: str, command, grace: int | None = None, **container_extra) -> dict:
    spec = {"containers": [container(command, **container_extra)]}
    if grace is not None:
        # PID 1 of these (sh, httpd) ignores SIGTERM: a short grace period makes the kill after a
        # failed probe quick, so the restart does not wait out the default 30 s.
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


LIVENESS_TCP_DELAY = 5   # seconds for httpd to listen after the container starts, even on a loaded node
RUNNING = {
    "init-always": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "init-always"}, "spec": {
        "initContainers": [container(["/bin/true"], name="init1"), container(["/bin/true"], name="init2")],
        "containers": [container(["sleep", "3600"])]}},
    # the probe file goes after two seconds: liveness fails, the container is restarted
    "liveness-exec-restart": long_running(
        "liveness-exec-restart", SH + ["touch /tmp/health; sleep 2; rm -f /tmp/health; sleep 600"], grace=2,
        livenessProbe={"exec": {"command": ["cat", "/tmp/health"]}, "initialDelaySeconds": 1,
                       "periodSeconds": 1, "failureThreshold": 1}),
    # /healthz answers for two seconds, then 404s
    "liveness-http-restart": long_running(
        "liveness-http-restart", SH + ["mkdir -p /www && echo ok > /www/healthz && { (sleep 2; rm /www/healthz) & "
                                       "exec httpd -f -p 8080 -h /www; }"], grace=2,
        livenessProbe={"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 1,
                       "periodSeconds": 1, "failureThreshold": 1}),
    # httpd itself is the container's process: the port is open as soon as it runs
    "liveness-tcp-ok": long_running(
        "liveness-tcp-ok", ["httpd", "-f", "-p", "8080", "-h", "/"], grace=2,
        livenessProbe={"tcpSocket": {"port": 8080}, "initialDelaySeconds": LIVENESS_TCP_DELAY,
                       "periodSeconds": 1, "failureThreshold": 1}),
}
FINISHING.update(RUNNING)


@pytest.fixture(scope="module")
def node(tmp_path_factory, image_registry):
    agent_server = AgentServer(tmp_path_factory.mktemp("kc-conformance-pods"), image_registry)
    try:
        server = agent_server.start()
        server.kubectl("create", "namespace", NS)
        wait_for_default_service_account(server, NS)
        server.kubectl("create", "secret", "generic", "conf-secret", "--from-literal=data-1=value-1", "-n", NS)
        server.kubectl("create", "configmap", "conf-configmap", "--from-literal=data-1=value-1", "-n", NS)
        # the same name elsewhere, with another value: pods read their own namespace's
        server.kubectl("create", "namespace", NS + "-other")
        server.kubectl("create", "secret", "generic", "conf-secret", "--from-literal=data-1=other-value",
                       "-n", NS + "-other")
        server.kubectl("create", "-n", NS, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "fooservice"},
            "spec": {"selector": {"name": "serverpod"}, "ports": [{"port": 8765, "targetPort": 8080}]}}))
        for body in FINISHING.values():
            body["spec"]["nodeName"] = agent_server.node
        # one kubectl for all of them: a kubectl process each took a minute on a loaded node
        server.kubectl("create", "-n", NS, "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": list(FINISHING.values())}), timeout=180)
        yield agent_server
    finally:
        try:
            remove_pods_at_once(agent_server)
        finally:
            agent_server.cleanup()


def remove_pods_at_once(agent_server) -> None:
    """One delete-collection per namespace, then wait for the agent to let the pods go: the
    cleanup's `kubectl delete pods --all` sends a request per pod, which for ~90 pods took over a
    minute on a loaded node."""
    server = agent_server.server
    if server is None or server.process.poll() is not None:
        return
    for ns in (NS, NS + "-other"):
        server.kubectl("delete", "--raw", f"/api/v1/namespaces/{ns}/pods?gracePeriodSeconds=1", check=False)
    agent_server.wait_or_log(lambda: not server.kubectl("get", "pods", "-n", NS, "-o", "name").stdout.strip(),
                             120, what="the module's pods removed")


def finished(node, name: str) -> dict:
    def done():
        pod = node.server.kubectl_json("get", "pod", name, "-n", NS)
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None
    return node.wait_or_log(done, 90, what=f"{name} to finish")


def output(node, name: str) -> str:
    finished(node, name)
    return node.server.kubectl("logs", name, "-n", NS).stdout


def succeeded_with(node, name: str) -> str:
    pod = finished(node, name)
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    return node.server.kubectl("logs", name, "-n", NS).stdout


@pytest.mark.parametrize("name,expected", [("uid-65534", "65534"), ("container-ids", "1001 2002"),
                                           ("pod-ids", "1001 2002")], ids=["uid-65534", "container-level",
                                                                           "pod-level"])
def test_run_as_user_and_group(node, name, expected):
    assert succeeded_with(node, name).strip() == expected


def test_unprivileged_container_succeeds_without_privileges(node):
    assert "refused" in succeeded_with(node, "unprivileged")


def test_writable_root_filesystem(node):
    assert succeeded_with(node, "writable-root").strip() == "hi"


def test_read_only_root_filesystem_refuses_writes(node):
    out = succeeded_with(node, "readonly-root")
    assert "write-refused" in out and "Read-only file system" in out


def test_env_var_composed_from_others(node):
    assert "FOOBAR=foo-value;;bar-value" in succeeded_with(node, "env-compose").splitlines()


def test_env_var_expanded_in_command(node):
    assert succeeded_with(node, "env-command").strip() == "test-value: test-value"


def test_env_var_expanded_in_args(node):
    assert succeeded_with(node, "env-args").strip() == "args-value: test-value"


@pytest.mark.parametrize("name", ["env-from-secret", "env-from-configmap"])
def test_env_from_a_whole_source(node, name):
    assert "p-data-1=value-1" in succeeded_with(node, name).splitlines()


@pytest.mark.parametrize("variable", ["POD_UID", "HOST_IP", "HOST_IPS"])
def test_downward_api_env(node, variable):
    out = succeeded_with(node, "downward-env").splitlines()
    pod = finished(node, "downward-env")
    expected = {"POD_UID": pod["metadata"]["uid"], "HOST_IP": pod["status"]["hostIP"],
                "HOST_IPS": ",".join(i["ip"] for i in pod["status"]["hostIPs"])}[variable]
    assert expected and f"{variable}={expected}" in out


def test_failed_container_has_a_terminated_reason(node):
    pod = finished(node, "failing")
    assert pod["status"]["phase"] == "Failed" and len(pod["status"]["containerStatuses"]) == 1
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "Error" and terminated["exitCode"] == 1


def test_failed_pod_can_be_deleted(node):
    finished(node, "failing")
    node.server.kubectl("delete", "pod", "failing", "-n", NS, "--timeout=60s")
    assert node.server.kubectl("get", "pod", "failing", "-n", NS, check=False).returncode == 1


def test_stdout_and_stderr_go_to_the_logs(node):
    out = succeeded_with(node, "logging")
    assert "Hello World" in out and "to-stderr" in out


def test_host_aliases_are_written_to_etc_hosts(node):
    out = succeeded_with(node, "host-aliases")
    assert any(line.split() == ["123.45.67.89", "foo", "bar"] for line in out.splitlines()), out


@pytest.mark.parametrize("name,phase,message", [
    ("message-ok-from-logs", "Succeeded", None), ("message-failed-from-logs", "Failed", "DONE"),
    ("message-from-file", "Succeeded", "OK"), ("message-custom-path", "Succeeded", "DONE")],
    ids=["succeeded-from-logs", "failed-from-logs", "from-file", "custom-path-non-root"])
def test_termination_message(node, name, phase, message):
    pod = finished(node, name)
    assert pod["status"]["phase"] == phase
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated.get("message", "").strip() == (message or ""), terminated


# ---- a long-running pod, through kubectl -------------------------------------------

def test_kubectl_run_label_patch_status_and_replace(node):
    server = node.server
    # `sleep` as PID 1 ignores SIGTERM: a short grace period keeps the replacement below quick
    overrides = {"spec": {"nodeName": node.node, "terminationGracePeriodSeconds": 2}}
    server.kubectl("run", "e2e-test-pod", "-n", NS, "--image=busybox", "--restart=Never",
                   f"--overrides={json.dumps(overrides)}", "--", "sleep", "3600")

    def running():
        pod = server.kubectl_json("get", "pod", "e2e-test-pod", "-n", NS)
        return pod if pod["status"].get("phase") == "Running" else None
    pod = node.wait_or_log(running, 60, what="e2e-test-pod Running")
    assert [c["image"] for c in pod["spec"]["containers"]] == ["busybox"]
    assert ipaddress.ip_address(pod["status"]["hostIP"])

    server.kubectl("label", "pods", "e2e-test-pod", "testing-label=testing-label-value", "-n", NS)
    shown = server.kubectl("get", "pod", "e2e-test-pod", "-L", "testing-label", "-n", NS).stdout
    assert "testing-label-value" in shown and "TESTING-LABEL" in shown
    server.kubectl("label", "pods", "e2e-test-pod", "testing-label-", "-n", NS)
    assert "testing-label-value" not in server.kubectl("get", "pod", "e2e-test-pod", "-L", "testing-label",
                                                       "-n", NS).stdout

    patch = {"status": {"conditions": [{"type": "StatusPatched", "status": "True"}], "message": "Patched by e2e",
                        "reason": "E2E"}}
    # the patched pod as the API server answered it (the kubelet keeps writing its own status later)
    got = server.kubectl_json("patch", "pod", "e2e-test-pod", "-n", NS, "--subresource=status", "--type=merge",
                              "-p", json.dumps(patch))
    assert got["status"]["message"] == "Patched by e2e" and got["status"]["reason"] == "E2E"
    assert any(c["type"] == "StatusPatched" for c in got["status"]["conditions"])

    got["spec"]["containers"][0]["image"] = "nginx"
    for key in ("resourceVersion", "managedFields"):
        got["metadata"].pop(key, None)
    server.kubectl("replace", "-n", NS, "-f", "-", input=json.dumps(got))
    assert server.kubectl_json("get", "pod", "e2e-test-pod", "-n", NS)["spec"]["containers"][0]["image"] == "nginx"
    node.wait_or_log(lambda: "nginx" in server.kubectl_json("get", "pod", "e2e-test-pod", "-n", NS)["status"][
        "containerStatuses"][0]["image"], 60, what="the container replaced with the new image")


def test_secret_is_base64_in_the_api(node):
    secret = node.server.kubectl_json("get", "secret", "conf-secret", "-n", NS)
    assert base64.b64decode(secret["data"]["data-1"]) == b"value-1"


@pytest.mark.parametrize("name", list(VOLUMES))
def test_volume_file_mode_and_content(node, name):
    _, mode, content = VOLUMES[name]
    lines = succeeded_with(node, name).splitlines()
    assert lines[0] == mode and lines[1] == content, lines


@pytest.mark.parametrize("name", list(TWO_MOUNTS))
def test_one_source_in_two_volumes(node, name):
    assert succeeded_with(node, name).strip() == "value-1value-1"  # the files end without a newline


def test_projected_volume_with_several_sources(node):
    assert succeeded_with(node, "projected-all").strip() == "value-1value-1projected-all"


def test_projected_downward_api_default_and_item_modes(node):
    for name in ("projected-downward-mode-0400", "projected-downward-item-mode-0400"):
        lines = succeeded_with(node, name).splitlines()
        assert lines == ["-r--------", name], lines


def check_empty_dir(node, name: str) -> None:
    _, mode, medium = EMPTY_DIRS[name]
    lines = succeeded_with(node, name).splitlines()
    assert lines[0] == mode, lines
    if medium == "memory":
        assert lines[1] == "tmpfs", lines
    else:
        assert lines[1] != "tmpfs", lines


@pytest.mark.parametrize("mode", ["0644", "0666", "0777"])
def test_empty_dir_default_medium_file_modes_for_root_and_non_root(node, mode):
    for user in ("root", "non-root"):
        check_empty_dir(node, f"emptydir-default-{mode}-{user}")


@pytest.mark.parametrize("name", [n for n in EMPTY_DIRS if "-memory-" in n or n.endswith("-dir-root")])
def test_empty_dir_modes_and_medium(node, name):
    check_empty_dir(node, name)


def test_empty_dir_is_shared_between_containers(node):
    finished(node, "emptydir-shared")
    out = node.server.kubectl("logs", "emptydir-shared", "-c", "c", "-n", NS).stdout
    assert out.strip() == "Hello from the busy-box sub-container"


def test_secret_and_configmap_volumes_side_by_side(node):
    assert succeeded_with(node, "wrapped-volumes").strip() == "value-1value-1"


@pytest.mark.parametrize("name", ["subpath-secret", "subpath-downward", "subpath-projected"])
def test_subpath_of_an_atomic_writer_volume(node, name):
    assert succeeded_with(node, name).strip() == SUBPATHS[name][1]


def test_subpath_of_a_configmap_volume_also_over_an_existing_file(node):
    for name in ("subpath-configmap", "subpath-configmap-over-file"):
        assert succeeded_with(node, name).strip() == SUBPATHS[name][1]


def test_service_environment_variables(node):
    ip = node.server.kubectl_json("get", "svc", "fooservice", "-n", NS)["spec"]["clusterIP"]
    env = set(succeeded_with(node, "service-env").splitlines())
    assert {f"FOOSERVICE_SERVICE_HOST={ip}", "FOOSERVICE_SERVICE_PORT=8765", f"FOOSERVICE_PORT=tcp://{ip}:8765",
            f"FOOSERVICE_PORT_8765_TCP=tcp://{ip}:8765", "FOOSERVICE_PORT_8765_TCP_PROTO=tcp",
            "FOOSERVICE_PORT_8765_TCP_PORT=8765", f"FOOSERVICE_PORT_8765_TCP_ADDR={ip}"} <= env


def test_invalid_sysctls_are_refused(node):
    body = job_pod("bad-sysctls", ["/bin/true"], securityContext={"sysctls": [
        {"name": "kernel.shm_rmid_forced", "value": "1"}, {"name": "foo-", "value": "bar"},
        {"name": "bar..", "value": "42"}]})
    refused = node.server.kubectl("create", "-n", NS, "-f", "-", input=json.dumps(body), check=False)
    assert refused.returncode != 0
    assert "foo-" in refused.stderr and "bar.." in refused.stderr and "kernel.shm_rmid_forced" not in refused.stderr
    assert node.server.kubectl("get", "pod", "bad-sysctls", "-n", NS, check=False).returncode == 1


def test_init_containers_run_before_the_app_with_restart_never(node):
    pod = finished(node, "init-never")
    assert pod["status"]["phase"] == "Succeeded"
    assert [s["state"]["terminated"]["reason"] for s in pod["status"]["initContainerStatuses"]] == \
        ["Completed", "Completed"]
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


def test_failed_init_container_stops_the_app_with_restart_never(node):
    pod = finished(node, "init-fails-never")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    app = pod["status"]["containerStatuses"][0]
    assert "running" not in app["state"] and "terminated" not in app["state"] and not app.get("started")


def status_of(node, name: str) -> dict:
    return node.server.kubectl_json("get", "pod", name, "-n", NS)["status"]


def test_init_containers_run_before_the_app_with_restart_always(node):
    def running():
        status = status_of(node, "init-always")
        return status if status.get("phase") == "Running" and status["containerStatuses"][0].get("ready") else None
    status = node.wait_or_log(running, 60, what="init-always Running")
    assert [s["state"]["terminated"]["reason"] for s in status["initContainerStatuses"]] == ["Completed"] * 2
    assert "running" in status["containerStatuses"][0]["state"]


def events_of(node, name: str) -> str:
    return node.server.kubectl("get", "events", "-n", NS, "--field-selector", f"involvedObject.name={name}").stdout


@pytest.mark.parametrize("name", ["liveness-exec-restart", "liveness-http-restart"])
def test_failing_liveness_probe_restarts_the_container(node, name):
    def restarted():
        statuses = status_of(node, name).get("containerStatuses") or [{}]
        return statuses[0].get("restartCount", 0) >= 1
    node.wait_or_log(restarted, 60, what=f"{name} restarted")

    # Events are recorded asynchronously, one at a time: they may trail the status.
    shown = {}

    def events():
        shown["out"] = events_of(node, name)
        return "Liveness probe failed" in shown["out"] and "Killing" in shown["out"]
    try:
        node.wait_or_log(events, 30, what=f"{name}'s probe and kill events")
    except AssertionError as e:
        statuses = json.dumps(status_of(node, name).get("containerStatuses"), indent=1)
        raise AssertionError(f"{e}\n--- events ---\n{shown.get('out')}\n--- container ---\n{statuses}") from None


def test_passing_tcp_liveness_probe_never_restarts(node):
    def running():
        status = status_of(node, "liveness-tcp-ok")
        return status if status.get("phase") == "Running" and status["containerStatuses"][0].get("started") else None
    status = node.wait_or_log(running, 60, what="liveness-tcp-ok Running")
    started = datetime.datetime.fromisoformat(
        status["containerStatuses"][0]["state"]["running"]["startedAt"].replace("Z", "+00:00")).timestamp()
    # "no restart" means something once the probe has run a few periods (the pod started long ago
    # when the module's other tests ran first; then this waits for nothing)
    probed_until = started + LIVENESS_TCP_DELAY + 5 + 1
    wait_for(lambda: time.time() >= probed_until, max(probed_until - time.time(), 0) + 5, what="five probe periods")
    after = status_of(node, "liveness-tcp-ok")["containerStatuses"][0]
    assert after["restartCount"] == 0, (json.dumps(after, indent=1), events_of(node, "liveness-tcp-ok"))
    assert "Liveness probe failed" not in events_of(node, "liveness-tcp-ok")
