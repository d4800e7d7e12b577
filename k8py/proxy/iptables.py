"""Running iptables, iptables-restore and friends, optionally inside a network namespace.

Tests and benchmarks run the proxy inside namespaces they create, so every
command can be prefixed with `ip netns exec <ns>`; the host's own tables are
only touched by a real agent.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("k8py.proxy.iptables")


class CommandFailed(Exception):
    pass


class Iptables:
    def __init__(self, netns: str | None = None):
        self.netns = netns
        self.prefix = ["ip", "netns", "exec", netns] if netns else []

    async def run(self, *argv: str, input: str | None = None, check: bool = True) -> str:
        proc = await asyncio.create_subprocess_exec(
            *self.prefix, *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(input.encode() if input is not None else None)
        if check and proc.returncode != 0:
            raise CommandFailed(f"{' '.join(argv[:3])}... exited {proc.returncode}: {err.decode().strip()[:2000]}")
        return out.decode()

    async def ok(self, *argv: str) -> bool:
        proc = await asyncio.create_subprocess_exec(*self.prefix, *argv, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
        return await proc.wait() == 0

    async def restore(self, text: str) -> None:
        """One atomic batch per table; --noflush keeps rules and chains we do not mention."""
        await self.run("iptables-restore", "-w", "5", "--noflush", input=text)

    async def save(self, table: str) -> str:
        return await self.run("iptables-save", "-t", table)

    async def sysctl(self, key: str, value: str) -> None:
        await self.run("sysctl", "-q", "-w", f"{key}={value}", check=False)

    async def flush_conntrack_udp(self, ip: str) -> None:
        await self.run("conntrack", "-D", "-p", "udp", "--orig-dst", ip, check=False)


def chains_in(save_output: str) -> list[str]:
    return [line[1:].split()[0] for line in save_output.splitlines() if line.startswith(":")]
