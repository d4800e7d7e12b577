"""The suite-wide rules of tests/conftest.py, run on small suites of their own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.kubectl import kubectl_binary

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
SKIPPING = """
import pytest

def test_needs_something():
    pytest.skip("needs something this machine lacks")

def test_runs():
    pass
"""


def run(pytester, monkeypatch, source: str, ci: bool, *args: str):
    pytester.makepyfile(test_small=source)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("CI", "true" if ci else "")
    monkeypatch.delenv("K8PY_SHARED_HOST", raising=False)
    return pytester.runpytest_subprocess("-p", "tests.conftest", "-p", "no:cacheprovider", *args)


def test_a_skip_fails_in_ci(pytester, monkeypatch):
    result = run(pytester, monkeypatch, SKIPPING, ci=True)
    outcomes = result.parseoutcomes()     # (an error too, should another suite change the host meanwhile)
    assert (outcomes.get("passed"), outcomes.get("failed"), outcomes.get("skipped")) == (1, 1, None), outcomes
    result.stdout.fnmatch_lines(["*skipped in CI: needs something this machine lacks*"])


def test_a_skip_outside_ci_is_listed_with_its_reason(pytester, monkeypatch):
    result = run(pytester, monkeypatch, SKIPPING, ci=False)
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("failed"), outcomes.get("skipped")) == (1, None, 1), outcomes
    result.stdout.fnmatch_lines(["*k8py: 1 test could not run on this machine:*",
                                 "*1  needs something this machine lacks*"])


def test_a_module_skipped_whole_fails_in_ci(pytester, monkeypatch):
    source = 'import pytest\npytest.skip("needs root", allow_module_level=True)\n\ndef test_x():\n    pass\n'
    result = run(pytester, monkeypatch, source, ci=True)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*skipped in CI: needs root*"])


def test_a_process_left_running_fails_the_run(pytester, monkeypatch):
    source = "import subprocess\n\ndef test_leaks():\n    subprocess.Popen(['sleep', '30'])\n"
    result = run(pytester, monkeypatch, source, ci=False)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the suite left the host changed:*", "*process left: pid *: sleep 30*"])
    for line in result.stdout.lines:     # the leaked sleep is ours to end
        if "process left: pid" in line:
            os.kill(int(line.split("pid ")[1].split(":")[0]), 9)


def test_under_xdist_a_worker_skip_fails_ci_and_the_controller_checks_the_host_once(pytester, monkeypatch):
    source = SKIPPING + "\nimport subprocess\n\ndef test_leaks():\n    subprocess.Popen(['sleep', '30'])\n"
    result = run(pytester, monkeypatch, source, True, "-n", "2", "--dist", "loadgroup")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("failed"), outcomes.get("skipped")) == (2, 1, None), outcomes
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*skipped in CI: needs something this machine lacks*",
                                 "*the suite left the host changed*", "*process left: pid *: sleep 30*"])
    assert sum("the suite left the host changed" in line for line in result.stdout.lines) == 1
    for line in result.stdout.lines:     # the leaked sleep is ours to end
        if "process left: pid" in line and line.rstrip().endswith("sleep 30"):
            os.kill(int(line.split("pid ")[1].split(":")[0]), 9)


def test_a_missing_kubectl_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"kubectl\.0\.1 is not installed"):
        kubectl_binary("0.1")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match=r"kubectl\.0\.1 is not installed"):
        kubectl_binary("0.1")
