"""Printers for the small groups that each have a kind or two:

policy (PodDisruptionBudget), coordination.k8s.io (Lease, LeaseCandidate),
scheduling.k8s.io (PriorityClass), node.k8s.io (RuntimeClass),
certificates.k8s.io (CertificateSigningRequest, ClusterTrustBundle) and
apiregistration.k8s.io (APIService).
"""

from __future__ import annotations

import datetime

from k8py.api.printers import duration
from k8py.api.printers.columns import AGE, NAME, Column, Printer, age
from k8py.api.printers.formatting import NONE, int_or_string
from k8py.api.printers.values import as_dict, as_list, dig, flag, integer, name_of, optional_int, text


def _pdb_bound(spec: dict, field: str) -> str:
    value = spec.get(field)
    return "N/A" if value is None else int_or_string(value)


def _pdb_cells(pdb, now):
    spec = as_dict(pdb.get("spec"))
    return [name_of(pdb), _pdb_bound(spec, "minAvailable"), _pdb_bound(spec, "maxUnavailable"),
            integer(dig(pdb, "status", "disruptionsAllowed")), age(pdb, now)]


POD_DISRUPTION_BUDGET = Printer((
    NAME,
    Column("Min Available", description="The minimum number of pods that must be available."),
    Column("Max Unavailable", description="The maximum number of pods that may be unavailable."),
    Column("Allowed Disruptions", type="integer",
           description="Calculated number of pods that may be disrupted at this time."),
    AGE,
), _pdb_cells)

LEASE = Printer(
    (NAME, Column("Holder", doc="coordination.v1.LeaseSpec.holderIdentity"), AGE),
    lambda lease, now: [name_of(lease), text(dig(lease, "spec", "holderIdentity")), age(lease, now)],
)

LEASE_CANDIDATE = Printer((
    NAME,
    Column("LeaseName", doc="coordination.v1alpha2.LeaseCandidateSpec.leaseName"),
    # Upstream looks these two descriptions up on ObjectMeta, where they are empty.
    Column("BinaryVersion"),
    Column("EmulationVersion"),
    AGE,
), lambda obj, now: [name_of(obj), text(dig(obj, "spec", "leaseName")),
                     text(dig(obj, "spec", "binaryVersion")), text(dig(obj, "spec", "emulationVersion")),
                     age(obj, now)])

PRIORITY_CLASS = Printer((
    NAME,
    Column("Value", type="integer", doc="scheduling.v1.PriorityClass.value"),
    Column("Global-Default", type="boolean", doc="scheduling.v1.PriorityClass.globalDefault"),
    AGE,
    Column("PreemptionPolicy", doc="scheduling.v1.PriorityClass.preemptionPolicy"),
), lambda pc, now: [name_of(pc), integer(pc.get("value")), flag(pc.get("globalDefault")), age(pc, now),
                    # defaulted to PreemptLowerPriority
                    text(pc.get("preemptionPolicy")) or "PreemptLowerPriority"])

RUNTIME_CLASS = Printer(
    # Upstream reads the Handler description from ObjectMeta, where it is empty.
    (NAME, Column("Handler"), AGE),
    lambda rc, now: [name_of(rc), text(rc.get("handler")), age(rc, now)],
)


def csr_condition(csr: dict) -> str:
    """Denied / Approved / Pending, then `,Failed` and `,Issued` as they apply."""
    kinds = {as_dict(c).get("type") for c in as_list(dig(csr, "status", "conditions"))}
    status = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    if "Failed" in kinds:
        status += ",Failed"
    if dig(csr, "status", "certificate"):
        status += ",Issued"
    return status


def _requested_duration(spec: dict) -> str:
    seconds = optional_int(spec.get("expirationSeconds"))
    return NONE if seconds is None else duration.human_duration(datetime.timedelta(seconds=seconds))


def _csr_cells(csr, now):
    spec = as_dict(csr.get("spec"))
    return [name_of(csr), age(csr, now), text(spec.get("signerName")) or NONE, text(spec.get("username")),
            _requested_duration(spec), csr_condition(csr)]


CERTIFICATE_SIGNING_REQUEST = Printer((
    NAME,
    AGE,
    Column("SignerName", doc="certificates.v1.CertificateSigningRequestSpec.signerName"),
    Column("Requestor", doc="certificates.v1.CertificateSigningRequestSpec.request"),
    Column("RequestedDuration", doc="certificates.v1.CertificateSigningRequestSpec.expirationSeconds"),
    Column("Condition", doc="certificates.v1.CertificateSigningRequestStatus.conditions"),
), _csr_cells)

CLUSTER_TRUST_BUNDLE = Printer(
    (NAME, Column("SignerName", doc="certificates.v1alpha1.ClusterTrustBundleSpec.signerName")),
    lambda ctb, now: [name_of(ctb), text(dig(ctb, "spec", "signerName")) or NONE],
)


def _api_service_available(service: dict) -> str:
    for cond in map(as_dict, as_list(dig(service, "status", "conditions"))):
        if cond.get("type") == "Available":
            status, reason = text(cond.get("status")), text(cond.get("reason"))
            return f"{status} ({reason})" if status != "True" and reason else status
    return "Unknown"


def _api_service_cells(service, now):
    ref = dig(service, "spec", "service")
    # No service reference: the API is served by the apiserver itself.
    backend = f"{text(ref.get('namespace'))}/{text(ref.get('name'))}" if isinstance(ref, dict) else "Local"
    return [name_of(service), backend, _api_service_available(service), age(service, now)]


API_SERVICE = Printer((
    NAME,
    Column("Service", description="The reference to the service that hosts this API endpoint."),
    Column("Available", description="Whether this service is available."),
    AGE,
), _api_service_cells)


PRINTERS = {
    ("policy", "PodDisruptionBudget"): POD_DISRUPTION_BUDGET,
    ("coordination.k8s.io", "Lease"): LEASE,
    ("coordination.k8s.io", "LeaseCandidate"): LEASE_CANDIDATE,
    ("scheduling.k8s.io", "PriorityClass"): PRIORITY_CLASS,
    ("node.k8s.io", "RuntimeClass"): RUNTIME_CLASS,
    ("certificates.k8s.io", "CertificateSigningRequest"): CERTIFICATE_SIGNING_REQUEST,
    ("certificates.k8s.io", "ClusterTrustBundle"): CLUSTER_TRUST_BUNDLE,
    ("apiregistration.k8s.io", "APIService"): API_SERVICE,
}
