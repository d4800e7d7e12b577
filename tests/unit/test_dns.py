"""Cluster DNS: record answering, the real server over UDP/TCP on 127.0.0.1, forwarding to a fake upstream.

No query here ever goes to the host's resolvers: the forwarder is either off
or pointed at a fake upstream this test starts on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from k8py.client import Client
from k8py.dns.forward import AnswerCache, Forwarder
from k8py.dns.records import ClusterRecords
from k8py.dns.server import DNSHandler, DNSServer
from k8py.dns.service import ClusterDNS
from tests.unit.conftest import TOKEN

D = "cluster.local"


def svc(name, ns="default", cluster_ip="10.43.0.20", ports=None, **spec):
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip] if cluster_ip != "None" else None,
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}],
                     **spec}}


def eslice(service, name, endpoints, ports=None, ns="default"):
    return {"metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def ep(ip, ready=True, hostname=None):
    e = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    return e


@pytest.fixture
def records():
    r = ClusterRecords(D, ["10.42.0.0/16", "10.43.0.0/16"])
    r.set_service(svc("web"))
    r.set_service(svc("db", cluster_ip="None"))
    r.set_slice(eslice("db", "db-1", [ep("10.42.0.5", hostname="db-0"), ep("10.42.0.6"),
                                     ep("10.42.0.7", ready=False)]))
    r.set_service(svc("my-service", cluster_ip=None, type="ExternalName", externalName="my.database.example.com",
                      ports=[]))
    return r


def rdatas(answer, rtype=None):
    return sorted(str(rr.rdata) for rr in answer.answers if rtype is None or rr.rtype == rtype)


def test_cluster_ip_a_record_and_nodata_for_aaaa(records):
    a = records.resolve(f"web.default.svc.{D}", QTYPE.A)
    assert a.rcode == RCODE.NOERROR and rdatas(a) == ["10.43.0.20"] and not a.authority
    aaaa = records.resolve(f"WEB.default.svc.{D}.", QTYPE.AAAA)
    assert aaaa.rcode == RCODE.NOERROR and aaaa.answers == []
    assert [rr.rtype for rr in aaaa.authority] == [QTYPE.SOA]


def test_nxdomain_carries_soa_and_namespaces_are_empty_non_terminals(records):
    for name in (f"nope.default.svc.{D}", f"web.other.svc.{D}", f"x.y.{D}", f"other.svc.{D}"):
        answer = records.resolve(name, QTYPE.A)
        assert answer.rcode == RCODE.NXDOMAIN, name
        assert answer.authority[0].rtype == QTYPE.SOA
    for name in (f"default.svc.{D}", f"svc.{D}", D):
        answer = records.resolve(name, QTYPE.A)
        assert (answer.rcode, answer.answers) == (RCODE.NOERROR, []), name


def test_headless_returns_ready_endpoints_and_hostnames(records):
    assert rdatas(records.resolve(f"db.default.svc.{D}", QTYPE.A)) == ["10.42.0.5", "10.42.0.6"]
    assert rdatas(records.resolve(f"db-0.db.default.svc.{D}", QTYPE.A)) == ["10.42.0.5"]
    assert rdatas(records.resolve(f"10-42-0-6.db.default.svc.{D}", QTYPE.A)) == ["10.42.0.6"]
    assert records.resolve(f"10-42-0-7.db.default.svc.{D}", QTYPE.A).rcode == RCODE.NXDOMAIN


def test_srv_for_named_ports(records):
    answer = records.resolve(f"_http._tcp.web.default.svc.{D}", QTYPE.SRV)
    assert rdatas(answer) == [f"0 100 80 web.default.svc.{D}."]
    assert [str(rr.rdata) for rr in answer.additional] == ["10.43.0.20"]
    headless = records.resolve(f"_http._tcp.db.default.svc.{D}", QTYPE.SRV)
    assert rdatas(headless) == [f"0 50 8080 10-42-0-6.db.default.svc.{D}.", f"0 50 8080 db-0.db.default.svc.{D}."]
    assert records.resolve(f"_nope._tcp.web.default.svc.{D}", QTYPE.SRV).rcode == RCODE.NXDOMAIN
    assert records.resolve(f"_http._udp.web.default.svc.{D}", QTYPE.SRV).rcode == RCODE.NXDOMAIN


def test_external_name_is_a_cname(records):
    answer = records.resolve(f"my-service.default.svc.{D}", QTYPE.A)
    assert [(rr.rtype, str(rr.rdata)) for rr in answer.answers] == [(QTYPE.CNAME, "my.database.example.com.")]


def test_pod_records_and_ptr(records):
    assert rdatas(records.resolve(f"10-42-1-9.default.pod.{D}", QTYPE.A)) == ["10.42.1.9"]
    assert records.resolve(f"not-an-ip.default.pod.{D}", QTYPE.A).rcode == RCODE.NXDOMAIN
    assert rdatas(records.resolve("20.0.43.10.in-addr.arpa", QTYPE.PTR)) == [f"web.default.svc.{D}."]
    assert rdatas(records.resolve("5.0.42.10.in-addr.arpa", QTYPE.PTR)) == [f"db-0.db.default.svc.{D}."]
    missing = records.resolve("99.0.43.10.in-addr.arpa", QTYPE.PTR)
    assert missing.rcode == RCODE.NXDOMAIN and str(missing.authority[0].rname) == "43.10.in-addr.arpa."
    assert records.in_zone("99.0.43.10.in-addr.arpa") and not records.in_zone("1.0.0.127.in-addr.arpa")
    assert not records.in_zone("example.com")


def test_records_follow_deletes(records):
    records.delete_service(svc("web"))
    assert records.resolve(f"web.default.svc.{D}", QTYPE.A).rcode == RCODE.NXDOMAIN
    records.delete_slice(eslice("db", "db-1", []))
    assert records.resolve(f"db.default.svc.{D}", QTYPE.A).answers == []


def test_forward_cache_is_ttl_and_size_bounded():
    cache = AnswerCache(size=2)
    for i, name in enumerate(("a.example", "b.example", "c.example")):
        q = DNSRecord.question(name)
        r = q.reply()
        r.add_answer(RR(name, QTYPE.A, rdata=A(f"192.0.2.{i}"), ttl=60))
        cache.put(q, r)
    assert len(cache) == 2 and cache.get(DNSRecord.question("a.example")) is None
    assert str(cache.get(DNSRecord.question("c.example")).a.rdata) == "192.0.2.2"
    zero = DNSRecord.question("z.example")
    reply = zero.reply()
    reply.add_answer(RR("z.example", QTYPE.A, rdata=A("192.0.2.9"), ttl=0))
    cache.put(zero, reply)
    assert cache.get(zero) is None


# -- the real server on 127.0.0.1

async def udp_query(port, name, qtype="A", payload=None):
    q = DNSRecord.question(name, qtype)
    if payload:
        from dnslib import EDNS0
        q.add_ar(EDNS0(udp_len=payload))
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_sendto(sock, q.pack(), ("127.0.0.1", port))
        data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 3)
    finally:
        sock.close()
    reply = DNSRecord.parse(data)
    assert reply.header.id == q.header.id
    return reply


async def tcp_query(port, name, qtype="A"):
    q = DNSRecord.question(name, qtype)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    wire = q.pack()
    writer.write(len(wire).to_bytes(2, "big") + wire)
    length = int.from_bytes(await reader.readexactly(2), "big")
    data = await reader.readexactly(length)
    writer.close()
    return DNSRecord.parse(data)


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers every A question with 192.0.2.53 (TTL 30) and counts what it was asked."""

    def __init__(self):
        self.asked = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        q = DNSRecord.parse(data)
        self.asked.append(str(q.q.qname))
        r = q.reply()
        r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.53"), ttl=30))
        self.transport.sendto(r.pack(), addr)


