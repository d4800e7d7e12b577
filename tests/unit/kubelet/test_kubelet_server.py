"""The kubelet HTTPS API against a fake runtime whose containers are local
processes: logs, exec, attach and port-forward over the real wire protocols."""

from __future__ import annotations

import asyncio
import datetime
import os
import secrets
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest

from k8py.apimachinery import certs
from k8py.apiserver import pki as pki_mod
from k8py.kubelet.runtime.interface import Sandbox
from k8py.kubelet.server import KubeletServer
from k8py.kubelet.streams import channels, spdy

from .fake_runtime import FakeRuntime

POD = {"metadata": {"name": "web", "namespace": "default", "uid": "uid-web"},
       "spec": {"containers": [{"name": "app"}, {"name": "side"}]},
       "status": {"containerStatuses": [{"name": "side", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}


def cri_line(stream: str, text: str, ts: datetime.datetime, partial: bool = False) -> str:
    stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
    return f"{stamp} {stream} {'P' if partial else 'F'} {text}\n"


@pytest.fixture
async def kubelet(tmp_path):
    runtime = FakeRuntime()
    # a host-network sandbox: port-forward reaches 127.0.0.1 of this machine
    runtime.sandboxes.append(Sandbox(id="sb", pod_uid="uid-web", netns_path=None, ipc_ns_path=None,
                                     uts_ns_path=None, pid_ns_path=None, cgroup_parent=""))
    pods = {("default", "web"): POD}
    server = KubeletServer(runtime, lambda ns, name: pods.get((ns, name)), port=0)
    await server.start()
    session = aiohttp.ClientSession()
    base = f"http://127.0.0.1:{server.port}"
    yield runtime, base, session, tmp_path
    await session.close()
    await server.stop()
    await runtime.cleanup()


def write_log(path: Path, lines: list[str]) -> None:
    with open(path, "a") as f:
        f.writelines(lines)


async def get_text(session, url) -> tuple[int, str]:
    async with session.get(url) as r:
        return r.status, await r.text()


# ---- logs ------------------------------------------------------------------

async def test_logs_options(kubelet):
    runtime, base, session, tmp = kubelet
    log = tmp / "app.log"
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    now = datetime.datetime.now(datetime.timezone.utc)
    write_log(log, [cri_line("stdout", "one", old), cri_line("stderr", "two", old),
                    cri_line("stdout", "thr", now, partial=True), cri_line("stdout", "ee", now),
                    cri_line("stdout", "four", now)])
    runtime.add_container(POD, "app", str(log))
    url = f"{base}/containerLogs/default/web/app"
    assert await get_text(session, url) == (200, "one\ntwo\nthree\nfour\n")
    assert await get_text(session, url + "?tailLines=2") == (200, "three\nfour\n")
    assert await get_text(session, url + "?tailLines=0") == (200, "")
    assert await get_text(session, url + "?sinceSeconds=60") == (200, "three\nfour\n")
    assert await get_text(session, url + "?limitBytes=6") == (200, "one\ntw")
    status, text = await get_text(session, url + "?timestamps=true&tailLines=1")
    assert status == 200 and text.endswith("123Z four\n") and text[:4].isdigit()


async def test_logs_previous_and_errors(kubelet):
    runtime, base, session, tmp = kubelet
    (tmp / "a0.log").write_text(cri_line("stdout", "first run", datetime.datetime.now()))
    (tmp / "a1.log").write_text(cri_line("stdout", "second run", datetime.datetime.now()))
    url = f"{base}/containerLogs/default/web/app"
    status, body = await get_text(session, url + "?previous=true")
    assert status == 400 and orjson.loads(body)["message"] == 'previous terminated container "app" in pod "web" not found'
    runtime.add_container(POD, "app", str(tmp / "a0.log"), state="exited", restart_count=0)
    runtime.add_container(POD, "app", str(tmp / "a1.log"), restart_count=1)
    assert await get_text(session, url) == (200, "second run\n")
    assert await get_text(session, url + "?previous=true") == (200, "first run\n")
    status, body = await get_text(session, f"{base}/containerLogs/default/web/side")
    assert status == 400
    assert orjson.loads(body)["message"] == 'container "side" in pod "web" is waiting to start: ImagePullBackOff'
    status, body = await get_text(session, f"{base}/containerLogs/default/web/nope")
    assert status == 400 and orjson.loads(body)["message"] == "container nope is not valid for pod web"
    status, body = await get_text(session, f"{base}/containerLogs/default/missing/app")
    assert status == 404 and orjson.loads(body)["reason"] == "NotFound"
    status, body = await get_text(session, url + "?tailLines=x")
    assert status == 400 and orjson.loads(body)["kind"] == "Status"


async def test_logs_follow_streams_until_the_container_stops(kubelet):
    runtime, base, session, tmp = kubelet
    log = tmp / "f.log"
    write_log(log, [cri_line("stdout", "before", datetime.datetime.now())])
    cid = runtime.add_container(POD, "app", str(log))
    async with session.get(f"{base}/containerLogs/default/web/app?follow=true") as r:
        assert await asyncio.wait_for(r.content.readline(), 5) == b"before\n"
        write_log(log, [cri_line("stdout", "after", datetime.datetime.now())])
        assert await asyncio.wait_for(r.content.readline(), 5) == b"after\n"
        # rotation: the runtime renames the file and starts a new one; lines written to the old
        # file just before the rename still arrive, then the new file's
        write_log(log, [cri_line("stdout", "last-in-old", datetime.datetime.now())])
        os.rename(log, tmp / "f.log.1")
        write_log(log, [cri_line("stdout", "rotated", datetime.datetime.now())])
        assert await asyncio.wait_for(r.content.readline(), 5) == b"last-in-old\n"
        assert await asyncio.wait_for(r.content.readline(), 5) == b"rotated\n"
        write_log(log, [cri_line("stdout", "final", datetime.datetime.now())])
        runtime.containers[cid].state = "exited"
        # the last line written before the container stopped arrives, then the stream ends
        assert await asyncio.wait_for(r.content.read(), 5) == b"final\n"


# ---- exec / attach ----------------------------------------------------------

async def collect(ws) -> dict[int, bytes]:
    got: dict[int, bytes] = {}
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.BINARY:
            got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
    return got


@pytest.mark.parametrize("protocol", [channels.V5, channels.V4])
async def test_exec_output_and_exit_code(kubelet, protocol):
    runtime, base, session, _ = kubelet
    runtime.add_container(POD, "app")
    url = (f"{base}/exec/default/web/app?command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262%3B+exit+3"
           "&stdout=true&stderr=true")
    async with session.ws_connect(url, protocols=(channels.V5, channels.V4) if protocol == channels.V5
                                  else (channels.V4,)) as ws:
        assert ws.protocol == protocol
        got = await asyncio.wait_for(collect(ws), 10)
    assert got[channels.STDOUT] == b"out\n" and got[channels.STDERR] == b"err\n"
    status = orjson.loads(got[channels.ERROR])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_exec_stdin_closed_with_v5_close_channel(kubelet):
    runtime, base, session, _ = kubelet
    runtime.add_container(POD, "app")
    url = f"{base}/exec/default/web/app?command=cat&stdin=true&stdout=true&stderr=true"
    async with session.ws_connect(url, protocols=(channels.V5,)) as ws:
        await ws.send_bytes(channels.frame(channels.STDIN, b"hello "))
        await ws.send_bytes(channels.frame(channels.STDIN, b"world"))
        await ws.send_bytes(channels.close_frame(channels.STDIN))
        got = await asyncio.wait_for(collect(ws), 10)
    assert got[channels.STDOUT] == b"hello world"
    assert orjson.loads(got[channels.ERROR]) == {"metadata": {}, "status": "Success"}


async def test_exec_tty_and_resize(kubelet):
    runtime, base, session, _ = kubelet
    runtime.add_container(POD, "app")
    url = f"{base}/exec/default/web/app?command=sh&command=-c&command=read+x%3B+stty+size&stdin=true&stdout=true&tty=true"
    async with session.ws_connect(url, protocols=(channels.V5,)) as ws:
        await ws.send_bytes(channels.frame(channels.RESIZE, b'{"Width":100,"Height":24}'))
        await ws.send_bytes(channels.frame(channels.STDIN, b"go\n"))
        got = await asyncio.wait_for(collect(ws), 10)
    assert b"24 100" in got[channels.STDOUT]
    assert channels.STDERR not in got
    assert orjson.loads(got[channels.ERROR])["status"] == "Success"


async def test_attach_carries_the_containers_stdio(kubelet):
    runtime, base, session, _ = kubelet
    runtime.add_container(POD, "app", attach_argv=["sh", "-c", "read line; echo got $line"])
    async with session.ws_connect(f"{base}/attach/default/web/app?stdin=true&stdout=true&stderr=true",
                                  protocols=(channels.V5,)) as ws:
        await ws.send_bytes(channels.frame(channels.STDIN, b"ping\n"))
        got = await asyncio.wait_for(collect(ws), 10)
    assert got[channels.STDOUT] == b"got ping\n"


async def test_exec_refusals_are_status_errors(kubelet):
    runtime, base, session, _ = kubelet
    cid = runtime.add_container(POD, "app")
    async with session.get(f"{base}/exec/default/web/app?command=ls&stdout=true") as r:
        assert r.status == 400 and "WebSocket" in (await r.json())["message"]
    runtime.containers[cid].state = "exited"
    async with session.get(f"{base}/exec/default/web/app?command=ls&stdout=true") as r:
        assert r.status == 400 and (await r.json())["message"] == \
            'unable to upgrade connection: container not found ("app")'
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await session.ws_connect(f"{base}/exec/default/web/app?command=ls&stdout=true", protocols=(channels.V5,))
    assert err.value.status == 400
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await session.ws_connect(f"{base}/exec/default/web/app?stdout=true", protocols=(channels.V5,))
    assert err.value.status == 400


# ---- port-forward -----------------------------------------------------------

@pytest.fixture
async def echo_server():
    async def handle(reader, writer):
        while data := await reader.read(65536):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_port_forward_v4_channels(kubelet, echo_server):
    runtime, base, session, _ = kubelet
    async with session.ws_connect(f"{base}/portForward/default/web?ports={echo_server}",
                                  protocols=("v4.channel.k8s.io",)) as ws:
        first = [await asyncio.wait_for(ws.receive_bytes(), 5) for _ in range(2)]
        prefix = echo_server.to_bytes(2, "little")
        assert sorted(first) == [b"\x00" + prefix, b"\x01" + prefix]
        await ws.send_bytes(b"\x00hi")
        assert await asyncio.wait_for(ws.receive_bytes(), 5) == b"\x00echo:hi"


async def test_port_forward_v4_reports_refused_port(kubelet):
    runtime, base, session, _ = kubelet
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    async with session.ws_connect(f"{base}/portForward/default/web?ports={closed_port}",
                                  protocols=("v4.channel.k8s.io",)) as ws:
        frames = [await asyncio.wait_for(ws.receive_bytes(), 5) for _ in range(3)]
    assert frames[2][0] == 1 and b"error forwarding port" in frames[2]


class SpdyClient:
    """The client half of kubectl's tunnel, enough to drive the server."""

    def __init__(self, ws):
        self.ws, self.writer, self.reader = ws, spdy.FrameWriter(), spdy.FrameReader()
        self.next_id = 1

    async def open(self, headers: dict) -> int:
        sid, self.next_id = self.next_id, self.next_id + 2
        await self.ws.send_bytes(self.writer.syn_stream(sid, headers))
        return sid

    async def frames(self, count: int) -> list:
        out = []
        while len(out) < count:
            msg = await asyncio.wait_for(self.ws.receive(), 5)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            out.extend(self.reader.feed(msg.data))
        return out


async def test_port_forward_spdy_tunnel(kubelet, echo_server):
    runtime, base, session, _ = kubelet
    async with session.ws_connect(f"{base}/portForward/default/web",
                                  protocols=(channels.SPDY_TUNNEL_PROTOCOL,)) as ws:
        assert ws.protocol == channels.SPDY_TUNNEL_PROTOCOL
        client = SpdyClient(ws)
        err = await client.open({"streamtype": "error", "port": str(echo_server), "requestid": "0"})
        data = await client.open({"streamtype": "data", "port": str(echo_server), "requestid": "0"})
        replies = await client.frames(2)
        assert [(type(f), f.stream_id) for f in replies] == [(spdy.SynReply, err), (spdy.SynReply, data)]
        await ws.send_bytes(client.writer.data(data, b"over spdy"))
        got = b""
        while got != b"echo:over spdy":
            [frame] = await client.frames(1)
            assert isinstance(frame, spdy.DataFrame) and frame.stream_id == data
            got += frame.data
        await ws.send_bytes(client.writer.ping(7))
        [pong] = await client.frames(1)
        assert pong == spdy.Ping(7)
        # the client finishes writing: the pod side sees EOF, closes, and both streams end
        await ws.send_bytes(client.writer.data(data, b"", fin=True))
        ends = await client.frames(2)
        assert {(f.stream_id, f.fin) for f in ends} == {(data, True), (err, True)}


async def test_port_forward_into_a_pod_network_namespace(kubelet):
    runtime, base, session, _ = kubelet
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    ns = f"kstream-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    server = None
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                   "import socket\ns=socket.socket(); s.bind(('127.0.0.1', 7777)); s.listen()\n"
                                   "print('ready', flush=True)\n"
                                   "c,_=s.accept(); c.sendall(b'inside the pod'); c.close()\n"],
                                  stdout=subprocess.PIPE)
        assert server.stdout.readline() == b"ready\n"
        runtime.sandboxes[:] = [Sandbox(id="sb", pod_uid="uid-web", netns_path=f"/var/run/netns/{ns}",
                                         ipc_ns_path=None, uts_ns_path=None, pid_ns_path=None, cgroup_parent="")]
        async with session.ws_connect(f"{base}/portForward/default/web?ports=7777",
                                      protocols=("v4.channel.k8s.io",)) as ws:
            frames = [await asyncio.wait_for(ws.receive_bytes(), 5) for _ in range(3)]
        assert frames[2] == b"\x00inside the pod"
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)


