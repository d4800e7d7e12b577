#!/usr/bin/env python3
"""Fuzz every create endpoint of a k8py API server with mutated bodies.

Valid objects of every built-in kind (the seed manifests, kubectl's captured
protobuf bodies, and a minimal object for kinds without either) are mutated
as JSON trees (type confusion, deleted/duplicated/unknown fields, huge and
negative numbers, odd unicode, deep nesting), as text (truncation, flipped
and random bytes), and as protobuf wire messages (fields dropped, duplicated,
retyped, lengths broken, the envelope's kind swapped), then POSTed with
JSON, YAML or `application/vnd.kubernetes.protobuf` bodies.

Checked after every request: no 5xx answer, every error is a Status whose
code matches the HTTP status, the server still answers /readyz, and a
rejected (or dry-run) request stored nothing (GET by the name it carried is
404; every so often each endpoint's list is compared with what was created).

    python scripts/fuzz_api.py --seconds 300 --seed 1           # starts its own server
    python scripts/fuzz_api.py --server https://127.0.0.1:6443 --token T --seconds 60

The run is deterministic for a seed and a server state (requests are sent
one at a time). Findings are printed as JSON (and written to --findings DIR
as replayable request files).
"""

from __future__ import annotations

import argparse
import copy
import glob
import http.client
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from k8py.apimachinery.protobuf import decode_protobuf_object  # noqa: E402
from k8py.cli.components import COMPONENTS  # noqa: E402
from k8py.apimachinery.protobuf.encoder import encode_protobuf_object  # noqa: E402

DATA = REPO / "tests" / "data"
PROTOBUF = "application/vnd.kubernetes.protobuf"
USER_AGENT = "k8py-fuzz/1.0"
FIELD_MANAGERS = ["fz", "", "x" * 200, "🙂", "a\u0000b"]
# Who an object stored by one of the fuzzer's requests names as its manager;
# objects the server's own controllers make from them (a Job's pods, events)
# name others and are left out of the list comparison.
FUZZER_MANAGERS = {USER_AGENT.split("/")[0], *FIELD_MANAGERS}
# The server's own components act on what the fuzzer creates (a ReplicaSet
# asking for 2^31-1 pods, the scheduler binding its pods): the fuzzer tests
# the API server, so by default it runs without any of them
# (--with-controllers keeps them).
DISABLE_COMPONENTS = tuple(arg for name, _ in COMPONENTS for arg in ("--disable", name))
# Subresources that accept POST; each needs a parent object the fuzzer makes.
CREATE_SUBRESOURCES = {("", "pods", "binding"), ("", "pods", "eviction"),
                       ("", "serviceaccounts", "token")}


# ---- targets and seeds -------------------------------------------------------

@dataclass
class Target:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresource: str = ""
    parent: str = ""  # the parent object's name, for subresources

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage(self) -> tuple[str, str]:
        """Versions of one resource share their objects (autoscaling v1 and v2)."""
        return self.group, self.plural

    def collection(self, namespace: str) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            base += f"/namespaces/{namespace}"
        return f"{base}/{self.plural}"

    def create_path(self, namespace: str) -> str:
        path = self.collection(namespace)
        if self.subresource:
            path += f"/{self.parent}/{self.subresource}"
        return path

    @property
    def label(self) -> str:
        name = f"{self.plural}.{self.group}" if self.group else self.plural
        return f"{name}/{self.subresource}" if self.subresource else name


def load_seed_objects() -> list[dict]:
    objects = []
    for path in sorted(glob.glob(str(DATA / "seed" / "*.yaml"))) + sorted(glob.glob(str(DATA / "crd" / "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if isinstance(doc, dict) and doc.get("kind"):
                    objects.append(doc)
    for path in sorted(glob.glob(str(DATA / "compat" / "protobuf" / "*.bin"))):
        objects.append(decode_protobuf_object(Path(path).read_bytes()))
    return objects


def load_protobuf_captures() -> list[bytes]:
    return [Path(p).read_bytes() for p in sorted(glob.glob(str(DATA / "compat" / "protobuf" / "*.bin")))]


# ---- value generators ----------------------------------------------------------

# Raw JSON number texts that orjson cannot produce but a client can send.
RAW_NUMBERS = ["9223372036854775808", "-9223372036854775809", "18446744073709551616",
               "123456789012345678901234567890", "1e999", "-1e999", "1E400", "-0", "0.0000001",
               "2147483648", "-2147483649", "4294967296", "1.5", "3.0e2"]
NUMBERS = [0, -1, 1, -2**31, 2**31 - 1, 2**31, -2**63, 2**63 - 1, 2**32, 10**15, 0.5, -0.5, 1e308, -1e308]
STRINGS = ["", " ", "a", "A" * 64, "x" * 254, "y" * 10000, "🙂" * 20, "\u0000", "a\u0000b", "\u202etxt",
           "e\u0301", "ǅ", "..", ".", "/", "a/b", "%2F", "\\", "\n", "-", "-a-", "a" * 63 + "-",
           "Bad_Name", "UPPER", "1.2.3.4", "::1", "10.43.0.1", "10.42.0.1", "999999999999", "-1", "true",
           "null", "{}", "[]", "2026-13-45T99:99:99Z", "1970-01-01T00:00:00Z", "P1D", "1h", "-1s",
           "100Mi", "1e400", "-5", "0.000000001m", "NaN", "Infinity", "😀" * 3000, "\ufeffbom",
           "TCP", "UDP", "SCTP", "ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "None",
           "Always", "Never", "IfNotPresent", "OnFailure", "default", "kube-system", "*",
           "system:masters", "Exists", "In", "NotIn", "DoesNotExist", "Gt", "Lt", "Equal"]


def random_scalar(rng: random.Random):
    choice = rng.random()
    if choice < 0.35:
        return rng.choice(STRINGS)
    if choice < 0.7:
        return rng.choice(NUMBERS)
    if choice < 0.85:
        return rng.choice([True, False, None])
    return rng.choice([[], {}, [None], {"": ""}])


def random_value(rng: random.Random, depth: int = 0):
    if depth > 3 or rng.random() < 0.6:
        return random_scalar(rng)
    if rng.random() < 0.5:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(STRINGS[:30] + ["name", "kind", "spec", "metadata", "items", "value"]): random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 4))}


