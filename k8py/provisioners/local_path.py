"""rancher.io/local-path, as k3s ships it (component `local-storage`).

The `local-path` StorageClass (the cluster default, WaitForFirstConsumer,
reclaimPolicy Delete) is created at server start if missing. Each volume is a
directory `<data-dir>/storage/pvc-<uid>_<namespace>_<claim>` on the node the
scheduler picked (`volume.kubernetes.io/selected-node`); the PV is a hostPath
volume (type DirectoryOrCreate) with required node affinity to that node's
`kubernetes.io/hostname`, or a `local` volume when the claim or the class
asks for `volumeType: local`. ReadWriteOnce(Pod) only, no selectors, as the
upstream provisioner.

The directory is made and removed on this server's filesystem; the kubelet of
the chosen node creates it too when it mounts the volume (DirectoryOrCreate),
so a node on another machine gets its directory. Deleting a volume of any
node but the server's own also runs a helper pod on that node to remove it
there (helper_pod.py), as upstream's provisioner does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

from k8py.client import ApiError
from k8py.provisioners import helper_pod
from k8py.provisioners.controller import ProvisionController, ProvisioningError, ProvisionOptions, base_volume
from k8py.provisioners.folders import make_directory, remove_directory

log = logging.getLogger("k8py.provisioners.local_path")

NAME = "rancher.io/local-path"
CLASS_NAME = "local-path"
HOSTNAME_LABEL = "kubernetes.io/hostname"
VOLUME_TYPE = "volumeType"
SUPPORTED_MODES = {"ReadWriteOnce", "ReadWriteOncePod"}

STORAGE_CLASS = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": CLASS_NAME, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": NAME, "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete",
}


def folder_name(pv_name: str, claim: dict) -> str:
    meta = claim["metadata"]
    return f"{pv_name}_{meta.get('namespace', '')}_{meta['name']}"


class LocalPathProvisioner:
    name = NAME

    def __init__(self, base: Path, client=None, own_node: str | None = None):
        self.base = Path(base)
        self.client = client            # for helper pods; None: directories on this host only
        self.own_node = own_node        # the server's embedded node, whose disk is this one

    def _volume_type(self, options: ProvisionOptions) -> str:
        annotations = (options.claim.get("metadata") or {}).get("annotations") or {}
        return (annotations.get(VOLUME_TYPE) or options.parameters.get(VOLUME_TYPE) or "hostPath").lower()

    async def provision(self, options: ProvisionOptions) -> dict:
        spec = options.claim.get("spec") or {}
        if spec.get("selector") is not None:
            raise ProvisioningError("claim.Spec.Selector is not supported")
        if set(spec.get("accessModes") or []) - SUPPORTED_MODES:
            raise ProvisioningError("NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes")
        node = options.selected_node
        if node is None:
            raise ProvisioningError("configuration error, no node was specified")
        volume_type = self._volume_type(options)
        if volume_type not in ("hostpath", "local"):
            raise ProvisioningError(f"invalid volumeType: {volume_type}")
        node_name = node["metadata"]["name"]
        hostname = ((node["metadata"].get("labels") or {}).get(HOSTNAME_LABEL)) or node_name
        path = str(self.base / folder_name(options.pv_name, options.claim))
        await asyncio.to_thread(make_directory, path)
        log.info("local-path: volume %s at %s on node %s", options.pv_name, path, node_name)
        volume = base_volume(options, NAME)
        if volume_type == "local":
            volume["spec"]["local"] = {"path": path}
        else:
            volume["spec"]["hostPath"] = {"path": path, "type": "DirectoryOrCreate"}
        volume["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}]}]}}
        return volume

    async def delete(self, volume: dict, storage_class: dict | None) -> None:
        spec = volume.get("spec") or {}
        path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
        if not path:
            raise ProvisioningError("no path set")
        # Only ever remove what we made: a directory right under our base.
        if os.path.dirname(os.path.normpath(path)) != str(self.base):
            raise ProvisioningError(f"volume path {path} is not under {self.base}")
        await asyncio.to_thread(remove_directory, path)
        node = volume_node(volume)
        if self.client is not None and node and node != self.own_node:
            try:
                await helper_pod.remove_on_node(self.client, volume["metadata"]["name"], node, str(self.base),
                                                os.path.basename(os.path.normpath(path)))
            except helper_pod.HelperPodError as e:
                raise ProvisioningError(str(e)) from None


def volume_node(volume: dict) -> str | None:
    """The node named by the node affinity local-path gives its volumes."""
    terms = ((((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
             .get("nodeSelectorTerms") or [])
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In" and expr.get("values"):
                return expr["values"][0]
    return None


async def ensure_storage_class(client) -> None:
    try:
        await client.resource("storage.k8s.io/v1", "storageclasses").create(STORAGE_CLASS)
        log.info("created StorageClass %s", CLASS_NAME)
    except ApiError as e:
        if not e.already_exists:
            raise


async def run_in_server(args, client) -> None:
    from k8py.client.paths import default_data_dir  # the server's rule, as the controller-manager's
    base = (args.data_dir or default_data_dir()).resolve() / "storage"
    while True:
        try:
            await ensure_storage_class(client)
            break
        except Exception as e:  # the API server may still be starting
            log.info("cannot create StorageClass %s yet: %s", CLASS_NAME, e)
            await asyncio.sleep(2.0)
    own_node = None
    if os.geteuid() == 0 and not getattr(args, "disable_agent", False):
        own_node = (getattr(args, "node_name", None) or os.environ.get("K8PY_NODE_NAME")
                    or socket.gethostname().lower())
    await ProvisionController(client, LocalPathProvisioner(base, client, own_node)).run()
