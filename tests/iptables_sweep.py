"""Removing a test cluster's iptables rules from a shared network namespace.

Tests that run a node in the root namespace remove only what mentions their
own ranges or bridge (other runs may share the machine), then the k8py chains
left empty. `iptables -S` quotes arguments with spaces (`--comment "k8py pod
network"`), so its lines are split as a shell would, never on whitespace.
"""

from __future__ import annotations

import shlex
import subprocess


def rules_mentioning(listing: str, needles: tuple[str, ...]) -> list[list[str]]:
    """The `-A` rules of an `iptables -S` listing that name any needle, as the argument
    lists `iptables -D` takes (the chain first)."""
    found = []
    for line in listing.splitlines():
        if not line.startswith("-A ") or not any(n in line for n in needles):
            continue
        found.append(shlex.split(line)[1:])
    return found


def empty_chains(listing: str, prefix: str) -> list[str]:
    """Chains named with `prefix` that hold no rule of their own."""
    chains = [line.split()[1] for line in listing.splitlines() if line.startswith("-N ")]
    used = {shlex.split(line)[1] for line in listing.splitlines() if line.startswith("-A ")}
    return [c for c in chains if c.startswith(prefix) and c not in used]


def jumps_to(listing: str, chains: list[str]) -> list[list[str]]:
    """The rules jumping to any of `chains`, as `iptables -D` arguments."""
    found = []
    for line in listing.splitlines():
        if line.startswith("-A "):
            words = shlex.split(line)
            if words[-2:-1] in (["-j"], ["-g"]) and words[-1] in chains:
                found.append(words[1:])
    return found


def sweep(needles: tuple[str, ...], chain_prefix: str = "K8PY-", tables: tuple[str, ...] = ("nat", "filter"),
          enter: tuple[str, ...] = ()) -> None:
    """Delete the rules naming any needle, then the `chain_prefix` chains that are left
    empty (and the jumps into them); chains other clusters still use stay. `enter` runs
    iptables elsewhere (e.g. `ip netns exec NAME`)."""
    def iptables(table: str, *args: str) -> str:
        return subprocess.run([*enter, "iptables", "-w", "5", "-t", table, *args], capture_output=True,
                              text=True).stdout

    for table in tables:
        for rule in rules_mentioning(iptables(table, "-S"), needles):
            iptables(table, "-D", *rule)
        listing = iptables(table, "-S")
        empty = empty_chains(listing, chain_prefix)
        for rule in jumps_to(listing, empty):
            iptables(table, "-D", *rule)
        for chain in empty:
            iptables(table, "-X", chain)
