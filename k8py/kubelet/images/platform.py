"""This machine's OCI platform, and picking it out of a manifest list / index."""

from __future__ import annotations

import platform as _platform

_MACHINE_TO_ARCH = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "i386": ("386", ""), "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
}


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) in OCI/GOARCH spelling."""
    arch, variant = _MACHINE_TO_ARCH.get(_platform.machine().lower(), (_platform.machine().lower(), ""))
    return "linux", arch, variant


def select_manifest(index: dict, want: tuple[str, str, str] | None = None) -> dict | None:
    """The descriptor in an index/manifest list matching the platform, best variant first.

    Entries without a platform, or with `unknown` (build attestations), never match.
    arm64 images often omit the `v8` variant, so a missing variant is an acceptable match.
    """
    os_name, arch, variant = want or host_platform()
    exact, loose = None, None
    for desc in index.get("manifests") or []:
        plat = desc.get("platform") or {}
        if plat.get("os") != os_name or plat.get("architecture") != arch:
            continue
        their_variant = plat.get("variant", "")
        if their_variant == variant:
            exact = exact or desc
        elif not their_variant or not variant:
            loose = loose or desc
    return exact or loose
