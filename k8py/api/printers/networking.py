"""Printers for networking.k8s.io: Ingress, IngressClass, NetworkPolicy, ServiceCIDR, IPAddress;
and discovery.k8s.io EndpointSlice."""

from __future__ import annotations

from k8py.api.printers.columns import AGE, NAME, Column, Printer, age
from k8py.api.printers.formatting import NONE, format_label_selector, list_with_more
from k8py.api.printers.values import as_dict, as_list, dig, integer, name_of, text

MAX_HOSTS = 3


def ingress_hosts(rules) -> str:
    """Up to three rule hosts, `*` when no rule names one."""
    rules = [as_dict(r) for r in as_list(rules)]
    hosts, more = [], False
    for rule in rules:
        if len(hosts) == MAX_HOSTS:
            more = True  # any rule after the third host, named or not
            break
        if text(rule.get("host")):
            hosts.append(text(rule.get("host")))
    if not hosts:
        return "*"
    # Upstream counts the overflow in rules, not in hosts.
    return f"{','.join(hosts)} + {len(rules) - MAX_HOSTS} more..." if more else ",".join(hosts)


def ingress_address(ingress: dict) -> str:
    points = set()
    for point in map(as_dict, as_list(dig(ingress, "status", "loadBalancer", "ingress"))):
        value = text(point.get("ip")) or text(point.get("hostname"))
        if value:
            points.add(value)
    return ",".join(sorted(points))


def _ingress_cells(ingress, now):
    spec = as_dict(ingress.get("spec"))
    class_name = spec.get("ingressClassName")
    return [
        name_of(ingress), NONE if class_name is None else text(class_name), ingress_hosts(spec.get("rules")),
        ingress_address(ingress), "80, 443" if as_list(spec.get("tls")) else "80", age(ingress, now),
    ]


INGRESS = Printer((
    NAME,
    Column("Class", description="The name of the IngressClass resource that should be used for "
                                "additional configuration"),
    Column("Hosts", description="Hosts that incoming requests are matched against before the ingress rule"),
    Column("Address", description="Address is a list containing ingress points for the load-balancer"),
    Column("Ports", description="Ports of TLS configurations that open"),
    AGE,
), _ingress_cells)


def _ingress_class_parameters(spec: dict) -> str:
    params = spec.get("parameters")
    if not isinstance(params, dict):
        return NONE
    kind = text(params.get("kind"))
    if params.get("apiGroup") is not None:
        kind += "." + text(params.get("apiGroup"))
    return f"{kind}/{text(params.get('name'))}"


INGRESS_CLASS = Printer((
    NAME,
    Column("Controller", description="Controller that is responsible for handling this class"),
    Column("Parameters", description="A reference to a resource with additional parameters"),
    AGE,
), lambda ic, now: [name_of(ic), text(dig(ic, "spec", "controller")),
                    _ingress_class_parameters(as_dict(ic.get("spec"))), age(ic, now)])


def _pod_selector(policy: dict) -> str:
    # podSelector is a value (not a pointer) upstream: unset means "all pods".
    return format_label_selector(as_dict(dig(policy, "spec", "podSelector")))


NETWORK_POLICY = Printer(
    (NAME, Column("Pod-Selector", doc="networking.v1.NetworkPolicySpec.podSelector"), AGE),
    lambda np, now: [name_of(np), _pod_selector(np), age(np, now)],
)

SERVICE_CIDR = Printer(
    (NAME, Column("CIDRs", doc="networking.v1beta1.ServiceCIDRSpec.cidrs"), AGE),
    lambda obj, now: [name_of(obj), ",".join(text(c) for c in as_list(dig(obj, "spec", "cidrs"))),
                      age(obj, now)],
)


def _ip_parent(obj: dict) -> str:
    ref = dig(obj, "spec", "parentRef")
    if not isinstance(ref, dict):
        return NONE
    group, resource = text(ref.get("group")), text(ref.get("resource"))
    parent = (f"{resource}.{group}" if group else resource).lower()
    if text(ref.get("namespace")):
        parent += "/" + text(ref.get("namespace"))
    return f"{parent}/{text(ref.get('name'))}"


IP_ADDRESS = Printer(
    (NAME, Column("ParentRef", doc="networking.v1beta1.IPAddressSpec.parentRef")),
    # Upstream also appends the age, a cell without a column; kubectl drops it, so do we.
    lambda obj, now: [name_of(obj), _ip_parent(obj)],
)


def _slice_ports(ports) -> str:
    shown = []
    for port in map(as_dict, as_list(ports)):
        if port.get("port") is not None:
            shown.append(str(integer(port.get("port"))))
        elif port.get("name") is not None:
            shown.append(text(port.get("name")))
        else:
            shown.append("*")
    return list_with_more(shown)


def _slice_endpoints(endpoints) -> str:
    addresses = [text(a) for e in as_list(endpoints) for a in as_list(as_dict(e).get("addresses"))]
    return list_with_more(addresses)


ENDPOINT_SLICE = Printer((
    NAME,
    Column("AddressType", doc="discovery.v1.EndpointSlice.addressType"),
    Column("Ports", doc="discovery.v1.EndpointSlice.ports"),
    Column("Endpoints", doc="discovery.v1.EndpointSlice.endpoints"),
    AGE,
), lambda es, now: [name_of(es), text(es.get("addressType")), _slice_ports(es.get("ports")),
                    _slice_endpoints(es.get("endpoints")), age(es, now)])


PRINTERS = {
    ("networking.k8s.io", "Ingress"): INGRESS,
    ("networking.k8s.io", "IngressClass"): INGRESS_CLASS,
    ("networking.k8s.io", "NetworkPolicy"): NETWORK_POLICY,
    ("networking.k8s.io", "ServiceCIDR"): SERVICE_CIDR,
    ("networking.k8s.io", "IPAddress"): IP_ADDRESS,
    ("discovery.k8s.io", "EndpointSlice"): ENDPOINT_SLICE,
}
