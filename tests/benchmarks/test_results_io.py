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


def test_a_missing_input_file_or_folder_is_one_error_line_naming_it(tmp_path, capsys):
    import int8_schemes
    import unseen_relations

    with pytest.raises(SystemExit) as stopped:
        unseen_relations.parse_args(["--name", "x", "--paraphrases", str(tmp_path / "missing.json"), "--", "--a"])
    assert stopped.value.code == 2
    assert f"argument --paraphrases: no such file: {tmp_path / 'missing.json'}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        int8_schemes.parse_args(["--model", str(tmp_path / "no-run")])
    assert f"argument --model: no such folder: {tmp_path / 'no-run'}" in capsys.readouterr().err
