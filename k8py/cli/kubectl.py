"""`k8py kubectl ...`: the real kubectl with the server's kubeconfig preselected."""

from __future__ import annotations

import os
import shutil
import sys

from k8py.client.paths import default_data_dir, default_kubeconfig


def add_parser(sub) -> None:
    sub.add_parser("kubectl", help="run kubectl against this server", add_help=False)


def run(argv) -> int:
    binary = shutil.which("kubectl")
    if binary is None:
        print("k8py: kubectl is not on PATH", file=sys.stderr)
        return 127
    env = dict(os.environ)
    if "KUBECONFIG" not in env:
        env["KUBECONFIG"] = str(default_kubeconfig(default_data_dir()))
    os.execvpe(binary, [binary, *argv], env)
