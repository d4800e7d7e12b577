"""`k8py server` flags for encryption at rest and the audit log (kube-apiserver's names)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be greater than or equal to 0")
    return value


def add_security_flags(p) -> None:
    p.add_argument("--encryption-provider-config", type=Path, default=None,
                   help="EncryptionConfiguration file: which resources are encrypted at rest, with which keys")
    p.add_argument("--encryption-provider-config-automatic-reload", action="store_true",
                   help="re-read the encryption configuration file when it changes")
    p.add_argument("--audit-policy-file", type=Path, default=None, help="audit Policy file (audit.k8s.io/v1)")
    p.add_argument("--audit-log-path", default="", help="audit log file; '-' is standard output")
    p.add_argument("--audit-log-maxage", type=_non_negative, default=0,
                   help="days to keep rotated audit logs (0: any)")
    p.add_argument("--audit-log-maxbackup", type=_non_negative, default=0,
                   help="rotated audit logs to keep (0: all)")
    p.add_argument("--audit-log-maxsize", type=_non_negative, default=0,
                   help="megabytes of audit log before it is rotated (0: never)")


def security_config(args) -> dict:
    """ServerConfig fields from the flags."""
    return {"encryption_provider_config": args.encryption_provider_config,
            "encryption_provider_config_automatic_reload": args.encryption_provider_config_automatic_reload,
            "audit_policy_file": args.audit_policy_file, "audit_log_path": args.audit_log_path,
            "audit_log_maxage": args.audit_log_maxage, "audit_log_maxbackup": args.audit_log_maxbackup,
            "audit_log_maxsize": args.audit_log_maxsize}
