"""networking.k8s.io/v1: Ingresses, IngressClasses, NetworkPolicies."""

from __future__ import annotations

from k8py.api.validation import names
from k8py.api.validation.field import (GoValue, Path, d, dicts, forbidden, i, invalid, is_int, lst, not_supported,
                                       path, required, s, strmap, too_long)
from k8py.api.validation.meta import (validate_label_selector, validate_object_meta, validate_object_meta_update)

INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
_INVALID_PATH_SEQUENCES = ["//", "/./", "/../", "%2f", "%2F"]
_INVALID_PATH_SUFFIXES = ["/..", "/."]
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _typed_local_ref(ref: dict, fld: Path) -> list:
    errs = []
    group = ref.get("apiGroup")
    if isinstance(group, str):
        errs += [invalid(fld.child("apiGroup"), group, m) for m in names.is_dns1123_subdomain(group)]
    for key in ("kind", "name"):
        value = s(ref.get(key))
        if not value:
            errs.append(required(fld.child(key), f"{key} is required"))
        else:
            errs += [invalid(fld.child(key), value, m) for m in names.is_valid_path_segment_name(value)]
    return errs


def _backend(backend: dict, fld: Path) -> list:
    has_resource = isinstance(backend.get("resource"), dict)
    svc = backend.get("service")
    has_service = isinstance(svc, dict)
    if has_resource and has_service:
        return [invalid(fld, "", "cannot set both resource and service backends")]
    if has_resource:
        return _typed_local_ref(backend["resource"], fld.child("resource"))
    if not has_service:
        return [invalid(fld, "", "resource or service backend is required")]
    errs = []
    name = s(svc.get("name"))
    if not name:
        errs.append(required(fld.child("service", "name")))
    else:
        errs += [invalid(fld.child("service", "name"), name, m) for m in names.name_is_dns1035_label(name, False)]
    port = d(svc.get("port"))
    port_name, port_number = s(port.get("name")), i(port.get("number"))
    if port_name and port_number:
        errs.append(invalid(fld, "", "cannot set both port name & port number"))
    elif port_name:
        errs += [invalid(fld.child("service", "port", "name"), port_name, m) for m in names.is_valid_port_name(port_name)]
    elif port_number:
        errs += [invalid(fld.child("service", "port", "number"), port_number, m)
                 for m in names.is_valid_port_num(port_number)]
    else:
        errs.append(required(fld, "port name or number is required"))
    return errs


def _http_path(p: dict, fld: Path) -> list:
    pt = p.get("pathType")
    if not isinstance(pt, str):
        return [required(fld.child("pathType"), "pathType must be specified")]
    errs = []
    value = s(p.get("path"))
    if pt in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.append(invalid(fld.child("path"), value, "must be an absolute path"))
        if value:
            for seq in _INVALID_PATH_SEQUENCES:
                if seq in value:
                    errs.append(invalid(fld.child("path"), value, f"must not contain '{seq}'"))
            for suffix in _INVALID_PATH_SUFFIXES:
                if value.endswith(suffix):
                    errs.append(invalid(fld.child("path"), value, f"cannot end with '{suffix}'"))
    elif pt == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(invalid(fld.child("path"), value, "must be an absolute path"))
    else:
        errs.append(not_supported(fld.child("pathType"), pt, PATH_TYPES))
    return errs + _backend(d(p.get("backend")), fld.child("backend"))


def _rules(rules: list, fld: Path) -> list:
    errs = []
    for n, rule in dicts(rules):
        host = s(rule.get("host"))
        hp = fld.index(n).child("host")
        if host:
            if names.parse_ip(host) is not None:
                errs.append(invalid(hp, host, "must be a DNS name, not an IP address"))
            msgs = names.is_wildcard_dns1123_subdomain(host) if "*" in host else names.is_dns1123_subdomain(host)
            errs += [invalid(hp, host, m) for m in msgs]
        http = rule.get("http")
        if isinstance(http, dict):
            hp_ = fld.index(n).child("http")
            paths = lst(http.get("paths"))
            if not paths:
                errs.append(required(hp_.child("paths")))
            for k, p in enumerate(paths):
                errs += _http_path(d(p), hp_.child("paths").index(k))
    return errs


