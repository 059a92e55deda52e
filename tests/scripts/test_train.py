"""train.py as a user runs it: a command line in a fresh process, on a generated tiny dataset and encoder."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.tiny_models import REPO_ROOT
from helpers.train_fixtures import LABELS, write_bank, write_tiny_dataset, write_tiny_encoder


def _load_metric():
    import evaluate

    from roc_mre.metrics import RE_F1

    return evaluate.load(RE_F1)


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
    field, none_included = ("accuracy", "precision", "recall", "f1"), ("weighted_precision", "weighted_recall")
    assert set(results["metrics"]) == {*field, *none_included, "weighted_f1", "num_examples"}
    assert results["metrics"]["weighted_recall"] == results["metrics"]["accuracy"]  # both families, each named
    assert results["metrics"]["num_examples"] == 15 and results["world_size"] == 1
    command = shlex.split(results["command"])  # re-runnable from the repository, though launched by absolute path
    assert command[:2] == ["python", "train.py"] and command[command.index("--output_dir") + 1] == str(trained_run)
    curve = json.loads((trained_run / "all_results.json").read_text())["learning_curve"]
    assert [r["epoch"] for r in curve] == [1, 2]
    best = max(curve, key=lambda r: r["validation"]["f1"])
    assert results["best_epoch"] == best["epoch"]
    assert results["splits"]["validation"]["metrics"] == best["validation"], "the saved model is the best epoch"
    config = json.loads((trained_run / "config.json").read_text())
    assert config["trained_with_captions"] is False  # a caption given to it later is ignored, with a warning
    from safetensors.torch import load_file

    pool = load_file(str(trained_run / "model.safetensors"))["pair_pool"]
    assert config["pair_pool_size"] == len(pool) == 48  # the whole tiny training split (the cap is 1024)
    assert (pool.abs().sum(-1) > 0).all(), "every row is a training pair's embedding"


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


def test_shipped_configs_parse_by_name_by_file_and_by_their_old_checkout_path(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO_ROOT))
    from roc_mre.training.arguments import shipped_configs
    from train import parse_args

    monkeypatch.chdir(tmp_path)  # from any folder: the configs come from the package
    assert shipped_configs() == ["mnre_minilm_offline", "mnre_mpnet_offline", "mnre_paper", "more_paper"]
    for name in shipped_configs():
        for spelling in (name, f"{name}.yaml", f"configs/{name}.yaml"):
            args = parse_args(["--config", spelling])
            assert args.dataset_name_or_path and args.output_dir, spelling
    offline = parse_args(["--config", "mnre_minilm_offline"])
    assert offline.text_encoder == "embedded:all-MiniLM-L6-v2" and offline.num_fusion_layers == 1


def test_a_config_file_of_the_users_wins_over_a_shipped_name(tmp_path, monkeypatch):
    """A file in the working folder named like a shipped config is the user's file: it is read, not the shipped one."""
    sys.path.insert(0, str(REPO_ROOT))
    from train import parse_args

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnre_paper.yaml").write_text("dataset_name_or_path: my/data\noutput_dir: mine\n", encoding="utf-8")
    args = parse_args(["--config", "mnre_paper.yaml"])
    assert args.dataset_name_or_path == "my/data" and args.output_dir == "mine"


def test_a_config_that_is_neither_a_file_nor_shipped_is_one_error_line(capsys):
    sys.path.insert(0, str(REPO_ROOT))
    from train import parse_args

    with pytest.raises(SystemExit) as stop:
        parse_args(["--config", "nope.yaml"])
    assert stop.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.endswith(
        "error: --config nope.yaml: no such file, and no shipped config of that name "
        "(shipped: mnre_minilm_offline, mnre_mpnet_offline, mnre_paper, more_paper)"
    )


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


def _launch_two_cpu_processes(args: list[str], port: int) -> subprocess.CompletedProcess:
    launcher = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", str(port),
    ]  # fmt: skip
    os.environ["ACCELERATE_USE_CPU"] = "1"
    try:
        return _run(args, launcher=launcher)
    finally:
        del os.environ["ACCELERATE_USE_CPU"]


