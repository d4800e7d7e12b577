"""Restarting the server, also with kill -9 under load, loses no acknowledged write."""

from __future__ import annotations

import asyncio
import json
import signal

import aiohttp

from tests.e2e.conftest import admin_ssl_context, start_server


def _session(server) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(server.url, connector=aiohttp.TCPConnector(ssl=admin_ssl_context(server.data_dir),
                                                                            limit=0))


async def _write_until_killed(server, acknowledged: list[str], writers: int = 32) -> None:
    killed = asyncio.Event()

    async def writer(w: int):
        async with _session(server) as http:
            i = 0
            while not killed.is_set():
                name = f"w{w}-{i}"
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": str(i)}}
                try:
                    async with http.post("/api/v1/namespaces/default/configmaps", data=json.dumps(body),
                                         headers={"Content-Type": "application/json"}) as r:
                        if r.status == 201:
                            acknowledged.append(name)
                except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError):
                    return
                i += 1

    async def killer():
        while len(acknowledged) < 400:
            await asyncio.sleep(0.01)
        server.process.send_signal(signal.SIGKILL)
        killed.set()
    await asyncio.gather(killer(), *(writer(w) for w in range(writers)))


def test_restart_and_kill9_keep_acknowledged_writes(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    try:
        server.kubectl("create", "configmap", "before-restart", "--from-literal=a=1")
        rv_before = int(server.kubectl_json("get", "cm", "before-restart")["metadata"]["resourceVersion"])
        server.stop()  # graceful
        server = start_server(data_dir, port=server.port)
        assert server.kubectl_json("get", "cm", "before-restart")["data"] == {"a": "1"}

        acknowledged: list[str] = []
        asyncio.run(_write_until_killed(server, acknowledged))
        server.process.wait(timeout=10)
        assert len(acknowledged) >= 400

        server = start_server(data_dir, port=server.port)
        stored = {item["metadata"]["name"]: item for item in
                  server.kubectl_json("get", "cm", "-n", "default")["items"]}
        missing = [name for name in acknowledged if name not in stored]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        highest = max(int(item["metadata"]["resourceVersion"]) for item in stored.values())
        assert highest > rv_before
        server.kubectl("create", "configmap", "after-kill", "--from-literal=b=2")
        rv_after = int(server.kubectl_json("get", "cm", "after-kill")["metadata"]["resourceVersion"])
        assert rv_after > highest, "resourceVersions must continue above the old ones"
    finally:
        server.stop()
