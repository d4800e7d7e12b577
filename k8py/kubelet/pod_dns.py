"""Per-pod /etc/hosts, /etc/resolv.conf and /etc/hostname, as the kubelet writes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
HOSTS_BASE = ("127.0.0.1\tlocalhost\n"
              "::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\n"
              "fe00::0\tip6-mcastprefix\n"
              "fe00::1\tip6-allnodes\n"
              "fe00::2\tip6-allrouters\n")
MAX_SEARCH = 32


@dataclass
class ClusterDNS:
    servers: list[str]
    domain: str = "cluster.local"
    host_resolv_conf: Path = Path("/etc/resolv.conf")


def hostname_and_domain(pod: dict, cluster_domain: str) -> tuple[str, str]:
    spec, m = pod.get("spec") or {}, pod.get("metadata") or {}
    hostname = (spec.get("hostname") or m.get("name", ""))[:63].rstrip("-.")
    domain = ""
    if spec.get("subdomain"):
        domain = f"{spec['subdomain']}.{m.get('namespace', 'default')}.svc.{cluster_domain}"
    return hostname, domain


def hosts_file(pod: dict, pod_ips: list[str], cluster_domain: str, host_hosts: str | None = None) -> str:
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        text = host_hosts if host_hosts is not None else HOSTS_BASE
    else:
        hostname, domain = hostname_and_domain(pod, cluster_domain)
        text = HOSTS_HEADER + HOSTS_BASE
        for ip in pod_ips:
            text += f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n"
    aliases = spec.get("hostAliases") or []
    if aliases:
        text += "\n# Entries added by HostAliases.\n"
        for alias in aliases:
            text += f"{alias.get('ip', '')}\t" + "\t".join(alias.get("hostnames") or []) + "\n"
    return text


def _parse_resolv(text: str) -> tuple[list[str], list[str], list[str]]:
    servers, searches, options = [], [], []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            servers.append(parts[1])
        elif parts[0] == "search":
            searches = parts[1:]
        elif parts[0] == "options":
            options.extend(parts[1:])
    return servers, searches, options


def _merge_options(base: list[str], extra: list[dict]) -> list[str]:
    merged: dict[str, str] = {}
    for opt in base:
        name, _, value = opt.partition(":")
        merged[name] = opt
    for opt in extra:
        name = opt.get("name", "")
        merged[name] = f"{name}:{opt['value']}" if opt.get("value") is not None else name
    return list(merged.values())


def resolv_conf(pod: dict, dns: ClusterDNS) -> str:
    spec, m = pod.get("spec") or {}, pod.get("metadata") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    try:
        host_text = dns.host_resolv_conf.read_text()
    except OSError:
        host_text = ""
    host_servers, host_search, host_options = _parse_resolv(host_text)
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"        # hostNetwork pods only get cluster DNS when they ask for it
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and dns.servers:
        ns = m.get("namespace", "default")
        servers = list(dns.servers)
        search = [f"{ns}.svc.{dns.domain}", f"svc.{dns.domain}", dns.domain] + host_search
        options = ["ndots:5"]
    elif policy == "None":
        servers, search, options = [], [], []
    else:
        servers, search, options = host_servers, host_search, host_options
    config = spec.get("dnsConfig") or {}
    servers = servers + [s for s in config.get("nameservers") or [] if s not in servers]
    search = search + [s for s in config.get("searches") or [] if s not in search]
    options = _merge_options(options, config.get("options") or [])
    lines = []
    if search:
        lines.append("search " + " ".join(search[:MAX_SEARCH]))
    lines += [f"nameserver {s}" for s in servers[:3]]
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def write_pod_files(pod_dir: Path, pod: dict, pod_ips: list[str], dns: ClusterDNS) -> dict[str, Path]:
    """Write the three files into the pod folder; returns container path -> host path."""
    pod_dir.mkdir(parents=True, exist_ok=True)
    try:
        host_hosts = Path("/etc/hosts").read_text()
    except OSError:
        host_hosts = None
    hostname, _ = hostname_and_domain(pod, dns.domain)
    files = {"/etc/hosts": ("etc-hosts", hosts_file(pod, pod_ips, dns.domain, host_hosts)),
             "/etc/resolv.conf": ("resolv.conf", resolv_conf(pod, dns)),
             "/etc/hostname": ("hostname", (hostname if not (pod.get("spec") or {}).get("hostNetwork")
                                            else _host_hostname()) + "\n")}
    out = {}
    for container_path, (name, text) in files.items():
        path = pod_dir / name
        try:
            unchanged = path.read_text() == text
        except OSError:
            unchanged = False
        if not unchanged:
            # Written in place: containers bind-mount these files, a new inode would not reach them.
            with open(path, "w") as f:
                f.write(text)
        out[container_path] = path
    return out


def _host_hostname() -> str:
    import socket
    return socket.gethostname()