def _log_history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log_history.jsonl").read_text().splitlines()]


def _linear_schedule_with_warmup(peak: float, warmup: int, total: int) -> list[float]:
    """transformers' linear schedule, written out: the rate used at optimizer steps 1..total."""
    return [peak * (k / warmup if k < warmup else (total - k) / (total - warmup)) for k in range(total)]


@pytest.mark.slow
def test_two_processes_follow_the_single_process_learning_rate_schedule(inputs, tmp_path):
    """2 processes x batch 8 and 1 process x batch 16 take the same 12 optimizer steps (48 examples, 4 epochs): every
    step must use the same rate in both parameter groups, and the last one the schedule's last, non-zero rate.
    (Accelerate stepped a scheduler sized per process twice per step: warmup ended at step 2, steps 8-12 ran at 0.)"""
    common = ["--num_train_epochs", "4", "--warmup_ratio", "0.25", "--logging_steps", "1"]
    single = tmp_path / "one-process"
    _run(_train_args(inputs, single, *common, "--per_device_train_batch_size", "16"))
    double = tmp_path / "two-processes"
    _launch_two_cpu_processes(_train_args(inputs, double, *common, "--per_device_train_batch_size", "8"), 29541)

    expected = {
        "encoders": _linear_schedule_with_warmup(1e-3, 3, 12),
        "head": _linear_schedule_with_warmup(3e-3, 3, 12),
    }
    for run in (single, double):
        history = _log_history(run)
        assert [r["step"] for r in history] == list(range(1, 13)), run.name
        for group, rates in expected.items():
            assert [r["learning_rate"][group] for r in history] == pytest.approx(rates, rel=1e-6), (run.name, group)
        assert history[-1]["learning_rate"]["encoders"] == pytest.approx(1e-3 / 9)
    # the multi-process run's folder, step by step: the same files, the effective settings, the checkpoints kept
    results = json.loads((double / "eval_results.json").read_text())
    assert (results["world_size"], results["num_processes"], results["distributed_type"]) == (2, 2, "MULTI_CPU")
    assert sorted(p.name for p in (double / "checkpoints").iterdir()) == ["checkpoint_2", "checkpoint_3"]
    assert {p.name for p in single.iterdir()} == {p.name for p in double.iterdir()}


@pytest.mark.slow
def test_a_checkpoint_killed_while_saving_costs_no_complete_checkpoint(inputs, tmp_path):
    """A save_state killed half-way leaves a checkpoint without its marker. Resuming must start from the previous
    complete one, and the next saves must neither collide with the broken folder nor delete the complete one
    before a newer one is complete (Accelerate's own total_limit did both, and the run lost all its checkpoints)."""
    flags = ["--num_train_epochs", "3", "--checkpointing_steps", "2", "--checkpoints_total_limit", "2"]
    reference = tmp_path / "uninterrupted"
    _run(_train_args(inputs, reference, *flags))

    run = tmp_path / "broken"
    _run(_train_args(inputs, run, *flags, "--num_train_epochs", "1"))  # checkpoints at steps 2, 4, 6 (epoch end)
    checkpoints = run / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint_1", "checkpoint_2"]
    (checkpoints / "checkpoint_2" / "training_state.json").unlink()  # as if killed inside save_state
    for name in ("eval_results.json", "all_results.json"):
        (run / name).unlink()

    _run(_train_args(inputs, run, *flags, "--resume_from_checkpoint", "latest"))
    resumed = json.loads((run / "eval_results.json").read_text())
    expected = json.loads((reference / "eval_results.json").read_text())
    assert resumed["splits"] == expected["splits"]
    kept = sorted(checkpoints.iterdir(), key=lambda p: int(p.name.split("_")[-1]))
    assert len(kept) == 2 and all((p / "training_state.json").is_file() for p in kept)

    # a complete checkpoint whose weights were truncated afterwards: named, and the previous one is used
    weights = kept[-1] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    done = _run(_train_args(inputs, run, *flags, "--resume_from_checkpoint", "latest"))
    assert f"{kept[-1]} cannot be loaded" in done.stderr and f"falling back to {kept[-2]}" in done.stderr
    assert json.loads((run / "eval_results.json").read_text())["splits"] == expected["splits"]


