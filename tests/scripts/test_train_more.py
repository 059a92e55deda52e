"""MORE end to end: the builder's folder (visual objects, images) trains and evaluates with train.py and images on."""

import json
import os
import subprocess
import sys

from helpers.release_fixtures import FakeTagger, write_more_fixture
from helpers.tiny_models import REPO_ROOT, TINY_IMAGE_SIZE, TINY_VISION
from helpers.train_fixtures import write_tiny_encoder

from datasets_scripts import build


def test_train_py_trains_on_visual_objects_with_images(tmp_path):
    fixture = write_more_fixture(tmp_path / "MORE")
    dataset = tmp_path / "more"
    build.main(
        ["more", "--data_dir", str(fixture["root"]), "--output_dir", str(dataset), "--no_progress",
         "--ner_cache_dir", str(tmp_path / "ner"), "--cache_dir", str(tmp_path / "hf")],
        tagger=FakeTagger(),
    )  # fmt: skip
    run = tmp_path / "run"
    command = [
        sys.executable, str(REPO_ROOT / "train.py"),
        "--dataset_name_or_path", str(dataset),
        "--relation_bank", "more",
        "--text_encoder", str(write_tiny_encoder(tmp_path / "encoder")),
        "--use_images", "--vision_encoder", TINY_VISION, "--vision_image_size", str(TINY_IMAGE_SIZE),
        "--num_fusion_layers", "1",
        "--num_train_epochs", "1",
        "--per_device_train_batch_size", "2",
        "--output_dir", str(run),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-4000:]

    results = json.loads((run / "eval_results.json").read_text())
    assert results["split"] == "test" and results["splits"]["test"]["metrics"]["num_examples"] == 3
    config = json.loads((run / "config.json").read_text())
    assert config["vision_model_name"] == TINY_VISION and config["num_fusion_layers"] == 1
    predictions = (run / "predictions_test.jsonl").read_text().splitlines()
    assert len(predictions) == 3
