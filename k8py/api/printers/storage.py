"""Printers for storage.k8s.io: StorageClass, CSIDriver, CSINode, VolumeAttachment.

CSIStorageCapacity is served with the default table upstream, despite the
printer upstream also has for it, so it is not listed here.
"""

from __future__ import annotations

from k8py.api.printers.columns import AGE, NAME, Column, Printer, age
from k8py.api.printers.values import as_dict, as_list, dig, flag, name_of, text

DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")


def _is_default_class(obj: dict) -> bool:
    annotations = as_dict(dig(obj, "metadata", "annotations"))
    return any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS)


def _storage_class_cells(sc, now):
    name = name_of(sc) + (" (default)" if _is_default_class(sc) else "")
    return [
        name, text(sc.get("provisioner")), text(sc.get("reclaimPolicy")) or "Delete",
        text(sc.get("volumeBindingMode")) or "Immediate", flag(sc.get("allowVolumeExpansion")),
        age(sc, now),
    ]


STORAGE_CLASS = Printer((
    NAME,
    Column("Provisioner", doc="storage.v1.StorageClass.provisioner"),
    Column("ReclaimPolicy", doc="storage.v1.StorageClass.reclaimPolicy"),
    Column("VolumeBindingMode", doc="storage.v1.StorageClass.volumeBindingMode"),
    Column("AllowVolumeExpansion", doc="storage.v1.StorageClass.allowVolumeExpansion"),
    AGE,
), _storage_class_cells)


def _token_requests(spec: dict) -> str:
    requests = spec.get("tokenRequests")
    if requests is None:
        return "<unset>"
    return ",".join(text(as_dict(r).get("audience")) for r in as_list(requests))


def _csi_driver_cells(driver, now):
    spec = as_dict(driver.get("spec"))
    # volumeLifecycleModes is defaulted to [Persistent].
    modes = ",".join(text(m) for m in as_list(spec.get("volumeLifecycleModes"))) or "Persistent"
    return [
        name_of(driver), flag(spec.get("attachRequired"), default=True), flag(spec.get("podInfoOnMount")),
        flag(spec.get("storageCapacity")), _token_requests(spec), flag(spec.get("requiresRepublish")),
        modes, age(driver, now),
    ]


CSI_DRIVER = Printer((
    NAME,
    Column("AttachRequired", type="boolean", doc="storage.v1.CSIDriverSpec.attachRequired"),
    Column("PodInfoOnMount", type="boolean", doc="storage.v1.CSIDriverSpec.podInfoOnMount"),
    Column("StorageCapacity", type="boolean", doc="storage.v1.CSIDriverSpec.storageCapacity"),
    Column("TokenRequests", doc="storage.v1.CSIDriverSpec.tokenRequests"),
    Column("RequiresRepublish", type="boolean", doc="storage.v1.CSIDriverSpec.requiresRepublish"),
    Column("Modes", doc="storage.v1.CSIDriverSpec.volumeLifecycleModes"),
    AGE,
), _csi_driver_cells)

CSI_NODE = Printer((
    NAME,
    Column("Drivers", type="integer", description="Drivers indicates the number of CSI drivers "
                                                  "registered on the node"),
    AGE,
), lambda node, now: [name_of(node), len(as_list(dig(node, "spec", "drivers"))), age(node, now)])


def _volume_attachment_cells(va, now):
    spec = as_dict(va.get("spec"))
    return [
        name_of(va), text(spec.get("attacher")), text(dig(spec, "source", "persistentVolumeName")),
        text(spec.get("nodeName")), flag(dig(va, "status", "attached")), age(va, now),
    ]


VOLUME_ATTACHMENT = Printer((
    NAME,
    # Upstream marks this column with the "name" format too.
    Column("Attacher", format="name", doc="storage.v1.VolumeAttachmentSpec.attacher"),
    Column("PV", doc="storage.v1.VolumeAttachmentSource.persistentVolumeName"),
    Column("Node", doc="storage.v1.VolumeAttachmentSpec.nodeName"),
    Column("Attached", type="boolean", doc="storage.v1.VolumeAttachmentStatus.attached"),
    AGE,
), _volume_attachment_cells)


PRINTERS = {
    ("storage.k8s.io", "StorageClass"): STORAGE_CLASS,
    ("storage.k8s.io", "CSIDriver"): CSI_DRIVER,
    ("storage.k8s.io", "CSINode"): CSI_NODE,
    ("storage.k8s.io", "VolumeAttachment"): VOLUME_ATTACHMENT,
}