def test_training_into_a_finished_run_folder_is_refused_unless_told(trained_run, inputs, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    recorded = json.loads((run / "training_args.json").read_text())
    (run / "training_args.json").write_text(json.dumps({**recorded, "test_split": "old_split"}))
    (run / "predictions_old_split.jsonl").write_text(
        "{}\n"
    )  # a result of the earlier run only (it evaluated old_split)
    (run / "predictions_my_handlabels.jsonl").write_text("mine")  # the user's: matches the pattern, not a split run
    (run / "notes.txt").write_text("mine")
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    command = [sys.executable, str(REPO_ROOT / "train.py"), *_train_args(inputs, run, "--num_train_epochs", "1")]
    refused = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    assert refused.returncode == 2 and "--overwrite_output_dir" in refused.stderr, refused.stderr[-2000:]
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before, "a refused run touched the folder"

    _run(_train_args(inputs, run, "--num_train_epochs", "1", "--overwrite_output_dir"))
    assert not (run / "predictions_old_split.jsonl").exists(), "an older run's result stayed beside the new model"
    assert (run / "notes.txt").read_text() == "mine"
    assert (run / "predictions_my_handlabels.jsonl").read_text() == "mine"
    assert [r["epoch"] for r in json.loads((run / "all_results.json").read_text())["learning_curve"]] == [1]

    user_folder = tmp_path / "project"
    user_folder.mkdir()
    (user_folder / "data.csv").write_text("a,b\n")
    command = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        *_train_args(inputs, user_folder, "--overwrite_output_dir"),
    ]
    refused = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    assert refused.returncode == 2 and "not a run folder" in refused.stderr
    assert (user_folder / "data.csv").is_file()


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--num_train_epochs", "0"),
        ("--per_device_train_batch_size", "0"),
        ("--per_device_eval_batch_size", "-1"),
        ("--logging_steps", "0"),
        ("--max_train_samples", "0"),
        ("--max_eval_samples", "0"),
        ("--gradient_accumulation_steps", "0"),
        ("--checkpointing_steps", "0"),
        ("--learning_rate", "0"),
        ("--learning_rate", "inf"),
        ("--head_learning_rate", "nan"),
        ("--none_weight", "nan"),
        ("--none_weight", "-1"),
        ("--max_grad_norm", "nan"),
        ("--temperature", "inf"),
        ("--max_length", "0"),
        ("--pair_embed_dim", "-3"),
        ("--pair_embed_dim", "0"),
        ("--relation_dropout", "1"),
    ],
)
def test_non_positive_counts_are_refused_at_parse_time(flag, value, capsys):
    sys.path.insert(0, str(REPO_ROOT))
    from train import parse_args

    with pytest.raises(SystemExit) as stopped:
        parse_args(["--dataset_name_or_path", "d", "--output_dir", "nowhere-to-be-written", flag, value])
    assert stopped.value.code == 2
    assert flag.lstrip("-") in capsys.readouterr().err


@pytest.mark.parametrize(
    "line, reason",
    [
        ("num_train_epochs: 1.5", "num_train_epochs"),
        ("pair_activation: relu", "invalid choice"),
        ('use_images: "false"', "on/off flag"),
        ("max_train_samples: 0", "max_train_samples"),
        ("learning_rate: [1, 2]", "one value"),
        ('symmetric_relations: "abc"', "takes a list (e.g. ['abc'])"),  # never read letter by letter
    ],
)
def test_config_file_values_are_checked_like_command_line_values(line, reason, tmp_path, capsys):
    sys.path.insert(0, str(REPO_ROOT))
    from train import parse_args

    config = tmp_path / "run.yaml"
    config.write_text(f"dataset_name_or_path: d\noutput_dir: {tmp_path / 'out'}\n{line}\n")
    with pytest.raises(SystemExit):
        parse_args(["--config", str(config)])
    err = capsys.readouterr().err
    assert str(config) in err and reason in err, err