# ---- TLS --------------------------------------------------------------------

async def test_tls_requires_a_cluster_client_certificate(tmp_path):
    pki = pki_mod.ensure_pki(tmp_path / "tls")
    cert, key = certs.issue_serving_cert(pki, "node-a", ["127.0.0.1", "node-a"])
    (tmp_path / "kubelet.crt").write_bytes(cert)
    (tmp_path / "kubelet.key").write_bytes(key)
    server = KubeletServer(FakeRuntime(), lambda ns, n: None, tmp_path / "kubelet.crt", tmp_path / "kubelet.key",
                           port=0, client_ca_file=pki.ca_cert)
    await server.start()
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.ClientError):
                async with s.get(f"https://127.0.0.1:{server.port}/healthz", ssl=ctx) as r:
                    await r.read()
        ccert, ckey = pki_mod.issue_client_cert(pki, "kube-apiserver-kubelet-client", ["system:masters"])
        (tmp_path / "c.crt").write_bytes(ccert)
        (tmp_path / "c.key").write_bytes(ckey)
        ctx.load_cert_chain(str(tmp_path / "c.crt"), str(tmp_path / "c.key"))
        async with aiohttp.ClientSession() as s:
            async with s.get(f"https://127.0.0.1:{server.port}/healthz", ssl=ctx) as r:
                assert r.status == 200 and await r.text() == "ok"
    finally:
        await server.stop()


