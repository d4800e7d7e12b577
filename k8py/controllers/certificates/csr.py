"""What the certificate controllers read from a CertificateSigningRequest.

Signer names and the shape checks of upstream's certificates helpers: a
kubelet client request is O=system:nodes, CN=system:node:<name>, no SANs, and
exactly the usages {digital signature, client auth} (plus key encipherment
for RSA keys).
"""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.x509.oid import NameOID

KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
KUBE_APISERVER_CLIENT_KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
LEGACY_UNKNOWN = "kubernetes.io/legacy-unknown"

KUBELET_CLIENT_USAGES = ({"digital signature", "key encipherment", "client auth"},
                         {"digital signature", "client auth"})


def parse_request(csr: dict) -> x509.CertificateSigningRequest | None:
    """The PKCS#10 request of a CSR (spec.request is base64 of PEM), or None when unreadable."""
    try:
        pem = base64.b64decode((csr.get("spec") or {}).get("request") or "")
        request = x509.load_pem_x509_csr(pem)
    except (binascii.Error, ValueError, TypeError):
        return None
    return request if request.is_signature_valid else None


def subject_cn(request: x509.CertificateSigningRequest) -> str:
    names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def subject_orgs(request: x509.CertificateSigningRequest) -> list[str]:
    return [str(a.value) for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def has_sans(request: x509.CertificateSigningRequest) -> bool:
    try:
        return bool(list(request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value))
    except x509.ExtensionNotFound:
        return False


def usages(csr: dict) -> set[str]:
    return set((csr.get("spec") or {}).get("usages") or [])


def kubelet_client_problem(request: x509.CertificateSigningRequest, wanted_usages: set[str]) -> str:
    """Why this is not a kubelet client request, or "" (upstream's ValidateKubeletClientCSR)."""
    if subject_orgs(request) != ["system:nodes"]:
        return "subject organization is not system:nodes"
    if has_sans(request):
        return "subjectAltNames are not allowed"
    if not subject_cn(request).startswith("system:node:"):
        return 'subject common name does not begin with "system:node:"'
    if wanted_usages not in KUBELET_CLIENT_USAGES:
        return "usages did not match [client auth digital signature key encipherment]"
    return ""


def condition(csr: dict, kind: str) -> dict | None:
    for c in (csr.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind and c.get("status", "True") == "True":
            return c
    return None


def finished(csr: dict) -> bool:
    """Issued, denied or failed: nothing more to do."""
    status = csr.get("status") or {}
    return bool(status.get("certificate")) or condition(csr, "Denied") is not None or \
        condition(csr, "Failed") is not None
