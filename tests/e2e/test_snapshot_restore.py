"""Snapshot and restore, as an operator does it: `k8py etcd-snapshot save` while clients write,
later changes, `k8py server --cluster-reset --cluster-reset-restore-path`, restart. The API state
is the snapshot's, resourceVersions keep growing (an old one gets 410), and the node's kubelet
reconciles: the pod created after the snapshot stops, the pod deleted after it runs again."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

from tests.e2e.conftest import REPO, TOKEN, admin_ssl_context, free_port, start_server, wait_for

NODE = "snap-node"
# Pods are bound by nodeName here: the server needs no scheduler, DNS, proxy or provisioners.
SERVER_FLAGS = ["--etcd-disable-snapshots", *[flag for component in ("scheduler", "dns", "proxy", "local-storage",
                                                                    "shared-folder")
                                              for flag in ("--disable", component)]]


def _k8py(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "k8py", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


class _Writer(threading.Thread):
    """Creates ConfigMaps w-0, w-1, ... until stopped; remembers each acknowledged resourceVersion."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.url = f"{server.url}/api/v1/namespaces/default/configmaps"
        self.ctx = admin_ssl_context(server.data_dir)
        self.acknowledged: dict[str, int] = {}
        self.stopped = threading.Event()

    def run(self):
        i = 0
        while not self.stopped.is_set():
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w-{i}"}}).encode()
            req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                self.acknowledged[f"w-{i}"] = int(json.load(r)["metadata"]["resourceVersion"])
            i += 1


def _pod(name: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1,
                                "containers": [{"name": "c", "image": "busybox"}]}})


def _container_id(server, name: str) -> str | None:
    result = server.kubectl("get", "pod", name, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    pod = json.loads(result.stdout)
    statuses = pod["status"].get("containerStatuses") or []
    running = pod["status"].get("phase") == "Running" and statuses and "running" in statuses[0]["state"]
    return statuses[0].get("containerID") if running else None


def _stopped_by_kubelet(server, pod: str) -> bool:
    """The kubelet said it stopped the pod's container (its Killing event)."""
    events = server.kubectl_json("get", "events", "--field-selector",
                                 f"involvedObject.name={pod},reason=Killing")["items"]
    return any(e["source"].get("component") == "kubelet" and e["source"].get("host") == NODE for e in events)


def _list_rv(server) -> str:
    return json.loads(server.kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps?limit=1").stdout
                      )["metadata"]["resourceVersion"]


def _watch_from(server, resource_version: str) -> tuple[int, str]:
    url = (f"{server.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={resource_version}"
           f"&timeoutSeconds=2")
    try:
        with urllib.request.urlopen(url, context=admin_ssl_context(server.data_dir), timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_snapshot_under_writes_then_restore_brings_the_cluster_back(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir, extra=SERVER_FLAGS)
    agent_log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen([sys.executable, "-m", "k8py", "agent", "--server", server.url, "--token", TOKEN,
                              "--runtime", "simulated", "--node-name", NODE, "--node-ip", "127.0.0.1",
                              "--kubelet-port", str(free_port()), "--data-dir", str(tmp_path / "agent")],
                             stdout=agent_log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        server.kubectl("create", "configmap", "kept", "--from-literal=a=1")
        server.kubectl("create", "-f", "-", input=_pod("deleted-later"))
        first_container = wait_for(lambda: _container_id(server, "deleted-later"), timeout=60,
                                   what="pod deleted-later Running")

        writer = _Writer(server)
        writer.start()
        wait_for(lambda: len(writer.acknowledged) >= 20, timeout=30, what="20 writes")
        saved = _k8py("etcd-snapshot", "save", "--data-dir", str(data_dir), "--name", "story")
        assert saved.returncode == 0, saved.stderr
        count = len(writer.acknowledged)
        wait_for(lambda: len(writer.acknowledged) >= count + 10, timeout=30, what="writes after the save")
        writer.stopped.set()
        writer.join(30)
        snapshot_revision = int(re.search(r"revision (\d+)", saved.stdout).group(1))
        listed = _k8py("etcd-snapshot", "ls", "--data-dir", str(data_dir))
        (row,) = [line.split() for line in listed.stdout.splitlines()[1:]]
        assert row[0].startswith("story-") and row[1].startswith("file://") and int(row[2]) > 0
        snapshot_file = row[1][len("file://"):]

        # After the snapshot: one ConfigMap and one pod go, one of each comes.
        server.kubectl("delete", "configmap", "kept")
        server.kubectl("delete", "pod", "deleted-later", timeout=90)
        server.kubectl("create", "configmap", "created-later")
        server.kubectl("create", "-f", "-", input=_pod("created-later"))
        wait_for(lambda: _container_id(server, "created-later"), timeout=60, what="pod created-later Running")
        assert _stopped_by_kubelet(server, "deleted-later") and not _stopped_by_kubelet(server, "created-later")
        old_rv = _list_rv(server)
        # The server dies (kill -9: its last writes are still in the WAL, not the main database file).
        server.stop(signal.SIGKILL)

        # A truncated copy is refused and the datastore is left as it was.
        db = data_dir / "server" / "db" / "state.db"
        before = db.read_bytes()
        truncated = tmp_path / "truncated"
        truncated.write_bytes(open(snapshot_file, "rb").read()[:4096 * 3])
        refused = _k8py("server", "--data-dir", str(data_dir), "--cluster-reset",
                        "--cluster-reset-restore-path", str(truncated))
        assert refused.returncode == 1 and "truncated" in refused.stderr and db.read_bytes() == before

        restored = _k8py("server", "--data-dir", str(data_dir), "--cluster-reset",
                         "--cluster-reset-restore-path", snapshot_file)
        assert restored.returncode == 0, restored.stderr
        assert "restart without --cluster-reset flag now" in restored.stdout
        server = start_server(data_dir, port=server.port, extra=SERVER_FLAGS)

        names = {cm["metadata"]["name"]: int(cm["metadata"]["resourceVersion"])
                 for cm in server.kubectl_json("get", "configmaps")["items"]}
        assert "kept" in names and "created-later" not in names
        writes = {name for name in names if name.startswith("w-")}
        assert writes == {n for n, rv in writer.acknowledged.items() if rv <= snapshot_revision}
        assert 20 <= len(writes) < len(writer.acknowledged)
        server.kubectl("create", "configmap", "after-restore")
        new_rv = int(server.kubectl_json("get", "configmap", "after-restore")["metadata"]["resourceVersion"])
        assert new_rv > int(old_rv)
        status, body = _watch_from(server, old_rv)
        assert status == 410 or '"code":410' in body.replace(" ", ""), (status, body[:300])
        assert "Expired" in body or "too old" in body

        # The kubelet relists after its 410: created-later stops, deleted-later runs again.
        assert server.kubectl("get", "pod", "created-later", check=False).returncode != 0
        wait_for(lambda: _stopped_by_kubelet(server, "created-later"), timeout=60,
                 what="the kubelet stopping created-later")
        second = wait_for(lambda: _container_id(server, "deleted-later"), timeout=60,
                          what="pod deleted-later Running again")
        assert second != first_container
    finally:
        agent.terminate()
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        server.stop()