async def test_port_forward_spdy_reports_a_refused_port_on_the_error_stream(kubelet):
    runtime, base, session, _ = kubelet
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    async with session.ws_connect(f"{base}/portForward/default/web",
                                  protocols=(channels.SPDY_TUNNEL_PROTOCOL,)) as ws:
        client = SpdyClient(ws)
        err = await client.open({"streamtype": "error", "port": str(closed_port), "requestid": "1"})
        data = await client.open({"streamtype": "data", "port": str(closed_port), "requestid": "1"})
        frames = await client.frames(4)
        by_stream = {}
        for f in frames:
            if isinstance(f, spdy.DataFrame):
                by_stream.setdefault(f.stream_id, []).append(f)
        assert b"error forwarding port" in b"".join(f.data for f in by_stream[err])
        assert by_stream[err][-1].fin and by_stream[data][-1].fin
        # a stream without a usable port is reset, the session lives on
        bad = await client.open({"streamtype": "data", "port": "nope", "requestid": "2"})
        [reset] = await client.frames(1)
        assert reset == spdy.RstStream(bad, spdy.PROTOCOL_ERROR)


@pytest.mark.parametrize("protocol", [channels.NO_PROTOCOL, channels.V1])
async def test_exec_older_channel_protocols_report_errors_as_text(kubelet, protocol):
    """channel.k8s.io, and no subprotocol at all (upstream's default), report errors as text."""
    runtime, base, session, _ = kubelet
    runtime.add_container(POD, "app")
    offered = (protocol,) if protocol else ()
    url = f"{base}/exec/default/web/app?command=sh&command=-c&command=echo+remote+execution+test%3B+exit+2&stdout=true"
    async with session.ws_connect(url, protocols=offered) as ws:
        assert ws.protocol == (protocol or None)
        got = await asyncio.wait_for(collect(ws), 10)
    assert got[channels.STDOUT] == b"remote execution test\n"
    assert got[channels.ERROR].startswith(b"command terminated with non-zero exit code")
    url = f"{base}/exec/default/web/app?command=true&stdout=true"
    async with session.ws_connect(url, protocols=offered) as ws:
        got = await asyncio.wait_for(collect(ws), 10)
    assert channels.ERROR not in got      # success says nothing before v4


