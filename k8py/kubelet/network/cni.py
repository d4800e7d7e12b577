"""PodNetwork: wires a pod sandbox's network namespace through CNI plugins.

Plugins are run the way the CNI spec says a runtime runs them: the network
config on stdin, CNI_* variables in the environment, the result (or an error)
as JSON on stdout. ADD runs the conflist's plugins in order, each given the
previous result; DEL runs them in reverse. The last result per sandbox is kept
on disk so DEL and CHECK get their prevResult even after an agent restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import orjson

from k8py.kubelet.network import conflist as confs
from k8py.kubelet.network.commands import HostCommands
from k8py.kubelet.network.host import HostNetworking
from k8py.kubelet.runtime.interface import Sandbox

log = logging.getLogger("k8py.kubelet.network")

CONFLIST_NAME = "10-k8py.conflist"
DEFAULT_BIN_DIR = Path("/usr/lib/cni")


class NetworkError(Exception):
    """A CNI plugin failed; `code` is the CNI error code (0 when it did not say)."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


class PodNetwork:
    def __init__(self, config_dir: Path, bin_dir: Path = DEFAULT_BIN_DIR, *, pod_cidr: str,
                 cluster_cidr: str, service_cidr: str, bridge: str = "k8py0", network_name: str = "k8py",
                 state_dir: Path | None = None, host_netns: str | None = None):
        self.config_dir = Path(config_dir)
        self.bin_dir = Path(bin_dir)
        self.pod_cidr, self.cluster_cidr, self.service_cidr = pod_cidr, cluster_cidr, service_cidr
        self.bridge = bridge
        self.network_name = network_name
        # <data-dir>/agent/etc/cni/net.d -> <data-dir>/agent/cni for IPAM leases and results
        if state_dir is None:
            parts = self.config_dir.parts
            state_dir = (self.config_dir.parents[2] / "cni" if parts[-3:] == ("etc", "cni", "net.d")
                         else self.config_dir / ".state")
        self.state_dir = Path(state_dir)
        self.commands = HostCommands(host_netns)
        self.host = HostNetworking(self.commands, bridge=bridge, pod_cidr=pod_cidr,
                                   cluster_cidr=cluster_cidr, service_cidr=service_cidr)

    # ---- configuration ----------------------------------------------------

    @property
    def conflist_path(self) -> Path:
        return self.config_dir / CONFLIST_NAME

    @property
    def ipam_dir(self) -> Path:
        return self.state_dir / "networks"

    def write_config(self) -> dict:
        """(Re)write k8py's own conflist; other files in the folder are left alone."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.ipam_dir.mkdir(parents=True, exist_ok=True)
        wanted = confs.build_conflist(self.network_name, self.bridge, self.pod_cidr, str(self.ipam_dir))
        tmp = self.conflist_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(wanted, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.conflist_path)
        return wanted

    def load_config(self) -> dict:
        if not self.conflist_path.exists():
            return self.write_config()
        return orjson.loads(self.conflist_path.read_bytes())

    # ---- host -------------------------------------------------------------

    async def ensure_host_networking(self) -> None:
        self.write_config()
        await self.host.ensure()

    async def set_peer_routes(self, peers: dict[str, str]) -> None:
        """Other nodes' podCIDRs -> their InternalIPs; the rest stays unreachable."""
        await self.host.set_peer_routes(peers)

    async def cleanup(self) -> None:
        await self.host.cleanup()

    # ---- pods -------------------------------------------------------------

    async def setup(self, sandbox: Sandbox, pod: dict) -> str | None:
        """Attach the sandbox to the pod network; returns the pod IP (None with hostNetwork)."""
        if not sandbox.netns_path:
            return None
        config = self.load_config()
        runtime_config = {"portMappings": confs.port_mappings(pod)}

        async def chain() -> dict | None:
            result: dict | None = None
            for plugin in config["plugins"]:
                result = await self._invoke("ADD", config, plugin, sandbox, pod, result, runtime_config)
            return result

        # lo and the chain's eth0 are separate interfaces of the namespace: wiring them at the
        # same time saves a plugin start on the way to a running pod.
        loopback, wired = await asyncio.gather(self._loopback("ADD", sandbox, pod), chain(),
                                               return_exceptions=True)
        for outcome in (wired, loopback):
            if isinstance(outcome, NetworkError):
                await self._delete_all(config, sandbox, pod, None, runtime_config)
            if isinstance(outcome, BaseException):
                raise outcome
        result = wired
        self._save_result(sandbox.id, result, runtime_config)
        ip = pod_ip_of(result)
        if ip is None:
            raise NetworkError(f"CNI result for sandbox {sandbox.id} carries no IP address")
        sandbox.ip = ip
        return ip

    async def check(self, sandbox: Sandbox, pod: dict) -> None:
        """CHECK each plugin against the stored result; raises NetworkError when wiring broke."""
        if not sandbox.netns_path:
            return
        config = self.load_config()
        saved = self._load_result(sandbox.id)
        if saved is None:
            raise NetworkError(f"no network result recorded for sandbox {sandbox.id}")
        for plugin in config["plugins"]:
            await self._invoke("CHECK", config, plugin, sandbox, pod, saved["result"], saved["runtimeConfig"])

    async def teardown(self, sandbox: Sandbox, pod: dict) -> None:
        """Release the pod's IP and host-side wiring. Idempotent."""
        if not sandbox.netns_path and self._load_result(sandbox.id) is None:
            return
        config = self.load_config()
        saved = self._load_result(sandbox.id) or {}
        runtime_config = saved.get("runtimeConfig") or {"portMappings": confs.port_mappings(pod)}
        await self._delete_all(config, sandbox, pod, saved.get("result"), runtime_config)
        self._result_path(sandbox.id).unlink(missing_ok=True)

    async def _delete_all(self, config, sandbox, pod, prev_result, runtime_config) -> None:
        errors = []
        for plugin in reversed(config["plugins"]):
            try:
                await self._invoke("DEL", config, plugin, sandbox, pod, prev_result, runtime_config)
            except NetworkError as err:  # keep releasing the rest (the IP above all)
                errors.append(str(err))
        if errors:
            raise NetworkError("; ".join(errors))

    # ---- plugin invocation -----------------------------------------------

    async def _loopback(self, command: str, sandbox: Sandbox, pod: dict) -> None:
        conf = confs.loopback_conf()
        env = self._env(command, sandbox, pod, ifname="lo")
        await self._exec_plugin("loopback", env, conf)

    async def _invoke(self, command: str, config: dict, plugin: dict, sandbox: Sandbox, pod: dict,
                      prev_result: dict | None, runtime_config: dict) -> dict | None:
        conf = dict(plugin)
        conf["cniVersion"] = config.get("cniVersion", confs.CNI_VERSION)
        conf["name"] = config["name"]
        wanted = {k: v for k, v in runtime_config.items() if (plugin.get("capabilities") or {}).get(k)}
        if wanted:
            conf["runtimeConfig"] = wanted
        if prev_result is not None:
            conf["prevResult"] = prev_result
        env = self._env(command, sandbox, pod, ifname="eth0")
        result = await self._exec_plugin(plugin["type"], env, conf)
        # DEL and CHECK print nothing; the chain's result stays the one ADD built
        return result if command == "ADD" else prev_result

    def _env(self, command: str, sandbox: Sandbox, pod: dict, ifname: str) -> dict:
        meta = pod.get("metadata") or {}
        netns = sandbox.netns_path or ""
        if netns and not os.path.exists(netns):
            netns = ""  # DEL after the namespace is gone must still release the IP
        args = ";".join(["IgnoreUnknown=1", f"K8S_POD_NAMESPACE={meta.get('namespace', '')}",
                         f"K8S_POD_NAME={meta.get('name', '')}", f"K8S_POD_INFRA_CONTAINER_ID={sandbox.id}",
                         f"K8S_POD_UID={meta.get('uid', sandbox.pod_uid)}"])
        return {"CNI_COMMAND": command, "CNI_CONTAINERID": sandbox.id, "CNI_NETNS": netns,
                "CNI_IFNAME": ifname, "CNI_ARGS": args, "CNI_PATH": str(self.bin_dir),
                "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}

    async def _exec_plugin(self, plugin_type: str, env: dict, conf: dict) -> dict | None:
        binary = self.bin_dir / plugin_type
        if not binary.exists():
            raise NetworkError(f'failed to find plugin "{plugin_type}" in path [{self.bin_dir}]')
        result = await self.commands.run([str(binary)], stdin=orjson.dumps(conf), env=env, check=False)
        output = result.stdout.strip()
        if result.returncode != 0:
            try:
                error = orjson.loads(output)
                message = error.get("msg", "") + (f": {error['details']}" if error.get("details") else "")
                code = int(error.get("code") or 0)
            except (orjson.JSONDecodeError, AttributeError, ValueError):
                message, code = (output or result.stderr).decode(errors="replace").strip(), 0
            raise NetworkError(f"plugin type=\"{plugin_type}\" name=\"{conf.get('name')}\" failed "
                               f"({env['CNI_COMMAND'].lower()}): {message}", code)
        if not output:
            return None
        try:
            return orjson.loads(output)
        except orjson.JSONDecodeError as err:
            raise NetworkError(f"plugin {plugin_type} printed a result that is not JSON: {err}") from None

    # ---- stored results ---------------------------------------------------

    def _result_path(self, sandbox_id: str) -> Path:
        return self.state_dir / "results" / f"{self.network_name}-{sandbox_id}.json"

    def _save_result(self, sandbox_id: str, result: dict | None, runtime_config: dict) -> None:
        path = self._result_path(sandbox_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps({"result": result, "runtimeConfig": runtime_config}))

    def _load_result(self, sandbox_id: str) -> dict | None:
        try:
            return orjson.loads(self._result_path(sandbox_id).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None


def pod_ip_of(result: dict | None) -> str | None:
    """The IP on the pod's eth0 from a CNI result (the first IPv4 when there are several)."""
    if not result:
        return None
    ips = result.get("ips") or []
    interfaces = result.get("interfaces") or []
    for entry in ips:
        index = entry.get("interface")
        if index is not None and 0 <= index < len(interfaces) and interfaces[index].get("sandbox") is None:
            continue  # an address on a host-side interface
        address = entry.get("address", "")
        if ":" not in address:
            return address.split("/")[0]
    return ips[0]["address"].split("/")[0] if ips else None