def test_a_list_flag_in_a_config_file_is_a_list(tmp_path):
    sys.path.insert(0, str(REPO_ROOT))
    from train import parse_args

    config = tmp_path / "run.yaml"
    config.write_text(f"dataset_name_or_path: d\noutput_dir: {tmp_path / 'out'}\nsymmetric_relations: [a, b]\n")
    assert parse_args(["--config", str(config)]).symmetric_relations == ["a", "b"]


def test_bf16_from_the_accelerate_config_is_recorded_and_reruns(inputs, tmp_path, monkeypatch):
    """`accelerate launch` hands its config file's settings to the script as ACCELERATE_* variables."""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    _run(_train_args(inputs, tmp_path, "--num_train_epochs", "1", "--max_train_samples", "16"))
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert results["mixed_precision"] == "bf16" and results["distributed_type"] == "NO"
    assert json.loads((tmp_path / "training_args.json").read_text())["mixed_precision"] == "bf16"
    command = shlex.split(results["command"])
    assert command[command.index("--mixed_precision") + 1] == "bf16"


def test_fp16_on_cpu_is_refused_instead_of_silently_running_fp32(inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    command = [sys.executable, str(REPO_ROOT / "train.py"), *_train_args(inputs, tmp_path / "run")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode != 0 and "fp16" in done.stderr and "needs a GPU" in done.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.slow
def test_resuming_never_unpickles_the_checkpoint(inputs, tmp_path):
    """Accelerate loads registered custom state with weights_only=False; the training state is JSON instead."""
    run = tmp_path / "run"
    _run(_train_args(inputs, run, "--num_train_epochs", "1"))
    proof = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(proof), "w"))

    import pickle

    planted = [checkpoint / "custom_checkpoint_0.pkl" for checkpoint in (run / "checkpoints").iterdir()]
    for path in planted:
        path.write_bytes(pickle.dumps(Payload()))
    resume = _train_args(inputs, run, "--num_train_epochs", "2", "--resume_from_checkpoint", "latest")
    refused = subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), *resume], capture_output=True, text=True)
    assert refused.returncode != 0 and "never unpickled" in refused.stderr, refused.stderr[-2000:]
    assert not proof.exists(), "a checkpoint's pickle was executed"
    for path in planted:
        path.unlink()
    _run(resume)
    curve = json.loads((run / "all_results.json").read_text())["learning_curve"]
    assert [r["epoch"] for r in curve] == [1, 2], "the training state came back from training_state.json"
    recorded = json.loads((run / "training_args.json").read_text())
    assert recorded["num_train_epochs"] == 2 and recorded["resumed_with"] == [["--num_train_epochs 1 -> 2"]]


def test_captions_are_read_when_asked_and_refused_when_the_dataset_has_none(inputs, tmp_path):
    captioned = write_tiny_dataset(tmp_path / "captioned", captions=True)
    flags = ["--num_train_epochs", "1", "--use_captions", "--caption_dropout", "0.5"]
    args = _train_args(inputs, tmp_path / "run", *flags)
    args[args.index("--dataset_name_or_path") + 1] = str(captioned)
    _run(args)
    recorded = json.loads((tmp_path / "run" / "training_args.json").read_text())
    assert recorded["use_captions"] is True and recorded["caption_dropout"] == 0.5
    assert json.loads((tmp_path / "run" / "config.json").read_text())["trained_with_captions"] is True
    command = [sys.executable, str(REPO_ROOT / "train.py"), *_train_args(inputs, tmp_path / "plain", "--use_captions")]
    refused = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert refused.returncode != 0 and "has no caption column" in refused.stderr


