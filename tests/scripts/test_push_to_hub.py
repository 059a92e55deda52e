"""push_to_hub.py as a user runs it: staging a tiny trained run, the fresh-process offline check, the model card, and
the upload itself against a loopback stand-in for the Hub (`HF_ENDPOINT`), with a token that must never leak."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.hub_stub import HubStub
from helpers.tiny_models import REPO_ROOT
from helpers.train_fixtures import BANK, LABELS, write_bank, write_tiny_dataset, write_tiny_encoder
from huggingface_hub import ModelCard

from datasets_scripts.publishing import STAGING_MARKER
from datasets_scripts.redaction import redact_local_paths
from roc_mre.hub.model_card import (
    METRICS,
    PIPELINE_TAG,
    base_model_id,
    build_model_card,
    relation_bank_payload,
    runnable_command,
    usage_snippet,
)


SECRET = "hf_test_secret_123"
MODEL_REPO = "org/roc-tiny"
DATASET_REPO = "org/tiny-roc"
NER_BACKEND = "fake-ner==1.0"
SIZES = {"train": 48, "validation": 21, "test": 15}
# What AutoModel / AutoProcessor / pipeline need, plus the relation bank and the card.
REQUIRED_FILES = {
    "README.md",
    "config.json",
    "configuration_roc.py",
    "modeling_roc.py",
    "card_roc.py",  # imported by modeling_roc.py's push_to_hub: a published model can push itself again
    "processing_roc.py",
    "pipeline_roc.py",
    "precision_roc.py",  # imported by pipeline_roc.py: the pipeline's precision="auto"
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "processor_config.json",
    "relation_tokenizer/tokenizer.json",
    "relation_tokenizer/tokenizer_config.json",
    "relation_bank.json",
    "eval_results.json",
}
EXAMPLE = {
    "tokens": "Alice married Bob in a small ceremony".split(),
    "subject": {"start": 0, "end": 1, "type": "PERSON"},
    "object": {"start": 2, "end": 3, "type": "PERSON"},
}
# A user's fresh interpreter: offline, empty HF cache, the project package unimportable.
RELOAD_SCRIPT = """
import json, sys
sys.modules["modeling_roc"] = None
import torch
from transformers import AutoModel, AutoProcessor, pipeline

folder, example = sys.argv[1], json.loads(sys.argv[2])
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
with torch.no_grad():
    logits = model(**processor(example["tokens"], example["subject"], example["object"])).logits
pipe = pipeline("multimodal-relation-extraction", model=folder, trust_remote_code=True, device=-1,
                precision="float32")  # the run's numbers; "auto" would pick bfloat16 on some CPUs
print(json.dumps({"module": type(model).__module__, "logits": logits.tolist(), "pipeline": pipe(example, top_k=3)}))
"""


def _load_push_module():
    spec = importlib.util.spec_from_file_location("push_to_hub", REPO_ROOT / "push_to_hub.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_hub_dataset(folder: Path) -> Path:
    """A dataset folder shaped like `datasets_scripts.build`'s: README.md with `configs:`, data/, build_report.json."""
    write_tiny_dataset(folder / "data", SIZES)
    data_files = "\n".join(f"  - {{split: {split}, path: data/{split}-*}}" for split in SIZES)
    (folder / "README.md").write_text(
        "---\npretty_name: Tiny relations\nconfigs:\n- config_name: default\n  data_files:\n"
        f"{data_files}\n---\n\n# Tiny relations\n\n```python\n"
        'dataset = load_dataset("path/to/this/folder")\n```\n',
        encoding="utf-8",
    )
    report = {
        "dataset": "tiny",
        "data_source": str(folder.resolve() / "release" / "mnre_txt"),  # builds record where they read from
        "ner_backend": NER_BACKEND,
        "splits": {
            split: {"examples": n, "untyped_entities": {"total": 1, "of": 2 * n}, "images": {"found": 0}}
            for split, n in SIZES.items()
        },
    }
    (folder / "build_report.json").write_text(json.dumps(report), encoding="utf-8")
    return folder


