"""csrsigning: signs approved CSRs of the kubernetes.io signers with the cluster CA.

As upstream's signer controllers (kube-controller-manager
--cluster-signing-cert-file/--cluster-signing-key-file): an approved,
not-yet-issued request of kubernetes.io/kube-apiserver-client,
kube-apiserver-client-kubelet or kubelet-serving is checked against its
signer's rules (a bad one gets a Failed condition, reason
SignerValidationFailure) and issued for min(--cluster-signing-duration,
spec.expirationSeconds), never past the CA's own expiry, back-dated by 5
minutes for clock skew (long-lived ones end that much earlier, as upstream). Requests of other
signers are left alone.
"""

from __future__ import annotations

import base64
import copy
import datetime
import logging
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from k8py.client import ApiError
from k8py.controllers.base import Controller
from k8py.controllers.certificates import csr as csrs

log = logging.getLogger("k8py.controllers.csrsigning")

DEFAULT_DURATION = datetime.timedelta(days=365)       # --cluster-signing-duration 8760h
BACKDATE = datetime.timedelta(minutes=5)
SHORT_LIVED = 100 * BACKDATE        # shorter certificates do not lose the back-dating from their end
MIN_EXPIRATION_SECONDS = 600
SIGNERS = (csrs.KUBE_APISERVER_CLIENT, csrs.KUBE_APISERVER_CLIENT_KUBELET, csrs.KUBELET_SERVING)
_EXT_USAGES = {"client auth": ExtendedKeyUsageOID.CLIENT_AUTH, "server auth": ExtendedKeyUsageOID.SERVER_AUTH}
_KEY_USAGES = {"digital signature": "digital_signature", "key encipherment": "key_encipherment",
               "content commitment": "content_commitment", "data encipherment": "data_encipherment",
               "key agreement": "key_agreement", "cert sign": "key_cert_sign", "crl sign": "crl_sign",
               "encipher only": "encipher_only", "decipher only": "decipher_only"}


def signing_files(options: dict) -> tuple[Path, Path] | None:
    """The CA the signer uses: the --cluster-signing-* flags, else the server's own (in `k8py server`)."""
    if options.get("cluster_signing_cert_file") and options.get("cluster_signing_key_file"):
        return Path(options["cluster_signing_cert_file"]), Path(options["cluster_signing_key_file"])
    if options.get("data_dir"):
        tls = Path(options["data_dir"]) / "server" / "tls"
        if (tls / "server-ca.key").exists():
            return tls / "server-ca.crt", tls / "server-ca.key"
    return None


def signer_problem(signer: str, request, wanted_usages: set[str]) -> str:
    """Why the signer refuses this request, or "" (upstream's per-signer validation)."""
    if signer == csrs.KUBE_APISERVER_CLIENT_KUBELET:
        return csrs.kubelet_client_problem(request, wanted_usages)
    if signer == csrs.KUBE_APISERVER_CLIENT:
        allowed = {"digital signature", "key encipherment", "client auth"}
        if "client auth" not in wanted_usages or not wanted_usages <= allowed:
            return f"invalid usage for client certificate: {sorted(wanted_usages - allowed) or ['(missing client auth)']}"
        return ""
    if signer == csrs.KUBELET_SERVING:
        if csrs.subject_orgs(request) != ["system:nodes"] or not csrs.subject_cn(request).startswith("system:node:"):
            return "subject must be O=system:nodes, CN=system:node:<name>"
        if wanted_usages not in ({"digital signature", "key encipherment", "server auth"},
                                 {"digital signature", "server auth"}):
            return "usages did not match [digital signature key encipherment server auth]"
        return ""
    return "unknown signer"


def sign(request, ca_cert: x509.Certificate, ca_key, wanted_usages: set[str], duration: datetime.timedelta,
         now: datetime.datetime | None = None) -> x509.Certificate:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    not_after = now + duration if duration < SHORT_LIVED else now + duration - BACKDATE
    not_after = min(not_after, ca_cert.not_valid_after_utc)
    key_usage = {attr: False for attr in _KEY_USAGES.values()}
    for usage in wanted_usages:
        if usage in _KEY_USAGES:
            key_usage[_KEY_USAGES[usage]] = True
    builder = (x509.CertificateBuilder()
               .subject_name(request.subject).issuer_name(ca_cert.subject)
               .public_key(request.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(**key_usage), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    ext_usages = [_EXT_USAGES[u] for u in sorted(wanted_usages) if u in _EXT_USAGES]
    if ext_usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ext_usages), critical=False)
    try:
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    except x509.ExtensionNotFound:
        pass
    return builder.sign(ca_key, hashes.SHA256())


class CSRSigningController(Controller):
    name = "csrsigning"
    workers = 2
    event_source = "csrsigning"

    async def setup(self) -> None:
        files = signing_files(self.ctx.options)
        self.ca = None
        if files is None:
            log.warning("csrsigning: no --cluster-signing-cert-file/--cluster-signing-key-file; nothing is signed")
        else:
            cert_path, key_path = files
            self.ca = (x509.load_pem_x509_certificate(cert_path.read_bytes()),
                       serialization.load_pem_private_key(key_path.read_bytes(), password=None))
        self.duration = datetime.timedelta(seconds=float(self.ctx.options.get("cluster_signing_duration")
                                                         or DEFAULT_DURATION.total_seconds()))
        self.csrs = self.ctx.informer("certificates.k8s.io/v1", "certificatesigningrequests")
        self.csrs.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))

    async def sync(self, key: str) -> None:
        csr = self.csrs.get(key)
        if self.ca is None or csr is None or csrs.finished(csr) or csrs.condition(csr, "Approved") is None:
            return
        spec = csr.get("spec") or {}
        signer = spec.get("signerName")
        if signer not in SIGNERS:
            return
        request = csrs.parse_request(csr)
        wanted = csrs.usages(csr)
        problem = "unable to parse csr" if request is None else signer_problem(signer, request, wanted)
        csr = copy.deepcopy(csr)
        status = csr.setdefault("status", {})
        if problem:
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            status["conditions"] = [*(status.get("conditions") or []), {
                "type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": problem,
                "lastUpdateTime": now, "lastTransitionTime": now}]
        else:
            duration = self.duration
            if spec.get("expirationSeconds"):
                duration = min(duration, datetime.timedelta(
                    seconds=max(int(spec["expirationSeconds"]), MIN_EXPIRATION_SECONDS)))
            cert = sign(request, *self.ca, wanted, duration)
            status["certificate"] = base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()
        try:
            await self.client.resource("certificates.k8s.io/v1", "certificatesigningrequests").update_status(csr)
        except ApiError as e:
            if e.code == 404:
                return
            raise
