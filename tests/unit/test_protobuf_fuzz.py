"""In-process fuzzing of the protobuf decoder: mutated kubectl bodies of every
kind either decode to a JSON object or raise a 400 StatusError, nothing else."""

from __future__ import annotations

import random

import orjson

from k8py.apimachinery.errors import StatusError
from k8py.apimachinery.protobuf import decode_protobuf_object
from k8py.apimachinery.protobuf.encoder import encode_protobuf_object
from scripts.fuzz_api import (load_protobuf_captures, load_seed_objects, mutate_bytes, mutate_wire,
                              protobuf_envelope, split_envelope, _PROTOBUF_KINDS)


def _bodies() -> list[bytes]:
    bodies = load_protobuf_captures()
    for obj in load_seed_objects():
        if (obj.get("apiVersion"), obj.get("kind")) in _PROTOBUF_KINDS:
            bodies.append(encode_protobuf_object(obj))
    return bodies


def test_mutated_protobuf_bodies_decode_or_fail_with_a_400():
    rng = random.Random(7)
    bodies = _bodies()
    kinds = sorted(_PROTOBUF_KINDS)
    decoded = rejected = 0
    for i in range(1500):
        api_version, kind, raw = split_envelope(rng.choice(bodies))
        if i % 5 == 0:  # another kind's table over these bytes
            api_version, kind = rng.choice(kinds)
        for _ in range(rng.randint(1, 3)):
            raw = mutate_wire(rng, raw)
        body = protobuf_envelope(api_version, kind, raw)
        if i % 7 == 0:
            body = mutate_bytes(rng, body)
        try:
            out = decode_protobuf_object(body)
        except StatusError as err:
            assert err.code == 400, err
            rejected += 1
            continue
        assert isinstance(out, dict)
        orjson.dumps(out)  # JSON-representable, as the rest of the server needs
        decoded += 1
    assert decoded > 100 and rejected > 100, (decoded, rejected)
