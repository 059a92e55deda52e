"""CAMIM's MLLM captions of the MNRE images: reading both formats, the builder's `caption` column, the download."""

import json

import datasets
import pytest
from helpers.release_fixtures import MNRE_DIR, FakeTagger, write_mnre_fixture

from datasets_scripts import build
from datasets_scripts.captions import CAPTION_SHA256, CAPTIONERS, caption_file_name, read_caption_file
from datasets_scripts.mnre import MNREBuilder


CAPTIONS_DIR = MNRE_DIR / "captions"


def _write_txt_captions(folder, split_suffix, captions: dict):
    lines = [repr({"img_id": image_id, "text": text}) for image_id, text in captions.items()]
    (folder / f"caption_{split_suffix}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_both_camim_formats_are_keyed_by_image_stem(tmp_path):
    _write_txt_captions(tmp_path, "train", {"a.jpg": "A man on a stage.", "b.jpg": "  ", "c.png": "It's 'quoted'."})
    (tmp_path / "llavanext_train.json").write_text(json.dumps({"a": "\nA man on a stage.", "b": ""}))
    assert read_caption_file(tmp_path / "caption_train.txt") == {
        "a": "A man on a stage.",
        "b": None,
        "c": "It's 'quoted'.",
    }
    assert read_caption_file(tmp_path / "llavanext_train.json") == {"a": "A man on a stage.", "b": None}


def test_a_bad_caption_line_names_file_and_line(tmp_path):
    (tmp_path / "caption_train.txt").write_text(repr({"img_id": "a.jpg", "text": "ok"}) + "\n__import__('os')\n")
    with pytest.raises(ValueError, match=r"caption_train.txt:2: not a Python-literal dict"):
        read_caption_file(tmp_path / "caption_train.txt")


def test_every_captioner_and_split_has_a_pinned_sum():
    assert {caption_file_name(c, s) for c in CAPTIONERS for s in ("train", "validation", "test")} == set(
        CAPTION_SHA256
    )


def _build(tmp_path, fixture_root, *extra):
    args = ["mnre", "--data_dir", str(fixture_root), "--output_dir", str(tmp_path / "out"), "--no_progress"]
    args += ["--ner_cache_dir", str(tmp_path / "ner"), "--cache_dir", str(tmp_path / "hf"), *extra]
    return build.main(args, tagger=FakeTagger())


def test_the_builder_adds_a_caption_column_and_counts_the_missing(tmp_path, capsys):
    fixture = write_mnre_fixture(tmp_path / "MNRE", splits=("train", "val", "test"), images=None)
    captions = tmp_path / "captions"
    captions.mkdir()
    _write_txt_captions(captions, "train", {f"mnre_train_{i}.jpg": f"Caption {i}." for i in range(4)})  # 4 of 5
    _write_txt_captions(captions, "test", {f"mnre_test_{i}.jpg": f"Test caption {i}." for i in range(5)})
    # no caption_val.txt: validation gets None everywhere, with a warning
    report = _build(tmp_path, fixture["root"], "--captions", str(captions))
    assert "MNRE validation: no caption file caption_val.txt" in capsys.readouterr().err
    dataset = datasets.load_dataset(str(tmp_path / "out"), cache_dir=str(tmp_path / "load"))
    assert dataset["train"]["caption"] == ["Caption 0.", "Caption 1.", "Caption 2.", "Caption 3.", None]
    assert dataset["validation"]["caption"] == [None] * 5
    assert dataset["test"]["caption"] == [f"Test caption {i}." for i in range(5)], "the test split gets its captions"
    counts = {split: info["captions"] for split, info in report["splits"].items()}
    assert counts["train"] == {"captioner": "caption", "with_caption": 4, "without_caption": 1}
    assert counts["validation"]["without_caption"] == 5
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Qwen-VL" in card and "CAMIM" in card


def test_without_captions_there_is_no_caption_column(tmp_path):
    fixture = write_mnre_fixture(tmp_path / "MNRE", splits=("train",), images=None)
    _build(tmp_path, fixture["root"])
    assert "caption" not in datasets.load_dataset(str(tmp_path / "out"))["train"].column_names


def test_a_caption_download_is_checked_against_its_pinned_sum(tmp_path):
    fixture = write_mnre_fixture(tmp_path / "MNRE", splits=("train",), images=None)
    fake = tmp_path / "caption_train.txt"
    _write_txt_captions(tmp_path, "train", {"mnre_train_0.jpg": "not the real file"})

    class Downloads:
        def download(self, urls):
            assert urls == {
                "train": f"https://github.com/zefanZhang-cn/CAMIM/raw/{'df328a3948426007cfc93b0ece7f7a14212b0988'}/CAMIM/data/caption/caption_train.txt"
            }
            return {"train": str(fake)}

    builder = MNREBuilder(
        data_dir=str(fixture["root"]), captioner="caption", tagger=FakeTagger(), cache_dir=str(tmp_path / "hf")
    )
    builder._start_report()
    with pytest.raises(ValueError, match="Checksum mismatch for .*caption_train.txt"):
        builder._load_captions(["train"], Downloads())


def test_captions_are_an_mnre_option_only(tmp_path, capsys):
    with pytest.raises(SystemExit):
        build.parse_args(["more", "--data_dir", str(tmp_path), "--output_dir", "o", "--captions", str(tmp_path)])
    assert "MNRE options" in capsys.readouterr().err


@pytest.mark.skipif(not CAPTIONS_DIR.is_dir(), reason=f"CAMIM captions not found at {CAPTIONS_DIR}")
@pytest.mark.parametrize("captioner", sorted(CAPTIONERS))
def test_real_captions_cover_every_mnre_image(captioner):
    from datasets_scripts.mnre import MNRE_LABELS
    from datasets_scripts.source_lines import read_source_file

    for split, text_file in (("train", "mnre_train.txt"), ("validation", "mnre_val .txt")):
        captions = read_caption_file(CAPTIONS_DIR / caption_file_name(captioner, split))
        records = read_source_file(MNRE_DIR / "mnre_txt" / text_file, labels=MNRE_LABELS).records
        images = {r.image_id.rsplit(".", 1)[0] for r in records}
        assert images <= set(captions), (captioner, split, len(images - set(captions)))
        assert len(images) == {"train": 7356, "validation": 931}[split]


def test_caption_file_problems_name_the_file(tmp_path, caplog):
    latin = tmp_path / "caption_train.txt"
    latin.write_bytes("{'img_id': 'a.jpg', 'text': 'caf\xe9'}\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"{latin}: not UTF-8 text"):
        read_caption_file(latin)

    bom = tmp_path / "caption_val.txt"
    bom.write_text("{'img_id': 'a.jpg', 'text': 'A dog.'}\n", encoding="utf-8-sig")
    assert read_caption_file(bom) == {"a": "A dog."}

    twice = tmp_path / "caption_test.txt"
    twice.write_text("{'img_id': 'a.jpg', 'text': 'A dog.'}\n{'img_id': 'a.jpg', 'text': 'A cat.'}\n")
    with pytest.raises(ValueError, match=f"{twice}:2: a second, different caption of 'a.jpg' .*line 1"):
        read_caption_file(twice)

    empty = tmp_path / "cogvlm_train.txt"
    empty.write_text("")
    assert read_caption_file(empty) == {} and "empty caption file" in caplog.text


def test_a_folder_with_no_file_of_the_captioner_is_an_error(tmp_path):
    fixture = write_mnre_fixture(tmp_path / "MNRE", splits=("train", "val"), images=None)
    captions = tmp_path / "captions"
    captions.mkdir()
    _write_txt_captions(captions, "train", {"mnre_train_0.jpg": "A caption."})  # Qwen's, not BLIP's
    with pytest.raises(SystemExit, match="no caption file of the BLIP captioner"):
        _build(tmp_path, fixture["root"], "--captions", str(captions), "--captioner", "BLIP")
    assert not (tmp_path / "out").exists()
