"""Printers for apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision."""

from __future__ import annotations

from k8py.api.printers.columns import AGE, CONTAINERS, IMAGES, NAME, Column, Printer, age
from k8py.api.printers.formatting import (NONE, container_cells, format_label_selector, format_labels,
                                          selector_string, template_containers)
from k8py.api.printers.values import as_dict, as_list, dig, integer, name_of, text

# spec.replicas is defaulted to 1 before any printer sees it.
DEFAULT_REPLICAS = 1


def _replicas(obj: dict) -> int:
    return integer(dig(obj, "spec", "replicas"), default=DEFAULT_REPLICAS)


def _status(obj: dict, field: str) -> int:
    return integer(dig(obj, "status", field))


def _deployment_cells(obj, now):
    names, images = container_cells(template_containers(obj))
    selector = selector_string(dig(obj, "spec", "selector"))
    return [
        name_of(obj), f"{_status(obj, 'readyReplicas')}/{_replicas(obj)}",
        _status(obj, "updatedReplicas"), _status(obj, "availableReplicas"), age(obj, now),
        names, images, "<invalid>" if selector is None else selector,
    ]


DEPLOYMENT = Printer((
    NAME,
    Column("Ready", description="Number of the pod with ready state"),
    Column("Up-to-date", doc="apps.v1.DeploymentStatus.updatedReplicas"),
    Column("Available", doc="apps.v1.DeploymentStatus.availableReplicas"),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", priority=1, doc="apps.v1.DeploymentSpec.selector"),
), _deployment_cells)


def _replica_set_cells(obj, now):
    names, images = container_cells(template_containers(obj))
    return [
        name_of(obj), _replicas(obj), _status(obj, "replicas"), _status(obj, "readyReplicas"),
        age(obj, now), names, images, format_label_selector(dig(obj, "spec", "selector")),
    ]


REPLICA_SET = Printer((
    NAME,
    Column("Desired", type="integer", doc="apps.v1.ReplicaSetSpec.replicas"),
    Column("Current", type="integer", doc="apps.v1.ReplicaSetStatus.replicas"),
    Column("Ready", type="integer", doc="apps.v1.ReplicaSetStatus.readyReplicas"),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", priority=1, doc="apps.v1.ReplicaSetSpec.selector"),
), _replica_set_cells)


def _stateful_set_cells(obj, now):
    names, images = container_cells(template_containers(obj))
    return [name_of(obj), f"{_status(obj, 'readyReplicas')}/{_replicas(obj)}", age(obj, now),
            names, images]


STATEFUL_SET = Printer((
    NAME,
    Column("Ready", description="Number of the pod with ready state"),
    AGE, CONTAINERS, IMAGES,
), _stateful_set_cells)


def _daemon_set_cells(obj, now):
    names, images = container_cells(template_containers(obj))
    node_selector = dig(obj, "spec", "template", "spec", "nodeSelector")
    return [
        name_of(obj), _status(obj, "desiredNumberScheduled"), _status(obj, "currentNumberScheduled"),
        _status(obj, "numberReady"), _status(obj, "updatedNumberScheduled"),
        _status(obj, "numberAvailable"), format_labels(node_selector), age(obj, now),
        names, images, format_label_selector(dig(obj, "spec", "selector")),
    ]


DAEMON_SET = Printer((
    NAME,
    Column("Desired", type="integer", doc="apps.v1.DaemonSetStatus.desiredNumberScheduled"),
    Column("Current", type="integer", doc="apps.v1.DaemonSetStatus.currentNumberScheduled"),
    Column("Ready", type="integer", doc="apps.v1.DaemonSetStatus.numberReady"),
    Column("Up-to-date", type="integer", doc="apps.v1.DaemonSetStatus.updatedNumberScheduled"),
    Column("Available", type="integer", doc="apps.v1.DaemonSetStatus.numberAvailable"),
    Column("Node Selector", doc="core.v1.PodSpec.nodeSelector"),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", priority=1, doc="apps.v1.DaemonSetSpec.selector"),
), _daemon_set_cells)


def controller_name(obj: dict) -> str:
    """The managing controller as `kind.group/name` (lower-case kind), or `<none>`."""
    for ref in map(as_dict, as_list(dig(obj, "metadata", "ownerReferences"))):
        if ref.get("controller") is True:
            group = text(ref.get("apiVersion")).rpartition("/")[0]
            kind = text(ref.get("kind"))
            group_kind = f"{kind}.{group}" if group else kind
            return f"{group_kind.lower()}/{text(ref.get('name'))}" if group_kind else text(ref.get("name"))
    return NONE


CONTROLLER_REVISION = Printer((
    NAME,
    Column("Controller", description="Controller of the object"),
    Column("Revision", doc="apps.v1.ControllerRevision.revision"),
    AGE,
), lambda obj, now: [name_of(obj), controller_name(obj), integer(obj.get("revision")), age(obj, now)])


PRINTERS = {
    ("apps", "Deployment"): DEPLOYMENT,
    ("apps", "ReplicaSet"): REPLICA_SET,
    ("apps", "StatefulSet"): STATEFUL_SET,
    ("apps", "DaemonSet"): DAEMON_SET,
    ("apps", "ControllerRevision"): CONTROLLER_REVISION,
}
