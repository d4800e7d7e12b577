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
- Under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`, docs/testing.md)
  a module's tests stay on one worker (its module fixtures start once), and the
  `host_network` tests (network-namespace clusters, the root namespace's
  iptables) form one group, run one after another on one worker. The host
  check is made once, by the controller, around all the workers; skips in a
  worker fail CI as above.
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


# The xdist group of the tests marked host_network: they run one at a time, on one worker.
HOST_NETWORK_GROUP = "host-network"


def _xdist_worker(config) -> bool:
    return hasattr(config, "workerinput")


def _xdist_controller(config) -> bool:
    """The process that hands tests to xdist workers and runs none itself."""
    return config.pluginmanager.has_plugin("dsession")


def pytest_configure(config):
    if not _xdist_worker(config):   # a worker keeps the controller's marker, inherited with its environment
        os.environ[SESSION_MARKER] = secrets.token_hex(8)


@pytest.hookimpl(tryfirst=True)   # before xdist's own hook turns the groups into node id suffixes
def pytest_collection_modifyitems(config, items):
    """Under xdist: a module's tests form one group (one worker sets its module fixtures up,
    once); every host_network test joins one group whatever its module."""
    if not _xdist_worker(config):
        return
    for item in items:
        if any(item.iter_markers("xdist_group")):
            continue
        group = HOST_NETWORK_GROUP if any(item.iter_markers("host_network")) else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """xdist carries a test's group to its scheduler as a node id suffix, which pytest 9.2 no
    longer lets it add (pytest-xdist#1386; hence the pytest pin in pyproject.toml): without the
    groups host_network tests would run at the same time, so the run stops instead."""
    ungrouped = [nodeid for nodeid in ids if "@" not in nodeid]
    if ungrouped:
        raise pytest.UsageError(f"--dist loadgroup lost the xdist groups (pytest-xdist#1386): {ungrouped[0]}")


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
    left = terminalreporter.config.stash.get(HOST_LEFT, None)
    if left:
        terminalreporter.write_sep("=", "the suite left the host changed", red=True)
        for line in left:
            terminalreporter.write_line(f"  {line}")
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


def _host_changes(own: list, before: host_state.HostState) -> list[str]:
    """What the suite left on the host, as one line each; [] when it left nothing, or when other
    suites share the host outside CI (the differences are then only listed, as a warning)."""
    after = host_state.snapshot(own)
    left = host_state.leftovers(before, after, own, other_sessions=own[0].parent)
    left += [f"process left: {p}" for p in host_state.our_processes(SESSION_MARKER, os.environ[SESSION_MARKER])]
    if left and os.environ.get("K8PY_SHARED_HOST") and not in_ci():
        warnings.warn("the host changed during the suite (other suites ran too, so not all of it need be "
                      "ours):\n  " + "\n  ".join(left))
        return []
    return left


HOST_BEFORE = pytest.StashKey[tuple]()
HOST_LEFT = pytest.StashKey[list]()


@pytest.fixture(scope="session", autouse=True)
def host_left_as_found(request, tmp_path_factory):
    """Set up before any test and torn down after every other session fixture: fails the
    run (an error at the last test's teardown) when the suite left anything behind.
    An xdist worker leaves the check to the controller (pytest_sessionstart/finish below):
    the other workers' tests are still running when one worker ends."""
    if _xdist_worker(request.config):
        yield
        return
    own = [tmp_path_factory.getbasetemp().resolve()]
    before = host_state.snapshot(own)
    yield
    left = _host_changes(own, before)
    if left:
        pytest.fail("the suite left the host changed:\n  " + "\n  ".join(left), pytrace=False)


@pytest.fixture(scope="session")
def etcd(tmp_path_factory):
    """One real etcd for the whole run (tests that share it wipe it or use their own keys)."""
    from tests.etcd_server import start_etcd
    server = start_etcd(tmp_path_factory.mktemp("etcd"))
    yield server
    server.stop()


def pytest_sessionstart(session):
    # xdist's own sessionstart (trylast) starts the workers: the snapshot is taken before them.
    if _xdist_controller(session.config):
        if session.config.getvalue("dist") != "loadgroup":
            raise pytest.UsageError("k8py's tests run in xdist workers only with --dist loadgroup, which keeps "
                                    "host_network tests apart (docs/testing.md)")
        own = [session.config._tmp_path_factory.getbasetemp().resolve()]   # the workers' basetemps are below
        session.config.stash[HOST_BEFORE] = (own, host_state.snapshot(own))


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session):
    """On the xdist controller, after xdist's sessionfinish has ended the workers and before
    the terminal summary: the host check of the whole run."""
    result = yield
    if HOST_BEFORE in session.config.stash:
        left = _host_changes(*session.config.stash[HOST_BEFORE])
        if left:
            session.config.stash[HOST_LEFT] = left
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return result
