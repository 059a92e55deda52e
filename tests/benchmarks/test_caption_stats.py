"""benchmarks/caption_stats.py: what of each caption survives --use_captions, counted with the processor itself."""

import json
import sys
from pathlib import Path

import datasets
import pytest

from modeling_roc import EMBEDDED_TEXT_ENCODER, ROCProcessor


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import caption_stats  # noqa: E402


def _row(words: str, subject: str, object: str, image_id: str) -> dict:
    tokens = words.split()
    s, o = tokens.index(subject), tokens.index(object)
    return {
        "tokens": tokens,
        "subject": {"name": subject, "start": s, "end": s + 1, "type": "PERSON"},
        "object": {"name": object, "start": o, "end": o + 1, "type": "ORG"},
        "image_id": image_id,
    }


ROWS = [
    _row("Alice joined Google last year", "Alice", "Google", "img_a.jpg"),
    _row("Bob left UNICEF today", "Bob", "UNICEF", "img_b.jpg"),
    _row("Carol visited NASA with friends", "Carol", "NASA", "img_c.jpg"),
]
CAPTIONS = {
    "img_a": "a woman smiling in front of a large building with many windows and a sign",
    "img_b": "Bob on a stage",
}


def _columns(rows: list[dict]) -> dict:
    return {key: [row[key] for row in rows] for key in rows[0]}


def test_a_long_caption_is_shortened_to_the_budget_and_a_missing_one_is_not_counted():
    roomy = ROCProcessor.from_encoders(EMBEDDED_TEXT_ENCODER, max_length=128)
    tight = ROCProcessor.from_encoders(EMBEDDED_TEXT_ENCODER, max_length=24)
    captions = [CAPTIONS["img_a"], CAPTIONS["img_b"], None]

    whole = caption_stats.split_stats(roomy, _columns(ROWS), captions)
    assert whole["with_caption"] == 2 and whole["examples"] == 3
    assert whole["caption_tokens_kept_percent"] == 100.0 and whole["caption_kept_whole_percent"] == 100.0

    short = caption_stats.split_stats(tight, _columns(ROWS), captions)
    lengths, kept = zip(*caption_stats.caption_fit(tight, _columns(ROWS), captions))
    encoded = tight(_columns(ROWS)["tokens"][:1], _columns(ROWS)["subject"][:1], _columns(ROWS)["object"][:1],
                    captions=captions[:1])["attention_mask"].sum().item()  # fmt: skip
    assert encoded == 24  # the long caption fills the budget exactly
    assert kept[0] < lengths[0] and kept[1] == lengths[1]
    assert short["caption_kept_whole_percent"] == 50.0
    assert 0 < short["caption_tokens_kept_percent"] < 100


def test_a_caption_names_an_entity_only_when_its_name_appears_in_it():
    stats = caption_stats.split_stats(
        ROCProcessor.from_encoders(EMBEDDED_TEXT_ENCODER), _columns(ROWS), [CAPTIONS["img_a"], "BOB at UNICEF", None]
    )
    assert stats["names_subject_or_object_percent"] == 50.0  # the second caption names Bob (any case)
    assert stats["names_both_percent"] == 50.0


def test_the_script_reads_camim_files_by_image_and_skips_a_captioner_without_files(tmp_path, capsys):
    dataset = tmp_path / "mnre"
    dataset.mkdir()
    for split in ("train", "validation"):
        datasets.Dataset.from_list(ROWS).to_parquet(str(dataset / f"{split}-00000-of-00001.parquet"))
    captions = tmp_path / "captions"
    captions.mkdir()
    for suffix in ("train", "val"):
        lines = [repr({"img_id": f"{key}.jpg", "text": text}) for key, text in CAPTIONS.items()]
        (captions / f"BLIP_{suffix}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "stats.json"

    caption_stats.main(["--dataset", str(dataset), "--captions", str(captions), "--captioners", "BLIP", "cogvlm",
                        "--output", str(output)])  # fmt: skip

    record = json.loads(output.read_text())
    assert set(record["captioners"]) == {"BLIP"}
    assert record["captioners"]["BLIP"]["validation"]["with_caption"] == 2
    assert "cogvlm: no cogvlm_train.txt" in capsys.readouterr().out


def test_an_unknown_captioner_is_refused_in_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit):
        caption_stats.parse_args(["--dataset", str(tmp_path), "--captions", str(tmp_path), "--captioners", "gpt"])
    assert "invalid choice: 'gpt'" in capsys.readouterr().err
