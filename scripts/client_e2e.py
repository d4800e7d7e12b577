"""Run the official Python client's own e2e suite against a fresh k8py server.

The suite (kubernetes/e2e_test in kubernetes-client/python) is not shipped in
the wheel or the sdist, so give this script a checkout of that repository:

    python scripts/client_e2e.py /path/to/kubernetes-client-python [--with-node]

It overlays e2e_test onto the installed `kubernetes` package in a temporary
folder, starts `k8py server` on a free port, and runs the suite with pytest.
Without --with-node it leaves out the tests that need a running container
(pod exec, port-forward, pod phase Running), listed in NEEDS_A_NODE. With it
(as root) the server runs its node agent, pulling `busybox` and `nginx` from
the local test registry (scripts/test_registry.py) as the docker.io mirror;
`test_portforward_raw` needs a `python` image, which that registry lacks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kubernetes

NEEDS_A_NODE = ["test_pod_apis", "test_pod_exec_close_channel", "test_exit_code", "test_portforward_raw",
                "test_portforward_http"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", type=Path, help="a checkout of kubernetes-client/python")
    parser.add_argument("--with-node", action="store_true", help="also run the tests that need running pods")
    args = parser.parse_args()
    suite = args.checkout / "kubernetes" / "e2e_test"
    if not suite.is_dir():
        parser.error(f"{suite} does not exist")
    with tempfile.TemporaryDirectory(prefix="k8py-client-e2e-") as tmp:
        tmp = Path(tmp)
        overlay = tmp / "overlay"
        shutil.copytree(Path(kubernetes.__file__).parent, overlay / "kubernetes")
        shutil.copytree(suite, overlay / "kubernetes" / "e2e_test")
        port = free_port()
        data = tmp / "data"
        registry = None
        flags = ["--disable-agent"]
        if args.with_node:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from test_registry import start_registry
            registry = start_registry(tmp / "registry")
            (data / "agent").mkdir(parents=True)
            shutil.copy(registry.mirrors_config, data / "agent" / "registries.yaml")
            flags = []
        server = subprocess.Popen([sys.executable, "-m", "k8py", "server", "--data-dir", str(data),
                                   "--https-listen-port", str(port), *flags],
                                  stdout=open(tmp / "server.log", "wb"), stderr=subprocess.STDOUT)
        try:
            kubeconfig = data / "kubeconfig.yaml"
            deadline = time.monotonic() + 30
            while not kubeconfig.exists():
                if time.monotonic() > deadline or server.poll() is not None:
                    print("k8py server did not start", file=sys.stderr)
                    return 2
                time.sleep(0.1)
            selection = [] if args.with_node else ["-k", " and ".join(f"not {t}" for t in NEEDS_A_NODE)]
            return subprocess.call([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA",
                                    "kubernetes/e2e_test", *selection], cwd=overlay,
                                   env={**os.environ, "KUBECONFIG": str(kubeconfig)})
        finally:
            server.terminate()
            server.wait(timeout=30)
            if registry is not None:
                # The agent leaves containers running for its next start: remove them and the pod network.
                subprocess.run([sys.executable, "-m", "k8py", "agent", "--cleanup", "--data-dir", str(data / "agent")],
                               check=False)
                registry.stop()


if __name__ == "__main__":
    sys.exit(main())
