"""benchmarks/gpu_check.py at its tiny size on the CPU, so the GPU check still runs the day a GPU is lent."""

import json
import os
import subprocess
import sys

import pytest
from helpers.tiny_models import REPO_ROOT


def test_gpu_check_runs_at_tiny_size_and_writes_its_figures(tmp_path):
    command = [
        sys.executable, str(REPO_ROOT / "benchmarks" / "gpu_check.py"), "--size", "tiny", "--steps", "3",
        "--warmup_steps", "1", "--batch_size", "4", "--output_dir", str(tmp_path), "--name", "cpu",
        "--compile_backend", "eager", "--inference_repeats", "1", "--extraction_posts", "3",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_check_cpu.json").read_text())
    assert result["mixed_precision"] == "bf16" and result["num_processes"] == 1
    assert result["timed_steps"] == 2 and result["step_time_s"] > 0 and result["examples_per_s"] > 0
    assert result["save_and_reload"] is True
    assert result["peak_gpu_memory_gib_per_process"] is None  # no GPU here; a number on one
    inference = result["inference"]
    assert inference["dtype"] == "bf16" and inference["compile_backend"] == "eager"
    for variant in ("eager", "compiled"):
        pairs, extraction = inference[variant]["pair_inference"], inference[variant]["extraction"]
        assert pairs["examples_per_s"] > 0 and pairs["first_call_s"] > 0 and pairs["peak_gpu_memory_gib"] is None
        assert extraction["posts"] == 3 and extraction["pairs"] == 3 * 6 and extraction["pairs_per_s"] > 0
    assert set(inference["ratios"]) == {
        "compiled_vs_eager_pair_inference",
        "compiled_vs_eager_extraction",
        "extraction_vs_pair_inference_eager",
    }


def test_gpu_check_refuses_a_run_with_nothing_to_time(tmp_path):
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "gpu_check.py"), "--steps", "2", "--warmup_steps", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "nothing to time" in done.stderr


@pytest.mark.slow
def test_gpu_check_runs_with_two_processes(tmp_path):
    """`accelerate launch` with every GPU: here 2 gloo CPU processes (the save path is shared through a broadcast)."""
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29572",
        str(REPO_ROOT / "benchmarks" / "gpu_check.py"), "--size", "tiny", "--steps", "3", "--warmup_steps", "1",
        "--batch_size", "4", "--output_dir", str(tmp_path), "--name", "two", "--no_inference",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "ACCELERATE_USE_CPU": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_check_two.json").read_text())
    assert result["num_processes"] == 2 and result["save_and_reload"] is True
