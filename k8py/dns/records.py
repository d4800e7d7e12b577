"""The cluster zone's records, computed from Services and EndpointSlices.

Follows the Kubernetes DNS specification (schema 1.1.0) as CoreDNS's
kubernetes plugin answers it:
- `<svc>.<ns>.svc.<zone>`: A/AAAA of the ClusterIP; for a headless Service the
  ready endpoint IPs; for an ExternalName Service a CNAME.
- `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV for named ports.
- `<hostname>.<svc>.<ns>.svc.<zone>` (or the dashed IP when an endpoint has no
  hostname): A of a headless Service's endpoint, which is how StatefulSet pods
  are named through their governing Service.
- `<a-b-c-d>.<ns>.pod.<zone>`: A of a pod IP.
- PTR for ClusterIPs and headless endpoints in the cluster's reverse zones.
A name in the zone that does not exist is NXDOMAIN; an existing name without
records of the asked type is NODATA (NOERROR, no answer); both carry the SOA.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from dnslib import AAAA, CNAME, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A, DNSLabel

TTL = 5  # CoreDNS's default for Kubernetes records: short, because endpoints move
SCHEMA_VERSION = "1.1.0"


@dataclass
class Answer:
    rcode: int = RCODE.NOERROR
    answers: list = field(default_factory=list)
    authority: list = field(default_factory=list)
    additional: list = field(default_factory=list)


@dataclass
class ServiceEntry:
    name: str
    namespace: str
    type: str
    cluster_ips: list[str]
    external_name: str
    ports: list[dict]
    headless: bool


def _service_entry(svc: dict) -> ServiceEntry:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ips = [ip for ip in ips if ip and ip != "None"]
    return ServiceEntry(svc["metadata"]["name"], svc["metadata"].get("namespace", ""), spec.get("type", "ClusterIP"),
                        ips, (spec.get("externalName") or "").rstrip("."), spec.get("ports") or [],
                        spec.get("clusterIP") == "None")


def dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def undashed(label: str) -> str | None:
    for candidate in (label.replace("-", "."), label.replace("-", ":")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


class ClusterRecords:
    def __init__(self, domain: str = "cluster.local", reverse_cidrs: list[str] = ("10.42.0.0/16", "10.43.0.0/16")):
        self.domain = domain.strip(".").lower()
        self.zone = DNSLabel(self.domain)
        self.reverse_networks = [ipaddress.ip_network(c) for c in reverse_cidrs]
        self.services: dict[tuple[str, str], ServiceEntry] = {}
        self.slices: dict[tuple[str, str], dict[str, dict]] = {}  # (ns, service) -> slice name -> slice
        self.namespaces: dict[str, int] = {}  # namespace -> number of Services in it
        self.generation = 0  # bumped on every change, so response caches know when to drop
        self._ptr: dict[str, str] | None = None

    # -- keeping current

    def _changed(self) -> None:
        self.generation += 1
        self._ptr = None

    def set_service(self, svc: dict) -> None:
        entry = _service_entry(svc)
        key = (entry.namespace, entry.name)
        if key not in self.services:
            self.namespaces[entry.namespace] = self.namespaces.get(entry.namespace, 0) + 1
        self.services[key] = entry
        self._changed()

    def delete_service(self, svc: dict) -> None:
        key = (svc["metadata"].get("namespace", ""), svc["metadata"]["name"])
        if self.services.pop(key, None) is not None:
            left = self.namespaces[key[0]] - 1
            if left:
                self.namespaces[key[0]] = left
            else:
                del self.namespaces[key[0]]
        self._changed()

    @staticmethod
    def _slice_service(s: dict) -> tuple[str, str] | None:
        name = (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        return (s["metadata"].get("namespace", ""), name) if name else None

    def set_slice(self, s: dict) -> None:
        key = self._slice_service(s)
        if key is not None:
            self.slices.setdefault(key, {})[s["metadata"]["name"]] = s
            self._changed()

    def delete_slice(self, s: dict) -> None:
        key = self._slice_service(s)
        if key is not None and key in self.slices:
            self.slices[key].pop(s["metadata"]["name"], None)
            if not self.slices[key]:
                del self.slices[key]
            self._changed()

    # -- questions

    def in_zone(self, qname: str) -> bool:
        """True when we answer this name ourselves instead of forwarding it."""
        name = DNSLabel(qname)
        if name.matchSuffix(self.zone):
            return True
        ip = self._reverse_ip(name)
        return ip is not None and any(ipaddress.ip_address(ip) in net for net in self.reverse_networks
                                      if ipaddress.ip_address(ip).version == net.version)

    def soa(self, owner: DNSLabel | str | None = None) -> RR:
        return RR(owner or self.zone, QTYPE.SOA, ttl=TTL,
                  rdata=SOA(f"ns.dns.{self.domain}", f"hostmaster.{self.domain}",
                            (self.generation % 4294967295, 7200, 1800, 86400, TTL)))

    def resolve(self, qname: str, qtype: int) -> Answer:
        name = DNSLabel(str(qname).lower())
        if not name.matchSuffix(self.zone):
            return self._resolve_reverse(name, qtype)
        labels = [label.decode() for label in name.stripSuffix(self.zone).label]
        answer = self._resolve_forward(name, list(reversed(labels)), qtype)
        if not answer.answers:
            answer.authority.append(self.soa())
        return answer

    def _resolve_forward(self, name: DNSLabel, labels: list[str], qtype: int) -> Answer:
        if not labels:
            if qtype == QTYPE.SOA:
                return Answer(answers=[self.soa()])
            if qtype == QTYPE.NS:
                return Answer(answers=[RR(name, QTYPE.NS, ttl=TTL, rdata=NS(f"ns.dns.{self.domain}"))])
            return Answer()
        if labels == ["dns-version"]:
            return Answer(answers=[RR(name, QTYPE.TXT, ttl=TTL, rdata=TXT(SCHEMA_VERSION))]
                          if qtype in (QTYPE.TXT, QTYPE.ANY) else [])
        kind, rest = labels[0], labels[1:]
        if kind == "svc":
            return self._resolve_service_name(name, rest, qtype)
        if kind == "pod":
            return self._resolve_pod_name(name, rest, qtype)
        return Answer(rcode=RCODE.NXDOMAIN)

    def _resolve_pod_name(self, name: DNSLabel, rest: list[str], qtype: int) -> Answer:
        if len(rest) < 2:
            return Answer() if not rest or rest[0] in self.namespaces else Answer(rcode=RCODE.NXDOMAIN)
        if len(rest) != 2:
            return Answer(rcode=RCODE.NXDOMAIN)
        ip = undashed(rest[1])
        if ip is None:
            return Answer(rcode=RCODE.NXDOMAIN)
        return Answer(answers=self._address_rrs(name, [ip], qtype))

    def _resolve_service_name(self, name: DNSLabel, rest: list[str], qtype: int) -> Answer:
        if not rest:
            return Answer()
        namespace = rest[0]
        if len(rest) == 1:
            return Answer() if namespace in self.namespaces else Answer(rcode=RCODE.NXDOMAIN)
        svc = self.services.get((namespace, rest[1]))
        if svc is None:
            return Answer(rcode=RCODE.NXDOMAIN)
        if len(rest) == 2:
            return self._service_records(name, svc, qtype)
        if len(rest) == 3:
            return self._endpoint_records(name, svc, rest[2], qtype)
        if len(rest) == 4 and rest[2].startswith("_") and rest[3].startswith("_"):
            return self._srv_records(name, svc, rest[3][1:], rest[2][1:], qtype)
        return Answer(rcode=RCODE.NXDOMAIN)

    def service_fqdn(self, svc: ServiceEntry) -> str:
        return f"{svc.name}.{svc.namespace}.svc.{self.domain}."

    def ready_endpoints(self, svc: ServiceEntry) -> list[tuple[dict, dict]]:
        """(slice, endpoint) pairs of endpoints that are ready (a missing `ready` means ready)."""
        out = []
        for s in (self.slices.get((svc.namespace, svc.name)) or {}).values():
            for endpoint in s.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready", True) is not False:
                    out.append((s, endpoint))
        return out

    def _endpoint_label(self, endpoint: dict) -> str:
        return endpoint.get("hostname") or dashed(endpoint["addresses"][0])

    def _service_records(self, name: DNSLabel, svc: ServiceEntry, qtype: int) -> Answer:
        if svc.type == "ExternalName":
            return self._cname(name, svc, qtype)
        if svc.headless:
            ips = sorted({ip for _, e in self.ready_endpoints(svc) for ip in e.get("addresses") or []})
        else:
            ips = svc.cluster_ips
        answer = Answer(answers=self._address_rrs(name, ips, qtype))
        if qtype in (QTYPE.SRV, QTYPE.ANY):
            for port in svc.ports:
                srv = self._srv_records(name, svc, port.get("name", ""), port.get("protocol", "TCP").lower(),
                                        QTYPE.SRV, any_name=True)
                answer.answers += srv.answers
                answer.additional += [rr for rr in srv.additional if rr not in answer.additional]
        return answer

    def _cname(self, name: DNSLabel, svc: ServiceEntry, qtype: int) -> Answer:
        if not svc.external_name:
            return Answer()
        answer = Answer(answers=[RR(name, QTYPE.CNAME, ttl=TTL, rdata=CNAME(svc.external_name + "."))])
        target = DNSLabel(svc.external_name.lower())
        if qtype != QTYPE.CNAME and target.matchSuffix(self.zone) and target != name:
            chased = self.resolve(svc.external_name, qtype)  # a target inside the cluster: answer it too
            answer.answers += chased.answers
        return answer

    def _endpoint_records(self, name: DNSLabel, svc: ServiceEntry, label: str, qtype: int) -> Answer:
        ips = [ip for _, e in self.ready_endpoints(svc) if self._endpoint_label(e) == label
               for ip in e.get("addresses") or []]
        if not ips:
            return Answer(rcode=RCODE.NXDOMAIN)
        return Answer(answers=self._address_rrs(name, ips, qtype))

    def _srv_records(self, name: DNSLabel, svc: ServiceEntry, port_name: str, protocol: str, qtype: int,
                     any_name: bool = False) -> Answer:
        ports = [p for p in svc.ports if (any_name or (p.get("name") and p["name"] == port_name))
                 and p.get("protocol", "TCP").lower() == protocol]
        if not ports:
            return Answer(rcode=RCODE.NXDOMAIN)
        if qtype not in (QTYPE.SRV, QTYPE.ANY):
            return Answer()
        answer = Answer()
        if not svc.headless:
            target = self.service_fqdn(svc)
            for p in ports:
                answer.answers.append(RR(name, QTYPE.SRV, ttl=TTL,
                                         rdata=SRV(priority=0, weight=100, port=p["port"], target=target)))
            answer.additional += self._address_rrs(DNSLabel(target), svc.cluster_ips, QTYPE.ANY)
            return answer
        endpoints = self.ready_endpoints(svc)
        weight = max(1, 100 // max(1, len(endpoints)))
        for s, endpoint in endpoints:
            for sp in s.get("ports") or []:
                if not any(sp.get("name", "") == p.get("name", "") for p in ports):
                    continue
                target = f"{self._endpoint_label(endpoint)}.{self.service_fqdn(svc)}"
                answer.answers.append(RR(name, QTYPE.SRV, ttl=TTL,
                                         rdata=SRV(priority=0, weight=weight, port=sp["port"], target=target)))
                answer.additional += self._address_rrs(DNSLabel(target), endpoint["addresses"], QTYPE.ANY)
        return answer

    @staticmethod
    def _address_rrs(name: DNSLabel, ips: list[str], qtype: int) -> list:
        rrs = []
        for ip in ips:
            version = ipaddress.ip_address(ip).version
            if version == 4 and qtype in (QTYPE.A, QTYPE.ANY):
                rrs.append(RR(name, QTYPE.A, ttl=TTL, rdata=A(ip)))
            elif version == 6 and qtype in (QTYPE.AAAA, QTYPE.ANY):
                rrs.append(RR(name, QTYPE.AAAA, ttl=TTL, rdata=AAAA(ip)))
        return rrs

    # -- reverse lookups

    @staticmethod
    def _reverse_ip(name: DNSLabel) -> str | None:
        labels = [label.decode().lower() for label in name.label]
        if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
            try:
                return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
            except ValueError:
                return None
        if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
            nibbles = "".join(reversed(labels[:32]))
            try:
                return str(ipaddress.IPv6Address(int(nibbles, 16)))
            except ValueError:
                return None
        return None

    def ptr_index(self) -> dict[str, str]:
        if self._ptr is None:
            index = {}
            for svc in self.services.values():
                for ip in svc.cluster_ips:
                    index[str(ipaddress.ip_address(ip))] = self.service_fqdn(svc)
                if svc.headless:
                    for _, endpoint in self.ready_endpoints(svc):
                        for ip in endpoint.get("addresses") or []:
                            index[str(ipaddress.ip_address(ip))] = \
                                f"{self._endpoint_label(endpoint)}.{self.service_fqdn(svc)}"
            self._ptr = index
        return self._ptr

    def _resolve_reverse(self, name: DNSLabel, qtype: int) -> Answer:
        ip = self._reverse_ip(name)
        target = self.ptr_index().get(ip) if ip else None
        soa = self.soa(self._reverse_zone(ip) if ip else None)
        if target is None:
            return Answer(rcode=RCODE.NXDOMAIN, authority=[soa])
        if qtype not in (QTYPE.PTR, QTYPE.ANY):
            return Answer(authority=[soa])
        return Answer(answers=[RR(name, QTYPE.PTR, ttl=TTL, rdata=PTR(target))])

    def _reverse_zone(self, ip: str) -> str | None:
        """The reverse zone (e.g. 43.10.in-addr.arpa) of the cluster range holding `ip`."""
        address = ipaddress.ip_address(ip)
        for net in self.reverse_networks:
            if net.version == address.version and address in net:
                if net.version == 4:
                    octets = str(net.network_address).split(".")[:max(1, net.prefixlen // 8)]
                    return ".".join(reversed(octets)) + ".in-addr.arpa"
                nibbles = net.network_address.exploded.replace(":", "")[:max(1, net.prefixlen // 4)]
                return ".".join(reversed(nibbles)) + ".ip6.arpa"
        return None