def _ingress_spec(spec: dict, fld: Path) -> list:
    errs = []
    rules = lst(spec.get("rules"))
    if not rules and not isinstance(spec.get("defaultBackend"), dict):
        errs.append(invalid(fld, GoValue("[]networking.IngressRule(nil)"), "either `defaultBackend` or `rules` must be specified"))
    if isinstance(spec.get("defaultBackend"), dict):
        errs += _backend(spec["defaultBackend"], fld.child("defaultBackend"))
    if rules:
        errs += _rules(rules, fld.child("rules"))
    for n, tls in dicts(spec.get("tls")):
        tp = fld.child("tls").index(n)
        for k, host in enumerate(lst(tls.get("hosts"))):
            host = s(host)
            msgs = names.is_wildcard_dns1123_subdomain(host) if "*" in host else names.is_dns1123_subdomain(host)
            errs += [invalid(tp.child("hosts").index(k), host, m) for m in msgs]
        secret = s(tls.get("secretName"))
        if secret:
            errs += [invalid(tp.child("secretName"), secret, m) for m in names.name_is_dns_subdomain(secret, False)]
    icn = spec.get("ingressClassName")
    if isinstance(icn, str):
        errs += [invalid(fld.child("ingressClassName"), icn, m) for m in names.name_is_dns_subdomain(icn, False)]
    return errs


