"""iptables rules for Service ports, laid out as upstream kube-proxy's iptables mode does.

nat table:
  KUBE-SERVICES     one jump per (cluster IP | external IP | LB IP, port) to the
                    Service's chain; last, local destinations go to KUBE-NODEPORTS
  KUBE-NODEPORTS    one jump per node port to KUBE-EXT-<hash>
  KUBE-SVC-<hash>   masquerade off-cluster sources, then pick an endpoint at random
                    (probabilities 1/n, 1/(n-1), ... 1) or by ClientIP affinity
  KUBE-SVL-<hash>   the same over this node's endpoints (traffic policy Local)
  KUBE-EXT-<hash>   external traffic: masquerade then KUBE-SVC (policy Cluster),
                    or keep the client address and use KUBE-SVL (policy Local)
  KUBE-SEP-<hash>   one endpoint: masquerade hairpin traffic, DNAT
  KUBE-MARK-MASQ / KUBE-POSTROUTING  mark, then masquerade marked packets
filter table:
  KUBE-SERVICES / KUBE-EXTERNAL-SERVICES  REJECT (or DROP) Services without endpoints
  KUBE-FORWARD      accept marked and established forwarded traffic
  KUBE-FIREWALL     drop martian connections to 127/8 from outside (route_localnet is on)
Hashes are upstream's: base32(sha256(port name + protocol)), so chain names match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from k8py.proxy.model import ServicePort, endpoint_chain, service_chain, usable

MASQ_MARK = "0x4000"

NAT_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")
FILTER_CHAINS = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-FORWARD", "KUBE-FIREWALL")
# (table, built-in chain, our chain, extra match): the jumps into our chains, as upstream installs them.
JUMPS = (
    ("nat", "PREROUTING", "KUBE-SERVICES", ["-m", "comment", "--comment", "kubernetes service portals"]),
    ("nat", "OUTPUT", "KUBE-SERVICES", ["-m", "comment", "--comment", "kubernetes service portals"]),
    ("nat", "POSTROUTING", "KUBE-POSTROUTING", ["-m", "comment", "--comment", "kubernetes postrouting rules"]),
    ("filter", "INPUT", "KUBE-NODEPORTS", ["-m", "comment", "--comment", "kubernetes health check service ports"]),
    ("filter", "INPUT", "KUBE-EXTERNAL-SERVICES",
     ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals"]),
    ("filter", "INPUT", "KUBE-FIREWALL", []),
    ("filter", "FORWARD", "KUBE-FORWARD", ["-m", "comment", "--comment", "kubernetes forwarding rules"]),
    ("filter", "FORWARD", "KUBE-SERVICES",
     ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes service portals"]),
    ("filter", "FORWARD", "KUBE-EXTERNAL-SERVICES",
     ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals"]),
    ("filter", "OUTPUT", "KUBE-SERVICES",
     ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes service portals"]),
    ("filter", "OUTPUT", "KUBE-FIREWALL", []),
)
OWNED_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-", "KUBE-FW-")


@dataclass
class ProxyConfig:
    node_name: str = ""
    cluster_cidr: str = ""
    masquerade_all: bool = False
    nodeport_cidrs: list[str] = field(default_factory=list)  # empty: every local address


@dataclass
class ServiceRules:
    """Everything one Service port contributes; its own chains can be rewritten on their own."""
    chains: dict[str, list[str]] = field(default_factory=dict)
    nat_services: list[str] = field(default_factory=list)
    nat_nodeports: list[str] = field(default_factory=list)
    filter_services: list[str] = field(default_factory=list)
    filter_external: list[str] = field(default_factory=list)


def _comment(text: str) -> str:
    return f'-m comment --comment "{text}"' if " " in text else f"-m comment --comment {text}"


def _match(sp: ServicePort, dst: str | None = None, dport: int | None = None) -> str:
    parts = []
    if dst:
        parts.append(f"-d {dst}/32")
    parts.append(f"-p {sp.protocol_lower} -m {sp.protocol_lower} --dport {dport or sp.port}")
    return " ".join(parts)


def _balance(chain: str, sp: ServicePort, endpoints, comment: str) -> list[str]:
    lines = []
    if sp.affinity_timeout:
        for e in endpoints:
            sep = endpoint_chain(sp, e)
            lines.append(f"-A {chain} {_comment(f'{comment} -> {e.address}')} -m recent --name {sep} --rcheck "
                         f"--seconds {sp.affinity_timeout} --reap -j {sep}")
    n = len(endpoints)
    for i, e in enumerate(endpoints):
        left = n - i
        statistic = f" -m statistic --mode random --probability {1 / left:.10f}" if left > 1 else ""
        lines.append(f"-A {chain} {_comment(f'{comment} -> {e.address}')}{statistic} -j {endpoint_chain(sp, e)}")
    return lines


def service_rules(sp: ServicePort, cfg: ProxyConfig) -> ServiceRules:
    out = ServiceRules()
    name = sp.service_port_name
    svc = service_chain(sp)
    svl = service_chain(sp, "KUBE-SVL-")
    ext = service_chain(sp, "KUBE-EXT-")
    all_eps = usable(sp.endpoints)
    local_eps = usable([e for e in sp.endpoints if e.node_name == cfg.node_name])
    needs_local = sp.internal_local or sp.external_local

    # Endpoint chains: hairpin masquerade, then DNAT (remembering the client for affinity).
    for e in (all_eps + [x for x in local_eps if x not in all_eps]) if needs_local else all_eps:
        sep = endpoint_chain(sp, e)
        recent = f" -m recent --name {sep} --set" if sp.affinity_timeout else ""
        out.chains[sep] = [
            f"-A {sep} {_comment(name)} -s {e.ip}/32 -j KUBE-MARK-MASQ",
            f"-A {sep} {_comment(name)} -p {sp.protocol_lower}{recent} -m {sp.protocol_lower} "
            f"-j DNAT --to-destination {e.address}",
        ]

    if all_eps:
        lines = []
        for ip in sp.cluster_ips:
            if cfg.masquerade_all:
                lines.append(f"-A {svc} {_comment(f'{name} cluster IP')} {_match(sp, ip)} -j KUBE-MARK-MASQ")
            elif cfg.cluster_cidr:
                lines.append(f"-A {svc} {_comment(f'{name} cluster IP')} {_match(sp, ip)} "
                             f"! -s {cfg.cluster_cidr} -j KUBE-MARK-MASQ")
        out.chains[svc] = lines + _balance(svc, sp, all_eps, name)
    if needs_local:
        out.chains[svl] = _balance(svl, sp, local_eps, name)

    cluster_chain = svl if sp.internal_local else svc
    cluster_has = bool(local_eps if sp.internal_local else all_eps)
    for ip in sp.cluster_ips:
        if cluster_has:
            out.nat_services.append(f"-A KUBE-SERVICES {_comment(f'{name} cluster IP')} {_match(sp, ip)} "
                                    f"-j {cluster_chain}")
        elif all_eps:  # policy Local with no endpoint on this node
            out.filter_services.append(f"-A KUBE-SERVICES {_comment(f'{name} has no local endpoints')} "
                                       f"{_match(sp, ip)} -j DROP")
        else:
            out.filter_services.append(f"-A KUBE-SERVICES {_comment(f'{name} has no endpoints')} {_match(sp, ip)} "
                                       f"-j REJECT --reject-with icmp-port-unreachable")

    if not sp.has_external:
        return out
    external_has = bool(local_eps if sp.external_local else all_eps)
    if external_has:
        if sp.external_local:
            out.chains[ext] = [
                f"-A {ext} {_comment('pod traffic for ' + name + ' external destinations')} "
                f"-s {cfg.cluster_cidr} -j {svc}" if cfg.cluster_cidr else None,
                f"-A {ext} {_comment('masquerade LOCAL traffic for ' + name + ' external destinations')} "
                f"-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
                f"-A {ext} {_comment('route LOCAL traffic for ' + name + ' external destinations')} "
                f"-m addrtype --src-type LOCAL -j {svc}",
                f"-A {ext} -j {svl}",
            ]
            out.chains[ext] = [line for line in out.chains[ext] if line]
        else:
            out.chains[ext] = [f"-A {ext} {_comment('masquerade traffic for ' + name + ' external destinations')} "
                               f"-j KUBE-MARK-MASQ", f"-A {ext} -j {svc}"]
    verdict = "-j DROP" if all_eps else "-j REJECT --reject-with icmp-port-unreachable"
    why = "has no local endpoints" if all_eps else "has no endpoints"
    for kind, ips in (("external IP", sp.external_ips), ("loadbalancer IP", sp.load_balancer_ips)):
        for ip in ips:
            if external_has:
                out.nat_services.append(f"-A KUBE-SERVICES {_comment(f'{name} {kind}')} {_match(sp, ip)} -j {ext}")
            else:
                out.filter_external.append(f"-A KUBE-EXTERNAL-SERVICES {_comment(f'{name} {why}')} "
                                           f"{_match(sp, ip)} {verdict}")
    if sp.node_port:
        if external_has:
            out.nat_nodeports.append(f"-A KUBE-NODEPORTS {_comment(name)} {_match(sp, dport=sp.node_port)} -j {ext}")
        else:
            out.filter_external.append(f"-A KUBE-EXTERNAL-SERVICES {_comment(f'{name} {why}')} "
                                       f"-m addrtype --dst-type LOCAL {_match(sp, dport=sp.node_port)} {verdict}")
    return out


def static_nat(cfg: ProxyConfig) -> dict[str, list[str]]:
    return {
        "KUBE-POSTROUTING": [
            f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
            f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
            f"-A KUBE-POSTROUTING {_comment('kubernetes service traffic requiring SNAT')} -j MASQUERADE --random-fully",
        ],
        "KUBE-MARK-MASQ": [f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}"],
    }


def nodeports_jump(cfg: ProxyConfig) -> list[str]:
    comment = _comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
    if not cfg.nodeport_cidrs:
        return [f"-A KUBE-SERVICES {comment} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"]
    return [f"-A KUBE-SERVICES {comment} -d {cidr} -j KUBE-NODEPORTS" for cidr in cfg.nodeport_cidrs]


def static_filter(cfg: ProxyConfig) -> dict[str, list[str]]:
    return {
        "KUBE-FORWARD": [
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
            f"-A KUBE-FORWARD {_comment('kubernetes forwarding rules')} -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT",
            f"-A KUBE-FORWARD {_comment('kubernetes forwarding conntrack rule')} "
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ],
        "KUBE-FIREWALL": [
            f"-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 {_comment('block incoming localnet connections')} "
            "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        ],
    }


def render(rules: dict[str, list[ServiceRules]], cfg: ProxyConfig, rewrite: set[str] | None,
           stale_chains: set[str], previous: dict | None = None) -> tuple[str, dict]:
    """iptables-restore --noflush input, and the shared chains' content it leaves behind.

    `rules` maps a Service key to its ports' rules. A Service's own chains are
    written only when its key is in `rewrite` (None: all of them). Shared
    chains (KUBE-SERVICES, KUBE-NODEPORTS, ...) are written whole, but only
    when they differ from `previous` (what the last batch left; None: write
    everything). `stale_chains` are deleted. An empty string means nothing to do.
    """
    nat_services, nat_nodeports, filter_services, filter_external = [], [], [], []
    own_chains: dict[str, list[str]] = {}
    for key, port_rules in rules.items():
        for r in port_rules:
            nat_services += r.nat_services
            nat_nodeports += r.nat_nodeports
            filter_services += r.filter_services
            filter_external += r.filter_external
            if rewrite is None or key in rewrite:
                own_chains.update(r.chains)
    static, fstatic = static_nat(cfg), static_filter(cfg)
    shared = {
        ("nat", "KUBE-POSTROUTING"): static["KUBE-POSTROUTING"],
        ("nat", "KUBE-MARK-MASQ"): static["KUBE-MARK-MASQ"],
        ("nat", "KUBE-SERVICES"): nat_services + nodeports_jump(cfg),
        ("nat", "KUBE-NODEPORTS"): nat_nodeports,
        ("filter", "KUBE-SERVICES"): filter_services,
        ("filter", "KUBE-EXTERNAL-SERVICES"): filter_external,
        ("filter", "KUBE-NODEPORTS"): [],
        ("filter", "KUBE-FORWARD"): fstatic["KUBE-FORWARD"],
        ("filter", "KUBE-FIREWALL"): fstatic["KUBE-FIREWALL"],
    }
    changed = {k: v for k, v in shared.items() if previous is None or previous.get(k) != v}
    nat_shared = [c for (t, c) in changed if t == "nat"]
    nat = []
    if nat_shared or own_chains or stale_chains:
        nat.append("*nat")
        nat += [f":{c} - [0:0]" for c in nat_shared]
        nat += [f":{c} - [0:0]" for c in own_chains]
        # Stale chains are declared (so flushed) before deletion: they may still jump to each other.
        nat += [f":{c} - [0:0]" for c in sorted(stale_chains)]
        for c in nat_shared:
            nat += changed[("nat", c)]
        for lines in own_chains.values():
            nat += lines
        nat += [f"-X {c}" for c in sorted(stale_chains)]
        nat.append("COMMIT")
    filter_shared = [c for (t, c) in changed if t == "filter"]
    flt = []
    if filter_shared:
        flt.append("*filter")
        flt += [f":{c} - [0:0]" for c in filter_shared]
        for c in filter_shared:
            flt += changed[("filter", c)]
        flt.append("COMMIT")
    text = "\n".join(nat + flt)
    return (text + "\n" if text else ""), shared
