"""apiextensions.k8s.io/v1 CustomResourceDefinitions
(apiextensions-apiserver pkg/apis/apiextensions/validation).

The checks a CRD needs before it can be served at all: its name is
<plural>.<group>, the names and scope are usable, and there is exactly one
storage version, each version named and carrying a schema. Schema
structure itself is checked when the CRD's resources are served.
"""

from __future__ import annotations

from k8py.api.validation import names
from k8py.api.validation.field import OMIT, d, dicts, invalid, lst, not_supported, path, required, s
from k8py.api.validation.meta import validate_object_meta

SCOPES = ("Cluster", "Namespaced")


def _dns1035(value: str, fld) -> list:
    return [invalid(fld, value, m) for m in names.is_dns1035_label(value)]


def _names(spec_names: dict, fld) -> list:
    errs = []
    plural = s(spec_names.get("plural"))
    if not plural:
        errs.append(required(fld.child("plural")))
    else:
        errs += [invalid(fld.child("plural"), plural, m) for m in names.is_dns1035_label(plural)]
    singular = s(spec_names.get("singular"))
    if singular:
        errs += [invalid(fld.child("singular"), singular, m) for m in names.is_dns1035_label(singular)]
    kind = s(spec_names.get("kind"))
    if not kind:
        errs.append(required(fld.child("kind")))
    else:
        errs += [invalid(fld.child("kind"), kind, m) for m in names.is_dns1035_label(kind.lower())]
    list_kind = s(spec_names.get("listKind"))
    if list_kind:
        errs += [invalid(fld.child("listKind"), list_kind, m) for m in names.is_dns1035_label(list_kind.lower())]
        if list_kind == kind:
            errs.append(invalid(fld.child("listKind"), list_kind, "kind and listKind may not be the same"))
    for n, short in enumerate(lst(spec_names.get("shortNames"))):
        errs += [invalid(fld.child("shortNames").index(n), short, m)
                 for m in names.is_dns1035_label(s(short))]
    return errs


def validate_crd(obj: dict) -> list:
    return validate_object_meta(obj, False, names.name_is_dns_subdomain, kube_finalizers=False) + _spec(obj)


def _spec(obj: dict) -> list:
    errs = []
    spec = d(obj.get("spec"))
    fld = path("spec")
    group = s(spec.get("group"))
    spec_names = d(spec.get("names"))
    plural = s(spec_names.get("plural"))
    name = s(d(obj.get("metadata")).get("name"))
    if name != f"{plural}.{group}":
        errs.append(invalid(path("metadata", "name"), name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        errs.append(required(fld.child("group")))
    else:
        errs += [invalid(fld.child("group"), group, m) for m in names.is_dns1123_subdomain(group)]
        if "." not in group:
            errs.append(invalid(fld.child("group"), group, "should be a domain with at least one dot"))
    scope = s(spec.get("scope"))
    if not scope:
        errs.append(required(fld.child("scope")))
    elif scope not in SCOPES:
        errs.append(not_supported(fld.child("scope"), scope, SCOPES))
    errs += _names(spec_names, fld.child("names"))
    errs += _versions(spec.get("versions"), fld.child("versions"))
    return errs


def _versions(versions, fld) -> list:
    errs = []
    items = dicts(versions)
    if not items:
        return [invalid(fld, OMIT, "must have exactly one version marked as storage version")]
    seen: set[str] = set()
    storage = 0
    for n, version in items:
        vfld = fld.index(n)
        version_name = s(version.get("name"))
        if not version_name:
            errs.append(required(vfld.child("name")))
        else:
            errs += _dns1035(version_name, vfld.child("name"))
            if version_name in seen:
                errs.append(invalid(fld, OMIT, "must contain unique version names"))
            seen.add(version_name)
        if version.get("storage") is True:
            storage += 1
        if not isinstance(d(version.get("schema")).get("openAPIV3Schema"), dict):
            errs.append(required(vfld.child("schema", "openAPIV3Schema"), "schemas are required"))
    if storage != 1:
        errs.append(invalid(fld, OMIT, "must have exactly one version marked as storage version"))
    return errs


CREATE = {"CustomResourceDefinition": validate_crd}
UPDATE = {"CustomResourceDefinition": lambda new, old: _spec(new)}
STATUS_UPDATE: dict = {}
