"""A throw-away node inside network namespaces, for proxy tests and benchmarks.

Layout (every name carries a random prefix; nothing touches the host's tables):
  <p>-node    the "node": bridge <p>br 10.42.0.1/24 (hairpin on), the service
              range routed to it, forwarding on; veth to <p>-ext as 192.168.77.1
  <p>-podN    "pods" 10.42.0.(10+N) on the bridge, each running a tiny HTTP
              server on :8080 that answers its own name
  <p>-ext     an outside client at 192.168.77.2 (route to the node for NodePorts)
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SERVER = textwrap.dedent("""
    import http.server, socketserver, sys
    name = sys.argv[1].encode()
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(name)))
            self.send_header("X-Client", self.client_address[0])
            self.end_headers()
            self.wfile.write(name)
        def log_message(self, *a):
            pass
    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 512
    S(("0.0.0.0", int(sys.argv[2])), H).serve_forever()
""")

# Makes `count` requests, one new connection each; prints {"answers": {name: n}, "errors": [...], "clients": [...]}.
CLIENT = textwrap.dedent("""
    import http.client, json, sys, time, collections
    host, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    answers, errors, clients = collections.Counter(), [], set()
    started = time.monotonic()
    for _ in range(count):
        try:
            c = http.client.HTTPConnection(host, port, timeout=timeout)
            c.request("GET", "/")
            r = c.getresponse()
            answers[r.read().decode()] += 1
            clients.add(r.getheader("X-Client"))
            c.close()
        except Exception as e:
            errors.append(type(e).__name__ + ": " + str(e))
    print(json.dumps({"answers": answers, "errors": errors[:5], "error_count": len(errors),
                      "clients": sorted(clients), "seconds": time.monotonic() - started}))
""")


def sh(*argv: str, check: bool = True, input: str | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout


class NetnsNode:
    def __init__(self, pods: int = 3, tag: str = "svct", subnet: int = 0, answer_prefix: str = "pod"):
        self.prefix = f"{tag}{secrets.token_hex(2)}"
        self.subnet = subnet
        self.answer_prefix = answer_prefix
        self.node = f"{self.prefix}-node"
        self.ext = f"{self.prefix}-ext"
        self.bridge = f"{self.prefix}br"
        self.pod_names = [f"{self.prefix}-pod{i}" for i in range(1, pods + 1)]
        self.pod_ips = [f"10.42.{subnet}.{10 + i}" for i in range(1, pods + 1)]
        self.gateway = f"10.42.{subnet}.1"
        self.node_ip = "192.168.77.1"
        self.ext_ip = "192.168.77.2"
        self.processes: list[subprocess.Popen] = []
        self.workdir = Path(f"/tmp/{self.prefix}")

    def exec(self, ns: str, *argv: str, check: bool = True) -> str:
        return sh("ip", "netns", "exec", ns, *argv, check=check)

    def up(self) -> "NetnsNode":
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def _up(self) -> None:
        self.workdir.mkdir(exist_ok=True)
        (self.workdir / "server.py").write_text(SERVER)
        (self.workdir / "client.py").write_text(CLIENT)
        for ns in [self.node, self.ext, *self.pod_names]:
            sh("ip", "netns", "add", ns)
            self.exec(ns, "ip", "link", "set", "lo", "up")
        n = self.node
        self.exec(n, "ip", "link", "add", self.bridge, "type", "bridge")
        self.exec(n, "ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        self.exec(n, "ip", "link", "set", self.bridge, "up")
        self.exec(n, "ip", "route", "add", "10.43.0.0/16", "dev", self.bridge)
        self.exec(n, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        self.exec(n, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1", check=False)
        for i, (pod, ip) in enumerate(zip(self.pod_names, self.pod_ips), 1):
            host_end, pod_end = f"{self.prefix}v{i}", f"{self.prefix}p{i}"
            sh("ip", "link", "add", host_end, "netns", n, "type", "veth", "peer", "name", pod_end, "netns", pod)
            self.exec(n, "ip", "link", "set", host_end, "master", self.bridge)
            self.exec(n, "ip", "link", "set", host_end, "type", "bridge_slave", "hairpin", "on")
            self.exec(n, "ip", "link", "set", host_end, "up")
            self.exec(pod, "ip", "addr", "add", f"{ip}/24", "dev", pod_end)
            self.exec(pod, "ip", "link", "set", pod_end, "up")
            self.exec(pod, "ip", "route", "add", "default", "via", self.gateway)
            self.processes.append(subprocess.Popen(
                ["ip", "netns", "exec", pod, sys.executable, str(self.workdir / "server.py"),
                 f"{self.answer_prefix}{i}", "8080"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        sh("ip", "link", "add", f"{self.prefix}xn", "netns", n, "type", "veth", "peer", "name", f"{self.prefix}xe",
           "netns", self.ext)
        self.exec(n, "ip", "addr", "add", f"{self.node_ip}/24", "dev", f"{self.prefix}xn")
        self.exec(n, "ip", "link", "set", f"{self.prefix}xn", "up")
        self.exec(self.ext, "ip", "addr", "add", f"{self.ext_ip}/24", "dev", f"{self.prefix}xe")
        self.exec(self.ext, "ip", "link", "set", f"{self.prefix}xe", "up")
        for pod, ip in zip(self.pod_names, self.pod_ips):
            self.wait_listening(pod, ip)

    def link(self, other: "NetnsNode") -> None:
        """Wire two nodes together (192.168.88.1 <-> .2) and route each one's pod subnet to the other."""
        a_end, b_end = f"{self.prefix}la", f"{other.prefix}lb"
        sh("ip", "link", "add", a_end, "netns", self.node, "type", "veth", "peer", "name", b_end,
           "netns", other.node)
        for node, end, ip in ((self, a_end, "192.168.88.1"), (other, b_end, "192.168.88.2")):
            node.exec(node.node, "ip", "addr", "add", f"{ip}/24", "dev", end)
            node.exec(node.node, "ip", "link", "set", end, "up")
        self.exec(self.node, "ip", "route", "add", f"10.42.{other.subnet}.0/24", "via", "192.168.88.2")
        other.exec(other.node, "ip", "route", "add", f"10.42.{self.subnet}.0/24", "via", "192.168.88.1")

    def wait_listening(self, pod: str, ip: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if subprocess.run(["ip", "netns", "exec", pod, sys.executable, "-c",
                               f"import socket; socket.create_connection(('{ip}', 8080), 1).close()"],
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"the HTTP server in {pod} did not start")

    def requests(self, ns: str, host: str, port: int, count: int, timeout: float = 2.0) -> dict:
        out = self.exec(ns, sys.executable, str(self.workdir / "client.py"), host, str(port), str(count),
                        str(timeout))
        return json.loads(out)

    def down(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for ns in [self.node, self.ext, *self.pod_names]:
            sh("ip", "netns", "del", ns, check=False)
        for f in ("server.py", "client.py"):
            (self.workdir / f).unlink(missing_ok=True)
        if self.workdir.exists():
            os.rmdir(self.workdir)
