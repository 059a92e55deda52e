"""benchmarks/results_io.py: result names that stay in their folder, and results files with no local paths."""

import argparse
import re
import sys

import pytest
from helpers.tiny_models import REPO_ROOT


sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import results_io  # noqa: E402


@pytest.mark.parametrize("name", ["../..", "a/b", "..", "", "-x", "a..b"])
def test_a_name_that_leaves_its_folder_is_refused(name):
    with pytest.raises(argparse.ArgumentTypeError):
        results_io.result_name(name)
    assert results_io.result_name("minilm_2ep-space.v2") == "minilm_2ep-space.v2"


def test_results_are_written_with_repository_relative_paths(tmp_path):
    record = {"run_dir": str(REPO_ROOT / "runs" / "x"), "command": f"python train.py --output_dir {REPO_ROOT}/runs/x"}
    path = results_io.write_result(tmp_path / "r.json", record)
    assert str(REPO_ROOT) not in path.read_text()
    assert '"run_dir": "runs/x"' in path.read_text() and "--output_dir runs/x" in path.read_text()


def test_no_committed_result_holds_a_local_path():
    local = re.compile(r'["\s=](/(?:work|root|home|tmp|Users)/[^"\s]*)')
    leaks = {
        path.name: local.findall(path.read_text(encoding="utf-8"))[:2]
        for path in sorted((REPO_ROOT / "benchmarks" / "results").glob("*.json"))
    }
    assert {name: found for name, found in leaks.items() if found} == {}
