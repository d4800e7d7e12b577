"""kube-proxy rule generation (pure): upstream chain names, probabilities, REJECT, policies."""

from __future__ import annotations

from k8py.proxy.model import Endpoint, ServicePort, endpoint_chain, port_proto_hash, service_ports
from k8py.proxy.rules import ProxyConfig, render, service_rules

CFG = ProxyConfig(node_name="n1", cluster_cidr="10.42.0.0/16")


def test_chain_names_are_upstreams_hashes():
    # Values from upstream kube-proxy's own test fixtures.
    assert port_proto_hash("ns1/svc1:p80", "TCP") == "XPGD46QRK7WJZT7O"
    assert endpoint_chain(ServicePort("ns1", "svc1", "p80", "TCP", 80), Endpoint("10.180.0.1", 80)) \
        == "KUBE-SEP-SXIVWICOYRO3J4NJ"


def sp(endpoints, **kw):
    return ServicePort("ns1", "svc1", "p80", "TCP", 80, ["10.43.0.1"], endpoints=endpoints, **kw)


def test_probabilities_and_masquerade():
    r = service_rules(sp([Endpoint(f"10.42.0.{i}", 8080) for i in range(1, 5)]), CFG)
    svc = r.chains["KUBE-SVC-XPGD46QRK7WJZT7O"]
    assert "! -s 10.42.0.0/16 -j KUBE-MARK-MASQ" in svc[0]
    probabilities = [line.split("--probability ")[1].split()[0] for line in svc if "--probability" in line]
    assert probabilities == ["0.2500000000", "0.3333333333", "0.5000000000"]
    assert svc[-1].endswith("-j " + endpoint_chain(sp([]), Endpoint("10.42.0.4", 8080)))
    assert r.nat_services == ['-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -d 10.43.0.1/32 '
                              '-p tcp -m tcp --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O']


def test_no_endpoints_rejects_and_not_ready_are_skipped():
    r = service_rules(sp([Endpoint("10.42.0.1", 8080, ready=False, serving=False)], node_port=30000), CFG)
    assert not r.chains and not r.nat_services
    assert "has no endpoints" in r.filter_services[0] and "REJECT" in r.filter_services[0]
    assert "--dport 30000" in r.filter_external[0] and "REJECT" in r.filter_external[0]


def test_terminating_serving_endpoints_are_used_when_nothing_is_ready():
    r = service_rules(sp([Endpoint("10.42.0.1", 8080, ready=False, serving=True, terminating=True)]), CFG)
    assert any("DNAT --to-destination 10.42.0.1:8080" in line for lines in r.chains.values() for line in lines)


def test_affinity_and_local_policies():
    eps = [Endpoint("10.42.0.1", 8080, node_name="n1"), Endpoint("10.42.1.1", 8080, node_name="n2")]
    r = service_rules(sp(eps, affinity_timeout=30, internal_local=True, external_local=True, node_port=30001), CFG)
    svl = r.chains["KUBE-SVL-XPGD46QRK7WJZT7O"]
    assert "--rcheck --seconds 30 --reap" in svl[0] and len(svl) == 2  # one local endpoint: affinity + pick
    assert r.nat_services[0].endswith("-j KUBE-SVL-XPGD46QRK7WJZT7O")
    ext = r.chains["KUBE-EXT-XPGD46QRK7WJZT7O"]
    assert ext[-1] == "-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVL-XPGD46QRK7WJZT7O"
    sep = r.chains[endpoint_chain(sp([]), eps[0])]
    assert "-m recent --name" in sep[1] and "--set" in sep[1]


def test_render_incremental_writes_only_changed_chains():
    rules = {"ns1/a": [service_rules(sp([Endpoint("10.42.0.1", 8080)]), CFG)],
             "ns1/b": [service_rules(ServicePort("ns1", "b", "", "UDP", 53, ["10.43.0.2"],
                                                 endpoints=[Endpoint("10.42.0.2", 53)]), CFG)]}
    text, shared = render(rules, CFG, {"ns1/b"}, {"KUBE-SEP-OLD"})
    assert ":KUBE-SVC-XPGD46QRK7WJZT7O" not in text  # unchanged Service: chains left as they are
    assert "--dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O" in text  # but still reachable from KUBE-SERVICES
    assert ":KUBE-SEP-OLD - [0:0]" in text and "-X KUBE-SEP-OLD" in text
    assert text.count("COMMIT") == 2
    # Next time, shared chains that did not change are not written again.
    again, _ = render(rules, CFG, {"ns1/b"}, set(), shared)
    assert ":KUBE-SERVICES" not in again and "*filter" not in again and ":KUBE-SVC-" in again
    assert render(rules, CFG, set(), set(), shared)[0] == ""


def test_service_ports_from_objects():
    svc = {"metadata": {"name": "lb", "namespace": "d"},
           "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.9", "clusterIPs": ["10.43.0.9"],
                    "ports": [{"name": "h", "port": 8088, "nodePort": 31000, "protocol": "TCP"}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.5"}]}}}
    slices = [{"addressType": "IPv4", "ports": [{"name": "h", "port": 80, "protocol": "TCP"}],
               "endpoints": [{"addresses": ["10.42.0.7"], "conditions": {"ready": True}}]}] * 2
    (port,) = service_ports(svc, slices)
    assert (port.node_port, port.load_balancer_ips, [e.address for e in port.endpoints]) == (
        31000, ["192.168.1.5"], ["10.42.0.7:80"])
    assert service_ports({**svc, "spec": {**svc["spec"], "clusterIP": "None"}}, slices) == []


def test_masquerade_all_marks_every_cluster_ip_connection():
    cfg = ProxyConfig(node_name="n1", cluster_cidr="10.42.0.0/16", masquerade_all=True)
    svc = service_rules(sp([Endpoint("10.42.0.1", 8080)]), cfg).chains["KUBE-SVC-XPGD46QRK7WJZT7O"]
    assert svc[0].endswith("--dport 80 -j KUBE-MARK-MASQ") and "! -s" not in svc[0]


def test_nodeport_addresses_limit_where_node_ports_answer():
    from k8py.proxy.rules import nodeports_jump
    assert "--dst-type LOCAL" in nodeports_jump(ProxyConfig())[0]
    jumps = nodeports_jump(ProxyConfig(nodeport_cidrs=["192.168.1.0/24", "127.0.0.0/8"]))
    assert [j.split(" -d ")[1].split()[0] for j in jumps] == ["192.168.1.0/24", "127.0.0.0/8"]
