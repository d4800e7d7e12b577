"""A short, fixed-seed run of the API fuzzer (scripts/fuzz_api.py) against its
own server: mutated JSON, YAML and protobuf bodies at every create endpoint.

No 5xx answer, every error a Status, the server up to the end and nothing
stored from a rejected or dry-run request. The long run and what it found
are in docs/fuzzing.md.
"""

from __future__ import annotations

import json

from scripts.fuzz_api import DISABLE_COMPONENTS, admin_cert, fuzz
from tests.e2e.conftest import start_server

SECONDS = 35
SEED = 20261126


def test_fuzz_create_endpoints(tmp_path):
    # Its own server: the fuzzer fills cluster-scoped kinds (webhooks,
    # APIServices, PriorityClasses...) that would disturb the shared one.
    # The API server alone: the in-process controllers would act on what the
    # fuzzer creates (docs/fuzzing.md says why that is a separate problem).
    server = start_server(tmp_path / "server", extra=[*DISABLE_COMPONENTS])
    try:
        report = fuzz(server.url, None, seconds=SECONDS, seed=SEED, max_requests=12000,
                      findings_dir=tmp_path / "findings", client_cert=admin_cert(server.data_dir))
        alive = server.process.poll() is None and server.ready()
    finally:
        server.stop()
    summary = report.as_dict()
    assert summary["findings"] == [], json.dumps(summary["findings"][:5], indent=1, ensure_ascii=False)
    assert alive and report.server_alive
    assert report.targets >= 50  # every built-in create endpoint, and pods/binding, eviction, sa/token
    assert report.requests >= 1000
    assert all(report.by_format.get(form, 0) >= 50 for form in ("json", "yaml", "protobuf")), report.by_format
    # Both accepted and rejected bodies were sent (a fuzzer that only hits one is not testing much).
    assert int(report.by_status.get("201", 0)) > 50 and int(report.by_status.get("400", 0)) > 200
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]