def deep(rng: random.Random, depth: int):
    value = rng.choice([1, "x", None])
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


# ---- JSON tree mutations ---------------------------------------------------------

# How many bytes one "blow this list up" mutation may add: several of them in
# a row multiply, and the body limit (3 MiB) is tested without going further.
MAX_GROWTH = 2_000_000

def _nodes(obj, path=()):
    """Every (container, key) pair in the tree, with its path."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((obj, k, path + (k,)))
            out.extend(_nodes(v, path + (k,)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((obj, i, path + (i,)))
            out.extend(_nodes(v, path + (i,)))
    return out


def _containers(obj):
    out = [obj] if isinstance(obj, (dict, list)) else []
    if isinstance(obj, dict):
        for v in obj.values():
            out.extend(_containers(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(_containers(v))
    return out


class RawText:
    """A placeholder replaced by raw JSON text after serialising (numbers and
    escapes orjson would refuse to write)."""

    counter = 0

    def __init__(self, text: str):
        RawText.counter += 1
        self.token = f"__RAW_{RawText.counter}__"
        self.text = text


def m_delete(rng, obj, raws):
    nodes = [n for n in _nodes(obj) if isinstance(n[0], dict)]
    if nodes:
        container, key, _ = rng.choice(nodes)
        del container[key]


def m_type_confuse(rng, obj, raws):
    nodes = _nodes(obj)
    if nodes:
        container, key, _ = rng.choice(nodes)
        old = container[key]
        for _ in range(5):
            new = random_value(rng)
            if type(new) is not type(old):
                break
        container[key] = new


def m_number(rng, obj, raws):
    nodes = _nodes(obj)
    if not nodes:
        return
    numeric = [n for n in nodes if isinstance(n[0][n[1]], (int, float)) and not isinstance(n[0][n[1]], bool)]
    container, key, _ = rng.choice(numeric or nodes)
    if rng.random() < 0.5:
        raw = RawText(rng.choice(RAW_NUMBERS))
        raws.append(raw)
        container[key] = raw.token
    else:
        container[key] = rng.choice(NUMBERS)


def m_unicode(rng, obj, raws):
    nodes = [n for n in _nodes(obj) if isinstance(n[0][n[1]], str)] or _nodes(obj)
    if not nodes:
        return
    container, key, _ = rng.choice(nodes)
    if rng.random() < 0.3:  # escapes orjson won't write: lone surrogates, overlong forms
        raw = RawText(rng.choice(['"\\ud800"', '"a\\udfffb"', '"\\u0000"', '"\\uDBFF\\uDFFF"', '"\\x41"']))
        raws.append(raw)
        container[key] = raw.token
    else:
        container[key] = rng.choice(STRINGS)
    if isinstance(container, dict) and rng.random() < 0.2:  # odd keys too
        container[rng.choice(STRINGS)] = container.pop(key)


def m_nest(rng, obj, raws):
    nodes = _nodes(obj)
    if nodes:
        container, key, _ = rng.choice(nodes)
        depth = rng.choice([10, 100, 254, 500, 2000, 10000])
        if depth < 200:
            container[key] = deep(rng, depth)
        else:  # written as text: neither orjson nor a recursive dumper goes this deep
            opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
            raw = RawText(opener * depth + "1" + closer * depth)
            raws.append(raw)
            container[key] = raw.token


def m_add_field(rng, obj, raws):
    dicts = [c for c in _containers(obj) if isinstance(c, dict)]
    if dicts:
        rng.choice(dicts)[rng.choice(STRINGS[:40] + ["status", "spec", "$patch", "apiVersion"])] = random_value(rng)


def m_explode_list(rng, obj, raws):
    lists = [c for c in _containers(obj) if isinstance(c, list) and c]
    if lists:
        lst = rng.choice(lists)
        item = rng.choice(lst)
        size = len(json.dumps(item, default=str)) if not isinstance(item, (str, int, float)) else 8
        count = min(rng.choice([1, 2, 50, 2000]), max(1, MAX_GROWTH // size))
        lst.extend(copy.deepcopy(item) for _ in range(count))


def m_empty(rng, obj, raws):
    nodes = _nodes(obj)
    if nodes:
        container, key, _ = rng.choice(nodes)
        container[key] = rng.choice([None, {}, [], "", 0, False])


METADATA_VALUES = {
    "name": lambda rng: rng.choice(STRINGS + [None, 5, ["a"]]),
    "generateName": lambda rng: rng.choice(["fz-", "x" * 300, "", "Bad_", 3]),
    "namespace": lambda rng: rng.choice(["default", "other", "", "kube-system", 7, "Bad_NS"]),
    "labels": lambda rng: rng.choice([{"a": "b"}, {"": "x"}, {"a/b/c": "d"}, {"k": "v" * 100}, {"k": 1},
                                      {"x" * 300: "y"}, {"example.com/": "v"}, []]),
    "annotations": lambda rng: rng.choice([{"a": "b" * 300000}, {"": "x"}, {"k": None}, "str"]),
    "resourceVersion": lambda rng: rng.choice(["abc", "-1", "99999999999999999999", "1", 12]),
    "uid": lambda rng: rng.choice(["not-a-uid", "", 3]),
    "finalizers": lambda rng: rng.choice([["kubernetes"], ["x/y"], ["Bad Finalizer"], [""], [1], "f"]),
    "ownerReferences": lambda rng: rng.choice([[{}], [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"}],
                                              [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u",
                                                "controller": True}] * 2, [None], {}]),
    "deletionTimestamp": lambda rng: rng.choice(["2020-01-01T00:00:00Z", "garbage", 5]),
    "deletionGracePeriodSeconds": lambda rng: rng.choice([-1, 2**63 - 1, "x"]),
    "creationTimestamp": lambda rng: rng.choice(["garbage", "2020-01-01T00:00:00Z", 0, {}]),
    "managedFields": lambda rng: rng.choice([[{}], [{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1",
                                                    "fieldsV1": {"f:x": {}}}], [{"fieldsV1": "bad"}],
                                             [{"manager": "m", "operation": "Bogus"}], "x",
                                             [{"manager": "m", "operation": "Update", "apiVersion": "v1",
                                               "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:name": 1}}}]]),
    "generation": lambda rng: rng.choice([-5, 2**63, "x"]),
    "selfLink": lambda rng: "/x",
}


def m_metadata(rng, obj, raws):
    m = obj.get("metadata")
    if not isinstance(m, dict):
        obj["metadata"] = m = {}
    key = rng.choice(list(METADATA_VALUES))
    m[key] = METADATA_VALUES[key](rng)


def m_swap_kind(rng, obj, raws, kinds=()):
    if kinds and rng.random() < 0.7:
        obj["apiVersion"], obj["kind"] = rng.choice(kinds)
    else:
        obj[rng.choice(["apiVersion", "kind"])] = rng.choice(["", "v1", "apps/v1", "v2", "Pod", "pod", 1, None,
                                                            "a/b/c", "List", "Status"])


JSON_MUTATIONS = [m_delete, m_type_confuse, m_number, m_unicode, m_nest, m_add_field, m_explode_list,
                  m_empty, m_metadata, m_swap_kind]


def serialise(obj, raws: list[RawText], duplicate_keys: bool, rng: random.Random) -> bytes:
    try:
        text = orjson.dumps(obj).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = json.dumps(obj, ensure_ascii=False, allow_nan=True)
    for raw in raws:
        text = text.replace(f'"{raw.token}"', raw.text)
    if duplicate_keys:  # repeat a "key": so the object has it twice, the second value winning
        positions = [i for i in range(len(text)) if text.startswith('":', i)]
        if positions:
            end = rng.choice(positions) + 2
            start = text.rfind('"', 0, end - 2)
            if start != -1:
                value = orjson.dumps(random_value(rng)).decode()
                text = text[:start] + text[start:end] + value + "," + text[start:]
    return text.encode("utf-8", "surrogatepass")


# ---- byte mutations ---------------------------------------------------------------

def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    op = rng.randrange(7)
    if op == 0 and b:  # truncate
        return bytes(b[:rng.randrange(len(b))])
    if op == 1 and b:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if op == 2:  # insert random bytes
        pos = rng.randint(0, len(b))
        return bytes(b[:pos] + os.urandom(0) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + b[pos:])
    if op == 3 and b:  # delete a slice
        i = rng.randrange(len(b))
        return bytes(b[:i] + b[i + rng.randint(1, 32):])
    if op == 4 and b:  # duplicate a slice
        i = rng.randrange(len(b))
        j = min(len(b), i + rng.randint(1, 64))
        return bytes(b[:j] + b[i:j] + b[j:])
    if op == 5:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 4, 64, 1024])))
    return bytes(b) + b"\x00" * rng.randint(1, 4)


# ---- protobuf wire mutations --------------------------------------------------------

def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, pos


def parse_wire(buf: bytes, depth: int = 0):
    """A message as [num, wire, value] entries, length-delimited values that
    parse as messages kept as nested lists (else bytes); None if not a message."""
    out, pos = [], 0
    try:
        while pos < len(buf):
            key, pos = _read_varint(buf, pos)
            num, wire = key >> 3, key & 7
            if num == 0:
                return None
            if wire == 0:
                value, pos = _read_varint(buf, pos)
            elif wire == 1:
                value, pos = buf[pos:pos + 8], pos + 8
            elif wire == 5:
                value, pos = buf[pos:pos + 4], pos + 4
            elif wire == 2:
                n, pos = _read_varint(buf, pos)
                value, pos = buf[pos:pos + n], pos + n
                if depth < 12 and value:
                    nested = parse_wire(value, depth + 1)
                    if nested is not None:
                        value = nested
            else:
                return None
            if pos > len(buf):
                return None
            out.append([num, wire, value])
    except ValueError:
        return None
    return out


def emit_wire(entries) -> bytes:
    out = bytearray()
    for num, wire, value in entries:
        out += _varint(num << 3 | wire)
        if wire == 0:
            out += _varint(value)
        elif wire == 2:
            payload = emit_wire(value) if isinstance(value, list) else value
            out += _varint(len(payload)) + payload
        else:
            out += value
    return bytes(out)


def _all_lists(entries, out):
    out.append(entries)
    for e in entries:
        if isinstance(e[2], list):
            _all_lists(e[2], out)
    return out


def mutate_wire(rng: random.Random, message: bytes) -> bytes:
    entries = parse_wire(message)
    if not entries:
        return mutate_bytes(rng, message)
    lists = [lst for lst in _all_lists(entries, []) if lst]
    lst = rng.choice(lists)
    i = rng.randrange(len(lst))
    num, wire, value = lst[i]
    op = rng.randrange(9)
    if op == 0:
        del lst[i]
    elif op == 1:
        lst.insert(i, copy.deepcopy(lst[i]))
    elif op == 2:  # same number, another wire type
        new_wire = rng.choice([w for w in (0, 1, 2, 5) if w != wire])
        lst[i] = [num, new_wire, {0: rng.choice([0, 1, 2**63, 2**64 - 1]), 1: bytes(8), 2: b"\xff\xfe",
                                  5: bytes(4)}[new_wire]]
    elif op == 3:  # an extreme varint
        if wire == 0:
            lst[i][2] = rng.choice([2**64 - 1, 2**63, 2**31, 2**32 - 1, 1 << 62, 3, 2])
        else:
            lst[i] = [num, 0, 2**64 - 1]
    elif op == 4:  # a field number nobody declared
        lst.insert(i, [rng.choice([15, 99, 1000, (1 << 29) - 1, 16, 17])] + rng.choice([[0, 7], [2, b"junk"]]))
    elif op == 5:  # invalid UTF-8 or random payload
        lst[i] = [num, 2, rng.choice([b"\xff\xfe\xfd", b"\xc3", bytes(rng.randrange(256) for _ in range(20)), b""])]
    elif op == 6:  # swap with a neighbour
        j = rng.randrange(len(lst))
        lst[i], lst[j] = lst[j], lst[i]
    elif op == 7:  # explode a repeated field, to at most ~2 MB (repeated passes multiply)
        size = len(emit_wire([lst[i]])) or 1
        count = min(rng.choice([10, 500]), max(1, MAX_GROWTH // size))
        lst[i:i] = [copy.deepcopy(lst[i]) for _ in range(count)]
    else:  # deep nesting of one message inside itself
        inner = lst[i]
        for _ in range(rng.choice([50, 500])):
            inner = [num, 2, [inner]]
        lst[i] = inner
    data = emit_wire(entries)
    return mutate_bytes(rng, data) if rng.random() < 0.15 else data


def protobuf_envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    def delimited(num: int, payload: bytes) -> bytes:
        return _varint(num << 3 | 2) + _varint(len(payload)) + payload
    type_meta = delimited(1, api_version.encode()) + delimited(2, kind.encode())
    return b"k8s\x00" + delimited(1, type_meta) + delimited(2, raw) + delimited(3, b"") + delimited(4, b"")


def split_envelope(body: bytes) -> tuple[str, str, bytes] | None:
    entries = parse_wire(body[4:])
    if not entries:
        return None
    api_version = kind = ""
    raw = b""
    for num, wire, value in entries:
        if num == 1 and isinstance(value, list):
            for n2, _, v2 in value:
                text = emit_wire(v2) if isinstance(v2, list) else v2
                if n2 == 1:
                    api_version = text.decode("utf-8", "replace")
                elif n2 == 2:
                    kind = text.decode("utf-8", "replace")
        elif num == 2:
            raw = emit_wire(value) if isinstance(value, list) else value
    return api_version, kind, raw


# ---- the HTTP side ---------------------------------------------------------------

class Api:
    """One keep-alive HTTPS connection; reconnects after a dropped one."""

    def __init__(self, url: str, token: str | None, timeout: float = 30, client_cert: tuple | None = None):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port or 443
        self.token = token
        self.timeout = timeout
        self.ctx = ssl._create_unverified_context()
        if client_cert:             # (cert file, key file): e.g. the admin kubeconfig's certificate
            self.ctx.load_cert_chain(*client_cert)
        self.conn = None

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
        """(status, raw body); raises OSError/http.client errors on a transport failure."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            if resp.will_close:
                self.close()
            return resp.status, data
        except Exception:
            # Never resend: the server may have acted on the request already.
            self.close()
            raise

    def json(self, method: str, path: str, obj=None):
        status, raw = self.request(method, path, orjson.dumps(obj) if obj is not None else None,
                                   "application/json" if obj is not None else None)
        return status, (orjson.loads(raw) if raw else None)

    def ready(self) -> bool:
        try:
            status, _ = self.request("GET", "/readyz")
            return status == 200
        except Exception:
            return False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def discover_targets(api: Api) -> list[Target]:
    targets = []
    group_versions = [("", "v1")]
    _, groups = api.json("GET", "/apis")
    for group in groups.get("groups", []):
        for version in group.get("versions", []):
            group_versions.append((group["name"], version["version"]))
    for group, version in group_versions:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        _, doc = api.json("GET", path)
        for r in (doc or {}).get("resources", []):
            name = r["name"]
            if "/" in name:
                parent, sub = name.split("/", 1)
                if (group, parent, sub) in CREATE_SUBRESOURCES and "create" in r.get("verbs", []):
                    targets.append(Target(group, version, parent, r["kind"], r["namespaced"], sub))
            elif "create" in r.get("verbs", []):
                targets.append(Target(group, version, name, r["kind"], r["namespaced"]))
    return targets