def test_caption_tokens_train_a_model_that_reloads_with_its_caption_mode(inputs, tmp_path):
    from modeling_roc import ROCModel, ROCProcessor

    captioned = write_tiny_dataset(tmp_path / "captioned", captions=True)
    flags = ["--num_train_epochs", "1", "--use_captions", "--caption_mode", "tokens", "--max_caption_length", "16"]
    args = _train_args(inputs, tmp_path / "run", *flags)
    args[args.index("--dataset_name_or_path") + 1] = str(captioned)
    _run(args)
    model = ROCModel.from_pretrained(tmp_path / "run")
    processor = ROCProcessor.from_pretrained(tmp_path / "run")
    assert model.config.caption_tokens and model.caption_type_embedding.abs().sum() > 0, "the type vector trained"
    assert (processor.caption_mode, processor.max_caption_length) == ("tokens", 16)
    command = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        *_train_args(inputs, tmp_path / "x", "--caption_mode", "tokens"),
    ]
    refused = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert refused.returncode != 0 and "--caption_mode tokens needs --use_captions" in refused.stderr


def test_report_to_a_tracker_that_is_not_installed_fails_before_training(inputs, tmp_path):
    import importlib.util

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    command = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        *_train_args(inputs, tmp_path / "run", "--report_to", "wandb"),
    ]
    refused = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert refused.returncode == 2 and "--report_to wandb: the wandb package is not installed" in refused.stderr
    assert not (tmp_path / "run").exists(), "nothing was started"
    command[-1] = "tensorbord"
    refused = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert refused.returncode == 2 and "--report_to tensorbord: unknown tracker" in refused.stderr


def test_report_to_tensorboard_writes_event_files(inputs, tmp_path):
    _run(_train_args(inputs, tmp_path / "run", "--num_train_epochs", "1", "--report_to", "tensorboard"))
    first = list((tmp_path / "run").rglob("events.out.tfevents.*"))
    assert first, "the train extra's tracker logged"
    # a replaced run takes its curves with it: the new run's logs are not beside the old run's
    _run(_train_args(inputs, tmp_path / "run", "--num_train_epochs", "1", "--report_to", "tensorboard",
                     "--overwrite_output_dir"))  # fmt: skip
    second = list((tmp_path / "run").rglob("events.out.tfevents.*"))
    assert second and not set(first) & set(second)


def test_every_flag_has_help_and_choices_come_from_the_config():
    import argparse

    from modeling_roc.configuration_roc import CHOICES
    from train import build_parser

    parser = build_parser()
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert [a.option_strings for a in actions if not a.help] == []
    by_flag = {a.option_strings[0].lstrip("-"): a for a in actions}
    for name, allowed in CHOICES.items():
        assert tuple(by_flag[name].choices) == allowed, name


def test_the_parser_reads_the_same_choices_and_defaults_the_model_code_defines():
    # build_parser reads them from the shipped sources without importing torch; they must equal the imported values
    from modeling_roc import EMBEDDED_TEXT_ENCODER
    from modeling_roc.configuration_roc import CHOICES
    from modeling_roc.processing_roc import CAPTION_MODES
    from roc_mre.training.arguments import model_constants

    assert model_constants() == {
        "CHOICES": CHOICES,
        "CAPTION_MODES": CAPTION_MODES,
        "EMBEDDED_TEXT_ENCODER": EMBEDDED_TEXT_ENCODER,
    }


@pytest.mark.parametrize("argv", [["--help"], ["--num_train_epochs", "0"], ["--head", "softmax"]])
def test_help_and_a_bad_flag_answer_before_torch_is_imported(argv):
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['train.py', *{argv!r}]\n"
        "try:\n"
        "    runpy.run_path('train.py', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "heavy = ('torch', 'transformers', 'datasets', 'accelerate')\n"
        "print('imported', sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.stdout.splitlines()[-1] == "imported []", done.stdout + done.stderr
    assert done.stdout.splitlines()[-2] == ("exit 0" if argv == ["--help"] else "exit 2")
    if argv == ["--help"]:
        assert "--relation_source {description,label_name,learned}" in done.stdout


# ------------------------------------------------------------------------------------------- what a run may touch
def _args(*argv: str):
    sys.path.insert(0, str(REPO_ROOT))
    from train import parse_args

    return parse_args(["--dataset_name_or_path", "d", *argv])


def _refusal(args, capsys) -> str:
    from roc_mre.training.loop import check_output_dir

    with pytest.raises(SystemExit) as stopped:
        check_output_dir(args)
    assert stopped.value.code == 2
    return capsys.readouterr().err


