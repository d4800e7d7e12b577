"""The API server on a real etcd (`--datastore-endpoint`): the key layout etcdctl sees,
resourceVersions that are etcd's revisions, the API's conditional writes, paging and watch
semantics, compaction seen as 410, and the seed's story: `etcdctl del` of a pod reaches every
watcher as DELETED and the ReplicaSet controller replaces the pod.

One etcd and one server for the module (no agent: pods stay Pending, which the controller
does not mind)."""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading

import pytest

from tests.e2e.conftest import admin_ssl_context, start_server, wait_for
from tests.etcd_server import start_etcd


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    server = start_etcd(tmp_path_factory.mktemp("etcd-e2e"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(etcd, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("k8py-on-etcd"), extra=["--datastore-endpoint", etcd.endpoint])
    yield srv
    srv.stop()


def api(server, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=admin_ssl_context(server.data_dir),
                                       timeout=30)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


class Watch:
    """A raw API watch read on a thread: events land in a queue as (type, object)."""

    def __init__(self, server, path: str):
        self.events: queue.Queue = queue.Queue()
        self.conn = http.client.HTTPSConnection("127.0.0.1", server.port,
                                                context=admin_ssl_context(server.data_dir), timeout=60)
        self.conn.request("GET", path)
        self.sock = self.conn.sock
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.read()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.response:
                if line.strip():
                    event = json.loads(line)
                    self.events.put((event["type"], event["object"]))
        except (OSError, ValueError, AttributeError, http.client.HTTPException):  # closed under us
            pass

    def next_matching(self, predicate, timeout: float = 30) -> tuple[str, dict]:
        while True:
            event = self.events.get(timeout=timeout)
            if predicate(*event):
                return event

    def close(self) -> None:
        # Shut the socket first: the reader thread blocked in recv() holds the response's
        # buffer, which close() alone would wait for.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def configmap(name: str, **data) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


REPLICASET = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox, command: [sleep, "3600"]}]}
"""


def pod_names(server, namespace) -> set[str]:
    items = server.kubectl_json("get", "pods", "-n", namespace, "-l", "app=web")["items"]
    return {p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp")}


def test_etcdctl_del_of_a_pod_reaches_every_watcher_and_the_controller_replaces_it(etcd, server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=REPLICASET)
    names = wait_for(lambda: (n := pod_names(server, namespace)) and len(n) == 2 and n, timeout=30,
                     what="two pods of the ReplicaSet")
    # The key layout is upstream's: etcdctl lists the pods under /registry/pods/<namespace>/.
    keys = etcd.etcdctl("get", "--prefix", f"/registry/pods/{namespace}/", "--keys-only").stdout.split()
    assert set(keys) == {f"/registry/pods/{namespace}/{name}" for name in names}

    rv = api(server, "GET", f"/api/v1/namespaces/{namespace}/pods")[1]["metadata"]["resourceVersion"]
    watchers = [Watch(server, f"/api/v1/namespaces/{namespace}/pods?watch=1&resourceVersion={rv}"),
                Watch(server, f"/api/v1/pods?watch=1&resourceVersion={rv}&labelSelector=app%3Dweb")]
    victim = sorted(names)[0]
    try:
        assert etcd.etcdctl("del", f"/registry/pods/{namespace}/{victim}").stdout.strip() == "1"
        for watcher in watchers:
            kind, obj = watcher.next_matching(lambda t, o: o["metadata"]["name"] == victim)
            assert kind == "DELETED"
            assert int(obj["metadata"]["resourceVersion"]) > int(rv)
    finally:
        for watcher in watchers:
            watcher.close()
    assert server.kubectl("get", "pod", victim, "-n", namespace, check=False).returncode != 0
    replaced = wait_for(lambda: (n := pod_names(server, namespace)) and len(n) == 2 and victim not in n and n,
                        timeout=30, what="the ReplicaSet to replace the deleted pod")
    assert replaced & names == names - {victim}


def test_crud_conflicts_and_resource_versions_are_etcds(etcd, server, namespace):
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    status, created = api(server, "POST", base, configmap("c", a="1"))
    assert status == 201
    stored = json.loads(etcd.etcdctl("get", f"/registry/configmaps/{namespace}/c", "-w", "json").stdout)
    assert created["metadata"]["resourceVersion"] == str(stored["kvs"][0]["mod_revision"])
    assert api(server, "POST", base, configmap("c"))[0] == 409  # AlreadyExists: create-if-absent
    stale = dict(created, data={"a": "2"})
    status, updated = api(server, "PUT", f"{base}/c", stale)
    assert status == 200 and int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    status, conflict = api(server, "PUT", f"{base}/c", dict(stale, data={"a": "3"}))  # the old resourceVersion
    assert status == 409 and conflict["reason"] == "Conflict"
    assert api(server, "GET", f"{base}/c")[1]["data"] == {"a": "2"}
    # A delete with a stale resourceVersion precondition is refused; a current one goes.
    precondition = {"kind": "DeleteOptions", "apiVersion": "v1",
                    "preconditions": {"resourceVersion": created["metadata"]["resourceVersion"]}}
    assert api(server, "DELETE", f"{base}/c", precondition)[0] == 409
    precondition["preconditions"]["resourceVersion"] = updated["metadata"]["resourceVersion"]
    assert api(server, "DELETE", f"{base}/c", precondition)[0] == 200
    assert api(server, "GET", f"{base}/c")[0] == 404
    assert etcd.etcdctl("get", f"/registry/configmaps/{namespace}/c").stdout == ""


def test_paged_list_and_watch_resume(etcd, server, namespace):
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(5):
        assert api(server, "POST", base, configmap(f"p{i}"))[0] == 201
    names, token = [], ""
    while True:
        status, page = api(server, "GET", f"{base}?limit=2" + (f"&continue={token}" if token else ""))
        assert status == 200 and len(page["items"]) <= 2
        names += [item["metadata"]["name"] for item in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert [n for n in names if n != "kube-root-ca.crt"] == [f"p{i}" for i in range(5)]

    rv = api(server, "GET", base)[1]["metadata"]["resourceVersion"]
    api(server, "PUT", f"{base}/p0", dict(api(server, "GET", f"{base}/p0")[1], data={"x": "1"}))
    api(server, "DELETE", f"{base}/p1")
    watcher = Watch(server, f"{base}?watch=1&resourceVersion={rv}")
    try:
        assert watcher.next_matching(lambda t, o: True)[0:1] == ("MODIFIED",)
        kind, obj = watcher.next_matching(lambda t, o: True)
        assert (kind, obj["metadata"]["name"]) == ("DELETED", "p1")
    finally:
        watcher.close()


def test_cluster_init_runs_supervises_and_stops_its_own_etcd(tmp_path):
    """`--cluster-init`: the server starts an etcd member (TLS from the cluster CA, client
    certificates required), stores in it, starts it again when it dies, and stops it on exit."""
    import os
    import signal as signals

    from tests.etcd_server import Etcd, _free_port
    client_port = _free_port()
    data_dir = tmp_path / "server-with-etcd"
    srv = start_server(data_dir, extra=["--cluster-init", "--etcd-client-port", str(client_port),
                                        "--etcd-peer-port", str(_free_port()), "--disable", "controller-manager"])
    try:
        tls = data_dir / "server" / "tls"
        etcdctl = Etcd(None, data_dir, client_port, (tls / "server-ca.crt", tls / "etcd-client.crt",
                                                     tls / "etcd-client.key"))
        srv.kubectl("create", "configmap", "kept", "-n", "default", "--from-literal=a=1")
        assert etcdctl.etcdctl("get", "/registry/configmaps/default/kept", "--keys-only").stdout.split() == [
            "/registry/configmaps/default/kept"]
        assert (data_dir / "server" / "db" / "etcd" / "member").is_dir()

        def etcd_pid():
            for pid in os.listdir("/proc"):
                try:
                    cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                except (OSError, ValueError):
                    continue
                if cmdline[0].endswith(b"etcd") and str(data_dir).encode() in b" ".join(cmdline):
                    if int(open(f"/proc/{pid}/stat").read().split()[3]) == srv.process.pid:
                        return int(pid)
            return None
        first = etcd_pid()
        assert first
        os.kill(first, signals.SIGKILL)
        second = wait_for(lambda: (p := etcd_pid()) != first and p, timeout=60, what="etcd to be restarted")
        wait_for(lambda: srv.kubectl("create", "configmap", "after", "-n", "default", check=False).returncode == 0,
                 timeout=60, interval=0.3, what="writes to work again")
        assert srv.kubectl_json("get", "configmap", "kept", "-n", "default")["data"] == {"a": "1"}
    finally:
        srv.stop()
    assert not os.path.exists(f"/proc/{second}") or open(f"/proc/{second}/stat").read().split()[2] == "Z"