def validate_ingress(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    spec = d(obj.get("spec"))
    errs += _ingress_spec(spec, path("spec"))
    ann = strmap(d(obj.get("metadata")).get("annotations"))
    icn = spec.get("ingressClassName")
    if INGRESS_CLASS_ANNOTATION in ann and isinstance(icn, str) and ann[INGRESS_CLASS_ANNOTATION] != icn:
        errs.append(invalid(path("annotations").child(INGRESS_CLASS_ANNOTATION), ann[INGRESS_CLASS_ANNOTATION],
                            "must match `ingressClassName` when both are specified"))
    return errs


def validate_ingress_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    errs += validate_object_meta(new, True, names.name_is_dns_subdomain)
    return errs + _ingress_spec(d(new.get("spec")), path("spec"))


def validate_ingress_status_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    for n, ing in dicts(d(d(new.get("status")).get("loadBalancer")).get("ingress")):
        p = path("status", "loadBalancer", "ingress").index(n)
        ip, host = s(ing.get("ip")), s(ing.get("hostname"))
        if ip and names.parse_ip(ip) is None:
            errs.append(invalid(p.child("ip"), ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
        if host:
            errs += [invalid(p.child("hostname"), host, m) for m in names.is_dns1123_subdomain(host)]
            if names.parse_ip(host) is not None:
                errs.append(invalid(p.child("hostname"), host, "must be a DNS name, not an IP address"))
    return errs


def _ingress_class_spec(spec: dict, fld: Path) -> list:
    errs = []
    controller = s(spec.get("controller"))
    if len(controller) > 250:
        errs.append(too_long(fld.child("controller"), 250))
    from k8py.api.validation.batch import _domain_prefixed_path
    errs += _domain_prefixed_path(controller, fld.child("controller"))
    params = spec.get("parameters")
    if isinstance(params, dict):
        pp = fld.child("parameters")
        errs += _typed_local_ref(params, pp)
        scope = params.get("scope")
        if scope is None:
            errs.append(required(pp.child("scope")))
        elif s(scope) not in ("Cluster", "Namespace"):
            errs.append(not_supported(pp.child("scope"), s(scope), ["Cluster", "Namespace"]))
        elif scope == "Namespace":
            ns = params.get("namespace")
            if not isinstance(ns, str):
                errs.append(required(pp.child("namespace"), "`parameters.scope` is set to 'Namespace'"))
            else:
                errs += [invalid(pp.child("namespace"), ns, m) for m in names.name_is_dns_label(ns, False)]
        elif params.get("namespace") is not None:
            errs.append(forbidden(pp.child("namespace"), "`parameters.scope` is set to 'Cluster'"))
    return errs


def validate_ingress_class(obj: dict) -> list:
    errs = validate_object_meta(obj, False, names.name_is_dns_subdomain)
    return errs + _ingress_class_spec(d(obj.get("spec")), path("spec"))


def validate_ingress_class_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    nc, oc = s(d(new.get("spec")).get("controller")), s(d(old.get("spec")).get("controller"))
    if nc != oc:
        errs.append(invalid(path("spec", "controller"), nc, "field is immutable"))
    return errs + validate_ingress_class(new)


def _np_port(port: dict, fld: Path) -> list:
    errs = []
    proto = port.get("protocol")
    if isinstance(proto, str) and proto not in ("TCP", "UDP", "SCTP"):
        errs.append(not_supported(fld.child("protocol"), proto, ["TCP", "UDP", "SCTP"]))
    value, end = port.get("port"), port.get("endPort")
    if is_int(value):
        errs += [invalid(fld.child("port"), value, m) for m in names.is_valid_port_num(value)]
        if is_int(end):
            if end < value:
                errs.append(invalid(fld.child("endPort"), value, "must be greater than or equal to `port`"))
            errs += [invalid(fld.child("endPort"), end, m) for m in names.is_valid_port_num(end)]
    elif isinstance(value, str):
        if end is not None:
            errs.append(invalid(fld.child("endPort"), end, "may not be specified when `port` is non-numeric"))
        errs += [invalid(fld.child("port"), value, m) for m in names.is_valid_port_name(value)]
    elif end is not None:
        errs.append(invalid(fld.child("endPort"), end, "may not be specified when `port` is not specified"))
    return errs


def _np_peer(peer: dict, fld: Path) -> list:
    errs = []
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if isinstance(peer.get(key), dict):
            count += 1
            errs += validate_label_selector(peer[key], fld.child(key))
    block = peer.get("ipBlock")
    if isinstance(block, dict):
        count += 1
        bp = fld.child("ipBlock")
        cidr = s(block.get("cidr"))
        if not cidr:
            errs.append(required(bp.child("cidr")))
        else:
            net = names.parse_cidr(cidr)
            if net is None:
                errs.append(invalid(bp.child("cidr"), cidr, _CIDR_MSG))
            else:
                for n, exc in enumerate(lst(block.get("except"))):
                    ep = bp.child("except").index(n)
                    exc_net = names.parse_cidr(s(exc))
                    if exc_net is None:
                        errs.append(invalid(ep, s(exc), _CIDR_MSG))
                    elif exc_net.version != net.version or not exc_net.subnet_of(net) or exc_net.prefixlen <= net.prefixlen:
                        errs.append(invalid(ep, s(exc), "must be a strict subset of `cidr`"))
    if count == 0:
        errs.append(required(fld, "must specify a peer"))
    elif count > 1 and isinstance(block, dict):
        errs.append(forbidden(fld, "may not specify both ipBlock and another peer"))
    return errs


def _np_spec(spec: dict, fld: Path) -> list:
    errs = validate_label_selector(d(spec.get("podSelector")), fld.child("podSelector"))
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for n, rule in dicts(spec.get(direction)):
            rp = fld.child(direction).index(n)
            for k, port in dicts(rule.get("ports")):
                errs += _np_port(port, rp.child("ports").index(k))
            for k, peer in dicts(rule.get(peers)):
                errs += _np_peer(peer, rp.child(peers).index(k))
    types = [s(t) for t in lst(spec.get("policyTypes"))]
    if len(types) > 2:
        errs.append(invalid(fld.child("policyTypes"), types, "may not specify more than two policyTypes"))
        return errs
    for n, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            errs.append(not_supported(fld.child("policyTypes").index(n), t, ["Ingress", "Egress"]))
    return errs


def validate_network_policy(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    return errs + _np_spec(d(obj.get("spec")), path("spec"))


def validate_network_policy_update(new: dict, old: dict) -> list:
    return validate_object_meta_update(new, old) + _np_spec(d(new.get("spec")), path("spec"))


CREATE = {"Ingress": validate_ingress, "IngressClass": validate_ingress_class,
          "NetworkPolicy": validate_network_policy}
UPDATE = {"Ingress": validate_ingress_update, "IngressClass": validate_ingress_class_update,
          "NetworkPolicy": validate_network_policy_update}
STATUS_UPDATE = {"Ingress": validate_ingress_status_update}
