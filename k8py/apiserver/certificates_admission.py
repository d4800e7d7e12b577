"""Admission for CertificateSigningRequests, as upstream's three plugins:

- CertificateApproval: approving or denying (the `approval` subresource) needs
  the `approve` verb on `certificates.k8s.io/signers` named after the signer
  (or `<domain>/*`);
- CertificateSigning: setting `status.certificate` needs `sign` on the signer;
- CertificateSubjectRestriction: no kubernetes.io/kube-apiserver-client
  request may ask for the system:masters group.
"""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.x509.oid import NameOID

from k8py.apimachinery import errors
from k8py.apiserver.authz import Attributes

CSR_KEY = ("certificates.k8s.io", "CertificateSigningRequest")
KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"


def _forbidden(name: str, reason: str) -> errors.StatusError:
    return errors.StatusError(403, "Forbidden", f'certificatesigningrequests.certificates.k8s.io "{name}" is '
                                                f"forbidden: {reason}", name=name, group="certificates.k8s.io",
                              kind="certificatesigningrequests")


def authorized_for_signer(authorizer, user, verb: str, signer: str) -> bool:
    for name in (signer, signer.split("/", 1)[0] + "/*"):
        attrs = Attributes(user=user, verb=verb, resource_request=True, api_group="certificates.k8s.io",
                           api_version="*", resource="signers", name=name)
        if authorizer.authorize(attrs).allowed:
            return True
    return False


def admit_create(api, resource, obj: dict) -> None:
    if (resource.group, resource.kind) != CSR_KEY:
        return
    spec = obj.get("spec") or {}
    if spec.get("signerName") != KUBE_APISERVER_CLIENT:
        return
    try:
        request = x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
    except (binascii.Error, ValueError, TypeError):
        return      # validation reports an unreadable request
    if any(a.value == "system:masters" for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)):
        raise _forbidden(obj["metadata"].get("name", ""),
                         f"use of {KUBE_APISERVER_CLIENT} signer with system:masters group is not allowed")


def admit_update(api, resource, new: dict, old: dict, user, subresource: str) -> None:
    if (resource.group, resource.kind) != CSR_KEY or user is None:
        return
    signer = (old.get("spec") or {}).get("signerName", "")
    name = old["metadata"].get("name", "")
    if subresource == "approval":
        if not authorized_for_signer(api.authorizer, user, "approve", signer):
            raise _forbidden(name, f'user not permitted to approve requests with signerName "{signer}"')
    elif subresource == "status":
        if (new.get("status") or {}).get("certificate") != (old.get("status") or {}).get("certificate") and \
                not authorized_for_signer(api.authorizer, user, "sign", signer):
            raise _forbidden(name, f'user not permitted to sign requests with signerName "{signer}"')
