"""benchmarks/ablations.py as a user runs it, on the generated tiny dataset and encoder."""

import json
import os
import subprocess
import sys

import pytest
from helpers.tiny_models import REPO_ROOT
from helpers.train_fixtures import tiny_recipe


@pytest.fixture(scope="module")
def reference_args(tmp_path_factory):
    return tiny_recipe(tmp_path_factory.mktemp("ablation-inputs"))


def _ablations(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "ablations.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def test_each_ablation_adds_its_switch_and_reports_its_delta(reference_args, tmp_path):
    common = ["--name", "tiny", "--runs_dir", str(tmp_path / "runs"), "--output_dir", str(tmp_path / "results")]
    _ablations(*common, "--only", "classification_head", "no_entity_types", "--parallel", "2", "--", *reference_args)

    record = json.loads((tmp_path / "results" / "ablations_tiny.json").read_text())
    assert record["benchmark"] == "ablations_tiny" and record["split"] == "validation"
    reference_f1 = record["reference"]["metrics"]["f1"]
    rows = {row["ablation"]: row for row in record["ablations"]}
    assert set(rows) == {"classification_head", "no_entity_types"}
    reference_weighted = record["reference"]["metrics"]["weighted_f1"]
    for row in rows.values():
        assert row["delta_f1"] == pytest.approx(row["metrics"]["f1"] - reference_f1, abs=0.011)
        # both metric families: the paper's Δ are on the None-inclusive one
        assert row["delta_weighted_f1"] == pytest.approx(row["metrics"]["weighted_f1"] - reference_weighted, abs=0.011)
    assert rows["classification_head"]["paper_delta_f1"] == -14.97  # Table 4
    assert rows["no_entity_types"]["paper_delta_f1"] == -1.96  # Table 3

    runs = tmp_path / "runs" / "tiny"
    assert json.loads((runs / "classification_head" / "config.json").read_text())["head"] == "classification"
    assert json.loads((runs / "no_entity_types" / "config.json").read_text())["use_entity_types"] is False
    assert json.loads((runs / "reference" / "config.json").read_text())["head"] == "retrieval"

    # A second call collects the finished runs instead of training them again.
    stamp = (runs / "reference" / "all_results.json").stat().st_mtime_ns
    again = _ablations(*common, "--only", "classification_head", "no_entity_types", "--", *reference_args)
    assert "python train.py" not in again.stdout
    assert (runs / "reference" / "all_results.json").stat().st_mtime_ns == stamp
    assert record["trained_in_this_call"] == ["reference", "classification_head", "no_entity_types"]
    collected = json.loads((tmp_path / "results" / "ablations_tiny.json").read_text())
    assert collected["trained_in_this_call"] == []
    assert collected["runs_wall_time_s_sum"] == record["runs_wall_time_s_sum"] > 0


def test_reference_seeds_record_the_noise_floor(reference_args, tmp_path):
    common = ["--name", "seeds", "--runs_dir", str(tmp_path / "runs"), "--output_dir", str(tmp_path / "results")]
    seeds = ["--reference_seeds", "8", "--parallel", "2"]
    done = _ablations(*common, "--only", "no_fusion", *seeds, "--", *reference_args)

    runs = tmp_path / "runs" / "seeds"
    assert json.loads((runs / "reference_seed8" / "training_args.json").read_text())["seed"] == 8
    assert json.loads((runs / "reference" / "training_args.json").read_text())["seed"] == 7
    record = json.loads((tmp_path / "results" / "ablations_seeds.json").read_text())
    spread = record["reference_seeds"]
    assert spread["f1_by_seed"]["7"] == record["reference"]["metrics"]["f1"]
    seed8_results = json.loads((runs / "reference_seed8" / "eval_results.json").read_text())
    f1_seed8 = seed8_results["splits"]["validation"]["metrics"]["f1"]  # deltas are measured on validation
    assert spread["f1_by_seed"]["8"] == f1_seed8
    assert spread["f1_range"] == pytest.approx(abs(f1_seed8 - spread["f1_by_seed"]["7"]), abs=0.011)
    assert "reference F1 over 2 seeds" in done.stdout


def _validation_f1(run_dir) -> float:
    results = json.loads((run_dir / "eval_results.json").read_text())
    return results["splits"]["validation"]["metrics"]["f1"]  # deltas are measured on validation


def test_ablation_seeds_pair_each_delta_with_the_reference_of_its_seed(reference_args, tmp_path):
    common = ["--name", "paired", "--runs_dir", str(tmp_path / "runs"), "--output_dir", str(tmp_path / "results")]
    seeds = ["--reference_seeds", "8", "--ablation_seeds", "8", "--parallel", "2"]
    done = _ablations(*common, "--only", "no_fusion", *seeds, "--", *reference_args)

    runs = tmp_path / "runs" / "paired"
    assert json.loads((runs / "no_fusion_seed8" / "training_args.json").read_text())["seed"] == 8
    assert json.loads((runs / "no_fusion_seed8" / "config.json").read_text())["use_fusion"] is False
    assert json.loads((runs / "no_fusion" / "training_args.json").read_text())["seed"] == 7
    record = json.loads((tmp_path / "results" / "ablations_paired.json").read_text())
    assert set(record["trained_in_this_call"]) == {"reference", "reference_seed8", "no_fusion", "no_fusion_seed8"}
    (row,) = record["ablations"]
    over = row["delta_f1_seeds"]
    assert list(over["by_seed"]) == ["7", "8"]
    assert over["by_seed"]["7"]["delta_f1"] == row["delta_f1"]
    seed8_delta = _validation_f1(runs / "no_fusion_seed8") - _validation_f1(runs / "reference_seed8")
    assert over["by_seed"]["8"]["delta_f1"] == pytest.approx(seed8_delta, abs=0.011)
    assert over["delta_f1_mean"] == pytest.approx((row["delta_f1"] + seed8_delta) / 2, abs=0.011)
    assert over["delta_f1_min"] <= over["delta_f1_mean"] <= over["delta_f1_max"]
    assert "(seeds 7/8:" in done.stdout


def test_an_ablation_seed_without_its_reference_is_refused(reference_args, tmp_path):
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "ablations.py"), "--name", "x", "--only", "no_fusion"]
    done = subprocess.run(
        [*command, "--reference_seeds", "8", "--ablation_seeds", "8", "9", "--runs_dir", str(tmp_path / "runs"),
         "--", *reference_args],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 2 and "--ablation_seeds 9: not in --reference_seeds" in done.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything trains


def test_a_finished_run_can_stand_in_for_the_reference(reference_args, tmp_path):
    common = ["--name", "tiny", "--runs_dir", str(tmp_path / "runs"), "--output_dir", str(tmp_path / "results")]
    _ablations(*common, "--only", "no_fusion", "--", *reference_args)
    elsewhere = tmp_path / "runs" / "tiny" / "reference"
    done = _ablations(
        *common, "--name", "reused", "--only", "no_fusion", "--from_run", f"reference={elsewhere}",
        "--from_run", f"no_fusion={tmp_path / 'runs' / 'tiny' / 'no_fusion'}", "--", *reference_args,
    )  # fmt: skip
    assert "python train.py" not in done.stdout
    record = json.loads((tmp_path / "results" / "ablations_reused.json").read_text())
    # a run outside the repository is named by its last two parts: results files carry no local paths
    assert record["reference"]["run_dir"] == ".../tiny/reference" and str(tmp_path) not in json.dumps(record)


def test_unknown_ablation_names_are_refused(reference_args, tmp_path):
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "ablations.py"), "--name", "x"]
    done = subprocess.run(
        [*command, "--from_run", "no_images=somewhere", "--", *reference_args], capture_output=True, text=True
    )
    assert done.returncode == 2 and "no_images=somewhere" in done.stderr


