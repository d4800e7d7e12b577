"""The iptables proxier: Service and EndpointSlice changes in, one iptables-restore batch out.

Changes only mark Services dirty; a sync (rate-limited to one per
`min_sync_period`) recomputes the dirty Services' rules and writes one batch:
the shared chains whole, plus the chains of the Services that changed, plus
`-X` for chains nobody uses any more. The first sync (and one every
`full_sync_period`) rewrites everything and removes leftovers of earlier
runs, so the tables converge whatever state they were in.
"""

from __future__ import annotations

import asyncio
import logging
import time

from k8py.proxy.iptables import Iptables, chains_in
from k8py.proxy.model import service_ports
from k8py.proxy.rules import FILTER_CHAINS, JUMPS, NAT_CHAINS, OWNED_PREFIXES, ProxyConfig, ServiceRules, \
    render, service_rules

log = logging.getLogger("k8py.proxy")

CANARY = "KUBE-PROXY-CANARY"


def _key(obj: dict) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def _slice_service_key(s: dict) -> str | None:
    name = (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
    return f"{s['metadata'].get('namespace', '')}/{name}" if name else None


class Proxier:
    def __init__(self, cfg: ProxyConfig, iptables: Iptables, min_sync_period: float = 0.05,
                 full_sync_period: float = 3600.0, canary_period: float = 30.0):
        self.cfg = cfg
        self.iptables = iptables
        self.min_sync_period = min_sync_period
        self.full_sync_period = full_sync_period
        self.canary_period = canary_period
        self.services: dict[str, dict] = {}
        self.slices: dict[str, dict[str, dict]] = {}
        self.rules: dict[str, list[ServiceRules]] = {}
        self.chains: dict[str, set[str]] = {}
        self.udp_ips: dict[str, tuple] = {}  # key -> (UDP cluster IPs, endpoint addresses) last programmed
        self.dirty: set[str] = set()
        self.shared: dict | None = None  # the shared chains as the last batch left them
        self.needs_full = True
        self.last_full = 0.0
        self.syncs = 0
        self.last_sync_seconds = 0.0
        self.last_sync_at = 0.0  # monotonic time the last successful sync finished
        self.pending_since: float | None = None  # when the oldest change not yet written arrived
        self._changed = asyncio.Event()
        self.synced = asyncio.Event()  # set after every successful sync (tests and benches wait on it)

    # -- changes in

    def _mark(self, key: str | None) -> None:
        if key:
            self.dirty.add(key)
            if self.pending_since is None:
                self.pending_since = time.monotonic()
            self._changed.set()

    def nat_rule_count(self) -> int:
        return sum(len(lines) for rules in self.rules.values() for r in rules for lines in r.chains.values()) \
            + sum(len(r.nat_services) + len(r.nat_nodeports) for rules in self.rules.values() for r in rules)

    def on_service(self, svc: dict) -> None:
        self.services[_key(svc)] = svc
        self._mark(_key(svc))

    def on_service_deleted(self, svc: dict) -> None:
        self.services.pop(_key(svc), None)
        self._mark(_key(svc))

    def on_slice(self, s: dict) -> None:
        key = _slice_service_key(s)
        if key:
            self.slices.setdefault(key, {})[s["metadata"]["name"]] = s
            self._mark(key)

    def on_slice_deleted(self, s: dict) -> None:
        key = _slice_service_key(s)
        if key and key in self.slices:
            self.slices[key].pop(s["metadata"]["name"], None)
            if not self.slices[key]:
                del self.slices[key]
            self._mark(key)

    # -- syncing

    def _recompute(self, key: str) -> None:
        svc = self.services.get(key)
        ports = service_ports(svc, list((self.slices.get(key) or {}).values())) if svc else []
        if ports:
            self.rules[key] = [service_rules(sp, self.cfg) for sp in ports]
        else:
            self.rules.pop(key, None)

    async def sync(self) -> None:
        started = time.monotonic()
        pending_since, self.pending_since = self.pending_since, None
        full = self.needs_full or started - self.last_full > self.full_sync_period
        dirty, self.dirty = self.dirty, set()
        try:
            for key in (set(self.services) | set(self.rules) if full else dirty):
                self._recompute(key)
            stale: set[str] = set()
            for key in dirty | (set(self.chains) if full else set()):
                new = {c for r in self.rules.get(key, []) for c in r.chains}
                stale |= self.chains.get(key, set()) - new
                if new:
                    self.chains[key] = new
                else:
                    self.chains.pop(key, None)
            wanted = {c for chains in self.chains.values() for c in chains}
            if full:
                existing = chains_in(await self.iptables.save("nat"))
                stale |= {c for c in existing if c.startswith(OWNED_PREFIXES)}
            stale -= wanted
            text, shared = render(self.rules, self.cfg, None if full else dirty, stale,
                                  None if full else self.shared)
            if text:
                await self.iptables.restore(text)
            self.shared = shared
            if full:
                await self.ensure_jumps()
                await self.ensure_canary()
                self.needs_full = False
                self.last_full = started
            await self._clear_udp_conntrack(dirty if not full else set(self.rules) | dirty)
        except Exception:
            self.dirty |= dirty
            self.pending_since = pending_since or started
            self.needs_full = True  # we no longer know what the tables hold
            raise
        self.syncs += 1
        self.last_sync_at = time.monotonic()
        self.last_sync_seconds = self.last_sync_at - started
        self.synced.set()

    async def ensure_jumps(self) -> None:
        for table, parent, chain, match in JUMPS:
            rule = [parent, *match, "-j", chain]
            if not await self.iptables.ok("iptables", "-w", "5", "-t", table, "-C", *rule):
                await self.iptables.run("iptables", "-w", "5", "-t", table, "-I", *rule)
        if not self.cfg.nodeport_cidrs or any(c.startswith("127.") for c in self.cfg.nodeport_cidrs):
            # NodePorts on 127.0.0.1: DNATed loopback packets must be routable out of lo.
            await self.iptables.sysctl("net.ipv4.conf.all.route_localnet", "1")

    async def _clear_udp_conntrack(self, keys: set[str]) -> None:
        """UDP flows stick to an old DNAT (or REJECT) in conntrack; drop them when a UDP Service's endpoints change."""
        for key in keys:
            udp = [(sp.cluster_ips, tuple(e.address for e in sp.endpoints))
                   for sp in service_ports(self.services[key], list((self.slices.get(key) or {}).values()))
                   if sp.protocol == "UDP"] if key in self.services else []
            state = tuple((tuple(ips), eps) for ips, eps in udp)
            if state != self.udp_ips.get(key, ()):
                for ips, _ in udp:
                    for ip in ips:
                        await self.iptables.flush_conntrack_udp(ip)
            if state:
                self.udp_ips[key] = state
            else:
                self.udp_ips.pop(key, None)

    async def run(self) -> None:
        """Sync now, then whenever something changes (at most once per min_sync_period)."""
        backoff = 0.5
        while True:
            try:
                await self.sync()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.error("iptables sync failed: %s; retrying in %.1fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)
                continue
            await asyncio.sleep(self.min_sync_period)
            self._changed.clear()
            while not self.dirty and not self.needs_full:
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=self.canary_period)
                except asyncio.TimeoutError:
                    if time.monotonic() - self.last_full > self.full_sync_period:
                        break
                    if not await self.canary_alive():
                        log.warning("kube-proxy's canary chain is gone (tables flushed?); resyncing everything")
                        self.needs_full = True

    async def canary_alive(self) -> bool:
        """Someone flushing the tables (a firewall reload) also removes the canary: time for a full sync."""
        return await self.iptables.ok("iptables", "-w", "5", "-t", "mangle", "-S", CANARY, "1")

    async def ensure_canary(self) -> None:
        # A tiny chain in the small mangle table: cheap to look for, gone when tables are flushed.
        if not await self.canary_alive():
            await self.iptables.restore(f"*mangle\n:{CANARY} - [0:0]\n-A {CANARY} -j RETURN\nCOMMIT\n")


async def cleanup(iptables: Iptables | None = None) -> None:
    """Remove every chain and rule kube-proxy (ours or upstream's) made: jumps first, then the chains."""
    iptables = iptables or Iptables()
    for table, parent, chain, match in JUMPS:
        rule = [parent, *match, "-j", chain]
        while await iptables.ok("iptables", "-w", "5", "-t", table, "-D", *rule):
            pass
    for table, fixed in (("nat", NAT_CHAINS), ("filter", FILTER_CHAINS), ("mangle", (CANARY,))):
        existing = chains_in(await iptables.save(table))
        ours = [c for c in existing if c in fixed or c.startswith(OWNED_PREFIXES)]
        if not ours:
            continue
        text = [f"*{table}"] + [f":{c} - [0:0]" for c in ours] + [f"-X {c}" for c in ours] + ["COMMIT"]
        await iptables.restore("\n".join(text) + "\n")
