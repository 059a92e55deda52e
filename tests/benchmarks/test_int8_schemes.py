"""benchmarks/int8_schemes.py on a tiny random model and the tiny dataset: the schemes it reports are the ones it
built, the layers it keeps in float32 are the most sensitive it measured, and the record is complete."""

import json
import sys

import pytest
from helpers.tiny_models import REPO_ROOT
from helpers.train_fixtures import write_tiny_dataset


sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import int8_schemes  # noqa: E402


def run_on_a_tiny_model(make_model, tokenizer, tmp_path, *flags: str) -> dict:
    """`int8_schemes.main` on a tiny text-only model and the tiny dataset, results under `tmp_path / "results"`."""
    model = make_model(vision_model_name=None)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    write_tiny_dataset(tmp_path / "data")
    return int8_schemes.main(
        ["--model", str(tmp_path / "model"), "--dataset", str(tmp_path / "data"), "--name", "tiny",
         "--output_dir", str(tmp_path / "results"), *flags]
    )  # fmt: skip


def test_every_scheme_is_measured_against_float32_and_keeps_its_most_sensitive_layers(make_model, tokenizer, tmp_path):
    record = run_on_a_tiny_model(
        make_model, tokenizer, tmp_path,
        *["--calibration_examples", "16", "--keep_most_sensitive", "1", "3", "--batch_size", "8",
         "--num_batches", "2", "--repeats", "2", "--engines", "x86", "onednn", "--bfloat16",
         "--keep_float", "text_model.encoder.layer.0.*", "--rebatch_size", "3"],
    )  # fmt: skip
    written = json.loads((tmp_path / "results" / "int8_schemes_tiny.json").read_text())
    assert written["schemes"] == record["schemes"] and written["sensitivity"] == record["sensitivity"]
    assert str(tmp_path) not in json.dumps(written)  # no local path in a results file
    schemes = record["schemes"]
    names = ["per_tensor", "per_channel", "per_channel_keep1", "per_channel_keep3", "per_channel_rule"]
    quantized = [f"{n}/{engine}" for engine in ("x86", "onednn") for n in names]
    bfloat16 = ["bfloat16_autocast", "bfloat16_encoders", "bfloat16_whole_model"]
    assert list(schemes) == ["float32", *quantized, *bfloat16]
    assert all(schemes[name]["engine"] is None and schemes[name]["keep_float"] == [] for name in bfloat16)
    # a bfloat16 text encoder on a tiny model still mostly agrees with float32 (its logits are float32 again)
    assert schemes["bfloat16_encoders"]["agreement_with_float32"] >= 80
    assert {schemes[f"per_tensor/{engine}"]["engine"] for engine in ("x86", "onednn")} == {"x86", "onednn"}
    ranked = [row["layer"] for row in record["sensitivity"]]
    assert len(ranked) == len(set(ranked)) > 3 and all(not name.startswith("fusion.") for name in ranked)
    assert schemes["per_channel_keep3/onednn"]["keep_float"] == ranked[:3]
    assert schemes["per_channel_rule/x86"]["keep_float"] == ["text_model.encoder.layer.0.*"]
    assert schemes["per_tensor/x86"]["per_channel"] is False and schemes["per_tensor/x86"]["keep_float"] == []
    flips = [row["flips"] for row in record["sensitivity"]]
    assert flips == sorted(flips, reverse=True)
    for name, row in schemes.items():
        assert 0 <= row["f1"] <= 100 and row["examples_per_s"] > 0
        if name != "float32":
            assert row["f1_drop_points"] == round(schemes["float32"]["f1"] - row["f1"], 2)
            assert 0 <= row["agreement_with_float32"] <= 100 and row["speedup_vs_float32"] > 0
    assert record["eval_examples"] == 21 and record["rebatch_size"] == 3
    assert schemes["float32"]["same_prediction_rebatched"] == 100.0  # float32 ignores its batch mates
    assert all(0 <= row["same_prediction_rebatched"] <= 100 for row in schemes.values())
    assert record["calibration"] == {"split": "train", "examples": 16, "engine": "x86"}


def test_no_k_skips_the_sensitivity_pass(make_model, tokenizer, tmp_path):
    record = run_on_a_tiny_model(
        make_model, tokenizer, tmp_path,
        "--keep_most_sensitive", "--batch_size", "8", "--num_batches", "1", "--repeats", "1",
    )  # fmt: skip
    assert record["sensitivity"] == [] and record["calibration"]["examples"] == 0
    assert list(record["schemes"]) == ["float32", f"per_tensor/{record['calibration']['engine']}",
                                       f"per_channel/{record['calibration']['engine']}"]  # fmt: skip


def test_onnxruntime_is_a_scheme_that_agrees_with_float32_and_the_cpu_is_named(make_model, tokenizer, tmp_path):
    pytest.importorskip("onnxruntime")
    record = run_on_a_tiny_model(
        make_model, tokenizer, tmp_path,
        "--keep_most_sensitive", "--batch_size", "8", "--num_batches", "1", "--repeats", "1", "--onnxruntime",
    )  # fmt: skip
    row = record["schemes"]["onnxruntime"]
    assert row["agreement_with_float32"] == 100.0 and row["f1_drop_points"] == 0.0  # the same float32 arithmetic
    assert record["machine"]["onnxruntime"] and set(record["machine"]["cpu"]) >= {"vendor", "flags", "emulation"}