def minimal_object(target: Target) -> dict:
    return {"apiVersion": target.api_version, "kind": target.kind, "metadata": {"name": "fz-minimal"}}


# ---- the fuzzer --------------------------------------------------------------------

@dataclass
class Finding:
    problem: str
    target: str
    content_type: str
    status: int | None
    detail: str
    body: bytes = b""
    query: str = ""

    def summary(self) -> dict:
        return {"problem": self.problem, "target": self.target, "contentType": self.content_type,
                "status": self.status, "detail": self.detail[:500], "query": self.query,
                "body": self.body[:300].decode("utf-8", "replace")}


@dataclass
class Report:
    seed: int
    seconds: float = 0.0
    requests: int = 0
    by_status: dict = field(default_factory=dict)
    by_format: dict = field(default_factory=dict)
    targets: int = 0
    findings: list = field(default_factory=list)
    server_alive: bool = True

    def as_dict(self) -> dict:
        return {"seed": self.seed, "seconds": round(self.seconds, 1), "requests": self.requests,
                "targets": self.targets, "byStatus": dict(sorted(self.by_status.items())),
                "byFormat": self.by_format, "serverAlive": self.server_alive,
                "findings": [f.summary() for f in self.findings]}


class Fuzzer:
    def __init__(self, api: Api, seed: int, namespace: str, findings_dir: Path | None = None,
                 list_check_every: int = 200):
        self.api = api
        self.rng = random.Random(seed)
        self.report = Report(seed)
        self.namespace = namespace
        self.findings_dir = findings_dir
        self.list_check_every = list_check_every
        self.counter = 0
        self.created: dict[tuple[str, str], set[str]] = {}  # storage -> names the fuzzer created
        self.baseline: dict[tuple[str, str], set[str]] = {}
        self.parent_versions: dict[str, str] = {}
        self.seen_problems: set[tuple[str, str, int | None]] = set()

    # -- set-up --
    def prepare(self) -> None:
        status, _ = self.api.json("POST", "/api/v1/namespaces",
                                  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})
        if status not in (201, 409):
            raise RuntimeError(f"cannot create namespace {self.namespace}: {status}")
        # Without a controller-manager nobody makes the `default` ServiceAccount pods are admitted with.
        status, _ = self.api.json("POST", f"/api/v1/namespaces/{self.namespace}/serviceaccounts",
                                  {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
        if status not in (201, 409):
            raise RuntimeError(f"cannot create the default ServiceAccount in {self.namespace}: {status}")
        self.targets = discover_targets(self.api)
        self.report.targets = len(self.targets)
        seeds = load_seed_objects()
        self.kinds = sorted({(t.api_version, t.kind) for t in self.targets if not t.subresource})
        self.json_seeds: dict[tuple[str, str], list[dict]] = {}
        for obj in seeds:
            self.json_seeds.setdefault((obj.get("apiVersion"), obj.get("kind")), []).append(obj)
        self.parents = {}
        for t in self.targets:
            if t.subresource:
                t.parent = f"fz-parent-{t.subresource}"
                parent_kind = "Pod" if t.plural == "pods" else "ServiceAccount"
                self._make_parent(t, parent_kind)
        self.subresource_bodies = {
            "binding": {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "fz-parent-binding"},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}},
            "eviction": {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "fz-parent-eviction"},
                         "deleteOptions": {"gracePeriodSeconds": 0}},
            "token": {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                      "spec": {"audiences": ["a"], "expirationSeconds": 3600}},
        }
        for t in self.targets:
            if not t.subresource:
                self.baseline.setdefault(t.storage, set()).update(self._list_names(t.collection(self.namespace)) or ())

    def _make_parent(self, t: Target, kind: str) -> None:
        body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": t.parent}}
        if kind == "Pod":
            body["spec"] = {"containers": [{"name": "c", "image": "busybox"}]}
        path = t.collection(self.namespace)
        status, obj = self.api.json("POST", path, body)
        if status == 201:
            self.parent_versions[t.label] = obj["metadata"]["resourceVersion"]

    def _list_names(self, path: str, fuzzer_made_only: bool = False) -> set[str] | None:
        status, raw = self.api.request("GET", path)
        if status != 200:
            return None
        items = orjson.loads(raw).get("items", [])
        if fuzzer_made_only:
            items = [item for item in items
                     if not item["metadata"].get("managedFields")
                     or any(e.get("manager") in FUZZER_MANAGERS for e in item["metadata"]["managedFields"])]
        return {item["metadata"]["name"] for item in items}

    # -- one request --
    def seed_for(self, target: Target) -> dict:
        if target.subresource:
            return copy.deepcopy(self.subresource_bodies[target.subresource])
        candidates = self.json_seeds.get((target.api_version, target.kind)) or [minimal_object(target)]
        return copy.deepcopy(self.rng.choice(candidates))

    def make_request(self, target: Target) -> tuple[bytes, str, str, str | None]:
        """(body, content type, query, the name the body carries)."""
        rng = self.rng
        self.counter += 1
        name = f"fz-{self.counter}"
        obj = self.seed_for(target)
        meta = obj.setdefault("metadata", {})
        if not target.subresource:
            meta["name"] = name
            meta.pop("generateName", None)
            if target.namespaced:
                meta["namespace"] = self.namespace
            else:
                meta.pop("namespace", None)
        query = self.random_query()
        roll = rng.random()
        pb_ok = (obj.get("apiVersion"), obj.get("kind")) in _PROTOBUF_KINDS
        if roll < 0.35 and pb_ok:
            return self.protobuf_body(obj), PROTOBUF, query, name
        raws: list[RawText] = []
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
            mutation = rng.choice(JSON_MUTATIONS)
            if mutation is m_swap_kind:
                m_swap_kind(rng, obj, raws, self.kinds)
            else:
                mutation(rng, obj, raws)
        carried = obj.get("metadata", {}).get("name") if isinstance(obj.get("metadata"), dict) else None
        if rng.random() < 0.12:
            try:  # JSON text is YAML too: use it where the YAML dumper can't
                body = yaml.safe_dump(obj, allow_unicode=True).encode() if not raws else None
            except (yaml.YAMLError, RecursionError, UnicodeEncodeError):
                body = None
            if body is None:
                body = serialise(obj, raws, False, rng)
            if rng.random() < 0.3:
                body = mutate_bytes(rng, body)
            return body, rng.choice(["application/yaml", "application/yaml; charset=utf-8"]), query, carried
        body = serialise(obj, raws, rng.random() < 0.1, rng)
        if rng.random() < 0.2:
            body = mutate_bytes(rng, body)
        ctype = "application/json" if rng.random() < 0.95 else rng.choice(
            ["", "text/plain", "application/json; charset=utf-16", "*/*", "application/merge-patch+json",
             "application/vnd.kubernetes.protobuf;stream=watch", "application/cbor"])
        return body, ctype, query, carried

    def protobuf_body(self, obj: dict) -> bytes:
        rng = self.rng
        try:
            encoded = encode_protobuf_object(obj)
        except (ValueError, TypeError, KeyError, AttributeError):
            encoded = rng.choice(_CAPTURES)
        parts = split_envelope(encoded)
        if parts is None:
            return mutate_bytes(rng, encoded)
        api_version, kind, raw = parts
        roll = rng.random()
        if roll < 0.1:  # a valid body
            return encoded
        if roll < 0.2:  # another kind's table read over these bytes
            api_version, kind = rng.choice(sorted(_PROTOBUF_KINDS) + [("v1", "DeleteOptions"), ("v1", "Gadget")])
        elif roll < 0.25:
            return mutate_bytes(rng, encoded)
        for _ in range(rng.choice([1, 1, 2, 3])):
            raw = mutate_wire(rng, raw)
        return protobuf_envelope(api_version, kind, raw)

    def random_query(self) -> str:
        rng = self.rng
        params = []
        if rng.random() < 0.15:
            params.append(("fieldValidation", rng.choice(["Strict", "Warn", "Ignore", "strict", "Bogus", ""])))
        if rng.random() < 0.08:
            params.append(("dryRun", rng.choice(["All", "All", "bogus", ""])))
        if rng.random() < 0.08:
            params.append(("fieldManager", rng.choice(FIELD_MANAGERS)))
        if rng.random() < 0.03:
            params.append(("pretty", "true"))
        return urllib.parse.urlencode(params)

    # -- checks --
    def problem(self, kind: str, target: Target, ctype: str, status, detail: str, body: bytes, query: str):
        key = (kind, target.label, status, detail[:80])
        self.report.findings.append(Finding(kind, target.label, ctype, status, detail, body, query)) \
            if key not in self.seen_problems else None
        self.seen_problems.add(key)
        if self.findings_dir is not None and len(self.seen_problems) < 500:
            self.findings_dir.mkdir(parents=True, exist_ok=True)
            stem = self.findings_dir / f"{len(self.report.findings):04d}-{kind}"
            stem.with_suffix(".body").write_bytes(body)
            stem.with_suffix(".json").write_text(json.dumps(
                {"method": "POST", "path": target.create_path(self.namespace), "query": query,
                 "contentType": ctype, "status": status, "detail": detail[:2000]}, indent=1))

    def run_one(self, target: Target) -> bool:
        """Send one mutated body; False once the server is gone."""
        body, ctype, query, carried = self.make_request(target)
        path = target.create_path(self.namespace) + (f"?{query}" if query else "")
        fmt = "protobuf" if ctype == PROTOBUF else "yaml" if "yaml" in ctype else "json"
        self.report.by_format[fmt] = self.report.by_format.get(fmt, 0) + 1
        try:
            status, raw = self.api.request("POST", path, body, ctype or None)
        except (OSError, http.client.HTTPException) as err:
            alive = self.api.ready()
            self.problem("transport-error" if alive else "server-down", target, ctype, None,
                         f"{type(err).__name__}: {err}", body, query)
            self.report.server_alive = alive
            return alive
        self.report.requests += 1
        self.report.by_status[str(status)] = self.report.by_status.get(str(status), 0) + 1
        if status >= 500:
            self.problem("5xx", target, ctype, status, raw[:2000].decode("utf-8", "replace"), body, query)
        try:
            answer = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            answer = None
        if status >= 400:
            if not (isinstance(answer, dict) and answer.get("kind") == "Status" and answer.get("code") == status):
                self.problem("not-a-status", target, ctype, status, raw[:500].decode("utf-8", "replace"), body, query)
            self.check_nothing_stored(target, carried, ctype, status, body, query)
        elif isinstance(answer, dict) and not target.subresource:
            name = (answer.get("metadata") or {}).get("name")
            dry = "dryRun=All" in query
            if dry:
                self.check_nothing_stored(target, name, ctype, status, body, query)
            elif name and status in (200, 201):
                self.created.setdefault(target.storage, set()).add(name)
        elif target.subresource and status < 300:
            self.refresh_parent(target)
        return True

    def check_nothing_stored(self, target: Target, name, ctype: str, status, body: bytes, query: str) -> None:
        if target.subresource:
            rv = self.parent_version(target)
            if rv is not None and rv != self.parent_versions.get(target.label):
                self.problem("partial-write", target, ctype, status,
                             f"parent {target.parent} changed by a rejected request", body, query)
                self.parent_versions[target.label] = rv
            return
        if not isinstance(name, str) or not name or "/" in name or name in (".", "..") or len(name) > 253:
            return  # not a name any object could have been stored under
        collection = target.collection(self.namespace)
        if name in self.created.get(target.storage, ()) or name in self.baseline.get(target.storage, ()):
            return
        path = collection + "/" + urllib.parse.quote(name, safe="")
        try:
            got, raw = self.api.request("GET", path)
        except (OSError, http.client.HTTPException):
            return
        if got == 200:
            self.problem("partial-write", target, ctype, status,
                         f"{name!r} exists after a rejected/dry-run create", body, query)
            self.created.setdefault(target.storage, set()).add(name)

    def parent_version(self, target: Target) -> str | None:
        status, obj = self.api.json("GET", target.collection(self.namespace) + "/" + target.parent)
        return obj["metadata"]["resourceVersion"] if status == 200 else None

    def refresh_parent(self, target: Target) -> None:
        self.parent_versions[target.label] = self.parent_version(target)

    def check_lists(self) -> None:
        """Every object in every collection is either old or one the fuzzer saw created."""
        for t in self.targets:
            if t.subresource:
                continue
            path = t.collection(self.namespace)
            names = self._list_names(path, fuzzer_made_only=True)
            if names is None:
                continue
            unexpected = names - self.baseline.get(t.storage, set()) - self.created.get(t.storage, set())
            # Objects the server makes itself for a namespace it was asked to create.
            unexpected -= {"default", "kube-root-ca.crt"}
            if unexpected:
                self.problem("partial-write", t, "", None,
                             f"objects nobody was told were created: {sorted(unexpected)[:5]}", b"", "")
                self.created.setdefault(t.storage, set()).update(unexpected)

    def run(self, seconds: float, max_requests: int | None = None) -> Report:
        start = time.monotonic()
        deadline = start + seconds
        n = 0
        while time.monotonic() < deadline and (max_requests is None or n < max_requests):
            target = self.targets[n % len(self.targets)] if n < len(self.targets) else self.rng.choice(self.targets)
            n += 1
            if not self.run_one(target):
                break
            if n % self.list_check_every == 0:
                self.check_lists()
        if self.report.server_alive:
            self.report.server_alive = self.api.ready()
            if self.report.server_alive:
                self.check_lists()
        self.report.seconds = time.monotonic() - start
        return self.report