def test_only_a_marked_run_folder_is_replaced_or_resumed(trained_run, inputs, tmp_path, capsys):
    import shutil

    from roc_mre.training.loop import RUN_MARKER

    # another tool's folder with a training_args.json of its own: neither replaced nor resumed into
    other = tmp_path / "other-tool"
    other.mkdir()
    (other / "training_args.json").write_text("{}")
    (other / "model.safetensors").write_bytes(b"theirs")
    assert "holds no .roc_training_run.json" in _refusal(
        _args("--output_dir", str(other), "--overwrite_output_dir"), capsys
    )
    err = _refusal(_args("--output_dir", str(other), "--resume_from_checkpoint", "latest"), capsys)
    assert "is not a run folder of train.py" in err
    assert (other / "training_args.json").read_text() == "{}" and (
        other / "model.safetensors"
    ).read_bytes() == b"theirs"

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert (run / RUN_MARKER).is_file()
    same = [*_train_args(inputs, run, "--num_train_epochs", "2"), "--resume_from_checkpoint", "latest"]
    from roc_mre.training.loop import check_output_dir

    check_output_dir(_args(*same, "--logging_steps", "5"))  # the recorded flags (and another --logging_steps) resume
    err = _refusal(_args(*same, "--learning_rate", "0.01", "--warmup_ratio", "0.3"), capsys)
    assert "--learning_rate 0.001 -> 0.01" in err and "--warmup_ratio 0.1 -> 0.3" in err, err


def test_evaluation_only_never_writes_into_a_run_folder_or_a_folder_named_like_a_hub_id(trained_run, capsys):
    err = _refusal(_args("--do_eval", "--model_name_or_path", "org/x", "--output_dir", str(trained_run)), capsys)
    assert "never writes into a run folder" in err
    args = _args("--do_eval", "--model_name_or_path", "org/name")
    assert args.output_dir == "eval_validation-org--name"
    beside = _args("--do_eval", "--model_name_or_path", str(trained_run)).output_dir
    assert beside == f"eval_validation-{trained_run.name}"  # in the working folder, never inside the model


def test_an_evaluation_never_overwrites_another_runs_results_or_a_users_folder(trained_run, inputs, tmp_path):
    other = tmp_path / "other-run"
    shutil.copytree(trained_run, other)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "eval_results.json").write_text("my notes", encoding="utf-8")
    for target in (other, mine):
        before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
        command = [sys.executable, str(REPO_ROOT / "train.py"), "--do_eval", "--model_name_or_path", str(trained_run),
                   "--dataset_name_or_path", str(inputs["dataset"]), "--output_dir", str(target)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
        assert done.returncode == 2 and "never writes into a run folder" in done.stderr, done.stderr[-2000:]
        assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} == before
    done = subprocess.run(command[:-2], capture_output=True, text=True, cwd=tmp_path, timeout=600)  # the default
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / f"eval_validation-{trained_run.name}" / "eval_results.json").is_file()
    assert not (trained_run / "eval_validation").exists()


def test_a_failed_start_leaves_the_old_run_and_writes_nothing(trained_run, inputs, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    args = _train_args(inputs, run, "--overwrite_output_dir")
    args[args.index("--dataset_name_or_path") + 1] = str(tmp_path / "no-such-dataset")
    done = subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), *args], capture_output=True, text=True)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --dataset_name_or_path") and "roc-build mnre --output_dir" in last, last
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before, "the old run is intact"

    fresh = _train_args(inputs, tmp_path / "fresh")
    fresh[fresh.index("--dataset_name_or_path") + 1] = str(tmp_path / "no-such-dataset")
    done = subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), *fresh], capture_output=True, text=True)
    assert done.returncode != 0 and not (tmp_path / "fresh").exists(), "nothing left to refuse the corrected command"


