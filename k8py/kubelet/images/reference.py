"""Image references, normalised the way Docker and containerd spell them.

`nginx` means `docker.io/library/nginx:latest`; a first path component is a
registry host only when it looks like one (has a dot or a port, or is
`localhost`), exactly as the distribution reference grammar decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from k8py.kubelet.runtime.interface import ImageError

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str                 # e.g. "library/nginx"
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def locator(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest wins."""
        return self.digest or self.tag or DEFAULT_TAG


def invalid(reference: str, why: str) -> ImageError:
    return ImageError("InvalidImageName", f'Failed to apply default image tag "{reference}": '
                                          f'couldn\'t parse image name "{reference}": {why}')


def parse_reference(reference: str) -> Reference:
    """Parse and normalise; raise ImageError(InvalidImageName) on anything malformed."""
    text = (reference or "").strip()
    if not text:
        raise invalid(reference, "invalid reference format")
    if _HEX64.match(text):
        raise invalid(reference, "invalid repository name (64 hex characters are an image ID)")
    name, digest = text, None
    if "@" in text:
        name, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise invalid(reference, "invalid digest format")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        if not _TAG.match(tag):
            raise invalid(reference, "invalid reference format")
    parts = name.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        domain, path_parts = first, parts[1:]
        if not _DOMAIN.match(domain):
            raise invalid(reference, "invalid reference format")
    else:
        domain, path_parts = DEFAULT_DOMAIN, parts
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = DEFAULT_DOMAIN
    if any(p != p.lower() for p in path_parts):
        raise invalid(reference, "invalid reference format: repository name must be lowercase")
    if not path_parts or not all(_COMPONENT.match(p) for p in path_parts):
        raise invalid(reference, "invalid reference format")
    path = "/".join(path_parts)
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    if len(f"{domain}/{path}") > 255:
        raise invalid(reference, "repository name must not be more than 255 characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def normalize(reference: str) -> str:
    return str(parse_reference(reference))


def split_repo_tag(full: str) -> tuple[str, str]:
    """`docker.io/library/nginx:latest` -> (`docker.io/library/nginx`, `latest`), as crictl lists them."""
    ref = parse_reference(full)
    return ref.repository, ref.tag or "<none>"