async def test_server_answers_over_udp_and_tcp_and_forwards_to_upstream(records):
    loop = asyncio.get_running_loop()
    upstream_transport, upstream = await loop.create_datagram_endpoint(FakeUpstream, local_addr=("127.0.0.1", 0))
    upstream_port = upstream_transport.get_extra_info("sockname")[1]
    server = DNSServer(DNSHandler(records, Forwarder([("127.0.0.1", upstream_port)])))
    _, port = await server.listen("127.0.0.1", 0)
    try:
        reply = await udp_query(port, f"web.default.svc.{D}")
        assert reply.header.aa and [str(rr.rdata) for rr in reply.rr] == ["10.43.0.20"]
        again = await udp_query(port, f"web.default.svc.{D}")  # served from the wire cache with its own ID
        assert [str(rr.rdata) for rr in again.rr] == ["10.43.0.20"]
        nx = await tcp_query(port, f"nope.default.svc.{D}")
        assert nx.header.rcode == RCODE.NXDOMAIN and nx.auth[0].rtype == QTYPE.SOA
        srv = await tcp_query(port, f"_http._tcp.db.default.svc.{D}", "SRV")
        assert len(srv.rr) == 2 and len(srv.ar) == 2
        # A change in the records is visible at once (the wire cache follows the generation).
        records.set_service(svc("web", cluster_ip="10.43.0.21"))
        assert [str(rr.rdata) for rr in (await udp_query(port, f"web.default.svc.{D}")).rr] == ["10.43.0.21"]
        # Outside the zone: forwarded once, then cached.
        ext = await udp_query(port, "outside.example")
        assert [str(rr.rdata) for rr in ext.rr] == ["192.0.2.53"]
        ext2 = await tcp_query(port, "outside.example")
        assert [str(rr.rdata) for rr in ext2.rr] == ["192.0.2.53"] and 0 < ext2.rr[0].ttl <= 30
        assert upstream.asked == ["outside.example."]
    finally:
        await server.close()
        upstream_transport.close()


