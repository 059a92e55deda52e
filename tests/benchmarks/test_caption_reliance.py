"""benchmarks/caption_reliance.py: one trained caption model evaluated with its own, another image's and no caption."""

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from helpers.train_fixtures import tiny_recipe, write_tiny_dataset


REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import caption_reliance  # noqa: E402


def test_every_caption_moves_to_another_image_and_the_order_is_seeded():
    images = ["a", "a", "b", "c", "c", "c", "d", "e"]
    order = caption_reliance.other_image_order(images, seed=3)
    assert sorted(order) == list(range(len(images)))
    assert all(images[j] != images[i] for i, j in enumerate(order))
    assert order == caption_reliance.other_image_order(images, seed=3)
    with pytest.raises(ValueError, match="one image holds 3 of 4 examples"):
        caption_reliance.other_image_order(["a", "a", "a", "b"], seed=0)


def _train(root: Path, *flags: str) -> Path:
    recipe = tiny_recipe(root)
    recipe[recipe.index("--dataset_name_or_path") + 1] = str(write_tiny_dataset(root / "captioned", captions=True))
    run = root / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, str(REPO_ROOT / "train.py"), *recipe, "--output_dir", str(run), *flags]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def test_a_caption_model_is_evaluated_three_ways_on_the_same_split(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = _train(tmp_path, "--use_captions")
    dataset = tmp_path / "captioned"

    record = caption_reliance.main(
        ["--name", "tiny", "--model", str(run), "--dataset", str(dataset), "--seeds", "0", "1",
         "--output_dir", str(tmp_path / "results")]
    )  # fmt: skip

    assert set(record["conditions"]) == {"own", "other_image_seed0", "other_image_seed1", "none"}
    assert json.loads((tmp_path / "results" / "caption_reliance_tiny.json").read_text()) == record
    own = datasets.load_dataset(str(run / "caption_reliance" / "data" / "own"), split="validation")
    other = datasets.load_dataset(str(run / "caption_reliance" / "data" / "other_image_seed0"), split="validation")
    other1 = datasets.load_dataset(str(run / "caption_reliance" / "data" / "other_image_seed1"), split="validation")
    none = datasets.load_dataset(str(run / "caption_reliance" / "data" / "none"), split="validation")
    assert own["caption"] == datasets.load_dataset(str(dataset), split="validation")["caption"]
    assert sorted(map(str, other["caption"])) == sorted(map(str, own["caption"])) and other["id"] == own["id"]
    assert other["caption"] != own["caption"] and other1["caption"] != other["caption"]
    assert "caption" not in none.column_names
    assert "--use_captions" in record["conditions"]["own"]["command"]
    assert "--use_captions" not in record["conditions"]["none"]["command"]
    f1 = {condition: result["metrics"]["f1"] for condition, result in record["conditions"].items()}
    assert record["f1"]["other_image_min"] == min(f1["other_image_seed0"], f1["other_image_seed1"])
    assert record["f1"]["other_image_mean"] == round((f1["other_image_seed0"] + f1["other_image_seed1"]) / 2, 2)
    assert record["f1_minus_own"]["none"] == round(f1["none"] - f1["own"], 2)
    with pytest.raises(SystemExit, match="is not empty"):  # a second measurement never mixes with the first
        caption_reliance.main(["--name", "tiny", "--model", str(run), "--dataset", str(dataset)])


def test_a_model_trained_without_captions_is_refused_in_one_line(tmp_path):
    run = tmp_path / "plain"
    run.mkdir()
    (run / "training_args.json").write_text(json.dumps({"use_captions": False}))
    with pytest.raises(SystemExit, match="trained without --use_captions"):
        caption_reliance.main(["--name", "x", "--model", str(run), "--dataset", str(tmp_path)])
