"""Per-kind write behaviour: defaulting, validation, admission, deletion rules.

`ObjectStore` owns what every kind shares; this module holds what differs by
kind, in one place, so the write path reads top to bottom:
before_create -> validate_create -> admit_create -> store.
"""

from __future__ import annotations

import base64

from k8py.api import defaults, validation
from k8py.api.registry import Resource
from k8py.apimachinery import errors
from k8py.apiserver import (admission, certificates_admission, custom_resources, default_storage_class,
                           limitranger, node_restriction, pvc_resize, quota_admission,
                           serviceaccount_admission, storage_protection)
from k8py.apiserver import default_tolerations, node_taint_admission
from k8py.apiserver.authz import escalation
from k8py.apiserver.crds import CLEANUP_FINALIZER, CRD_KEY

# Kinds whose PUT on a missing object creates it (upstream AllowCreateOnUpdate).
CREATE_ON_UPDATE = {("", "Endpoints"), ("", "Event"), ("coordination.k8s.io", "Lease"),
                    ("", "LimitRange"), ("discovery.k8s.io", "EndpointSlice"),
                    ("", "Node")}
# Subresources that replace only part of the object.
STATUS_LIKE = ("status", "approval")
# Subresources whose handler makes one narrow, server-checked change.
SERVER_WRITES = ("binding", "finalize")
UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")


def _raise_invalid(resource: Resource, obj: dict, causes) -> None:
    if causes:
        name = (obj.get("metadata") or {}).get("name", "")
        raise errors.invalid(resource.kind, name, list(causes), resource.group)


def _fold_string_data(resource: Resource, obj: dict) -> None:
    """Secret.stringData is write-only: its entries land base64-encoded in data."""
    if (resource.group, resource.kind) != ("", "Secret"):
        return
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


