"""The resource registry: which kinds the API serves, where, and how.

A `Resource` describes one group/version/resource as discovery shows it.
Several versions of a kind can share one storage (autoscaling v1 and v2
HorizontalPodAutoscalers, core and events.k8s.io Events); `storage` names the
version the object is kept in and `api.conversion` converts between them.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "delete", "deletecollection", "patch", "update")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Scale:
    """Where the `scale` subresource finds replicas and the selector."""

    selector_is_map: bool = False  # ReplicationController uses a plain label map
    # Custom resources name their fields (CRD subresources.scale); these are the built-in kinds' places.
    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None  # None: the label selector object at spec.selector


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    storage_version: str = ""  # empty: stored in this version
    storage_group: str | None = None  # None: same group
    storage_plural: str = ""
    scale: Scale | None = None
    # Subresources that are not stored objects (exec, log, binding, ...) are
    # listed in `subresources` too; this says which kind each one answers with.
    subresource_kinds: tuple[tuple[str, str, str, str], ...] = ()  # (name, group, version, kind)
    # Custom resources (from CustomResourceDefinitions) keep their objects
    # under /registry/<group>/<plural>/ as upstream does.
    custom: bool = False
    # Sent as a Warning header on every request, as upstream does for deprecated versions.
    deprecation_warning: str = ""

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def group_resource(self) -> str:
        """`deployments.apps` or `pods`: how errors and RBAC name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def stored_group(self) -> str:
        return self.group if self.storage_group is None else self.storage_group

    @property
    def stored_version(self) -> str:
        return self.storage_version or self.version

    @property
    def stored_plural(self) -> str:
        return self.storage_plural or self.plural

    @property
    def stores_elsewhere(self) -> bool:
        return (self.stored_group, self.stored_version) != (self.group, self.version)

    def key_prefix(self, namespace: str | None = None) -> str:
        """etcd-style key prefix: /registry/<resource>/[<namespace>/]."""
        base = f"/registry/{self.stored_group}/{self.stored_plural}/" if self.custom \
            else f"/registry/{self.stored_plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def key(self, namespace: str | None, name: str) -> str:
        return self.key_prefix(namespace if self.namespaced else None) + name

    def has_subresource(self, name: str) -> bool:
        return name in self.subresources


class Registry:
    def __init__(self, resources: list[Resource] = ()):
        self._by_path: dict[tuple[str, str, str], Resource] = {}
        self._by_kind: dict[tuple[str, str, str], Resource] = {}
        self._group_versions: dict[str, list[str]] = {}
        for r in resources:
            self.add(r)

    def add(self, resource: Resource) -> None:
        self._by_path[(resource.group, resource.version, resource.plural)] = resource
        self._by_kind[(resource.group, resource.version, resource.kind)] = resource
        versions = self._group_versions.setdefault(resource.group, [])
        if resource.version not in versions:
            versions.append(resource.version)

    def remove(self, resource: Resource) -> None:
        self._by_path.pop((resource.group, resource.version, resource.plural), None)
        self._by_kind.pop((resource.group, resource.version, resource.kind), None)
        if not self.in_group_version(resource.group, resource.version):
            versions = self._group_versions.get(resource.group, [])
            if resource.version in versions:
                versions.remove(resource.version)
            if not versions:
                self._group_versions.pop(resource.group, None)

    def remove_group_version(self, group: str, version: str) -> None:
        for key in [k for k in self._by_path if k[:2] == (group, version)]:
            resource = self._by_path.pop(key)
            self._by_kind.pop((group, version, resource.kind), None)
        versions = self._group_versions.get(group, [])
        if version in versions:
            versions.remove(version)
        if not versions:
            self._group_versions.pop(group, None)

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> Resource | None:
        return self._by_kind.get((group, version, kind))

    def storage_resource(self, resource: Resource) -> Resource:
        """The resource whose version objects of `resource` are stored in."""
        if not resource.stores_elsewhere:
            return resource
        return self._by_path[(resource.stored_group, resource.stored_version, resource.stored_plural)]

    def groups(self) -> dict[str, list[str]]:
        """group -> versions, preferred version first."""
        return self._group_versions

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for k, r in self._by_path.items() if k[0] == group and k[1] == version]

    def all(self) -> list[Resource]:
        return list(self._by_path.values())

    def storage_resources(self) -> list[Resource]:
        """One resource per storage location."""
        return [r for r in self._by_path.values() if not r.stores_elsewhere]
