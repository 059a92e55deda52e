"""What a publishing command may touch: staging only replaces its own folders, and only a built dataset's files
leave the machine (pushed through the real huggingface_hub client to a loopback stand-in for the Hub)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.hub_stub import HubStub
from helpers.tiny_models import REPO_ROOT
from helpers.train_fixtures import write_tiny_dataset

from datasets_scripts.publishing import STAGING_MARKER, commit_files, stage_atomically


SECRET = "hf_publishing_test_secret_0123456789"
SIZES = {"train": 12, "validation": 6}
SHARDS = {f"data/{split}-00000-of-00001.parquet" for split in SIZES}


def _built_dataset(folder: Path) -> Path:
    """A folder shaped like `python -m datasets_scripts.build`'s output, plus what users keep beside it."""
    write_tiny_dataset(folder / "data", SIZES)
    (folder / "README.md").write_text("---\npretty_name: Tiny\n---\n\n# Tiny\n", encoding="utf-8")
    (folder / "build_report.json").write_text(json.dumps({"splits": {}}), encoding="utf-8")
    (folder / ".roc_dataset_build.json").write_text('{"writer": "python -m datasets_scripts.build"}\n')
    return folder


def _users_extras(folder: Path, outside: Path) -> None:
    (folder / ".env").write_text(f"HF_TOKEN={SECRET}\n")
    (folder / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (folder / "data" / "backup.tar.gz").write_bytes(b"\0" * 4096)
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.md").write_text("private notes")
    outside.write_text("a file outside the dataset folder")
    (folder / "data" / "linked.txt").symlink_to(outside)


# ------------------------------------------------------------------------------------------------ staging
def test_a_foreign_folder_is_never_replaced(tmp_path):
    clone = tmp_path / "roc-mnre"  # a local clone of the model's Hub repository
    (clone / ".git").mkdir(parents=True)
    (clone / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (clone / "config.json").write_text("{}")
    (clone / "relation_bank.json").write_text("{}")
    with pytest.raises(ValueError, match="was not staged by this script"):
        stage_atomically(clone, lambda folder: (folder / "x").write_text("x"))
    assert (clone / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert sorted(p.name for p in clone.iterdir()) == [".git", "config.json", "relation_bank.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roc-mnre"], "no leftovers"


def test_an_earlier_staging_is_replaced_whole_and_a_failed_one_leaves_it(tmp_path):
    target = tmp_path / "staged"
    stage_atomically(target, lambda folder: (folder / "old.txt").write_text("old"))
    assert sorted(p.name for p in target.iterdir()) == [STAGING_MARKER, "old.txt"]

    def failing(folder: Path) -> None:
        (folder / "half.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        stage_atomically(target, failing)
    assert sorted(p.name for p in target.iterdir()) == [STAGING_MARKER, "old.txt"], "the old staging stays whole"
    stage_atomically(target, lambda folder: (folder / "new.txt").write_text("new"))
    assert sorted(p.name for p in target.iterdir()) == [STAGING_MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["staged"], "no leftovers"


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_a_staging_folder_overlapping_what_is_published_is_refused(tmp_path, where):
    dataset = _built_dataset(tmp_path / "project" / "data-dir")
    target = {"same": dataset, "inside": dataset / "staged", "around": tmp_path / "project"}[where]
    before = sorted(str(p) for p in dataset.rglob("*"))
    with pytest.raises(ValueError, match="would overlap"):
        stage_atomically(target, lambda folder: None, protected=[dataset])
    assert sorted(str(p) for p in dataset.rglob("*")) == before


# ------------------------------------------------------------------------------------------------- upload
def test_a_dataset_upload_sends_only_the_card_report_and_shards_in_one_commit(tmp_path):
    dataset = _built_dataset(tmp_path / "dataset")
    _users_extras(dataset, tmp_path / "outside.txt")
    script = (
        "import sys; from datasets_scripts.hub_folder import push_folder; "
        "print(push_folder(sys.argv[1], 'org/tiny', private=False))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    with HubStub(remote_files={"org/tiny": ["data/train-00000-of-00002.parquet", "notes.md"]}) as hub:
        env.update(HF_ENDPOINT=hub.url, HF_TOKEN=SECRET, HF_HOME=str(tmp_path / "hf-home"))
        done = subprocess.run(
            [sys.executable, "-c", script, str(dataset)], capture_output=True, text=True, env=env, cwd=REPO_ROOT
        )
    assert done.returncode == 0, done.stderr[-3000:]
    (commit,) = hub.commits
    assert set(commit.files) == {"README.md", "build_report.json", *SHARDS}
    assert commit.deleted == ["data/train-00000-of-00002.parquet"], "an old shard goes, the user's notes stay"
    assert all(SECRET.encode() not in content for content in commit.files.values())
    assert "uploading 4 files to the dataset org/tiny: README.md, build_report.json, data/train" in done.stderr
    left_out = ".env, data/backup.tar.gz, data/linked.txt, id_rsa, notes/todo.md"
    assert f"not uploaded (not part of a built dataset): {left_out}" in done.stderr
    assert SECRET not in done.stderr + done.stdout


def test_a_shard_that_links_out_of_the_folder_is_refused_before_any_request(tmp_path):
    dataset = _built_dataset(tmp_path / "dataset")
    key = tmp_path / "id_rsa"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (dataset / "data" / "test-00000-of-00001.parquet").symlink_to(key)
    from huggingface_hub import HfApi

    with HubStub() as hub:
        api = HfApi(endpoint=hub.url, token=SECRET)
        with pytest.raises(ValueError, match="outside"):
            commit_files(
                api,
                repo_id="org/tiny",
                repo_type="dataset",
                folder=dataset,
                files=["README.md", "data/test-00000-of-00001.parquet"],
                owned_patterns=[],
                commit_message="x",
            )
    assert hub.requests == []


def test_a_replace_that_cannot_move_the_old_folder_leaves_no_empty_parking_folder(tmp_path, monkeypatch):
    from datasets_scripts import publishing

    (tmp_path / "new").mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "kept.txt").write_text("old")

    def refuse(source, destination):
        raise PermissionError("read-only parent")

    monkeypatch.setattr(publishing.os, "replace", refuse)
    with pytest.raises(PermissionError):
        publishing.replace_folder(tmp_path / "new", tmp_path / "target")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "target"]
    assert (tmp_path / "target" / "kept.txt").read_text() == "old"


def test_a_report_that_is_not_json_is_named(tmp_path):
    from datasets_scripts.hub_folder import stage_for_upload

    dataset = _built_dataset(tmp_path / "dataset")
    (dataset / "build_report.json").write_text("not json {")
    with pytest.raises(ValueError, match=r"build_report.json: not valid JSON"):
        stage_for_upload(dataset, tmp_path / "staged")