class Strategy:
    def __init__(self, api):
        # `api` gives access to other resources' stores (namespaces, service
        # accounts, priority classes) and the service allocator.
        self.api = api

    # ---- create -----------------------------------------------------------

    def check_escalation(self, resource: Resource, obj: dict, old: dict | None, user) -> None:
        """RBAC privilege-escalation prevention: as upstream's policy-based RBAC storage, before
        defaults and validation (an escalating Role is 403 even when it is also invalid)."""
        escalation.check_write(self.api, resource.group, resource.kind, obj, old, user)

    def before_create(self, resource: Resource, obj: dict) -> None:
        if resource.custom:
            custom_resources.prepare_create(resource, obj)
            return
        if (resource.group, resource.kind) == CRD_KEY:
            finalizers = obj["metadata"].setdefault("finalizers", [])
            if CLEANUP_FINALIZER not in finalizers:
                finalizers.append(CLEANUP_FINALIZER)
        _fold_string_data(resource, obj)
        defaults.apply_defaults(resource, obj)
        defaults.prepare_create(resource, obj)

    def validate_create(self, resource: Resource, obj: dict) -> None:
        _raise_invalid(resource, obj, validation.validate_create(resource, obj))
        if resource.custom:
            _raise_invalid(resource, obj, custom_resources.schema_causes(resource, obj))

    def quota_lock(self, resource: Resource, namespace: str):
        return quota_admission.namespace_lock(self.api, resource, namespace)

    async def admit_create(self, resource: Resource, obj: dict, *, user=None, dry_run=False) -> None:
        admission.check_namespace_open(self.api, resource, obj)
        key = (resource.group, resource.kind)
        if key == ("", "Pod"):
            await serviceaccount_admission.admit_pod(self.api, obj)
            admission.admit_pod(self.api, obj)
        default_storage_class.admit_create(self.api, resource, obj)
        storage_protection.admit_create(resource, obj)
        if key == ("", "PersistentVolumeClaim"):
            limitranger.admit_claim(self.api, obj)
        node_taint_admission.admit_create(resource, obj)
        # validating plugins see the object as the mutating ones left it (upstream's order)
        node_restriction.admit_create(self.api, resource, obj, user)
        certificates_admission.admit_create(self.api, resource, obj)
        self.api.pod_security.admit(self.api, resource, obj, user=user)
        # after the pod's defaults (LimitRanger), before anything is allocated
        quota_admission.admit_create(self.api, resource, obj)
        if key == ("", "Service") and not dry_run:
            self.api.service_allocations.allocate(obj, obj["metadata"]["name"])
        elif key == ("certificates.k8s.io", "CertificateSigningRequest") and user is not None:
            # The requester is whoever sent it, whatever the body claims.
            spec = obj.setdefault("spec", {})
            spec["username"], spec["groups"] = user.name, list(user.groups)
            spec.pop("uid", None)
            spec.pop("extra", None)
            if user.uid:
                spec["uid"] = user.uid

    async def abort_create(self, resource: Resource, obj: dict) -> None:
        """The store refused the object after admission: undo allocations."""
        if (resource.group, resource.kind) == ("", "Service"):
            self.api.service_allocations.release(obj)

    def after_write(self, resource: Resource, obj: dict) -> None:
        """Called after every stored create, update or deletion mark."""
        if (resource.group, resource.kind) == CRD_KEY:
            self.api.crds.changed(obj["metadata"]["name"])

    async def after_create(self, resource: Resource, obj: dict) -> None:
        pass

    # ---- update -----------------------------------------------------------

    def allow_create_on_update(self, resource: Resource) -> bool:
        return (resource.group, resource.kind) in CREATE_ON_UPDATE

    def allow_unconditional_update(self, resource: Resource) -> bool:
        return True

    def before_update(self, resource: Resource, new: dict, old: dict, subresource: str) -> None:
        if subresource in SERVER_WRITES:
            return
        if resource.custom:
            custom_resources.prepare_update(resource, new, old, subresource)
            return
        if subresource in STATUS_LIKE:
            defaults.prepare_status_update(resource, new, old)
            return
        if subresource == "ephemeralcontainers":
            defaults.prepare_ephemeral_containers_update(resource, new, old)
            return
        if (resource.group, resource.kind) == ("", "Service"):
            self.api.service_allocations.carry_over(new, old)
        _fold_string_data(resource, new)
        defaults.apply_defaults(resource, new)
        defaults.prepare_update(resource, new, old)
        if (resource.group, resource.kind) == ("", "Pod"):
            # DefaultTolerationSeconds also admits updates, before validation: a client that
            # replaces the toleration list (kubectl apply does) gets these back, not a rejection.
            default_tolerations.admit_pod(self.api, new)

    def validate_update(self, resource: Resource, new: dict, old: dict, subresource: str) -> None:
        if subresource in SERVER_WRITES:
            return
        checked = subresource if subresource in ("status", "ephemeralcontainers") else ""
        _raise_invalid(resource, new, validation.validate_update(resource, new, old, checked))
        if resource.custom:
            _raise_invalid(resource, new, custom_resources.schema_causes(resource, new))

    async def admit_update(self, resource: Resource, new: dict, old: dict, *, user=None,
                           dry_run=False, subresource: str = "") -> None:
        node_restriction.admit_update(self.api, resource, new, old, user, subresource)
        certificates_admission.admit_update(self.api, resource, new, old, user, subresource)
        if (resource.group, resource.kind) == ("", "PersistentVolumeClaim") and not subresource:
            limitranger.admit_claim(self.api, new)  # LimitRanger precedes PersistentVolumeClaimResize upstream
        pvc_resize.admit_update(self.api, resource, new, old, subresource)
        quota_admission.admit_update(self.api, resource, new, old, subresource)
        self.api.pod_security.admit(self.api, resource, new, old, user=user, subresource=subresource)
        if (resource.group, resource.kind) == ("", "Service") and not dry_run:
            self.api.service_allocations.reallocate(new, old, new["metadata"]["name"])

    # ---- delete -----------------------------------------------------------

    async def admit_delete(self, resource: Resource, obj: dict, options, *, user=None) -> None:
        node_restriction.admit_delete(self.api, resource, obj, user)
        name = obj["metadata"]["name"]
        if (resource.group, resource.kind) == ("", "Namespace") and name in UNDELETABLE_NAMESPACES:
            raise errors.StatusError(403, "Forbidden",
                                     f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                     name=name, kind="namespaces")

    def grace_period(self, resource: Resource, obj: dict, options) -> int:
        """Seconds to wait before the object may go; 0 deletes at once."""
        if (resource.group, resource.kind) != ("", "Pod"):
            return 0
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        # A pod no kubelet runs, or one that has finished, has nothing to stop.
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if options.grace_period is not None:
            return max(options.grace_period, 0)
        return int(spec.get("terminationGracePeriodSeconds", 30) or 0)

    def waits_for_finalize(self, resource: Resource, obj: dict) -> bool:
        """Namespaces stay until their content is gone and spec.finalizers is empty."""
        if (resource.group, resource.kind) != ("", "Namespace"):
            return False
        return bool((obj.get("spec") or {}).get("finalizers"))

    def default_propagation(self, resource: Resource) -> str:
        return "Background"

    def before_delete_mark(self, resource: Resource, obj: dict) -> None:
        if (resource.group, resource.kind) == ("", "Namespace"):
            obj.setdefault("status", {})["phase"] = "Terminating"

    def after_mark_deleting(self, resource: Resource, obj: dict) -> None:
        self.after_write(resource, obj)

    async def after_delete(self, resource: Resource, obj: dict) -> None:
        if (resource.group, resource.kind) == ("", "Service"):
            self.api.service_allocations.release(obj)