def test_a_second_writer_is_refused_while_the_first_lives(tmp_path):
    from datasets_scripts.locking import OutputLock, _start_time
    from roc_mre.training.loop import LOCK_FILE

    (tmp_path / LOCK_FILE).write_text(f"{os.getppid()}\n")  # a live process holds it
    with pytest.raises(SystemExit, match=f"another train.py \\(pid {os.getppid()}\\) is writing to {tmp_path}"):
        OutputLock(tmp_path / LOCK_FILE, what="train.py").acquire()
    (tmp_path / LOCK_FILE).write_text("999999999\n")  # a dead one left it
    with OutputLock(tmp_path / LOCK_FILE, what="train.py"):
        assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(os.getpid())
    assert not (tmp_path / LOCK_FILE).exists()
    # the pid of a writer that died, given since to an unrelated live process: its start time differs, taken over
    (tmp_path / LOCK_FILE).write_text(f"{os.getppid()} 1\n")
    with OutputLock(tmp_path / LOCK_FILE, what="train.py"):
        assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(os.getpid())
    # the live writer itself, recorded with its start time, still refuses
    (tmp_path / LOCK_FILE).write_text(f"{os.getppid()} {_start_time(os.getppid())}\n")
    with pytest.raises(SystemExit, match="another train.py"):
        OutputLock(tmp_path / LOCK_FILE, what="train.py").acquire()


def test_a_loss_that_becomes_non_finite_stops_the_run_before_weights_are_saved(inputs, tmp_path):
    args = _train_args(inputs, tmp_path / "run", "--num_train_epochs", "1", "--learning_rate", "1e30")
    args += ["--head_learning_rate", "1e30", "--max_grad_norm", "0"]
    done = subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), *args], capture_output=True, text=True)
    assert done.returncode != 0 and "the training loss became" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("kind", ["missing", "folder", "yaml_syntax", "json_syntax", "latin1"])
