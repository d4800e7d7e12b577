"""The host side of the pod network.

What must hold on every node (../shared/DESIGN.md):
- forwarding on (it starts at 0 here) and bridged traffic seen by iptables;
- the whole service range routed to the pod bridge before any Service exists,
  so host-originated ClusterIP packets have a route for the OUTPUT DNAT and an
  unmatched one dies locally instead of leaving by the default route;
- the cluster range minus this node's podCIDR goes to the node owning each
  slice, or to an `unreachable` route;
- pod traffic leaving the cluster range is masqueraded (in chains k8py owns).
Routes k8py adds carry their own protocol number so they can be found and
removed again without touching anybody else's.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import shlex

from k8py.kubelet.network.commands import CommandError, HostCommands
from k8py.kubelet.network.conflist import gateway_of

log = logging.getLogger("k8py.kubelet.network")

ROUTE_PROTO = "175"             # marks routes this agent owns
NAT_CHAIN = "K8PY-POSTROUTING"
FORWARD_CHAIN = "K8PY-FORWARD"
# The portmap plugin's shared nat chains (hostPort); per-pod chains are CNI-DN-<hash>.
PORTMAP_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK")


def stable_mac(name: str) -> str:
    """A locally administered unicast MAC derived from the bridge name."""
    digest = hashlib.sha256(name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02,) + tuple(digest[:5]))


class HostNetworking:
    def __init__(self, commands: HostCommands, *, bridge: str, pod_cidr: str, cluster_cidr: str,
                 service_cidr: str):
        self.cmd = commands
        self.bridge = bridge
        self.pod_cidr = str(ipaddress.ip_network(pod_cidr, strict=False))
        self.cluster_cidr = str(ipaddress.ip_network(cluster_cidr, strict=False))
        self.service_cidr = str(ipaddress.ip_network(service_cidr, strict=False))
        self.peers: dict[str, str] = {}

    async def ensure(self) -> None:
        await self._sysctls()
        await self._bridge()
        await self._routes()
        await self._iptables()

    async def _sysctls(self) -> None:
        await self.cmd.write_sysctl("net.ipv4.ip_forward", "1")
        if await self.cmd.read_sysctl("net.bridge.bridge-nf-call-iptables") is None:
            await self.cmd.run(["modprobe", "br_netfilter"], check=False)
        if await self.cmd.read_sysctl("net.bridge.bridge-nf-call-iptables") is not None:
            await self.cmd.write_sysctl("net.bridge.bridge-nf-call-iptables", "1")
        else:
            log.warning("br_netfilter is not available: bridged pod traffic bypasses iptables")

    async def _bridge(self) -> None:
        """Create the bridge the CNI plugin would create, so routes can point at it now."""
        if not await self.cmd.ok(["ip", "link", "show", "dev", self.bridge]):
            await self.cmd.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=False)
        # A bridge otherwise takes the lowest MAC of its ports and changes it as
        # pods come and go, which breaks CNI CHECK (and neighbours' ARP caches).
        await self.cmd.run(["ip", "link", "set", self.bridge, "address", stable_mac(self.bridge)])
        await self.cmd.run(["ip", "link", "set", self.bridge, "up"])
        prefix = ipaddress.ip_network(self.pod_cidr).prefixlen
        await self.cmd.run(["ip", "addr", "replace", f"{gateway_of(self.pod_cidr)}/{prefix}", "dev", self.bridge])

    async def _routes(self) -> None:
        await self._route("replace", self.service_cidr, "dev", self.bridge)
        if self.cluster_cidr != self.pod_cidr:
            await self.cmd.run(["ip", "route", "replace", "unreachable", self.cluster_cidr,
                                "proto", ROUTE_PROTO])
        for cidr, node_ip in self.peers.items():
            await self._route("replace", cidr, "via", node_ip)

    async def _route(self, verb: str, cidr: str, *target: str) -> None:
        await self.cmd.run(["ip", "route", verb, cidr, *target, "proto", ROUTE_PROTO])

    async def set_peer_routes(self, peers: dict[str, str]) -> None:
        wanted = {str(ipaddress.ip_network(c, strict=False)): ip for c, ip in peers.items()
                  if str(ipaddress.ip_network(c, strict=False)) != self.pod_cidr}
        for cidr in set(self.peers) - set(wanted):
            await self.cmd.run(["ip", "route", "del", cidr, "proto", ROUTE_PROTO], check=False)
        for cidr, node_ip in wanted.items():
            if self.peers.get(cidr) != node_ip:
                try:
                    await self._route("replace", cidr, "via", node_ip)
                except CommandError as err:  # a peer not on a connected network: keep the rest going
                    log.warning("route to pods on %s via %s: %s", cidr, node_ip, err)
                    continue
            self.peers[cidr] = node_ip
        self.peers = {c: ip for c, ip in self.peers.items() if c in wanted}

    async def _iptables(self) -> None:
        await self._chain("nat", NAT_CHAIN, "POSTROUTING", [
            # pod-to-pod (and DNATed service) traffic keeps its source address
            ["-s", self.cluster_cidr, "-d", self.cluster_cidr, "-j", "RETURN"],
            ["-s", self.pod_cidr, "!", "-d", "224.0.0.0/4", "-j", "MASQUERADE", "--random-fully"],
        ])
        await self._chain("filter", FORWARD_CHAIN, "FORWARD", [
            ["-s", self.cluster_cidr, "-j", "ACCEPT"],
            ["-d", self.cluster_cidr, "-j", "ACCEPT"],
        ])

    async def _chain(self, table: str, chain: str, parent: str, rules: list[list[str]]) -> None:
        comment = ["-m", "comment", "--comment", "k8py pod network"]
        await self.cmd.run(["iptables", "-w", "-t", table, "-N", chain], check=False)
        await self.cmd.run(["iptables", "-w", "-t", table, "-F", chain])
        for rule in rules:
            await self.cmd.run(["iptables", "-w", "-t", table, "-A", chain, *rule, *comment])
        jump = [parent, *comment, "-j", chain]
        if not await self.cmd.ok(["iptables", "-w", "-t", table, "-C", *jump]):
            await self.cmd.run(["iptables", "-w", "-t", table, "-I", *jump])

    async def cleanup(self) -> None:
        """Remove everything ensure() made: chains, owned routes, the bridge."""
        comment = ["-m", "comment", "--comment", "k8py pod network"]
        for table, chain, parent in (("nat", NAT_CHAIN, "POSTROUTING"), ("filter", FORWARD_CHAIN, "FORWARD")):
            while await self.cmd.ok(["iptables", "-w", "-t", table, "-D", parent, *comment, "-j", chain]):
                pass
            await self.cmd.run(["iptables", "-w", "-t", table, "-F", chain], check=False)
            await self.cmd.run(["iptables", "-w", "-t", table, "-X", chain], check=False)
        await self.remove_idle_portmap_chains()
        await self.cmd.run(["ip", "route", "flush", "proto", ROUTE_PROTO], check=False)
        await self.cmd.run(["ip", "link", "del", self.bridge], check=False)
        self.peers = {}

    async def remove_idle_portmap_chains(self) -> bool:
        """Remove the portmap plugin's shared hostPort chains once no pod uses them any more.

        Call after CNI DEL of every sandbox (which removes each pod's CNI-DN-* chain and its
        jump). Another CNI user on this host may still have hostPorts in CNI-HOSTPORT-DNAT:
        then everything is left alone. Returns whether the chains are gone."""
        result = await self.cmd.run(["iptables", "-w", "-t", "nat", "-S"], check=False)
        if result.returncode != 0:
            return False
        rules = result.stdout.decode().splitlines()
        if any(rule.startswith(f"-A {PORTMAP_CHAINS[0]} ") for rule in rules):
            log.info("%s still holds hostPort rules (another CNI user?): left in place", PORTMAP_CHAINS[0])
            return False
        for rule in rules:      # the jumps into them from the built-in chains
            try:
                words = shlex.split(rule)
            except ValueError:  # quoting iptables wrote and a shell wouldn't read: not a portmap jump
                continue
            if words[:1] == ["-A"] and words[-2:-1] == ["-j"] and words[-1] in PORTMAP_CHAINS \
                    and not words[1].startswith("CNI-"):
                await self.cmd.run(["iptables", "-w", "-t", "nat", "-D", *words[1:]], check=False)
        # Unreferenced per-pod chains (a DEL that failed) go too: they reference the shared ones.
        chains = [rule.split()[1] for rule in rules if rule.startswith("-N CNI-DN-")] + list(PORTMAP_CHAINS)
        for flag in ("-F", "-X"):
            for chain in chains:
                await self.cmd.run(["iptables", "-w", "-t", "nat", flag, chain], check=False)
        return True
