"""Sharded states on this CPU machine: FSDP2 (`fully_shard`) over gloo with 2 processes.

Accelerate 1.15 runs no FSDP on CPU (`--use_fsdp` with `ACCELERATE_USE_CPU=1` falls back to DDP, FSDP1 refuses
without an accelerator), so train.py's FSDP / DeepSpeed path is untested here; this test covers the two model-side
facts it relies on: inference on a sharded model (the fast last fusion layer must not bypass the sharding) and a
full state dict gathered from the shards saving a folder that reloads to the same logits.
"""

import json
import os
import subprocess
import sys

import pytest
from helpers.tiny_models import REPO_ROOT


@pytest.mark.slow
def test_fsdp2_sharded_model_infers_and_saves_like_the_unsharded_one(tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29631",
        str(REPO_ROOT / "tests" / "helpers" / "sharded_worker.py"), str(tmp_path / "saved"),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["rank"] for r in reports) == [0, 1]
    for report in reports:
        assert report["sharded_max_diff"] < 1e-5, report
    (main,) = [r for r in reports if r["rank"] == 0]
    assert main["full_state_keys"] > 100, "the full state dict is gathered on the main process"
    assert main["reloaded_max_diff"] < 1e-5, main
    assert (tmp_path / "saved" / "pipeline_roc.py").is_file()
