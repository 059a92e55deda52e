import json

import datasets
import pytest
import torch
from helpers.release_fixtures import MORE_REL2ID, FakeTagger, write_more_fixture

from datasets_scripts import build
from datasets_scripts.more import MOREBuilder, load_object_boxes, load_rel2id
from datasets_scripts.source_lines import InvalidLineError


# Builds of partial fixtures warn about absent splits / image folders; tests that care use pytest.warns.
pytestmark = pytest.mark.filterwarnings("ignore:.*(split|image folder|could not be decoded).*:UserWarning")


def make_builder(tmp_path, data_dir, **kwargs):
    kwargs.setdefault("tagger", FakeTagger())
    return MOREBuilder(
        data_dir=str(data_dir),
        cache_dir=str(tmp_path / "hf_cache"),
        ner_cache_dir=str(tmp_path / "ner_cache"),
        progress=False,
        **kwargs,
    )


def build_dataset(builder):
    builder.download_and_prepare()
    return builder.as_dataset()


@pytest.fixture
def more_fixture(tmp_path):
    return write_more_fixture(tmp_path / "MORE")


def test_builds_splits_with_visual_objects(tmp_path, more_fixture):
    builder = make_builder(tmp_path, more_fixture["root"])
    dataset = build_dataset(builder)
    assert sorted(dataset) == ["test", "train", "validation"]
    assert all(len(split) == 3 for split in dataset.values())
    features = dataset["train"].features
    assert features["relation"].names == sorted(MORE_REL2ID, key=MORE_REL2ID.get)  # ordered by id, not by name
    assert features["object"]["box"] == datasets.List(datasets.Value("float32"), length=4)

    row = dataset["validation"][1]
    assert row["id"] == "more-validation-000001"
    assert row["subject"] == {"name": "Bruno Keller", "start": 0, "end": 2, "type": "PERSON", "coarse_type": "PER"}
    assert row["object"]["name"] == "man_1"
    assert row["object"]["box"] == pytest.approx(more_fixture["boxes"]["valid"]["more_valid_1.jpg"]["man_1"])
    assert row["object"]["type"] == row["object"]["coarse_type"] == "OBJECT"
    assert features["relation"].int2str(row["relation"]) == "/per/org/member_of"
    assert (row["source_file"], row["source_line"]) == ("valid.txt", 2)
    assert row["image"].size == (12, 8) and dataset["validation"][2]["image"] is None

    report = builder.report
    assert report["relation_bank"] == "more"
    assert report["splits"]["train"]["images"]["missing"] == 1
    assert report["splits"]["train"]["untyped_entities"] == {
        "subject": 0, "object": 0, "total": 0, "of": 3, "ner_ran": True
    }  # fmt: skip


def test_object_type_never_depends_on_the_relation(tmp_path, more_fixture):
    dataset = build_dataset(make_builder(tmp_path, more_fixture["root"]))
    assert set(dataset["train"]["relation"]) == {0, 1, 2}
    assert {row["object"]["type"] for row in dataset["train"]} == {"OBJECT"}


def test_missing_bank_labels_fail_before_anything_is_written(tmp_path):
    rel2id = {**MORE_REL2ID, "/per/misc/plays_for": 4}
    fixture = write_more_fixture(tmp_path / "MORE", rel2id=rel2id)
    tagger = FakeTagger()
    builder = make_builder(tmp_path, fixture["root"], tagger=tagger)
    with pytest.raises(ValueError) as info:
        builder.download_and_prepare(output_dir=str(tmp_path / "prepared"))
    assert "/per/misc/plays_for" in str(info.value)
    assert "python -m datasets_scripts.describe_relations" in str(info.value)
    assert tagger.calls == 0 and not (tmp_path / "prepared").exists()


def test_a_bank_file_covering_the_labels_is_accepted(tmp_path):
    rel2id = {**MORE_REL2ID, "/per/misc/plays_for": 4}
    fixture = write_more_fixture(tmp_path / "MORE", rel2id=rel2id)
    bank = tmp_path / "my_bank.json"
    bank.write_text(json.dumps({label: f"The relation {label}." for label in rel2id}))
    builder = make_builder(tmp_path, fixture["root"], relation_bank=str(bank))
    dataset = build_dataset(builder)
    assert dataset["train"].features["relation"].names[-1] == "/per/misc/plays_for"
    assert builder.report["relation_bank"] == str(bank)


