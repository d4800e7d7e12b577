"""`k8py` entry point: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import sys

from k8py.cli import kubectl, scheduler, server

SUBCOMMANDS = {"server": server, "kubectl": kubectl, "scheduler": scheduler}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "kubectl":
        # Everything after `kubectl` belongs to kubectl, flags included.
        return kubectl.run(argv[1:])
    parser = argparse.ArgumentParser(prog="k8py", description="Kubernetes v1.32, written in Python")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in SUBCOMMANDS.items():
        module.add_parser(sub)
    args = parser.parse_args(argv)
    return SUBCOMMANDS[args.command].run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
