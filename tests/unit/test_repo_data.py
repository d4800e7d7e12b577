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


def test_conformance_doc_is_current_and_names_real_tests():
    doc = _conformance_doc()
    checklist = yaml.safe_load(doc.CHECKLIST.read_text())
    assert len(checklist) == 413
    mapping = doc.load_map()
    names = {t["testname"] for t in checklist}
    assert set(mapping) <= names, f"unknown upstream tests: {set(mapping) - names}"
    for node_id in mapping.values():
        path, _, func = node_id.partition("::")
        source = (REPO / path).read_text()
        assert f"def {func.split('[')[0]}(" in source, f"{node_id} does not exist"
    assert doc.OUT.read_text() == doc.render(checklist, mapping), "run python scripts/conformance_doc.py"