async def spdy_upgrade(base: str, path: str, protocol: str):
    """Open a raw connection, ask for SPDY/3.1, return (reader, writer, the 101 head)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST {path} HTTP/1.1\r\nHost: kubelet\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                 f"X-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head.decode()


async def test_exec_over_plain_spdy_with_tty_resize_and_stdin(kubelet):
    runtime, base, session, _ = kubelet
    runtime.add_container(POD, "app")
    reader, writer, head = await spdy_upgrade(
        base, "/exec/default/web/app?command=sh&command=-c&command=read+x%3B+stty+size&stdin=true&stdout=true"
              "&tty=true", "v4.channel.k8s.io")
    assert head.startswith("HTTP/1.1 101") and "X-Stream-Protocol-Version: v4.channel.k8s.io" in head
    out, frames_in = spdy.FrameWriter(), spdy.FrameReader()
    ids = {}
    for sid, kind in ((1, "error"), (3, "stdin"), (5, "stdout"), (7, "resize")):
        ids[kind] = sid
        writer.write(out.syn_stream(sid, {"streamtype": kind}))
    writer.write(out.data(ids["resize"], b'{"Width":100,"Height":24}\n'))
    writer.write(out.data(ids["stdin"], b"go\n", fin=True))
    got: dict[int, bytes] = {}
    finished: set[int] = set()
    while ids["error"] not in finished:
        data = await asyncio.wait_for(reader.read(65536), 10)
        assert data, "connection closed early"
        for frame in frames_in.feed(data):
            if isinstance(frame, spdy.DataFrame):
                got[frame.stream_id] = got.get(frame.stream_id, b"") + frame.data
                if frame.fin:
                    finished.add(frame.stream_id)
    writer.close()
    assert b"24 100" in got[ids["stdout"]]
    assert orjson.loads(got[ids["error"]]) == {"metadata": {}, "status": "Success"}


async def test_plain_spdy_refuses_unknown_protocols(kubelet):
    runtime, base, session, _ = kubelet
    runtime.add_container(POD, "app")
    reader, writer, head = await spdy_upgrade(base, "/exec/default/web/app?command=ls&stdout=true", "v9.unknown")
    writer.close()
    assert head.startswith("HTTP/1.1 403")


async def test_resource_metrics_for_metrics_server(kubelet):
    from k8py.kubelet.runtime.interface import ContainerStats
    runtime, base, session, _ = kubelet
    app = runtime.add_container(POD, "app")
    side = runtime.add_container(POD, "side")
    runtime.add_container(POD, "app", state="exited", restart_count=5)   # stopped: not reported
    runtime.usage[app] = ContainerStats(cpu_usage_ns=1_500_000_000, memory_working_set_bytes=1000)
    runtime.usage[side] = ContainerStats(cpu_usage_ns=500_000_000, memory_working_set_bytes=24)
    status, text = await get_text(session, f"{base}/metrics/resource")
    assert status == 200
    samples = {line.rsplit(" ", 2)[0]: float(line.rsplit(" ", 2)[1]) for line in text.splitlines()
               if line and not line.startswith("#")}
    assert samples['container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"}'] == 1.5
    assert samples['container_memory_working_set_bytes{container="side",namespace="default",pod="web"}'] == 24
    assert samples['pod_cpu_usage_seconds_total{namespace="default",pod="web"}'] == 2.0
    assert samples['pod_memory_working_set_bytes{namespace="default",pod="web"}'] == 1024
    assert samples["node_cpu_usage_seconds_total"] > 0 and samples["node_memory_working_set_bytes"] > 0
    assert "# TYPE container_cpu_usage_seconds_total counter" in text
