"""Cluster DNS: the svc.<domain> zone from Services and EndpointSlices, everything else forwarded."""

from k8py.dns.service import ClusterDNS, run_in_server

__all__ = ["ClusterDNS", "run_in_server"]
