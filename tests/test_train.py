"""train.py as a user runs it: a command line in a fresh process, on a generated tiny dataset and encoder."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from train_fixtures import LABELS, write_bank, write_tiny_dataset, write_tiny_encoder


def _load_metric():
    import evaluate

    return evaluate.load(str(REPO_ROOT / "metrics" / "re_f1"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-inputs")
    return {
        "dataset": write_tiny_dataset(root / "dataset"),
        "bank": write_bank(root / "bank.json"),
        "encoder": write_tiny_encoder(root / "encoder"),
    }


def _train_args(inputs, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--dataset_name_or_path", str(inputs["dataset"]),
        "--relation_bank", str(inputs["bank"]),
        "--text_encoder", str(inputs["encoder"]),
        "--output_dir", str(output_dir),
        "--num_fusion_layers", "1",
        "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "8",
        "--learning_rate", "1e-3",
        "--head_learning_rate", "3e-3",
        "--logging_steps", "2",
        "--seed", "7",
        *extra,
    ]  # fmt: skip


def _run(args: list[str], launcher: list[str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    command = (launcher or [sys.executable]) + [str(REPO_ROOT / "train.py"), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def trained_run(inputs, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("run") / "roc-tiny"
    _run(_train_args(inputs, output_dir, "--num_train_epochs", "2"))
    return output_dir


def test_training_writes_a_self_contained_run_folder(trained_run):
    for name in (
        "config.json",
        "model.safetensors",
        "modeling_roc.py",
        "processor_config.json",
        "eval_results.json",
        "all_results.json",
        "training_args.json",
        "predictions_validation.jsonl",
        "predictions_test.jsonl",
        "per_relation_validation.md",
        "confusion_matrix_validation.png",
        "confusion_matrix_test.png",
    ):
        assert (trained_run / name).is_file(), name
    results = json.loads((trained_run / "eval_results.json").read_text())
    assert results["split"] == "test" and set(results["splits"]) == {"validation", "test"}
    assert set(results["metrics"]) == {"accuracy", "precision", "recall", "f1", "num_examples"}
    assert results["metrics"]["num_examples"] == 15 and results["world_size"] == 1
    command = shlex.split(results["command"])  # re-runnable from the repository, though launched by absolute path
    assert command[:2] == ["python", "train.py"] and command[command.index("--output_dir") + 1] == str(trained_run)
    curve = json.loads((trained_run / "all_results.json").read_text())["learning_curve"]
    assert [r["epoch"] for r in curve] == [1, 2]
    best = max(curve, key=lambda r: r["validation"]["f1"])
    assert results["best_epoch"] == best["epoch"]
    assert results["splits"]["validation"]["metrics"] == best["validation"], "the saved model is the best epoch"


def test_predictions_file_recomputes_the_reported_metrics(trained_run):
    lines = [json.loads(line) for line in (trained_run / "predictions_test.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == [f"tiny-test-{i:04d}" for i in range(15)]
    ids = {name: i for i, name in enumerate(LABELS)}
    scores = _load_metric().compute(
        predictions=[ids[r["prediction"]] for r in lines], references=[ids[r["gold"]] for r in lines]
    )
    reported = json.loads((trained_run / "eval_results.json").read_text())["splits"]["test"]["metrics"]
    assert round(100 * scores["f1"], 2) == reported["f1"]
    assert round(100 * scores["accuracy"], 2) == reported["accuracy"]


def test_evaluation_only_mode_reproduces_the_validation_metrics(trained_run, inputs, tmp_path):
    _run(
        [
            "--do_eval",
            "--model_name_or_path",
            str(trained_run),
            "--dataset_name_or_path",
            str(inputs["dataset"]),
            "--eval_split",
            "validation",
            "--output_dir",
            str(tmp_path),
        ]  # fmt: skip
    )
    evaluated = json.loads((tmp_path / "eval_results.json").read_text())
    trained = json.loads((trained_run / "eval_results.json").read_text())
    assert evaluated["split"] == "validation"
    assert evaluated["metrics"] == trained["splits"]["validation"]["metrics"]
    assert (tmp_path / "predictions_validation.jsonl").is_file()


def test_config_file_supplies_flags_and_rejects_unknown_keys(inputs, tmp_path):
    sys.path.insert(0, str(REPO_ROOT))
    from train import parse_args

    config = tmp_path / "run.yaml"
    config.write_text(f"dataset_name_or_path: {inputs['dataset']}\noutput_dir: out\nnum_train_epochs: 7\n")
    args = parse_args(["--config", str(config), "--num_train_epochs", "2"])
    assert args.num_train_epochs == 2 and args.output_dir == "out" and args.do_train
    config.write_text("num_train_epoch: 7\n")
    with pytest.raises(SystemExit):
        parse_args(["--config", str(config)])


def test_shipped_configs_parse():
    sys.path.insert(0, str(REPO_ROOT))
    from train import parse_args

    configs = sorted((REPO_ROOT / "configs").glob("*.yaml"))
    assert configs
    for config in configs:
        args = parse_args(["--config", str(config)])
        assert args.dataset_name_or_path and args.output_dir, config


@pytest.mark.slow
@pytest.mark.parametrize("sampling", [[], ["--group_by_length"]], ids=["shuffled", "grouped-by-length"])
def test_a_run_killed_with_sigkill_resumes_to_the_same_metrics(inputs, tmp_path, sampling):
    flags = ["--num_train_epochs", "3", "--checkpointing_steps", "2", "--checkpoints_total_limit", "10", *sampling]
    reference = tmp_path / "uninterrupted"
    _run(_train_args(inputs, reference, *flags))

    killed = tmp_path / "killed"
    command = [sys.executable, str(REPO_ROOT / "train.py"), *_train_args(inputs, killed, *flags)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT)
    # 6 steps per epoch, a checkpoint every 2 steps and at each epoch end: checkpoint_3 is mid-epoch 2 (step 8)
    marker = killed / "checkpoints" / "checkpoint_3" / "training_state.json"
    deadline = time.time() + 300
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert marker.exists(), "the run ended before its second checkpoint"
    assert not (killed / "eval_results.json").exists(), "the run finished before it was killed"

    _run(_train_args(inputs, killed, *flags, "--resume_from_checkpoint", "latest"))
    expected = json.loads((reference / "eval_results.json").read_text())
    resumed = json.loads((killed / "eval_results.json").read_text())
    assert resumed["splits"] == expected["splits"]
    assert resumed["best_epoch"] == expected["best_epoch"]
    expected_curve = json.loads((reference / "all_results.json").read_text())["learning_curve"]
    resumed_curve = json.loads((killed / "all_results.json").read_text())["learning_curve"]
    strip = [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in expected_curve]
    assert [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in resumed_curve] == strip


@pytest.mark.slow
def test_two_cpu_processes_train_with_ddp_and_evaluate_every_example_once(inputs, tmp_path):
    launcher = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", "29517",
    ]  # fmt: skip
    os.environ["ACCELERATE_USE_CPU"] = "1"
    try:
        done = _run(_train_args(inputs, tmp_path, "--num_train_epochs", "1"), launcher=launcher)
    finally:
        del os.environ["ACCELERATE_USE_CPU"]
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert results["world_size"] == 2, done.stdout[-2000:]
    rerun = "ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 train.py "  # the README's command
    assert results["command"].startswith(rerun)
    for split, size in (("validation", 21), ("test", 15)):  # odd sizes: gather_for_metrics must drop the padding
        lines = (tmp_path / f"predictions_{split}.jsonl").read_text().splitlines()
        assert len(lines) == size == results["splits"][split]["metrics"]["num_examples"]
        assert len({json.loads(line)["id"] for line in lines}) == size
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
