"""`--encryption-provider-config`: upstream's EncryptionConfiguration file.

    apiVersion: apiserver.config.k8s.io/v1
    kind: EncryptionConfiguration
    resources:
      - resources: [secrets, configmaps, "*.apps", "*.*"]
        providers:
          - aescbc: {keys: [{name: key1, secret: <base64 of 32 bytes>}]}
          - identity: {}

Each entry names resources (`secrets`, `deployments.apps`, `*.apps`, `*.`
for the core group, `*.*` for all) and the providers that store them; a
resource takes the providers of the first entry that names it exactly, else
of its group's wildcard, else of `*.*`. Every key of a provider becomes one
transformer, so a value written with an older key still reads.

`EncryptionProviders` answers which transformers a stored resource uses and
keeps one TransformingStore per key prefix; with automatic reload the file is
read again when it changes and the stores switch to the new transformers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from pathlib import Path

import yaml

from k8py.storage.encryption import (AESCBC, AESGCM, IDENTITY_ONLY, Identity, PrefixTransformers, SecretBox,
                                     TransformingStore)
from k8py.storage.interface import Store

log = logging.getLogger(__name__)

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
KEY_SIZES = {"aescbc": (16, 24, 32), "aesgcm": (16, 24, 32), "secretbox": (32,)}
PROVIDERS = {"aescbc": AESCBC, "aesgcm": AESGCM, "secretbox": SecretBox}
ANY = ("*", "*")


class ConfigError(ValueError):
    pass


def _parse_resource(name: str) -> tuple[str, str]:
    """`deployments.apps` -> ("apps", "deployments"); `secrets` -> ("", "secrets"); `*.` -> ("", "*")."""
    resource, _, group = name.partition(".")
    return group, resource


def _transformers(provider: dict, where: str) -> list:
    kinds = [k for k in provider if provider[k] is not None]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: Invalid value: {kinds}: provider config must have exactly one of: "
                          "aescbc, aesgcm, secretbox, identity (kms is not supported)")
    kind = kinds[0]
    if kind == "identity":
        return [Identity()]
    if kind not in PROVIDERS:
        raise ConfigError(f"{where}.{kind}: Unsupported value: {kind!r}: supported values: "
                          '"aescbc", "aesgcm", "secretbox", "identity"')
    keys = (provider[kind] or {}).get("keys") or []
    if not keys:
        raise ConfigError(f"{where}.{kind}.keys: Required value: keys (list of at least one key) is required")
    out, names = [], set()
    for i, key in enumerate(keys):
        at = f"{where}.{kind}.keys[{i}]"
        name, secret = (key or {}).get("name"), (key or {}).get("secret")
        if not name:
            raise ConfigError(f"{at}.name: Required value: key name is required")
        if ":" in name:
            raise ConfigError(f'{at}.name: Invalid value: "{name}": key name must not contain ":"')
        if name in names:
            raise ConfigError(f'{at}.name: Duplicate value: "{name}"')
        names.add(name)
        try:
            raw = base64.b64decode(secret or "", validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{at}.secret: Invalid value: \"REDACTED\": secrets must be base64 encoded") from None
        if not raw:
            raise ConfigError(f"{at}.secret: Required value: secret is required")
        if len(raw) not in KEY_SIZES[kind]:
            raise ConfigError(f'{at}.secret: Invalid value: "REDACTED": secret is not of the expected length, '
                              f"got {len(raw)}, expected one of {list(KEY_SIZES[kind])}")
        out.append(PROVIDERS[kind](name, raw))
    return out


def parse(text: str) -> dict[tuple[str, str], PrefixTransformers]:
    """(group, resource) -> transformers; `*` stands for any, as in the file."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"error decoding encryption provider configuration file: {err}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("apiVersion") != API_VERSION:
        raise ConfigError(f"error decoding encryption provider configuration file: expected kind {KIND!r} "
                          f"with apiVersion {API_VERSION!r}")
    entries = doc.get("resources") or []
    if not entries:
        raise ConfigError("resources: Required value: resources is a required field")
    result: dict[tuple[str, str], PrefixTransformers] = {}
    for i, entry in enumerate(entries):
        where = f"resources[{i}]"
        names = (entry or {}).get("resources") or []
        providers = (entry or {}).get("providers") or []
        if not names:
            raise ConfigError(f"{where}.resources: Required value: resources is a required field")
        if not providers:
            raise ConfigError(f"{where}.providers: Required value: providers is a required field")
        transformers = PrefixTransformers(t for j, p in enumerate(providers)
                                          for t in _transformers(p or {}, f"{where}.providers[{j}]"))
        for j, name in enumerate(names):
            at = f"{where}.resources[{j}]"
            if not isinstance(name, str) or not name or name != name.lower():
                raise ConfigError(f'{at}: Invalid value: "{name}": resource name must be lower case')
            group, resource = _parse_resource(name)
            if name == "*":
                raise ConfigError(f'{at}: Invalid value: "{name}": use "*.*" for all resources, '
                                  f'"*.<group>" for a group or "*." for the core group')
            if (group, resource) in result:
                raise ConfigError(f'{at}: Duplicate value: "{name}"')
            for masking in ((group, "*"), ANY):
                if masking != (group, resource) and masking in result:
                    raise ConfigError(f'{at}: Invalid value: "{name}": resource "{name}" is masked by '
                                      f'earlier rule "{masking[1]}.{masking[0]}"')
            result[(group, resource)] = transformers
    return result


