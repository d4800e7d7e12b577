"""Running host commands without blocking the event loop.

Every network command can run inside a named network namespace instead of
the machine's own one: tests give the agent a private "host" namespace so the
real network is never touched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class CommandError(Exception):
    def __init__(self, argv: list[str], returncode: int, stdout: bytes, stderr: bytes):
        self.argv, self.returncode, self.stdout, self.stderr = argv, returncode, stdout, stderr
        detail = (stderr or stdout).decode(errors="replace").strip()
        super().__init__(f"{' '.join(argv)} exited {returncode}: {detail}")


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes


class HostCommands:
    """Runs commands on the host, or inside `netns` when one is given."""

    def __init__(self, netns: str | None = None):
        self.netns = netns

    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else list(argv)

    async def run(self, argv: list[str], stdin: bytes | None = None, env: dict | None = None,
                  check: bool = True) -> Result:
        full = self.argv(argv)
        proc = await asyncio.create_subprocess_exec(
            *full, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await proc.communicate(stdin)
        if check and proc.returncode != 0:
            raise CommandError(full, proc.returncode, out, err)
        return Result(proc.returncode, out, err)

    async def ok(self, argv: list[str]) -> bool:
        return (await self.run(argv, check=False)).returncode == 0

    async def write_sysctl(self, name: str, value: str) -> None:
        """Sysctls are per network namespace, so write them from inside it."""
        path = "/proc/sys/" + name.replace(".", "/")
        await self.run(["sh", "-c", f"echo {value} > {path}"])

    async def read_sysctl(self, name: str) -> str | None:
        path = "/proc/sys/" + name.replace(".", "/")
        result = await self.run(["cat", path], check=False)
        return result.stdout.decode().strip() if result.returncode == 0 else None