async def test_large_udp_answers_are_truncated_and_complete_over_tcp():
    records = ClusterRecords(D)
    records.set_service(svc("big", cluster_ip="None"))
    records.set_slice(eslice("big", "big-1", [ep(f"10.42.1.{i}") for i in range(1, 81)]))
    server = DNSServer(DNSHandler(records, None))
    _, port = await server.listen("127.0.0.1", 0)
    try:
        short = await udp_query(port, f"big.default.svc.{D}")
        assert short.header.tc and not short.rr
        full = await tcp_query(port, f"big.default.svc.{D}")
        assert len(full.rr) == 80 and not full.header.tc
        edns = await udp_query(port, f"big.default.svc.{D}", payload=4096)
        assert len(edns.rr) == 80
        refused = await udp_query(port, "outside.example")  # no forwarder configured: refused, not leaked
        assert refused.header.rcode == RCODE.REFUSED
    finally:
        await server.close()


@pytest.fixture
async def api(client):
    c = Client(str(client.make_url("")), token=TOKEN)
    yield c
    await c.close()


async def test_cluster_dns_follows_the_api(api):
    dns = ClusterDNS(api, upstreams=[])
    (_, port), = await dns.start([("127.0.0.1", 0)])
    try:
        services = api.resource("v1", "services", "default")
        created = await services.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "named"},
                                         "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}})
        ip = created["spec"]["clusterIP"]
        for _ in range(200):
            reply = await udp_query(port, f"named.default.svc.{D}")
            if reply.rr:
                break
            await asyncio.sleep(0.02)
        assert [str(rr.rdata) for rr in reply.rr] == [ip]
        import aiohttp
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            metrics_port = s.getsockname()[1]
        await dns.serve_metrics("127.0.0.1", metrics_port)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                text = await resp.text()
        count = int(next(line for line in text.splitlines() if line.startswith("coredns_dns_requests_total ")).split()[1])
        assert count >= 1
    finally:
        await dns.stop()


async def test_kube_dns_points_at_the_node_gateway(api):
    """Server mode: the DNS listener is the first address of the node's podCIDR, and kube-dns's Endpoints say so."""
    from k8py.dns.service import ensure_kube_dns, node_gateway
    await api.resource("v1", "nodes").create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "dns-node"},
                                              "spec": {"podCIDR": "10.42.7.0/24"}})
    gateway = await node_gateway(api, "dns-node")
    assert gateway == "10.42.7.1"
    assert await node_gateway(api, "no-such-node") is None
    await ensure_kube_dns(api, "10.43.0.10", None, None)
    await ensure_kube_dns(api, "10.43.0.10", [gateway], "dns-node")  # idempotent: the Service is not re-created
    service = await api.resource("v1", "services", "kube-system").get("kube-dns")
    assert service["spec"]["clusterIP"] == "10.43.0.10"
    assert service["metadata"]["labels"]["k8s-app"] == "kube-dns"
    endpoints = await api.resource("v1", "endpoints", "kube-system").get("kube-dns")
    assert endpoints["subsets"][0]["addresses"] == [{"ip": "10.42.7.1", "nodeName": "dns-node"}]
    assert [(p["name"], p["port"], p["protocol"]) for p in endpoints["subsets"][0]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]


def test_resolv_conf_upstreams_skip_the_cluster_dns(tmp_path):
    from k8py.dns.forward import resolv_conf_nameservers
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example\nnameserver 10.43.0.10\nnameserver 127.0.0.53\n# nameserver 1.1.1.1\n"
                    "options ndots:5\n")
    assert resolv_conf_nameservers(str(conf), exclude={"10.43.0.10"}) == [("127.0.0.53", 53)]
    assert resolv_conf_nameservers(str(tmp_path / "missing")) == []
