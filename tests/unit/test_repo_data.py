"""The repo keeps copies of ../shared data so CI has them; keep them in sync."""

import filecmp
import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
DATA = REPO / "tests" / "data"


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is not checked out beside the repo")
@pytest.mark.parametrize("ours,theirs", [
    (DATA / "seed", SHARED / "manifests" / "seed"),
    (DATA / "compat" / "protobuf", SHARED / "compat" / "protobuf"),
])
def test_copies_match_shared(ours, theirs):
    cmp = filecmp.dircmp(ours, theirs)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files


def _conformance_doc():
    spec = importlib.util.spec_from_file_location("conformance_doc", REPO / "scripts" / "conformance_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conformance_doc_is_current_and_names_collected_tests_run_in_ci():
    doc = _conformance_doc()
    checklist = yaml.safe_load(doc.CHECKLIST.read_text())
    assert len(checklist) == 413
    mapping = doc.load_map()
    collected = doc.collect({node_id.partition("::")[0] for node_id in mapping.values()})
    assert not doc.problems(mapping, checklist, collected)
    assert doc.OUT.read_text() == doc.render(checklist, mapping, collected), "run python scripts/conformance_doc.py"


CANDIDATES = """
import os
import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")  # true for no one in CI


def helper():
    return 1


def test_real():
    assert helper() == 1


@pytest.mark.parametrize("kind", ["pods", "services"])
def test_param(kind):
    assert kind


@pytest.mark.skip(reason="not ready")
def test_skipped():
    pass


@pytest.mark.skipif(os.environ.get("CI") == "true", reason="flaky in CI")
def test_skipped_in_ci():
    pass


@pytest.mark.simulated_kubelet
def test_played_kubelet():
    pass


@pytest.mark.xfail(reason="not implemented")
def test_expected_to_fail():
    assert False
"""

ROOT_ONLY_MODULE = """
import os
import pytest

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


def test_as_root():
    pass
"""

SKIPPED_MODULE = """
import pytest

pytest.skip("never runs", allow_module_level=True)


def test_never():
    pass
"""


def test_conformance_check_refuses_ids_pytest_does_not_collect_or_ci_skips(tmp_path):
    doc = _conformance_doc()
    (tmp_path / "test_candidates.py").write_text(CANDIDATES)
    (tmp_path / "test_root_only.py").write_text(ROOT_ONLY_MODULE)
    (tmp_path / "test_skipped_module.py").write_text(SKIPPED_MODULE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers = simulated_kubelet: plays the kubelet\n")
    checklist = [{"testname": f"row {i}", "codename": "[sig-x] row"} for i in range(13)]
    ids = {
        "row 0": "test_candidates.py::test_real",
        "row 1": "test_candidates.py::test_param[pods]",
        "row 2": "test_root_only.py::test_as_root",  # root-only: runs in CI, which is root
        "row 3": "test_candidates.py::test_played_kubelet",
        "row 11": "test_candidates.py::test_param",  # bare: every generated parameter set
        "row 4": "test_candidates.py::test_nonexistent",  # a bogus id
        "row 5": "test_candidates.py::helper",  # a helper, not a test
        "row 6": "test_candidates.py::test_param[nodes]",  # a parameter id never generated
        "row 7": "test_candidates.py::test_skipped",
        "row 8": "test_candidates.py::test_skipped_in_ci",
        "row 9": "test_skipped_module.py::test_never",
        "row 10": "test_missing_file.py::test_x",
        "row 12": "test_candidates.py::test_expected_to_fail",
    }
    collected = doc.collect({i.partition("::")[0] for i in ids.values()}, root=tmp_path)
    refused = {name for name, node_id in ids.items() if collected.problem(node_id)}
    assert refused == {f"row {i}" for i in (*range(4, 11), 12)}
    assert "skipped in CI: not ready" in collected.problem(ids["row 7"])
    assert "skipped in CI: flaky in CI" in collected.problem(ids["row 8"])
    assert "marked xfail: not implemented" in collected.problem(ids["row 12"])
    assert len(doc.problems({**ids, "no such upstream row": ids["row 0"]}, checklist, collected)) == 9

    good = {name: ids[name] for name in ("row 0", "row 1", "row 2", "row 3", "row 11")}
    text = doc.render(checklist, good, collected)
    assert "Covered: 5 of 13 (4 with real pods or no pods needed, 1 only with a simulated kubelet)." in text
    assert "| sig-x | row 3 | `test_candidates.py::test_played_kubelet` *(simulated kubelet)* |" in text
    assert "| sig-x | row 0 | `test_candidates.py::test_real` |" in text
