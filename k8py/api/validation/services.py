"""Services (pkg/apis/core/validation: ValidateService and friends)."""

from __future__ import annotations

from k8py.api.validation import names
from k8py.api.validation.field import (GoValue, Path, d, dicts, duplicate, forbidden, go_quote, go_strings, i,
                                       invalid, lst, not_supported, path, required, s, strmap)
from k8py.api.validation.meta import (validate_labels, validate_object_meta, validate_object_meta_update,
                                      validate_qualified_name)
from k8py.api.validation.pods import SUPPORTED_PROTOCOLS, validate_port_num_or_name

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
SESSION_AFFINITIES = ["ClientIP", "None"]
IP_FAMILIES = ["IPv4", "IPv6"]
IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"
TOPOLOGY_HINTS = "service.kubernetes.io/topology-aware-hints"
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
_IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _cluster_ips(spec: dict) -> list:
    return [s(x) for x in lst(spec.get("clusterIPs"))]


def is_headless(spec: dict) -> bool:
    ips = _cluster_ips(spec)
    return len(ips) == 1 and ips[0] == "None"


def externally_accessible(spec: dict) -> bool:
    t = s(spec.get("type"))
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(lst(spec.get("externalIPs"))))


def _go_service_port(protocol: str, port: int) -> GoValue:
    return GoValue('core.ServicePort{Name:"", Protocol:%s, AppProtocol:(*string)(nil), Port:%d, '
                   'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
                   % (go_quote(protocol), port))


def _service_port(sp: dict, require_name: bool, seen: set, fld: Path) -> list:
    errs = []
    name = s(sp.get("name"))
    if require_name and not name:
        errs.append(required(fld.child("name")))
    elif name:
        errs += [invalid(fld.child("name"), name, m) for m in names.is_dns1123_label(name)]
        if name in seen:
            errs.append(duplicate(fld.child("name"), name))
        else:
            seen.add(name)
    port = i(sp.get("port"))
    errs += [invalid(fld.child("port"), port, m) for m in names.is_valid_port_num(port)]
    proto = s(sp.get("protocol"))
    if not proto:
        errs.append(required(fld.child("protocol")))
    elif proto not in SUPPORTED_PROTOCOLS:
        errs.append(not_supported(fld.child("protocol"), proto, SUPPORTED_PROTOCOLS))
    errs += validate_port_num_or_name(sp.get("targetPort"), fld.child("targetPort"))
    if isinstance(sp.get("appProtocol"), str):
        errs += validate_qualified_name(sp["appProtocol"], fld.child("appProtocol"))
    return errs


def _cluster_ip_fields(spec: dict) -> list:
    if s(spec.get("type")) == "ExternalName":
        return []
    errs = []
    sp = path("spec")
    ips_path, fam_path, pol_path = sp.child("clusterIPs"), sp.child("ipFamilies"), sp.child("ipFamilyPolicy")
    cluster_ip = s(spec.get("clusterIP"))
    ips = _cluster_ips(spec)
    if cluster_ip:
        if not ips:
            errs.append(required(ips_path))
        elif ips[0] != cluster_ip:
            errs.append(invalid(ips_path, ips, "first value must match `clusterIP`"))
    elif ips:
        errs.append(invalid(ips_path, ips, "must be empty when `clusterIP` is not specified"))
    seen: set = set()
    for n, fam in enumerate(lst(spec.get("ipFamilies"))):
        fam = s(fam)
        if fam not in IP_FAMILIES:
            errs.append(not_supported(fam_path.index(n), fam, IP_FAMILIES))
        if fam in seen:
            errs.append(duplicate(fam_path.index(n), fam))
        seen.add(fam)
    policy = spec.get("ipFamilyPolicy")
    if isinstance(policy, str) and policy not in IP_FAMILY_POLICIES:
        errs.append(not_supported(pol_path, policy, IP_FAMILY_POLICIES))
    bad_ips = False
    for n, ip in enumerate(ips):
        if n == 0 and ip == "None":
            if len(ips) > 1:
                bad_ips = True
                errs.append(invalid(ips_path, ips, "'None' must be the first and only value"))
            continue
        if names.parse_ip(ip) is None:
            bad_ips = True
            errs.append(invalid(ips_path.index(n), ip, _IP_MSG))
    if len(ips) > 2:
        errs.append(invalid(ips_path, ips, "may only hold up to 2 values"))
    if bad_ips:
        return errs
    if len(ips) > 1:
        versions = [names.parse_ip(ip).version for ip in ips[:2]]
        if len(set(versions)) != 2:
            errs.append(invalid(ips_path, ips, "may specify no more than one IP for each IP family"))
    families = [s(f) for f in lst(spec.get("ipFamilies"))]
    if not is_headless(spec) and ips and families:
        for n, ip in enumerate(ips[:len(families)]):
            if families[n] == "IPv4" and names.is_ipv6_string(ip):
                errs.append(invalid(ips_path.index(n), ip, f"expected an IPv4 value as indicated by `ipFamilies[{n}]`"))
            if families[n] == "IPv6" and not names.is_ipv6_string(ip):
                errs.append(invalid(ips_path.index(n), ip, f"expected an IPv6 value as indicated by `ipFamilies[{n}]`"))
    return errs


