"""`k8py` entry point: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module with add_parser(subparsers) and run(args); imported only when used.
SUBCOMMANDS = {
    "server": "k8py.cli.server",
    "kubectl": "k8py.cli.kubectl",
    "agent": "k8py.cli.agent",
    "scheduler": "k8py.cli.scheduler",
    "controller-manager": "k8py.cli.controller_manager",
    "images": "k8py.cli.images",
    "proxy": "k8py.cli.proxy",
    "etcd-snapshot": "k8py.cli.etcd_snapshot",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "kubectl":
        # Everything after `kubectl` belongs to kubectl, flags included.
        return importlib.import_module(SUBCOMMANDS["kubectl"]).run(argv[1:])
    parser = argparse.ArgumentParser(prog="k8py", description="Kubernetes v1.32, written in Python")
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    for name, module in SUBCOMMANDS.items():
        if chosen is None or name == chosen:
            importlib.import_module(module).add_parser(sub)
        else:  # listed in --help without importing what it needs
            sub.add_parser(name)
    args = parser.parse_args(argv)
    return importlib.import_module(SUBCOMMANDS[args.command]).run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