def _env(tmp_path: Path, **extra: str) -> dict:
    """The tool's environment: its own empty HF_HOME (no stored login), HF_TOKEN set to a recognisable secret."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_TOKEN=SECRET, TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def _push(args: list[str], env: dict, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO_ROOT / "push_to_hub.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


def _assert_no_secret_in_folder(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("push-inputs")
    return {
        "dataset": write_hub_dataset(root / "dataset"),
        "bank": write_bank(root / "bank.json"),
        "encoder": write_tiny_encoder(root / "encoder"),
    }


@pytest.fixture(scope="module")
def trained_run(inputs, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("push-run") / "roc-tiny"
    command = [
        sys.executable, str(REPO_ROOT / "train.py"),
        "--dataset_name_or_path", str(inputs["dataset"]),
        "--relation_bank", str(inputs["bank"]),
        "--text_encoder", str(inputs["encoder"]),
        "--output_dir", str(output_dir),
        "--num_train_epochs", "1",
        "--num_fusion_layers", "1",
        "--per_device_train_batch_size", "8",
        "--seed", "7",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return output_dir


@pytest.fixture(scope="module")
def dry_run(trained_run, inputs, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("push-dry")
    staged = tmp / "staged"
    args = [
        "--model_dir", str(trained_run),
        "--repo_id", MODEL_REPO,
        "--dataset_dir", str(inputs["dataset"]),
        "--dataset_repo_id", DATASET_REPO,
        "--dry_run",
        "--staging_dir", "staged",  # relative to the working directory
    ]  # fmt: skip
    done = _push(args, _env(tmp, HF_HUB_OFFLINE="1"), cwd=tmp)
    assert done.returncode == 0, done.stderr[-4000:]
    return {"staged": staged, "summary": json.loads(done.stdout), "process": done}


# ------------------------------------------------------------------------------------------- card (no process)
def _config(bank: dict[str, str], **extra) -> dict:
    labels = list(bank)
    return {
        "model_type": "roc",
        "relation_bank": dict(sorted(bank.items())),  # a saved config.json sorts the bank's keys
        "id2label": {str(i): label for i, label in enumerate(labels)},
        "head": "retrieval",
        "relation_source": "description",
        **extra,
    }


def _eval_results(splits: dict[str, dict]) -> dict:
    primary = "test" if "test" in splits else "validation"
    return {
        "dataset": "data/tiny",
        "dataset_config": None,
        "split": primary,
        "best_epoch": 2,
        "world_size": 1,
        "splits": {split: {"metrics": metrics} for split, metrics in splits.items()},
        "metrics": splits[primary],
        "command": "python train.py --config configs/tiny.yaml --output_dir runs/tiny",
    }


METRICS_VALIDATION = {"accuracy": 74.45, "precision": 62.11, "recall": 60.42, "f1": 61.25, "num_examples": 1624}
METRICS_TEST = {"accuracy": 71.0, "precision": 58.5, "recall": 57.03, "f1": 57.76, "num_examples": 1614}


def test_relation_bank_file_keeps_the_model_label_order():
    payload = relation_bank_payload(_config(BANK))
    assert payload == {"labels": LABELS, "descriptions": BANK}
    assert list(payload["descriptions"]) == LABELS


def test_card_metrics_are_eval_results_per_split_in_percent():
    eval_results = _eval_results({"validation": METRICS_VALIDATION, "test": METRICS_TEST})
    card = build_model_card(repo_id="org/roc-x", config=_config(BANK), eval_results=eval_results)
    reloaded = ModelCard(str(card))
    got = {(r.dataset_split, r.metric_type, r.metric_config): r.metric_value for r in reloaded.data.eval_results}
    want = {
        (split, metric_type, config): record["metrics"][key]
        for split, record in eval_results["splits"].items()
        for key, _, metric_type, config in METRICS
        if key in record["metrics"]  # results written before the None-inclusive family have only the field's
    }
    assert got == want
    assert {r.metric_type for r in reloaded.data.eval_results} <= {"accuracy", "precision", "recall", "f1"}
    assert {r.metric_name for r in reloaded.data.eval_results} == {
        name for k, name, _, _ in METRICS if "weighted" not in k
    }
    assert all(r.metric_name.endswith("(%)") for r in reloaded.data.eval_results)
    assert {r.task_type for r in reloaded.data.eval_results} == {"relation-extraction"}
    assert {r.dataset_type for r in reloaded.data.eval_results} == {"data/tiny"}  # no such folder here: a Hub id
    assert reloaded.data.pipeline_tag == PIPELINE_TAG == "other"
    assert "| test | 1,614 | 71.0 | 58.5 | 57.03 | 57.76 |" in reloaded.text
    assert runnable_command(eval_results["command"]) in reloaded.text
    assert runnable_command(eval_results["command"]).startswith("roc-train --config")  # the installed command


def test_card_says_the_ner_backend_is_unknown_without_a_build_report():
    card = build_model_card(
        repo_id="org/roc-x", config=_config(BANK), eval_results=_eval_results({"validation": METRICS_VALIDATION})
    )
    assert "NER backend (entity types): **unknown**" in card.text
    report = {
        "ner_backend": "stanza",
        "splits": {"train": {"examples": 10, "untyped_entities": {"total": 5, "of": 20}}},
    }
    card = build_model_card(
        repo_id="org/roc-x",
        config=_config(BANK),
        eval_results=_eval_results({"validation": METRICS_VALIDATION}),
        build_report=report,
        dataset_repo_id="org/mnre-roc",
    )
    assert "**`stanza`**" in card.text and "25.0% of the entity spans" in card.text
    assert card.data.datasets == ["org/mnre-roc"]
    assert {r.dataset_type for r in card.data.eval_results} == {"org/mnre-roc"}


def test_a_local_dataset_folder_is_named_by_its_family_not_its_path(tmp_path):
    from roc_mre.hub.model_card import hub_dataset_type

    for name in ("mnre", "more-v2", "x"):
        (tmp_path / name).mkdir()
    assert hub_dataset_type(str(tmp_path / "mnre")) == "mnre" and hub_dataset_type(str(tmp_path / "more-v2")) == "more"
    assert hub_dataset_type(str(tmp_path / "x")) == "custom"
    assert hub_dataset_type("org/mnre-roc") == "org/mnre-roc"


def test_base_model_only_names_hub_ids():
    assert base_model_id("embedded:all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert base_model_id("google-bert/bert-base-uncased") == "google-bert/bert-base-uncased"
    assert base_model_id("/tmp/encoder") is None
    assert base_model_id("./encoder") is None
    assert base_model_id(None) is None


def test_usage_snippet_adds_relations_only_when_the_model_can_retrieve_new_ones():
    retrieval = usage_snippet("org/roc-x", _config(BANK))
    assert "set_relation_bank" in retrieval and 'score_offsets={"/org/per/founded_by": 0.125}' in retrieval
    assert "pipe(example, relations={" in retrieval and '"threshold": 0.3' in retrieval
    compile(retrieval, "snippet", "exec")
    fixed = usage_snippet("org/roc-x", _config(BANK, head="classification"))
    assert "set_relation_bank" not in fixed and "fixed label set" in fixed
    compile(fixed, "snippet", "exec")


def test_every_flag_has_help():
    parser = _load_push_module().build_parser()
    flags = {option for action in parser._actions for option in action.option_strings}
    assert {"--model_dir", "--repo_id", "--private", "--revision", "--branch", "--commit_message"} <= flags
    assert {"--dataset_dir", "--dataset_repo_id", "--dry_run", "--staging_dir"} <= flags
    assert all(action.help for action in parser._actions)


# -------------------------------------------------------------------------------------------------- dry run
@pytest.mark.slow
def test_dry_run_stages_what_the_model_needs_and_no_checkpoint(dry_run, trained_run, inputs):
    staged, summary = dry_run["staged"], dry_run["summary"]
    files = {str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()}
    assert files == {*summary["files"], STAGING_MARKER}, "the marker is what lets a later staging replace it"
    assert REQUIRED_FILES <= files
    assert (trained_run / "checkpoints").is_dir() and not any(f.startswith("checkpoints") for f in files)
    assert not any(f.startswith("predictions_") for f in files)
    assert json.loads((staged / "relation_bank.json").read_text()) == {"labels": LABELS, "descriptions": BANK}
    assert summary["dry_run"] is True and "commit_url" not in summary
    assert summary["verification"]["example"] == "test tiny-test-0000"
    assert summary["verification"]["matches_recorded_prediction"] is True
    printed = summary["verification"]["card_snippet_output"].strip().splitlines()  # the card's snippet ran:
    # pipeline, AutoModel argmax, call-time relations, pipeline with a new relation, the same with a score offset
    assert len(printed) == 5 and printed[1] in LABELS
    assert "'relation': 'spouse'" in printed[2] or "'relation': '/org/per/founded_by'" in printed[2], printed[2]
    assert summary["verification"]["card_snippet_labels"] == [*LABELS, "/org/per/founded_by"]
    assert summary["verification"]["card_snippet_score_offsets"] == {"/org/per/founded_by": 0.125}
    dataset_staged = Path(summary["dataset"]["staged_dir"])
    assert f'load_dataset("{DATASET_REPO}")' in (dataset_staged / "README.md").read_text()
    assert summary["dataset"]["splits"] == sorted(SIZES)
    published_report = json.loads((dataset_staged / "build_report.json").read_text())
    assert published_report["data_source"] == ".../release/mnre_txt"  # no local folder names on the Hub
    assert json.loads((inputs["dataset"] / "build_report.json").read_text())["data_source"].startswith("/")
    _assert_no_secret(dry_run["process"].stdout, dry_run["process"].stderr)
    _assert_no_secret_in_folder(staged)
    _assert_no_secret_in_folder(dataset_staged)


@pytest.mark.slow
def test_staged_folder_loads_offline_in_a_fresh_process_with_identical_predictions(dry_run, trained_run, tmp_path):
    from modeling_roc import ROCModel, ROCProcessor, ROCRelationExtractionPipeline

    model = ROCModel.from_pretrained(trained_run).eval()
    processor = ROCProcessor.from_pretrained(trained_run)
    with torch.no_grad():
        expected_logits = model(**processor(EXAMPLE["tokens"], EXAMPLE["subject"], EXAMPLE["object"])).logits
    expected = ROCRelationExtractionPipeline(model=model, processor=processor, device=-1)(EXAMPLE, top_k=3)

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    env.pop("HF_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(dry_run["staged"]), json.dumps(EXAMPLE)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert reloaded["module"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(reloaded["logits"]), expected_logits, rtol=0, atol=1e-6)
    assert [r["relation"] for r in reloaded["pipeline"]] == [r["relation"] for r in expected]
    assert [r["score"] for r in reloaded["pipeline"]] == pytest.approx([r["score"] for r in expected], abs=1e-6)


@pytest.mark.slow
def test_staged_card_metrics_equal_the_runs_eval_results(dry_run, trained_run):
    eval_results = json.loads((trained_run / "eval_results.json").read_text())
    card = ModelCard.load(dry_run["staged"] / "README.md")
    got = {(r.dataset_split, r.metric_type, r.metric_config): r.metric_value for r in card.data.eval_results}
    want = {
        (split, metric_type, config): record["metrics"][key]
        for split, record in eval_results["splits"].items()
        for key, _, metric_type, config in METRICS
    }
    assert got == want and set(eval_results["splits"]) == {"validation", "test"}
    assert {r.dataset_type for r in card.data.eval_results} == {DATASET_REPO}
    assert {r.dataset_name for r in card.data.eval_results} == {"Tiny relations"}
    published = redact_local_paths(eval_results)  # local paths cut, everything else as recorded
    assert published["model"] == ".../push-run0/roc-tiny" and published["metrics"] == eval_results["metrics"]
    assert json.loads((dry_run["staged"] / "eval_results.json").read_text()) == published
    assert runnable_command(published["command"]) in card.text and eval_results["command"] not in card.text
    assert f"**`{NER_BACKEND}`**" in card.text
    assert card.data.pipeline_tag == "other" and card.data.library_name == "transformers"


@pytest.mark.slow
def test_foreign_staging_folder_is_never_emptied(trained_run, tmp_path):
    foreign = tmp_path / "not-ours"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    done = _push(
        ["--model_dir", str(trained_run), "--repo_id", MODEL_REPO, "--dry_run", "--staging_dir", str(foreign)],
        _env(tmp_path, HF_HUB_OFFLINE="1"),
    )
    assert done.returncode != 0 and "not staged by this script" in done.stderr
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_a_staging_dir_never_deletes_a_clone_or_the_dataset_named_like_its_copy(trained_run, inputs, tmp_path):
    """`--staging_dir X` used to empty X if it held config.json + relation_bank.json (a local clone of the Hub
    repo, .git and all) and X-dataset if it held README.md + data/ (here: the --dataset_dir itself)."""
    clone = tmp_path / "roc-tiny"
    shutil.copytree(trained_run, clone, ignore=shutil.ignore_patterns("checkpoints"))
    (clone / ".git").mkdir()
    (clone / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    dataset = tmp_path / "roc-tiny-dataset"
    shutil.copytree(inputs["dataset"], dataset)

    def tree() -> list[str]:
        return sorted(str(p.relative_to(tmp_path)) for folder in (clone, dataset) for p in folder.rglob("*"))

    before = tree()
    base = ["--model_dir", str(trained_run), "--repo_id", MODEL_REPO, "--dry_run"]
    for staging in (clone, tmp_path / "fresh"):
        args = [*base, "--staging_dir", str(staging), "--dataset_dir", str(dataset), "--dataset_repo_id", DATASET_REPO]
        if staging != clone:  # a fresh model staging whose dataset copy would land on the dataset folder itself
            dataset.rename(tmp_path / "fresh-dataset")
            args[args.index(str(dataset))] = str(tmp_path / "fresh-dataset")
        done = _push(args, _env(tmp_path, HF_HUB_OFFLINE="1"))
        assert done.returncode != 0
        assert (
            done.stderr.strip()
            .splitlines()[-1]
            .startswith(
                f"error: {staging.resolve()} is not empty and was not staged"
                if staging == clone
                else "error: staging folder"
            )
        ), done.stderr[-2000:]
        if staging != clone:
            (tmp_path / "fresh-dataset").rename(dataset)
    assert tree() == before and (clone / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"


@pytest.mark.slow
def test_only_the_models_own_files_are_staged_and_links_out_of_the_run_are_refused(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    (run / "relation_tokenizer" / "notes.txt").write_text(SECRET)
    (run / "per_relation_private.json").write_text(json.dumps({"token": SECRET}))
    (run / ".env").write_text(f"HF_TOKEN={SECRET}")
    done = _push(
        ["--model_dir", str(run), "--repo_id", MODEL_REPO, "--dry_run", "--staging_dir", str(tmp_path / "staged")],
        _env(tmp_path, HF_HUB_OFFLINE="1"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    staged = {str(p.relative_to(tmp_path / "staged")) for p in (tmp_path / "staged").rglob("*") if p.is_file()}
    assert REQUIRED_FILES <= staged
    assert not {"relation_tokenizer/notes.txt", "per_relation_private.json", ".env"} & staged
    _assert_no_secret_in_folder(tmp_path / "staged")

    outside = tmp_path / "outside.md"
    outside.write_text(SECRET)
    (run / "per_relation_validation.md").unlink()
    (run / "per_relation_validation.md").symlink_to(outside)
    done = _push(
        ["--model_dir", str(run), "--repo_id", MODEL_REPO, "--dry_run", "--staging_dir", str(tmp_path / "staged2")],
        _env(tmp_path, HF_HUB_OFFLINE="1"),
    )
    assert done.returncode != 0 and "outside" in done.stderr and "per_relation_validation.md" in done.stderr
    assert not (tmp_path / "staged2").exists()
    _assert_no_secret(done.stdout, done.stderr)


@pytest.mark.slow
def test_the_dataset_push_sends_only_its_card_report_and_shards(trained_run, inputs, tmp_path):
    dataset = tmp_path / "dataset"
    shutil.copytree(inputs["dataset"], dataset)
    (dataset / ".env").write_text(f"HF_TOKEN={SECRET}\n")
    (dataset / "data" / "backup.tar.gz").write_bytes(b"\0" * 1024)
    args = [
        "--model_dir", str(trained_run), "--repo_id", MODEL_REPO, "--staging_dir", str(tmp_path / "staged"),
        "--dataset_dir", str(dataset), "--dataset_repo_id", DATASET_REPO,
    ]  # fmt: skip
    with HubStub() as hub:
        done = _push(args, _env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE=None))
    assert done.returncode == 0, done.stderr[-4000:]
    (dataset_commit,) = [c for c in hub.commits if c.repo_type == "datasets"]
    assert set(dataset_commit.files) == {
        "README.md",
        "build_report.json",
        *(f"data/{split}-00000-of-00001.parquet" for split in SIZES),
    }
    assert "not published (not part of a built dataset): .env, data/backup.tar.gz" in done.stderr
    assert "in one commit: README.md, all_results.json, card_roc.py, config.json" in done.stderr, "the list first"
    _assert_no_secret(done.stdout, done.stderr)


# ---------------------------------------------------------------------------------------------------- upload
@pytest.mark.slow
def test_upload_sends_one_commit_of_the_staged_folder_to_a_loopback_hub(trained_run, inputs, tmp_path):
    staged = tmp_path / "staged"
    args = [
        "--model_dir", str(trained_run),
        "--repo_id", MODEL_REPO,
        "--private",
        "--branch", "dev",
        "--commit_message", "First ROC release",
        "--dataset_dir", str(inputs["dataset"]),
        "--dataset_repo_id", DATASET_REPO,
        "--staging_dir", str(staged),
    ]  # fmt: skip
    with HubStub() as hub:
        assert hub.url.startswith("http://127.0.0.1:")
        done = _push(args, _env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE=None))
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout)

    assert {(r.get("type", "model"), r["organization"], r["name"], r["visibility"]) for r in hub.repos} == {
        ("model", "org", "roc-tiny", "private"),
        ("dataset", "org", "tiny-roc", "private"),
    }
    assert hub.branches == [(MODEL_REPO, "dev")]
    model_commits = [c for c in hub.commits if c.repo_type == "models"]
    assert len(model_commits) == 1
    commit = model_commits[0]
    assert (commit.repo_id, commit.revision, commit.summary) == (MODEL_REPO, "dev", "First ROC release")
    assert set(commit.files) == set(summary["files"]) and REQUIRED_FILES <= set(commit.files)
    assert not any(path.startswith("checkpoints") for path in commit.files)
    published_config = json.loads(commit.files["config.json"])
    assert published_config["text_config"]["_name_or_path"] == ".../push-inputs0/encoder"  # local path cut
    for nested in ("text_config", "relation_config"):
        published_config[nested].pop("_name_or_path")
    local_config = json.loads((trained_run / "config.json").read_text())
    for nested in ("text_config", "relation_config"):
        local_config[nested].pop("_name_or_path")
    assert published_config == local_config
    assert commit.files["model.safetensors"] == (trained_run / "model.safetensors").read_bytes()
    assert json.loads(commit.files["relation_bank.json"]) == {"labels": LABELS, "descriptions": BANK}
    assert commit.files["README.md"] == (staged / "README.md").read_bytes()
    assert b"model-index:" in commit.files["README.md"]
    assert summary["commit_url"].startswith(hub.url)

    (dataset_commit,) = [c for c in hub.commits if c.repo_type == "datasets"]
    assert dataset_commit.repo_id == DATASET_REPO
    assert {f"data/{split}-00000-of-00001.parquet" for split in SIZES} <= set(dataset_commit.files)
    assert f'load_dataset("{DATASET_REPO}")'.encode() in dataset_commit.files["README.md"]
    assert 'load_dataset("path/to/this/folder")' in (inputs["dataset"] / "README.md").read_text()  # source intact

    # the token from HF_TOKEN authenticated every write, and shows up nowhere else
    writes = [r for r in hub.requests if r.method == "POST" and r.path != "/api/validate-yaml"]
    assert writes and all(r.authorization == f"Bearer {SECRET}" for r in writes)
    _assert_no_secret(done.stdout, done.stderr)
    for c in hub.commits:
        assert all(SECRET.encode() not in content for content in c.files.values())
    _assert_no_secret_in_folder(staged)
    # no absolute local path reaches a published file (the run folder and dataset live under pytest's tmp folder)
    local_root = str(Path(trained_run).parents[1]).encode()
    for c in hub.commits:
        leaked = [name for name, content in c.files.items() if local_root in content]
        assert leaked == [], (c.repo_type, leaked)


@pytest.mark.slow
def test_a_token_echoed_in_a_hub_error_is_never_printed(trained_run, tmp_path):
    args = ["--model_dir", str(trained_run), "--repo_id", MODEL_REPO, "--staging_dir", str(tmp_path / "staged")]
    with HubStub(echo_token_on_commit=True) as hub:
        done = _push(args, _env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE=None))
    assert done.returncode != 0 and "The upload failed" in done.stderr, done.stderr[-3000:]
    assert "[REDACTED]" in done.stderr
    _assert_no_secret(done.stdout, done.stderr)


@pytest.mark.slow
def test_a_folder_that_does_not_load_is_refused_and_nothing_is_uploaded(trained_run, tmp_path):
    broken = tmp_path / "broken-run"
    shutil.copytree(trained_run, broken, ignore=shutil.ignore_patterns("checkpoints"))
    with (broken / "modeling_roc.py").open("a", encoding="utf-8") as f:
        f.write('\nraise RuntimeError("deliberately broken model code")\n')
    with HubStub() as hub:
        done = _push(
            ["--model_dir", str(broken), "--repo_id", MODEL_REPO, "--staging_dir", str(tmp_path / "staged")],
            _env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE=None),
        )
    assert done.returncode != 0
    assert "Refusing to push" in done.stderr and "does not load in a fresh offline process" in done.stderr
    assert "deliberately broken model code" in done.stderr  # the child's own error is shown
    assert hub.repos == [] and hub.commits == []
    assert not [r for r in hub.requests if r.method == "POST"]
    _assert_no_secret(done.stdout, done.stderr)


@pytest.mark.slow
def test_upload_without_a_token_stops_before_any_work(trained_run, tmp_path):
    with HubStub() as hub:
        done = _push(
            ["--model_dir", str(trained_run), "--repo_id", MODEL_REPO, "--staging_dir", str(tmp_path / "staged")],
            _env(tmp_path, HF_TOKEN=None, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE=None),
        )
    assert done.returncode != 0
    assert "No Hugging Face token found" in done.stderr
    assert not (tmp_path / "staged").exists() and hub.requests == []


def test_card_states_the_effective_precision_and_distribution():
    eval_results = {
        **_eval_results({"validation": METRICS_VALIDATION}),
        "world_size": 8,
        "distributed_type": "MULTI_GPU",
        "mixed_precision": "bf16",
    }
    card = str(build_model_card(repo_id="org/roc-x", config=_config(BANK), eval_results=eval_results))
    assert "8 process(es), distributed type MULTI_GPU, mixed precision bf16" in card


def test_card_reports_both_metric_families_each_named():
    weighted = {"weighted_precision": 73.9, "weighted_recall": 74.45, "weighted_f1": 74.1}
    eval_results = _eval_results({"validation": {**METRICS_VALIDATION, **weighted}})
    card = build_model_card(repo_id="org/roc-x", config=_config(BANK), eval_results=eval_results)
    reloaded = ModelCard(str(card))
    names = {(r.metric_type, r.metric_config): r.metric_name for r in reloaded.data.eval_results}
    assert names["f1", "micro"] == "Micro F1 (%)" and names["f1", "weighted"] == "Weighted F1, None included (%)"
    assert "| validation | 1,624 | 74.45 | 62.11 | 60.42 | 61.25 | 73.9 / 74.45 / 74.1 |" in reloaded.text


def test_the_card_is_rendered_from_its_template_with_license_and_citations():
    eval_results = _eval_results({"validation": METRICS_VALIDATION})
    card = build_model_card(repo_id="org/roc-x", config=_config(BANK), eval_results=eval_results)
    assert card.data.license == "apache-2.0", "a deliberate default, not 'unknown'"
    assert "## License" in card.text and "state no license" in card.text
    assert "## Citation" in card.text and "@inproceedings{hei2025roc" in card.text and "zheng2021mnre" in card.text
    assert "{{" not in card.text, "every template field is filled"
    other = build_model_card(repo_id="org/roc-x", config=_config(BANK), eval_results=eval_results, license="mit")
    assert other.data.license == "mit" and "`mit`, as chosen by the uploader" in other.text


def test_a_re_push_deletes_only_the_managed_files_the_new_folder_no_longer_has(trained_run, tmp_path):
    args = ["--model_dir", str(trained_run), "--repo_id", MODEL_REPO, "--staging_dir", str(tmp_path / "staged")]
    # an earlier run evaluated a `dev` split this one has not: its reports go, the user's own files stay
    earlier = ["config.json", "per_relation_dev.md", "confusion_matrix_dev.png", "notes.txt", "images/logo.png"]
    with HubStub(remote_files={MODEL_REPO: earlier}) as hub:
        done = _push(args, _env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE=None))
    assert done.returncode == 0, done.stderr[-4000:]
    (commit,) = hub.commits
    assert sorted(commit.deleted) == ["confusion_matrix_dev.png", "per_relation_dev.md"], "upload_folder's delete"
    assert "config.json" in commit.files, "a file uploaded again is replaced, not deleted"


@pytest.mark.slow
def test_non_finite_weights_are_never_published(trained_run, tmp_path):
    from safetensors.torch import load_file, save_file

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    weights = load_file(run / "model.safetensors")
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, run / "model.safetensors", metadata={"format": "pt"})
    done = _push(
        ["--model_dir", str(run), "--repo_id", MODEL_REPO, "--dry_run", "--staging_dir", str(tmp_path / "staged")],
        _env(tmp_path, HF_HUB_OFFLINE="1"),
    )
    assert done.returncode != 0 and "holds non-finite values" in done.stderr and name in done.stderr
    assert not (tmp_path / "staged").exists()


# ----------------------------------------------------------------------------------------------------- Space
@pytest.mark.slow
def test_space_stages_the_demo_that_starts_and_uploads_exactly_it(trained_run, tmp_path):
    from roc_mre.hub.space import APP_SOURCE

    assert (REPO_ROOT / "app.py").read_text(encoding="utf-8") == APP_SOURCE  # one app, staged as the checkout has it
    staged = tmp_path / "staged"
    (tmp_path / "staged-space").mkdir()
    (tmp_path / "staged-space" / "notes.txt").write_text("mine", encoding="utf-8")
    args = ["--model_dir", str(trained_run), "--repo_id", MODEL_REPO, "--staging_dir", str(staged),
            "--space", "org/roc-demo"]  # fmt: skip
    refused = _push([*args, "--dry_run"], _env(tmp_path))
    assert refused.returncode != 0 and (tmp_path / "staged-space" / "notes.txt").read_text() == "mine"
    (tmp_path / "staged-space" / "notes.txt").unlink()

    with HubStub() as hub:
        done = _push(args, _env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE=None))
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout)
    (space_commit,) = [c for c in hub.commits if c.repo_type == "spaces"]
    assert space_commit.repo_id == "org/roc-demo" and set(space_commit.files) == set(summary["space"]["files"])
    assert {"type": "space", "sdk": "gradio"}.items() <= next(r for r in hub.repos if r.get("type") == "space").items()
    files = space_commit.files
    assert files["app.py"].decode() == APP_SOURCE
    assert json.loads(files["demo_config.json"])["model"] == MODEL_REPO
    card = files["README.md"].decode()
    assert "sdk: gradio\n" in card and "app_file: app.py\n" in card and f"- {MODEL_REPO}\n" in card
    requirements = files["requirements.txt"].decode().splitlines()
    assert any(line.startswith("gradio==") for line in requirements) and not any("timm" in r for r in requirements)
    assert "roc_mre/demo.py" in files and "modeling_roc/modeling_roc.py" in files
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]
    assert "the staged Space imports its own copy of the project and its app.py starts" in done.stderr
    _assert_no_secret(done.stdout, done.stderr, *(content.decode("utf-8", "replace") for content in files.values()))


def _copy_packages(root: Path) -> Path:
    """The three packages as the checkout has them (caches left out), to plant files in."""
    from roc_mre.hub.space import PACKAGES

    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_space_copies_only_what_the_wheel_holds_and_never_follows_links(tmp_path):
    from roc_mre.hub.space import package_files

    root = _copy_packages(tmp_path / "checkout")
    password = tmp_path / "passwords.txt"
    password.write_text("root:hunter2", encoding="utf-8")
    planted = {
        "roc_mre/.env": f"HF_TOKEN={SECRET}",
        "datasets_scripts/deploy.pem": "-----BEGIN PRIVATE KEY-----",
        "modeling_roc/.ipynb_checkpoints/scratch.json": "{}",
        "roc_mre/configs/notes/private.yaml": "a: 1",  # package data is configs/*.yaml, not deeper
        "roc_mre/hub/keys/secret.md": "#",
    }
    for name, text in planted.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "roc_mre" / "zz_link_notes.txt").symlink_to(password)
    (root / "roc_mre" / "zz_link.py").symlink_to(password)
    (root / "roc_mre" / "hub" / "linked_dir").symlink_to(tmp_path, target_is_directory=True)

    shipped, left_out = {}, []
    for package in ("modeling_roc", "roc_mre", "datasets_scripts"):
        kept, skipped = package_files(package, root / package)
        shipped.update({name: source for source, name in kept})
        left_out += skipped
    assert not set(planted) & set(shipped)
    assert not [name for name in shipped if "zz_link" in name or "linked_dir" in name]
    assert set(planted) <= set(left_out)
    assert {"roc_mre/zz_link_notes.txt (a symbolic link)", "roc_mre/zz_link.py (a symbolic link)"} <= set(left_out)
    # and everything a wheel holds is still there
    expected = {"modeling_roc/modeling_roc.py", "roc_mre/demo.py", "roc_mre/configs/mnre_minilm_offline.yaml",
                "roc_mre/hub/model_card_template.md", "roc_mre/metrics/re_f1/re_f1.py",
                "datasets_scripts/relation_banks/mnre.json", "datasets_scripts/build.py"}  # fmt: skip
    assert expected <= set(shipped)
    assert all(not Path(source).is_symlink() for source in shipped.values())


def test_the_space_file_rule_is_pyprojects():
    import tomllib

    from roc_mre.hub.space import PACKAGE_SOURCES, PACKAGES

    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    declared = {name: tuple(setuptools["package-data"].get(name, ())) for name in setuptools["packages"]}
    assert {sub: patterns for package in PACKAGES for sub, patterns in PACKAGE_SOURCES[package].items()} == declared
