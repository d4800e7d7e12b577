"""discovery.k8s.io/v1 EndpointSlices."""

from __future__ import annotations

from k8py.api.validation import names, pods
from k8py.api.validation.field import (Path, dicts, duplicate, invalid, lst, not_supported, path, required, s,
                                       too_many)
from k8py.api.validation.meta import validate_labels, validate_object_meta, validate_object_meta_update, validate_qualified_name

ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]


def _fqdn(value: str, fld: Path) -> list:
    if not value:
        return [required(fld)]
    name = value[:-1] if value.endswith(".") else value
    msgs = names.is_dns1123_subdomain(name)
    if msgs:
        return [invalid(fld, name, ",".join(msgs))]
    if len(name.split(".")) < 2:
        return [invalid(fld, name, "should be a domain with at least two segments separated by dots")]
    for label in name.split("."):
        msgs = names.is_dns1123_label(label)
        if msgs:
            return [invalid(fld, label, ",".join(msgs))]
    return []


def validate_endpoint_slice(obj: dict) -> list:
    from k8py.api.validation.services import _non_special_ip
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    address_type = s(obj.get("addressType"))
    endpoints = lst(obj.get("endpoints"))
    if len(endpoints) > 1000:
        errs.append(too_many(path("endpoints"), len(endpoints), 1000))
    for n, ep in dicts(endpoints):
        p = path("endpoints").index(n)
        addresses = lst(ep.get("addresses"))
        if not addresses:
            errs.append(required(p.child("addresses"), "must contain at least 1 address"))
        elif len(addresses) > 100:
            errs.append(too_many(p.child("addresses"), len(addresses), 100))
        for k, addr in enumerate(addresses):
            ap = p.child("addresses").index(k)
            addr = s(addr)
            if address_type in ("IPv4", "IPv6"):
                ip = names.parse_ip(addr)
                want = 4 if address_type == "IPv4" else 6
                if ip is None or ip.version != want or (want == 6 and ":" not in addr):
                    errs.append(invalid(ap, addr, f"must be a valid {address_type} address"))
                else:
                    errs += _non_special_ip(addr, ap)
            elif address_type == "FQDN":
                errs += _fqdn(addr, ap)
        if isinstance(ep.get("nodeName"), str):
            errs += [invalid(p.child("nodeName"), ep["nodeName"], m)
                     for m in names.name_is_dns_subdomain(ep["nodeName"], False)]
        errs += validate_labels(ep.get("deprecatedTopology"), p.child("deprecatedTopology"))
        if isinstance(ep.get("hostname"), str):
            errs += [invalid(p.child("hostname"), ep["hostname"], m) for m in names.is_dns1123_label(ep["hostname"])]
    if not address_type:
        errs.append(required(path("addressType")))
    elif address_type not in ADDRESS_TYPES:
        errs.append(not_supported(path("addressType"), address_type, ADDRESS_TYPES))
    ports = lst(obj.get("ports"))
    if len(ports) > 20000:
        errs.append(too_many(path("ports"), len(ports), 20000))
    seen: set = set()
    for n, port in dicts(ports):
        p = path("ports").index(n)
        name = s(port.get("name"))
        if name:
            errs += [invalid(p.child("name"), name, m) for m in names.is_dns1123_label(name)]
        if name in seen:
            errs.append(duplicate(p.child("name"), name))
        seen.add(name)
        proto = port.get("protocol")
        if proto is None:
            errs.append(required(p.child("protocol")))
        elif s(proto) not in pods.SUPPORTED_PROTOCOLS:
            errs.append(not_supported(p.child("protocol"), s(proto), pods.SUPPORTED_PROTOCOLS))
        if isinstance(port.get("appProtocol"), str):
            errs += validate_qualified_name(port["appProtocol"], p.child("appProtocol"))
    return errs


def validate_endpoint_slice_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old) + validate_endpoint_slice(new)
    if s(new.get("addressType")) != s(old.get("addressType")):
        errs.append(invalid(path("addressType"), s(new.get("addressType")), "field is immutable"))
    return errs


CREATE = {"EndpointSlice": validate_endpoint_slice}
UPDATE = {"EndpointSlice": validate_endpoint_slice_update}
STATUS_UPDATE: dict = {}