def test_a_quality_results_file_stands_in_for_a_run_folder_that_is_gone(reference_args, tmp_path):
    """Run folders do not outlive the machine they trained on; the committed quality_*.json must be enough."""
    common = ["--runs_dir", str(tmp_path / "runs"), "--output_dir", str(tmp_path / "results")]
    _ablations(*common, "--name", "first", "--only", "no_fusion", "--", *reference_args)
    reference_dir = tmp_path / "runs" / "first" / "reference"
    quality = [sys.executable, str(REPO_ROOT / "benchmarks" / "quality.py"), "--name", "ref"]
    subprocess.run([*quality, "--from_run", str(reference_dir), "--output_dir", str(tmp_path / "results")], check=True)
    first = json.loads((tmp_path / "results" / "ablations_first.json").read_text())
    moved = tmp_path / "gone"
    reference_dir.rename(moved)  # the folder is gone; only the results file is left

    results_file = tmp_path / "results" / "quality_ref.json"
    no_fusion_dir = tmp_path / "runs" / "first" / "no_fusion"
    done = _ablations(
        *common, "--name", "second", "--only", "no_fusion", "--from_run", f"reference={results_file}",
        "--from_run", f"no_fusion={no_fusion_dir}", "--", *reference_args,
    )  # fmt: skip
    assert "python train.py" not in done.stdout
    second = json.loads((tmp_path / "results" / "ablations_second.json").read_text())
    assert second["reference"]["run_dir"] == ".../results/quality_ref.json"  # no local path in a results file
    assert second["reference"]["metrics"] == first["reference"]["metrics"]
    assert second["reference"]["seed"] == 7 and second["dataset"] == first["dataset"]
    assert second["ablations"][0]["delta_f1"] == first["ablations"][0]["delta_f1"]


def test_a_file_that_is_not_a_quality_result_is_refused_in_one_line(reference_args, tmp_path):
    stray = tmp_path / "eval_results.json"
    stray.write_text(json.dumps({"metrics": {"f1": 1.0}}))
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "ablations.py"), "--name", "x", "--only", "no_fusion"]
    common = ["--runs_dir", str(tmp_path / "runs"), "--output_dir", str(tmp_path / "results")]
    done = subprocess.run(
        [*command, *common, "--from_run", f"reference={stray}", "--from_run", f"no_fusion={stray}",
         "--", *reference_args],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"{stray}: not a benchmarks/quality.py results file" in done.stderr
    missing = subprocess.run(
        [*command, *common, "--from_run", f"reference={tmp_path / 'nowhere'}", "--", *reference_args],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    assert missing.returncode == 2 and "is neither a run folder nor a quality results file" in missing.stderr