def _non_special_ip(ip: str, fld: Path) -> list:
    addr = names.parse_ip(ip)
    if addr is None:
        return [invalid(fld, ip, "must be a valid IP address")]
    errs = []
    if addr.is_unspecified:
        errs.append(invalid(fld, ip, f"may not be unspecified ({ip})"))
    if addr.is_loopback:
        errs.append(invalid(fld, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if addr.is_link_local:
        errs.append(invalid(fld, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if addr.is_multicast and (str(addr).startswith("224.0.0.") or str(addr).lower().startswith("ff02:")):
        errs.append(invalid(fld, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return errs


def validate_service(svc: dict) -> list:
    meta = d(svc.get("metadata"))
    spec = d(svc.get("spec"))
    ann = strmap(meta.get("annotations"))
    sp = path("spec")
    errs = validate_object_meta(svc, True, names.name_is_dns1035_label)
    if TOPOLOGY_MODE in ann and TOPOLOGY_HINTS in ann and ann[TOPOLOGY_MODE] != ann[TOPOLOGY_HINTS]:
        errs.append(invalid(path("metadata", "annotations").key(TOPOLOGY_MODE), ann[TOPOLOGY_MODE],
                            f"must match annotations[{TOPOLOGY_HINTS}] when both are specified"))
    svc_type = s(spec.get("type"))
    ports = [d(p) for p in lst(spec.get("ports"))]
    headless = is_headless(spec)
    if not ports and not headless and svc_type != "ExternalName":
        errs.append(required(sp.child("ports")))
    if svc_type in ("LoadBalancer", "NodePort") and headless:
        errs.append(invalid(sp.child("clusterIPs").index(0), _cluster_ips(spec)[0],
                            f"may not be set to 'None' for {svc_type} services"))
    elif svc_type == "ExternalName":
        if _cluster_ips(spec):
            errs.append(forbidden(sp.child("clusterIPs"), "may not be set for ExternalName services"))
        if lst(spec.get("ipFamilies")):
            errs.append(forbidden(sp.child("ipFamilies"), "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden(sp.child("ipFamilyPolicy"), "may not be set for ExternalName services"))
        cname = s(spec.get("externalName"))
        cname = cname[:-1] if cname.endswith(".") else cname
        if cname:
            errs += [invalid(sp.child("externalName"), cname, m) for m in names.is_dns1123_subdomain(cname)]
        else:
            errs.append(required(sp.child("externalName")))
    seen: set = set()
    for n, port in enumerate(ports):
        errs += _service_port(port, len(ports) > 1, seen, sp.child("ports").index(n))
    if spec.get("selector") is not None:
        errs += validate_labels(spec.get("selector"), sp.child("selector"))
    affinity = s(spec.get("sessionAffinity"))
    if not affinity:
        errs.append(required(sp.child("sessionAffinity")))
    elif affinity not in SESSION_AFFINITIES:
        errs.append(not_supported(sp.child("sessionAffinity"), affinity, SESSION_AFFINITIES))
    cfg_path = sp.child("sessionAffinityConfig")
    if affinity == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        when = "when session affinity type is ClientIP"
        if not isinstance(cfg, dict):
            errs.append(required(cfg_path, when))
        elif not isinstance(cfg.get("clientIP"), dict):
            errs.append(required(cfg_path.child("clientIP"), when))
        elif cfg["clientIP"].get("timeoutSeconds") is None:
            errs.append(required(cfg_path.child("clientIP").child("timeoutSeconds"), when))
        else:
            timeout = i(cfg["clientIP"]["timeoutSeconds"])
            if timeout <= 0 or timeout > MAX_CLIENT_IP_AFFINITY_SECONDS:
                errs.append(invalid(cfg_path.child("clientIP").child("timeoutSeconds"), timeout,
                                    f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(forbidden(cfg_path, "must not be set when session affinity is None"))
    errs += _cluster_ip_fields(spec)
    for n, ip in enumerate(lst(spec.get("externalIPs"))):
        p = sp.child("externalIPs").index(n)
        if names.parse_ip(s(ip)) is None:
            errs.append(invalid(p, s(ip), _IP_MSG))
        else:
            errs += _non_special_ip(s(ip), p)
    if not svc_type:
        errs.append(required(sp.child("type")))
    elif svc_type not in SERVICE_TYPES:
        errs.append(not_supported(sp.child("type"), svc_type, SERVICE_TYPES))
    if svc_type == "ClusterIP":
        for n, port in enumerate(ports):
            if i(port.get("nodePort")) != 0:
                errs.append(forbidden(sp.child("ports").index(n).child("nodePort"),
                                      "may not be used when `type` is 'ClusterIP'"))
    node_ports: set = set()
    for n, port in enumerate(ports):
        np_ = i(port.get("nodePort"))
        if np_ == 0:
            continue
        key = (s(port.get("protocol")), np_)
        if key in node_ports:
            errs.append(duplicate(sp.child("ports").index(n).child("nodePort"), np_))
        node_ports.add(key)
    port_keys: set = set()
    for n, port in enumerate(ports):
        key = (s(port.get("protocol")), i(port.get("port")))
        if key in port_keys:
            errs.append(duplicate(sp.child("ports").index(n), _go_service_port(*key)))
        port_keys.add(key)
    ranges = lst(spec.get("loadBalancerSourceRanges"))
    if ranges:
        rp = sp.child("LoadBalancerSourceRanges")
        if svc_type != "LoadBalancer":
            errs.append(forbidden(rp, "may only be used when `type` is 'LoadBalancer'"))
        for n, value in enumerate(ranges):
            value = s(value).strip()
            if names.parse_cidr(value) is None:
                errs.append(invalid(rp.index(n), value, _CIDR_MSG))
    elif SOURCE_RANGES_ANNOTATION in ann:
        ap = path("metadata", "annotations").key(SOURCE_RANGES_ANNOTATION)
        if svc_type != "LoadBalancer":
            errs.append(forbidden(ap, "may only be used when `type` is 'LoadBalancer'"))
        value = ann[SOURCE_RANGES_ANNOTATION].strip()
        if value:
            for cidr in value.split(","):
                cidr = cidr.strip()
                if names.parse_cidr(cidr) is None:
                    errs.append(invalid(ap, cidr, _CIDR_MSG))
    if spec.get("allocateLoadBalancerNodePorts") is not None and svc_type != "LoadBalancer":
        errs.append(forbidden(sp.child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
    if svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required(path("allocateLoadBalancerNodePorts")))
    errs += _load_balancer_class(None, spec)
    etp = s(spec.get("externalTrafficPolicy"))
    if not externally_accessible(spec):
        if etp:
            errs.append(invalid(sp.child("externalTrafficPolicy"), etp, "may only be set for externally-accessible services"))
    elif not etp:
        errs.append(required(sp.child("externalTrafficPolicy")))
    elif etp not in ("Cluster", "Local"):
        errs.append(not_supported(sp.child("externalTrafficPolicy"), etp, ["Cluster", "Local"]))
    hc = i(spec.get("healthCheckNodePort"))
    needs_hc = svc_type == "LoadBalancer" and etp == "Local"
    if not needs_hc and hc != 0:
        errs.append(invalid(sp.child("healthCheckNodePort"), hc,
                            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    elif needs_hc and hc != 0:
        # hc == 0 is left to the allocator, which runs after validation here
        errs += [invalid(sp.child("healthCheckNodePort"), hc, m) for m in names.is_valid_port_num(hc)]
    itp = spec.get("internalTrafficPolicy")
    if itp is None:
        if svc_type in ("NodePort", "LoadBalancer", "ClusterIP"):
            errs.append(required(sp.child("internalTrafficPolicy")))
    elif s(itp) not in ("Cluster", "Local"):
        errs.append(not_supported(sp.child("internalTrafficPolicy"), s(itp), ["Cluster", "Local"]))
    td = spec.get("trafficDistribution")
    if isinstance(td, str) and td != "PreferClose":
        errs.append(not_supported(sp.child("trafficDistribution"), td, ["PreferClose"]))
    return errs


def _load_balancer_class(old_spec, spec: dict) -> list:
    errs = []
    lbc = spec.get("loadBalancerClass")
    if old_spec is not None and s(old_spec.get("type")) == "LoadBalancer" and s(spec.get("type")) == "LoadBalancer":
        if old_spec.get("loadBalancerClass") != lbc:
            errs.append(invalid(path("spec", "loadBalancerClass"), lbc, "may not change once set"))
    if s(spec.get("type")) == "LoadBalancer":
        if isinstance(lbc, str):
            errs += validate_qualified_name(lbc, path("spec", "loadBalancerClass"))
    elif lbc is not None:
        errs.append(forbidden(path("spec", "loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"))
    return errs


def _upgrade_downgrade_ips(old: dict, new: dict) -> list:
    errs = []
    if s(new.get("type")) == "ExternalName" or s(old.get("type")) == "ExternalName":
        return errs
    if is_headless(old) and is_headless(new):
        return errs
    old_ips, new_ips = _cluster_ips(old), _cluster_ips(new)
    p = path("spec", "clusterIPs")
    if len(old_ips) == len(new_ips):
        for n, ip in enumerate(old_ips):
            if ip != new_ips[n]:
                errs.append(invalid(p.index(n), new_ips, "may not change once set"))
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            errs.append(invalid(p.index(0), GoValue(go_strings(None if not new_ips else new_ips)),
                                "primary clusterIP can not be unset"))
        if old_ips and new_ips and new_ips[0] != old_ips[0]:
            errs.append(invalid(p.index(0), new_ips, "may not change once set"))
        if len(new_ips) == 1 and new.get("ipFamilyPolicy") != "SingleStack":
            errs.append(invalid(path("spec", "ipFamilyPolicy"), new.get("ipFamilyPolicy"),
                                "must be set to 'SingleStack' when releasing the secondary clusterIP"))
    elif old_ips and new_ips[0] != old_ips[0]:
        errs.append(invalid(p.index(0), new_ips, "may not change once set"))
    return errs


def _upgrade_downgrade_families(old: dict, new: dict) -> list:
    errs = []
    if s(new.get("type")) == "ExternalName" or s(old.get("type")) == "ExternalName":
        return errs
    if is_headless(old) != is_headless(new) or is_headless(new):
        return errs
    of, nf = [s(x) for x in lst(old.get("ipFamilies"))], [s(x) for x in lst(new.get("ipFamilies"))]
    p = path("spec", "ipFamilies")
    if len(of) == len(nf):
        for n, fam in enumerate(of):
            if fam != nf[n]:
                errs.append(invalid(p.index(0), GoValue("[]core.IPFamily{" + ", ".join(go_quote(x) for x in nf) + "}"),
                                    "may not change once set"))
    elif len(of) > len(nf):
        if not _cluster_ips(new):
            errs.append(invalid(p.index(0), GoValue("[]core.IPFamily{" + ", ".join(go_quote(x) for x in nf) + "}"),
                                "primary ipFamily can not be unset"))
        if nf and nf[0] != of[0]:
            errs.append(invalid(p.index(0), _cluster_ips(new), "may not change once set"))
        if len(nf) == 1 and new.get("ipFamilyPolicy") != "SingleStack":
            errs.append(invalid(path("spec", "ipFamilyPolicy"), new.get("ipFamilyPolicy"),
                                "must be set to 'SingleStack' when releasing the secondary ipFamily"))
    elif of and nf and nf[0] != of[0]:
        errs.append(invalid(p.index(0), _cluster_ips(new), "may not change once set"))
    return errs


def validate_service_update(new: dict, old: dict) -> list:
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    errs = validate_object_meta_update(new, old)
    errs += _upgrade_downgrade_ips(os_, ns)
    errs += _upgrade_downgrade_families(os_, ns)
    errs += _load_balancer_class(os_, ns)
    both_hc = all(s(x.get("type")) == "LoadBalancer" and s(x.get("externalTrafficPolicy")) == "Local"
                  for x in (os_, ns))
    if both_hc and i(ns.get("healthCheckNodePort")) and i(ns.get("healthCheckNodePort")) != i(os_.get("healthCheckNodePort")):
        errs.append(forbidden(path("spec", "healthCheckNodePort"), "field is immutable"))
    return errs + validate_service(new)


def validate_service_status_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    spec = d(new.get("spec"))
    lb = d(d(new.get("status")).get("loadBalancer"))
    ingress_path = path("status", "loadBalancer", "ingress")
    ingress = lst(lb.get("ingress"))
    if s(spec.get("type")) != "LoadBalancer" and ingress:
        return errs + [forbidden(ingress_path, "may only be used when `spec.type` is 'LoadBalancer'")]
    for n, ing in dicts(ingress):
        p = ingress_path.index(n)
        ip = s(ing.get("ip"))
        if ip and names.parse_ip(ip) is None:
            errs.append(invalid(p.child("ip"), ip, _IP_MSG))
        mode = ing.get("ipMode")
        if mode is None and ip:
            errs.append(required(p.child("ipMode"), "must be specified when `ip` is set"))
        elif mode is not None and not ip:
            errs.append(forbidden(p.child("ipMode"), "may not be specified when `ip` is not set"))
        elif mode is not None and s(mode) not in ("Proxy", "VIP"):
            errs.append(not_supported(p.child("ipMode"), s(mode), ["Proxy", "VIP"]))
        host = s(ing.get("hostname"))
        if host:
            errs += [invalid(p.child("hostname"), host, m) for m in names.is_dns1123_subdomain(host)]
            if names.parse_ip(host) is not None:
                errs.append(invalid(p.child("hostname"), host, "must be a DNS name, not an IP address"))
    return errs