def test_a_bad_config_file_is_one_error_line(kind, tmp_path, capsys):
    path = {
        "missing": tmp_path / "nope.yaml",
        "folder": tmp_path,
        "yaml_syntax": tmp_path / "bad.yaml",
        "json_syntax": tmp_path / "bad.json",
        "latin1": tmp_path / "latin.yaml",
    }[kind]
    if kind == "yaml_syntax":
        path.write_text("num_train_epochs: [1\n")
    elif kind == "json_syntax":
        path.write_text("{num_train_epochs: 1")
    elif kind == "latin1":
        path.write_bytes("note: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SystemExit) as stopped:
        _args("--config", str(path), "--output_dir", str(tmp_path / "out"))
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("train.py: error: --config") or "error: --config" in err, err
    assert {"missing": "no such file", "folder": "is a folder", "yaml_syntax": "not valid YAML",
            "json_syntax": "not valid JSON", "latin1": "not UTF-8"}[kind] in err  # fmt: skip


def test_symmetric_relations_are_recorded_in_the_model_and_an_unknown_one_is_an_error(inputs, tmp_path):
    run = tmp_path / "symmetric"
    _run(_train_args(inputs, run, "--num_train_epochs", "1", "--symmetric_relations", "/per/per/couple"))
    assert json.loads((run / "config.json").read_text())["symmetric_relations"] == ["/per/per/couple"]

    bad = tmp_path / "bad"
    args = _train_args(inputs, bad, "--symmetric_relations", "spouse")
    command = [sys.executable, str(REPO_ROOT / "train.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: --symmetric_relations ['spouse'] are not labels")
    assert not bad.exists() or not any(bad.iterdir()), "nothing written for a run that cannot start"


@pytest.mark.slow
def test_a_tampered_training_state_or_a_missing_random_state_is_named_and_never_resumed_from(inputs, tmp_path):
    """Accelerate skips a missing RNG file with an info line, and a hand-edited training_state.json was trusted:
    both now make the checkpoint unusable, named, and `latest` falls back to the previous complete one."""
    flags = ["--num_train_epochs", "1", "--checkpointing_steps", "2", "--checkpoints_total_limit", "10"]
    run = tmp_path / "run"
    _run(_train_args(inputs, run, *flags))
    checkpoints = sorted((run / "checkpoints").iterdir(), key=lambda p: int(p.name.split("_")[-1]))
    assert len(checkpoints) >= 3
    newest, second, third = checkpoints[-1], checkpoints[-2], checkpoints[-3]
    state = json.loads((newest / "training_state.json").read_text())
    state["epoch"] = 99  # of a 1-epoch run: trusted, it skipped training and saved the untrained model
    (newest / "training_state.json").write_text(json.dumps(state))
    (second / "random_states_0.pkl").unlink()
    for name in ("eval_results.json", "all_results.json"):
        (run / name).unlink()

    done = _run(_train_args(inputs, run, *flags, "--resume_from_checkpoint", "latest"))
    assert (
        f"{newest} cannot be loaded: ValueError: training_state.json: epoch 99 is past this run's schedule (at most 1"
        in done.stderr
    )
    assert f"{second} cannot be loaded: FileNotFoundError: random_states_0.pkl is missing" in done.stderr
    assert f"Resumed from {third}" in done.stdout + done.stderr


def test_the_training_state_check_refuses_what_train_py_never_writes():
    from roc_mre.training.loop import TrainingState

    good = TrainingState(temperature=0.05).state_dict()
    TrainingState.check(good)
    for key, value, message in [
        ("global_step", 2.5, "global_step must be an integer >= 0"),
        ("epoch", -3, "epoch must be an integer >= 0"),
        ("best_f1", 250.0, r"best_f1 must be a number in \[-1.0, 100.0\]"),
        ("temperature", 0.0, "temperature must be a positive number"),
        ("history", {"epoch": 1}, "history must be a list"),
    ]:
        with pytest.raises(ValueError, match=message):
            TrainingState.check({**good, key: value})
    with pytest.raises(ValueError, match="must hold exactly"):
        TrainingState.check({**good, "planted": 1})
    TrainingState.check_schedule({**good, "epoch": 2, "global_step": 20}, 3, 10, 30)  # a longer run continues
    for key, value in [("epoch", 4), ("batches_done", 11), ("global_step", 31), ("best_epoch", 3)]:
        with pytest.raises(ValueError, match=f"{key} {value} is past this run's schedule"):
            TrainingState.check_schedule({**good, "epoch": 2, key: value}, 3, 10, 30)


def test_bf16_training_on_a_cpu_without_bfloat16_units_warns_its_cost(monkeypatch, caplog):
    import roc_mre.training.loop as loop

    monkeypatch.setattr(loop, "cpu_has_native_bfloat16", lambda: False)
    with caplog.at_level("WARNING"):
        assert loop.warn_if_bfloat16_is_emulated("bf16", "cpu")
        assert not loop.warn_if_bfloat16_is_emulated("no", "cpu") and not loop.warn_if_bfloat16_is_emulated(
            "bf16", "cuda"
        )
    assert "13x slower" in caplog.text and "--mixed_precision no" in caplog.text
    monkeypatch.setattr(loop, "cpu_has_native_bfloat16", lambda: True)
    assert not loop.warn_if_bfloat16_is_emulated("bf16", "cpu")  # AMX: bf16 is the fast path there


def test_fsdp_asked_for_but_not_run_is_said(caplog):
    import roc_mre.training.loop as loop

    with caplog.at_level("WARNING"):
        said = loop.warn_if_sharding_was_dropped("MULTI_CPU", {"ACCELERATE_USE_FSDP": "true"})
    assert said and "FSDP was asked for (accelerate launch --use_fsdp) but Accelerate runs MULTI_CPU" in caplog.text
    assert loop.warn_if_sharding_was_dropped("FSDP", {"ACCELERATE_USE_FSDP": "true"}) is None
    assert loop.warn_if_sharding_was_dropped("MULTI_CPU", {}) is None  # plain multi-process, as asked
    assert "DeepSpeed" in loop.warn_if_sharding_was_dropped("MULTI_GPU", {"ACCELERATE_USE_DEEPSPEED": "true"})


def test_a_negative_seed_is_a_flag_error(capsys):
    with pytest.raises(SystemExit):
        _args("--seed", "-1")
    assert "--seed: must be an integer from 0 to 2**32 - 1, got -1" in capsys.readouterr().err
