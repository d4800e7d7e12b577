"""Values encrypted at rest: upstream's value transformers and a Store view that applies them.

A stored value is `k8s:enc:<provider>:v1:<keyname>:` followed by the
ciphertext, as upstream kube-apiserver writes it, or plain JSON (identity).
`PrefixTransformers` holds a resource's providers in configuration order: the
first one encrypts every write, all of them are tried on reads (chosen by
prefix), and a value read by any but the first is *stale* so that a rewrite
re-encrypts it with the current key (key rotation).

`TransformingStore` wraps the Store for one resource's key prefix: the
ObjectStore and the watch cache of that resource talk to it, so the watch
cache holds decrypted objects and resources without encryption do not pay
for any of this.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import Iterable

from k8py.storage.interface import KV, Event, EventCallback, Store

ENCRYPTED = b"k8s:enc:"


class TransformError(Exception):
    pass


class Transformer:
    """One provider key: `prefix` + ciphertext on disk."""
    prefix: bytes = b""

    def encrypt(self, data: bytes, key: str) -> bytes:
        raise NotImplementedError

    def decrypt(self, data: bytes, key: str) -> bytes:
        raise NotImplementedError


class Identity(Transformer):
    def encrypt(self, data: bytes, key: str) -> bytes:
        return data

    def decrypt(self, data: bytes, key: str) -> bytes:
        if data.startswith(ENCRYPTED):
            raise TransformError("identity transformer tried to read encrypted data")
        return data


class AESCBC(Transformer):
    """aescbc: a random 16-byte IV, then AES-CBC over the PKCS#7-padded value.

    Setting up a cipher context costs more than encrypting a secret, so one
    encrypting and one decrypting CBC context live as long as the key, and
    each value is chained onto the last block the context saw: CBC feeds a
    block's ciphertext into the next block, so XOR-ing that last block and
    the value's own IV into the first block gives exactly the result of a
    fresh context started with that IV.
    """

    def __init__(self, name: str, secret: bytes):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        self.prefix = f"k8s:enc:aescbc:v1:{name}:".encode()
        cipher = Cipher(algorithms.AES(secret), modes.CBC(bytes(16)))
        self._lock = threading.Lock()
        self._encryptor, self._enc_last = cipher.encryptor(), bytes(16)
        self._decryptor, self._dec_last = cipher.decryptor(), bytes(16)

    def encrypt(self, data: bytes, key: str) -> bytes:
        iv = os.urandom(16)
        pad = 16 - len(data) % 16
        padded = data + bytes([pad]) * pad
        with self._lock:
            body = self._encryptor.update(_xor16(padded[:16], _xor16(iv, self._enc_last)) + padded[16:])
            self._enc_last = body[-16:]
        return iv + body

    def decrypt(self, data: bytes, key: str) -> bytes:
        if len(data) < 32:
            raise TransformError("the stored data was shorter than the required size")
        iv, body = data[:16], data[16:]
        if len(body) % 16:
            raise TransformError("the stored data is not a multiple of the block size")
        with self._lock:
            plain = self._decryptor.update(body)
            previous, self._dec_last = self._dec_last, body[-16:]
        plain = _xor16(plain[:16], _xor16(iv, previous)) + plain[16:]
        pad = plain[-1]
        if pad == 0 or pad > 16 or plain[-pad:] != bytes([pad]) * pad:
            raise TransformError("invalid padding on input")
        return plain[:-pad]


def _xor16(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(16, "little")


class AESGCM(Transformer):
    """aesgcm: a random 12-byte nonce, then AES-GCM sealed with the storage key as authenticated data."""

    def __init__(self, name: str, secret: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM as _AESGCM
        self.prefix = f"k8s:enc:aesgcm:v1:{name}:".encode()
        self._aead = _AESGCM(secret)

    def encrypt(self, data: bytes, key: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, key.encode())

    def decrypt(self, data: bytes, key: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        if len(data) < 12 + 16:
            raise TransformError("the stored data was shorter than the required size")
        try:
            return self._aead.decrypt(data[:12], data[12:], key.encode())
        except InvalidTag:
            raise TransformError("cipher: message authentication failed") from None


class SecretBox(Transformer):
    """secretbox: XSalsa20-Poly1305 with a random 24-byte nonce (NaCl's combined form)."""

    def __init__(self, name: str, secret: bytes):
        import nacl.secret
        self.prefix = f"k8s:enc:secretbox:v1:{name}:".encode()
        self._box = nacl.secret.SecretBox(secret)

    def encrypt(self, data: bytes, key: str) -> bytes:
        return bytes(self._box.encrypt(data))

    def decrypt(self, data: bytes, key: str) -> bytes:
        import nacl.exceptions
        if len(data) < 24 + 16:
            raise TransformError("the stored data was shorter than the required size")
        try:
            return self._box.decrypt(data)
        except nacl.exceptions.CryptoError:
            raise TransformError("output array was not large enough for encryption") from None


class PrefixTransformers:
    """A resource's providers in order: the first writes, the one whose prefix matches reads."""

    def __init__(self, transformers: Iterable[Transformer]):
        self.transformers = list(transformers)
        if not self.transformers:
            raise ValueError("at least one transformer is needed")

    def to_storage(self, data: bytes, key: str) -> bytes:
        first = self.transformers[0]
        return first.prefix + first.encrypt(data, key) if first.prefix else data

    def from_storage(self, data: bytes, key: str) -> tuple[bytes, bool]:
        """(plain value, stale): stale when not read by the writing provider."""
        errs = []
        for i, t in enumerate(self.transformers):
            if not data.startswith(t.prefix):
                continue
            try:
                plain = t.decrypt(data[len(t.prefix):], key)
            except TransformError as err:
                if not t.prefix:  # identity before encryption (decrypting away): try the others
                    continue
                errs.append(str(err))
                continue
            return plain, i != 0
        if errs:
            raise TransformError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
        raise TransformError("no matching prefix found")


class NoEncryption(PrefixTransformers):
    """What reads a resource when no configuration names it: upstream's bare
    identity transformer, whose own error is what a reader sees."""

    def __init__(self):
        super().__init__([Identity()])

    def from_storage(self, data: bytes, key: str) -> tuple[bytes, bool]:
        return self.transformers[0].decrypt(data, key), False


IDENTITY_ONLY = NoEncryption()


class TransformingStore(Store):
    """The Store as one resource sees it: values under `prefix` go through
    `transformers` on their way in and out; anything else passes unchanged.

    `unreadable` maps keys whose value no provider could read to the error
    (the API answers 500 for them, as upstream does); `stale` holds keys read
    by a provider other than the first (a rewrite must store them anew).
    """

    def __init__(self, inner: Store, prefix: str, transformers: PrefixTransformers):
        super().__init__()
        self.inner = inner
        self.prefix = prefix
        self.transformers = transformers
        self.unreadable: dict[str, str] = {}
        self.stale: set[str] = set()
        # Values being written through this view -> their plain text: the
        # commit they cause is not decrypted again.
        self._writing: dict[bytes, bytes] = {}

    # ---- values -------------------------------------------------------------

    def _read(self, kv: KV) -> KV | None:
        """`kv` with its plain value; None (and the key remembered) when unreadable."""
        key = kv.key
        plain = self._writing.get(kv.value)
        if plain is not None:
            self.unreadable.pop(key, None)
            self.stale.discard(key)
            return replace(kv, value=plain)
        try:
            plain, stale = self.transformers.from_storage(kv.value, key)
        except TransformError as err:
            self.unreadable[key] = f'unable to transform key "{key}": {err}'
            self.stale.discard(key)
            return None
        self.unreadable.pop(key, None)
        if stale:
            self.stale.add(key)
        else:
            self.stale.discard(key)
        return replace(kv, value=plain)

    def _read_quietly(self, kv: KV | None) -> KV | None:
        """A previous value (of an event): no bookkeeping, None if unreadable."""
        if kv is None:
            return None
        try:
            return replace(kv, value=self.transformers.from_storage(kv.value, kv.key)[0])
        except TransformError:
            return None

    def _event(self, event: Event, live: bool = True) -> Event | None:
        """An event with plain values. Only live commits update what is
        known about keys; replayed history (watch catch-up) must not."""
        prev = self._read_quietly(event.prev)
        if event.type == "DELETE":
            if live:
                self.unreadable.pop(event.kv.key, None)
                self.stale.discard(event.kv.key)
            kv = self._read_quietly(event.kv) or prev
            if kv is None and not event.kv.value and event.prev is None:
                return event  # a deletion etcd no longer has the value of (storage/etcd resync)
            return replace(event, kv=kv, prev=prev) if kv is not None else None
        kv = self._read(event.kv) if live else self._read_quietly(event.kv)
        if kv is None:
            # What the cache held is no longer what is stored: it goes, and reads say why.
            if prev is None:
                return None
            return Event("DELETE", replace(prev, mod_revision=event.kv.mod_revision), prev)
        return replace(event, kv=kv, prev=prev)

    def unreadable_under(self, prefix: str) -> str | None:
        """The error of the first unreadable key under `prefix`, if any."""
        for key in sorted(self.unreadable):
            if key.startswith(prefix):
                return self.unreadable[key]
        return None

    # ---- Store --------------------------------------------------------------

    async def get(self, key: str) -> KV | None:
        kv = await self.inner.get(key)
        return self._read(kv) if kv is not None else None

    async def list(self, prefix: str, limit: int = 0, start_after: str | None = None):
        kvs, revision, more = await self.inner.list(prefix, limit, start_after)
        return [kv for kv in map(self._read, kvs) if kv is not None], revision, more

    async def events_since(self, prefix: str, revision: int) -> list[Event]:
        events = await self.inner.events_since(prefix, revision)
        return [e for e in (self._event(e, live=False) for e in events) if e is not None]

    async def create(self, key: str, value: bytes) -> KV:
        stored = self.transformers.to_storage(value, key)
        self._writing[stored] = value
        try:
            kv = await self.inner.create(key, stored)
        finally:
            self._writing.pop(stored, None)
        return replace(kv, value=value)

    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KV:
        stored = self.transformers.to_storage(value, key)
        self._writing[stored] = value
        try:
            kv = await self.inner.update(key, stored, expected_revision)
        finally:
            self._writing.pop(stored, None)
        return replace(kv, value=value)

    async def delete(self, key: str, expected_revision: int | None = None) -> KV:
        kv = await self.inner.delete(key, expected_revision)
        return self._read_quietly(kv) or kv

    def subscribe(self, callback: EventCallback) -> None:
        prefix = self.prefix

        def on_commit(events: list[Event]) -> None:
            # Most commits are of other resources: pass those through untouched.
            if not any(e.kv.key.startswith(prefix) for e in events):
                callback(events)
                return
            out = []
            for e in events:
                if e.kv.key.startswith(prefix):
                    e = self._event(e)
                if e is not None:
                    out.append(e)
            callback(out)
        self.inner.subscribe(on_commit)

    @property
    def revision(self) -> int:
        return self.inner.revision

    @property
    def compacted_revision(self) -> int:
        return self.inner.compacted_revision

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    def start_compactor(self, interval_s: float = 300.0, keep: int = 1000):
        return self.inner.start_compactor(interval_s, keep)

    async def close(self) -> None:
        await self.inner.close()