_PROTOBUF_KINDS: set[tuple[str, str]] = set()
_CAPTURES: list[bytes] = []


def _init_protobuf_tables() -> None:
    from k8py.apimachinery.protobuf.encoder import protobuf_kinds
    _PROTOBUF_KINDS.update(protobuf_kinds())
    _CAPTURES.extend(load_protobuf_captures())


_init_protobuf_tables()


def fuzz(url: str, token: str | None, *, seconds: float, seed: int, max_requests: int | None = None,
         namespace: str | None = None, findings_dir: Path | None = None, client_cert: tuple | None = None) -> Report:
    api = Api(url, token, client_cert=client_cert)
    try:
        fuzzer = Fuzzer(api, seed, namespace or f"fuzz-{seed}-{os.getpid() % 10000}", findings_dir)
        fuzzer.prepare()
        return fuzzer.run(seconds, max_requests)
    finally:
        api.close()


# ---- a server of its own -------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin_cert(data_dir: Path) -> tuple[str, str]:
    """The admin client certificate a server of ours keeps in its data dir."""
    tls = Path(data_dir) / "server" / "tls"
    return str(tls / "client-admin.crt"), str(tls / "client-admin.key")


def start_server(data_dir: Path, token: str, extra: tuple[str, ...] = DISABLE_COMPONENTS) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = open(data_dir / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "k8py", "server", "--data-dir", str(data_dir),
                             "--https-listen-port", str(port), "--write-kubeconfig", str(data_dir / "kubeconfig.yaml"),
                             "--token", token, "--disable-agent", *extra], stdout=log, stderr=subprocess.STDOUT,
                            cwd=REPO)
    url = f"https://127.0.0.1:{port}"
    api = Api(url, None, timeout=2)     # /readyz needs no credentials
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited; see {data_dir / 'server.log'}")
        if api.ready():
            api.close()
            return proc, url
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--max-requests", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--server", help="URL of a running server (default: start one in a temporary folder)")
    p.add_argument("--token", default=None,
                   help="bearer token for --server (default: a server of its own, as its admin)")
    p.add_argument("--findings", type=Path, help="folder to write failing requests into")
    p.add_argument("--with-controllers", action="store_true",
                   help="keep the server's in-process controllers running (default: API server alone)")
    args = p.parse_args(argv)
    # A SIGTERM (timeout, CI) still stops the server this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    proc = None
    tmp = None
    url = args.server
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="k8py-fuzz-")
        proc, url = start_server(Path(tmp.name), "fuzz-join-token",
                                 () if args.with_controllers else DISABLE_COMPONENTS)
    try:
        report = fuzz(url, args.token, seconds=args.seconds, seed=args.seed, max_requests=args.max_requests,
                      findings_dir=args.findings, client_cert=admin_cert(Path(tmp.name)) if tmp else None)
        if proc is not None and proc.poll() is not None:
            report.server_alive = False
        if proc is not None:
            log_text = (Path(tmp.name) / "server.log").read_text(errors="replace")
            report_dict = report.as_dict()
            report_dict["serverLogTracebacks"] = log_text.count("Traceback")
        else:
            report_dict = report.as_dict()
        print(json.dumps(report_dict, indent=1, ensure_ascii=False))
        return 0 if not report.findings and report.server_alive else 1
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
