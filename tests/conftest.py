"""Suite-wide rules, for every test module (present and future):

- In CI (CI=true, as root, every dependency installed) a skip hides a test that
  should have run: it is reported as a failure, unless ALLOWED_SKIPS names it.
- Elsewhere (e.g. `make test` as non-root) the end of the run says how many
  tests could not run, and why.
- The host is left as found: a session fixture set up before any test and torn
  down after every other one compares the root network namespace, mounts, runc
  containers and our processes with what they were (tests/host_state.py).
  On a machine where other suites run at the same time (K8PY_SHARED_HOST=1)
  their changes can't be told from ours: the differences are then only listed.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections import Counter

import pytest

from tests import host_state
from tests.ci import in_ci

# Skips CI accepts: node id prefix -> why the skip is about the machine, not the code.
# Each entry must be documented here.
ALLOWED_SKIPS: dict[str, str] = {
    # The repo keeps copies of ../shared (seed manifests, protobuf captures) so that a bare clone
    # can test; comparing the copies needs ../shared itself, which a CI checkout may not have.
    "tests/unit/test_repo_data.py::test_copies_match_shared": "../shared is not beside this checkout",
}

# Every process the suite starts inherits this variable: what is still running at the
# end with it in its environment was left by the suite.
SESSION_MARKER = "K8PY_TEST_SESSION"


def pytest_configure(config):
    os.environ[SESSION_MARKER] = secrets.token_hex(8)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _allowed(nodeid: str) -> bool:
    return any(nodeid.startswith(prefix) for prefix in ALLOWED_SKIPS)


def _fail_skip(report, nodeid: str) -> None:
    reason = _skip_reason(report)
    report.outcome = "failed"
    report.longrepr = (f"skipped in CI: {reason}\n(CI runs as root with every test dependency installed, so a "
                       "skip there hides a test that should have run; see ALLOWED_SKIPS in tests/conftest.py)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and in_ci() and not _allowed(item.nodeid):
        _fail_skip(report, item.nodeid)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if report.skipped and in_ci() and not _allowed(collector.nodeid):   # a module skipped whole
        _fail_skip(report, collector.nodeid)
    return report


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if not hasattr(r, "wasxfail")]
    if not skipped:
        return
    reasons = Counter(_skip_reason(r) for r in skipped)
    modules = sum(1 for r in skipped if r.when == "collect")   # whole modules: their tests were not collected
    tests = len(skipped) - modules
    terminalreporter.write_sep("=", "tests that could not run here")
    what = f"{tests} test{'s' * (tests != 1)}" + (f" and {modules} whole module{'s' * (modules != 1)}"
                                                   if modules else "")
    terminalreporter.write_line(f"k8py: {what} could not run on this machine:")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"  {count:5d}  {reason}")
    if os.geteuid() != 0:
        terminalreporter.write_line("(CI runs them all as root, where a skip fails the run.)")


@pytest.fixture(scope="session", autouse=True)
def host_left_as_found(tmp_path_factory):
    """Set up before any test and torn down after every other session fixture: fails the
    run (an error at the last test's teardown) when the suite left anything behind."""
    own = [tmp_path_factory.getbasetemp().resolve()]
    before = host_state.snapshot(own)
    yield
    after = host_state.snapshot(own)
    left = host_state.leftovers(before, after, own, other_sessions=own[0].parent)
    left += [f"process left: {p}" for p in host_state.our_processes(SESSION_MARKER, os.environ[SESSION_MARKER])]
    if left and os.environ.get("K8PY_SHARED_HOST") and not in_ci():
        warnings.warn("the host changed during the suite (other suites ran too, so not all of it need be "
                      "ours):\n  " + "\n  ".join(left))
    elif left:
        pytest.fail("the suite left the host changed:\n  " + "\n  ".join(left), pytrace=False)


@pytest.fixture(scope="session")
def etcd(tmp_path_factory):
    """One real etcd for the whole run (tests that share it wipe it or use their own keys)."""
    from tests.etcd_server import start_etcd
    server = start_etcd(tmp_path_factory.mktemp("etcd"))
    yield server
    server.stop()
