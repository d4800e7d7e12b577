"""csrapproving's recognizers, csrsigning's checks and certificates, the rotation deadline."""

import base64
import datetime
import random

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k8py.client.certificates import rotation_deadline
from k8py.controllers.certificates import approver, signer
from k8py.controllers.certificates import csr as csrs


def request(cn, orgs=(), dns=()):
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name(names + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return builder.sign(key, hashes.SHA256())


def csr_object(req, signer_name, username, usages=("digital signature", "client auth")):
    pem = req.public_bytes(serialization.Encoding.PEM)
    return {"spec": {"request": base64.b64encode(pem).decode(), "signerName": signer_name, "username": username,
                     "usages": list(usages)}}


def test_approver_recognizes_node_client_and_renewal_only():
    node = request("system:node:n1", ["system:nodes"])
    first = csr_object(node, csrs.KUBE_APISERVER_CLIENT_KUBELET, "system:bootstrap:abcdef")
    assert csrs.parse_request(first) is not None
    assert approver.recognized(first, node) == [approver.NODE_CLIENT]
    renewal = csr_object(node, csrs.KUBE_APISERVER_CLIENT_KUBELET, "system:node:n1")
    assert approver.recognized(renewal, node) == [approver.SELF_NODE_CLIENT, approver.NODE_CLIENT]
    # Anything else is left for a human: kube-apiserver-client requests, other names, groups, SANs, usages.
    proxy = request("system:kube-proxy")
    assert approver.recognized(csr_object(proxy, csrs.KUBE_APISERVER_CLIENT, "system:bootstrap:abcdef"), proxy) == []
    admin = request("system:admin", ["system:masters"])
    assert approver.recognized(csr_object(admin, csrs.KUBE_APISERVER_CLIENT, "system:bootstrap:abcdef"), admin) == []
    sans = request("system:node:n1", ["system:nodes"], dns=["evil.example"])
    assert approver.recognized(csr_object(sans, csrs.KUBE_APISERVER_CLIENT_KUBELET, "x"), sans) == []
    serving = csr_object(node, csrs.KUBE_APISERVER_CLIENT_KUBELET, "x", ("digital signature", "server auth"))
    assert approver.recognized(serving, node) == []


def ca():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def test_signer_checks_and_issues_client_certificates():
    node = request("system:node:n1", ["system:nodes"])
    usages = {"digital signature", "client auth"}
    assert signer.signer_problem(csrs.KUBE_APISERVER_CLIENT_KUBELET, node, usages) == ""
    wrong = request("system:node:n1", ["system:masters"])
    assert signer.signer_problem(csrs.KUBE_APISERVER_CLIENT_KUBELET, wrong, usages) == \
        "subject organization is not system:nodes"
    assert "invalid usage" in signer.signer_problem(csrs.KUBE_APISERVER_CLIENT, node, {"server auth"})
    ca_cert, ca_key = ca()
    cert = signer.sign(node, ca_cert, ca_key, usages, datetime.timedelta(hours=1))
    cert.verify_directly_issued_by(ca_cert)
    assert cert.subject == node.subject
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(hours=1) + signer.BACKDATE     # short-lived: ends an hour from now
    day = signer.sign(node, ca_cert, ca_key, usages, datetime.timedelta(days=1))
    assert day.not_valid_after_utc - day.not_valid_before_utc == datetime.timedelta(days=1)
    # Never past the CA's own expiry.
    long = signer.sign(node, ca_cert, ca_key, usages, datetime.timedelta(days=365))
    assert long.not_valid_after_utc == ca_cert.not_valid_after_utc


def test_rotation_deadline_is_seventy_to_ninety_percent_of_the_lifetime():
    ca_cert, ca_key = ca()
    cert = signer.sign(request("system:node:n1", ["system:nodes"]), ca_cert, ca_key,
                       {"digital signature", "client auth"}, datetime.timedelta(hours=10))
    start, total = cert.not_valid_before_utc, cert.not_valid_after_utc - cert.not_valid_before_utc
    rng = random.Random(7)
    fractions = [(rotation_deadline(cert, rng) - start) / total for _ in range(200)]
    assert 0.7 <= min(fractions) < 0.72 and 0.88 < max(fractions) <= 0.9
