import base64
import ipaddress
import os
import socket
import stat

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k8py.apimachinery import certs
from k8py.apiserver import pki as pki_mod
from k8py.apiserver.kubeconfig import write_kubeconfig
from k8py.apiserver.pki import ensure_pki, issue_client_cert, ssl_context


def load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert):
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName)), set(ext.get_values_for_type(x509.IPAddress))


def subject(cert, oid):
    return [a.value for a in cert.subject.get_attributes_for_oid(oid)]


def usages(cert):
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_first_start_creates_ca_serving_and_admin_certs(tmp_path):
    pki = ensure_pki(tmp_path / "tls", ["10.0.0.5", "api.example.com"])
    assert pki.dir == tmp_path / "tls"
    assert pki.ca_cert.name == "server-ca.crt"  # k3s's name, which tests and tools look for

    ca = load(pki.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    serving = load(pki.server_cert)
    serving.verify_directly_issued_by(ca)
    dns, ips = sans(serving)
    assert {"localhost", socket.gethostname().lower(), "kubernetes", "kubernetes.default",
            "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "api.example.com"} <= dns
    assert {ipaddress.ip_address(ip) for ip in ("127.0.0.1", "10.43.0.1", "10.0.0.5")} <= ips
    assert usages(serving) == [ExtendedKeyUsageOID.SERVER_AUTH]

    admin = load(pki.admin_cert)
    admin.verify_directly_issued_by(ca)
    assert subject(admin, NameOID.COMMON_NAME) == ["system:admin"]
    assert subject(admin, NameOID.ORGANIZATION_NAME) == ["system:masters"]
    assert usages(admin) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_key_files_are_private(tmp_path):
    pki = ensure_pki(tmp_path / "tls")
    for key in (pki.ca_key, pki.server_key, pki.admin_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert not [p for p in pki.dir.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_service_cidr_gives_the_kubernetes_service_ip(tmp_path):
    pki = ensure_pki(tmp_path / "tls", service_cidr="10.96.0.0/12")
    _, ips = sans(load(pki.server_cert))
    assert ipaddress.ip_address("10.96.0.1") in ips
    assert ipaddress.ip_address("10.43.0.1") not in ips


def test_second_start_reuses_everything_quickly(tmp_path):
    first = ensure_pki(tmp_path / "tls", ["10.0.0.5"])
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.dir.iterdir()}
    second = ensure_pki(tmp_path / "tls", ["10.0.0.5"])
    assert second == first
    assert load(second.ca_cert).serial_number == load(first.ca_cert).serial_number
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in second.dir.iterdir()} == before


def test_new_san_reissues_only_the_serving_cert(tmp_path):
    pki = ensure_pki(tmp_path / "tls")
    ca_serial, admin_serial = load(pki.ca_cert).serial_number, load(pki.admin_cert).serial_number
    old_serving = load(pki.server_cert)
    ensure_pki(tmp_path / "tls", ["192.168.7.7", "Extra.Example.com"])
    serving = load(pki.server_cert)
    assert serving.serial_number != old_serving.serial_number
    dns, ips = sans(serving)
    assert ipaddress.ip_address("192.168.7.7") in ips and "extra.example.com" in dns
    serving.verify_directly_issued_by(load(pki.ca_cert))
    assert load(pki.ca_cert).serial_number == ca_serial
    assert load(pki.admin_cert).serial_number == admin_serial


def test_lost_ca_key_makes_a_new_ca_and_new_leaves(tmp_path):
    pki = ensure_pki(tmp_path / "tls")
    old_ca = load(pki.ca_cert)
    pki.ca_key.unlink()
    ensure_pki(tmp_path / "tls")
    ca = load(pki.ca_cert)
    assert ca.serial_number != old_ca.serial_number
    load(pki.server_cert).verify_directly_issued_by(ca)
    load(pki.admin_cert).verify_directly_issued_by(ca)


def test_leaf_close_to_expiry_is_renewed(tmp_path, monkeypatch):
    monkeypatch.setattr(certs, "LEAF_VALIDITY", pki_mod.RENEW_BEFORE / 2)
    pki = ensure_pki(tmp_path / "tls")
    old_admin, old_ca = load(pki.admin_cert), load(pki.ca_cert)
    monkeypatch.undo()
    ensure_pki(tmp_path / "tls")
    admin = load(pki.admin_cert)
    assert admin.serial_number != old_admin.serial_number
    assert admin.not_valid_after_utc > old_admin.not_valid_after_utc
    assert load(pki.ca_cert).serial_number == old_ca.serial_number


def test_issue_client_cert(tmp_path):
    pki = ensure_pki(tmp_path / "tls")
    cert_pem, key_pem = issue_client_cert(pki, "system:node:worker-1", ["system:nodes"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(load(pki.ca_cert))
    assert subject(cert, NameOID.COMMON_NAME) == ["system:node:worker-1"]
    assert subject(cert, NameOID.ORGANIZATION_NAME) == ["system:nodes"]
    assert usages(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert b"PRIVATE KEY" in key_pem


def test_ssl_context_settings(tmp_path):
    import ssl
    ctx = ssl_context(ensure_pki(tmp_path / "tls"))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_OPTIONAL


def test_kubeconfig(tmp_path):
    pki = ensure_pki(tmp_path / "tls")
    path = write_kubeconfig(tmp_path / "out" / "kubeconfig.yaml", "https://127.0.0.1:6443", pki, token="s3cret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "default"
    cluster = config["clusters"][0]
    assert cluster["name"] == "default" and cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == pki.ca_cert.read_bytes()
    users = {u["name"]: u["user"] for u in config["users"]}
    assert base64.b64decode(users["default"]["client-certificate-data"]) == pki.admin_cert.read_bytes()
    assert base64.b64decode(users["default"]["client-key-data"]) == pki.admin_key.read_bytes()
    assert "token" not in users["default"]
    assert users["default-token"] == {"token": "s3cret"}
    contexts = {c["name"]: c["context"] for c in config["contexts"]}
    assert contexts["default"] == {"cluster": "default", "user": "default"}
    assert contexts["default-token"] == {"cluster": "default", "user": "default-token"}
    assert os.listdir(path.parent) == ["kubeconfig.yaml"]


def test_kubeconfig_rewrite_replaces_file_and_keeps_mode(tmp_path):
    pki = ensure_pki(tmp_path / "tls")
    path = tmp_path / "kubeconfig.yaml"
    path.write_text("old")
    path.chmod(0o644)
    write_kubeconfig(path, "https://10.0.0.1:7443", pki, user="admin", cluster="c1", context="ctx")
    config = yaml.safe_load(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config["current-context"] == "ctx"
    assert [u["name"] for u in config["users"]] == ["admin"]
    assert config["contexts"] == [{"name": "ctx", "context": {"cluster": "c1", "user": "admin"}}]


def test_bad_service_cidr_fails_before_writing_anything(tmp_path):
    with pytest.raises(ValueError):
        ensure_pki(tmp_path / "tls", service_cidr="not-a-cidr")
    assert not (tmp_path / "tls").exists()


def test_key_not_matching_its_cert_gets_the_pair_reissued(tmp_path):
    # As after a crash between writing a new key and its certificate.
    pki = ensure_pki(tmp_path / "tls")
    other = ensure_pki(tmp_path / "other")
    pki.server_key.write_bytes(other.server_key.read_bytes())
    old_serial = load(pki.server_cert).serial_number
    ensure_pki(tmp_path / "tls")
    assert load(pki.server_cert).serial_number != old_serial
    ssl_context(pki)  # would raise "key values mismatch" for a mismatched pair