def load(path: Path) -> dict[tuple[str, str], PrefixTransformers]:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"error reading encryption provider configuration file {str(path)!r}: "
                          f"{err.strerror}") from None
    return parse(text)


class EncryptionProviders:
    """What the API server stores through: one view of the Store per encrypted prefix.

    Without a configuration, secrets still go through an identity-only view,
    so that an encrypted secret read without its key answers upstream's
    "identity transformer tried to read encrypted data" rather than vanishing.
    """

    def __init__(self, path: Path | None = None, automatic_reload: bool = False):
        self.path = path
        self.automatic_reload = automatic_reload
        self.config = load(path) if path else {}
        self._digest = self._file_digest()
        self._views: dict[str, tuple[tuple[str, str], TransformingStore]] = {}

    def transformers_for(self, group: str, resource: str) -> PrefixTransformers | None:
        c = self.config
        found = c.get((group, resource)) or c.get((group, "*")) or c.get(ANY)
        if found is None and not self.config and (group, resource) == ("", "secrets"):
            return IDENTITY_ONLY
        return found

    def store_for(self, store: Store, prefix: str, group: str, resource: str) -> Store:
        view = self._views.get(prefix)
        if view is not None:
            return view[1]
        transformers = self.transformers_for(group, resource)
        if transformers is None:
            return store
        wrapped = TransformingStore(store, prefix, transformers)
        self._views[prefix] = ((group, resource), wrapped)
        return wrapped

    # ---- --encryption-provider-config-automatic-reload ----------------------

    def _file_digest(self) -> bytes:
        try:
            return hashlib.sha256(Path(self.path).read_bytes()).digest() if self.path else b""
        except OSError:
            return b""

    def reload(self) -> bool:
        """Read the file again if it changed; a bad file keeps the running config (as upstream)."""
        digest = self._file_digest()
        if not digest or digest == self._digest:
            return False
        try:
            config = load(self.path)
        except ConfigError as err:
            log.error("encryption provider configuration not reloaded: %s", err)
            return False
        self._digest, self.config = digest, config
        for (group, resource), view in self._views.values():
            # A resource newly encrypted needs a restart (its cache reads the store directly).
            view.transformers = self.transformers_for(group, resource) or IDENTITY_ONLY
        log.info("encryption provider configuration reloaded from %s", self.path)
        return True

    async def watch(self, interval_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.reload()