BAD_OBJECT = repr(
    {
        "token": ["Alice", "Moreau", "waves"],
        "h": {"name": "Alice Moreau", "pos": [0, 2]},
        "t": {"name": "dog_3"},
        "img_id": "more_train_0.jpg",
        "relation": "none",
    }
)
UNKNOWN_LABEL = BAD_OBJECT.replace("'dog_3'", "'man_0'").replace("'none'", "'/per/per/friend'")


def test_bad_lines_fail_or_are_skipped_and_counted(tmp_path):
    fixture = write_more_fixture(tmp_path / "MORE", extra_lines={"train": [BAD_OBJECT, UNKNOWN_LABEL]})
    with pytest.raises(InvalidLineError, match=r"^train.txt:4: \[unknown_object\] object 'dog_3'"):
        build_dataset(make_builder(tmp_path, fixture["root"]))
    builder = make_builder(tmp_path, fixture["root"], skip_invalid=True)
    dataset = build_dataset(builder)
    assert len(dataset["train"]) == 3
    assert builder.report["splits"]["train"]["skipped"]["by_reason"] == {"unknown_object": 1, "unknown_relation": 1}


def test_a_missing_split_and_missing_data_dir(tmp_path):
    fixture = write_more_fixture(tmp_path / "MORE", splits=("train", "valid"))
    builder = make_builder(tmp_path, fixture["root"])
    with pytest.warns(UserWarning, match="no 'test' split"):
        dataset = build_dataset(builder)
    assert sorted(dataset) == ["train", "validation"]
    with pytest.raises(ValueError, match="cannot be downloaded automatically"):
        MOREBuilder(cache_dir=str(tmp_path / "hf"), ner="none")
    with pytest.raises(SystemExit):
        build.parse_args(["more", "--output_dir", str(tmp_path / "out")])


def test_object_dicts_load_without_unpickling_code(tmp_path):
    path = tmp_path / "ent_train_dict.pth"
    torch.save({"a.jpg": {"man_0": torch.tensor([0.5, 0.5, 0.2, 0.2])}}, path)
    assert load_object_boxes(path)["a.jpg"]["man_0"].tolist() == pytest.approx([0.5, 0.5, 0.2, 0.2])
    torch.save({"a.jpg": {"man_0": FakeTagger()}}, path)  # an arbitrary object: refused by weights_only=True
    with pytest.raises(ValueError, match="ent_train_dict.pth: refused, it holds more than tensors") as refused:
        load_object_boxes(path)
    assert "weights_only=False" not in str(refused.value), "never advise unpickling it"
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match="ent_train_dict.pth: not a readable torch file"):
        load_object_boxes(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [({"a": 0, "b": 2}, "ids must be the integers 0..1"), ([], "non-empty JSON object"), ({"a": "0"}, "ids must")],
)
def test_rel2id_is_validated(tmp_path, content, message):
    path = tmp_path / "rel2id.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message):
        load_rel2id(path)


def test_cli_builds_a_folder_that_load_dataset_reads(tmp_path, more_fixture):
    args = ["more", "--data_dir", str(more_fixture["root"] / "txt"), "--output_dir", str(tmp_path / "out")]
    args += ["--ner_cache_dir", str(tmp_path / "ner"), "--cache_dir", str(tmp_path / "hf"), "--no_progress"]
    build.main(args, tagger=FakeTagger())
    card = (tmp_path / "out" / "README.md").read_text()
    assert "relation bank `more`" in card and "`OBJECT`" in card
    dataset = datasets.load_dataset(str(tmp_path / "out"), cache_dir=str(tmp_path / "load_cache"))
    assert sorted(dataset) == ["test", "train", "validation"]
    row = dataset["train"][0]
    assert row["object"]["box"] == pytest.approx([0.5, 0.5, 0.25, 0.5])
    assert dataset["train"].features["relation"].names == sorted(MORE_REL2ID, key=MORE_REL2ID.get)
