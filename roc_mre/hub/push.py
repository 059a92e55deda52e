"""What `push_to_hub.py` (`roc_mre.hub.cli`) does once its flags are parsed: stage one model folder, prove that it
loads offline in a fresh process, then upload exactly the files it knows (and optionally the dataset folder).

The staged folder holds what `AutoModel` / `AutoProcessor` / `pipeline(..., trust_remote_code=True)` need (config
with `auto_map`, the model code, safetensors weights, tokenizers with the entity markers, processor config), the
relation bank as `relation_bank.json`, a model card built from the run's own records (`roc_mre.hub.model_card`), and
the run's reports; never `checkpoints/`. Before anything is uploaded, a fresh Python process with `HF_HUB_OFFLINE=1`,
an empty HF cache and this project made unimportable loads the folder with the Auto classes and the pipeline, runs
one example and the card's usage snippet; a folder that fails is refused. The dataset folder written by
`datasets_scripts.build` is checked with `load_dataset` and pushed as a dataset repo.
"""

import argparse
import fnmatch
import gc
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from datasets_scripts.publishing import commit_files, inside_folder, stage_atomically
from datasets_scripts.redaction import redact_local_paths, redact_secrets
from modeling_roc import ENTITY_MARKERS, TASK
from modeling_roc.modeling_roc import RELATION_TOKENIZER_DIR
from roc_mre.hub.model_card import (
    EXAMPLE,
    RELATION_BANK_FILE,
    build_model_card,
    relation_bank_payload,
    usage_snippet,
)
from roc_mre.hub.space import SPACE_MANAGED_PATTERNS, fill_space_folder, verify_space_folder
from roc_mre.hub.verify import RESULT_MARKER


# The folder holding the project's packages (a checkout, or site-packages): the fresh-process check imports
# `roc_mre.hub.verify` from it, and a dataset named relative to a checkout is found there too.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
# The files a tokenizer is saved as; the same set is published for the text and the relation tokenizer.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)
# Top-level files of a run folder that the model needs (besides the code files named by its auto_map).
MODEL_FILE_PATTERNS = (
    "config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    *TOKENIZER_FILES,
    "processor_config.json",
    "preprocessor_config.json",
)
# The tokenizer files of the relation encoder's folder; nothing else in it is published.
RELATION_TOKENIZER_FILES = TOKENIZER_FILES
# Reports users can read on the Hub, per split the run evaluated (eval_results.json names them); predictions, logs,
# checkpoints/ and anything else stay local.
RUN_REPORTS = ("eval_results.json", "all_results.json")
SPLIT_REPORTS = ("per_relation_{split}.md", "per_relation_{split}.json", "confusion_matrix_{split}.png")
REPORT_PATTERNS = (*RUN_REPORTS, "per_relation_*.md", "per_relation_*.json", "confusion_matrix_*.png")
GENERATED_FILES = ("README.md", RELATION_BANK_FILE, "training_args.json")
# Remote files this script owns: a re-push deletes those of them the new folder no longer has (e.g. an old
# `per_relation_test.md`), and leaves every other file of the repository alone.
MANAGED_PATTERNS = (*MODEL_FILE_PATTERNS, *REPORT_PATTERNS, *GENERATED_FILES, "*.py", f"{RELATION_TOKENIZER_DIR}/*")
# training_args.json keys that could hold a credential are never staged (train.py has none today).
SECRET_KEY = re.compile(r"token|secret|passw|api_?key|credential|auth", re.IGNORECASE)
TOKEN_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH")
MAX_ROWS_SCANNED = 50_000


class RedactingFilter(logging.Filter):
    """Rewrites every record a handler emits with `redact_secrets`: huggingface_hub's own warnings (a failed commit
    retried in smaller chunks, say) quote server errors, and a server may echo the credential back."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_secrets(record.getMessage()), ()
        return True


def redact_library_logs() -> None:
    """Put a `RedactingFilter` on the handlers of huggingface_hub's logger and of the root logger."""
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.get_logger()  # creates the library's handler if it has none yet
    for handler in (*logging.getLogger("huggingface_hub").handlers, *logging.getLogger().handlers):
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def log(message: str) -> None:
    print(f"[push_to_hub] {redact_secrets(message)}", file=sys.stderr, flush=True)


def check_token() -> None:
    """Fail before any work when no token can be found (its value is never looked at, only its presence)."""
    from huggingface_hub import get_token

    if get_token() is None:
        raise SystemExit(
            "No Hugging Face token found: set HF_TOKEN or run `hf auth login` (or pass --dry_run to stage and "
            "verify without uploading)."
        )


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"{path} is missing.") from None
    except json.JSONDecodeError as err:
        raise SystemExit(f"{path} is not valid JSON: {err}") from None


# ------------------------------------------------------------------------------------------------------ the run
def code_files(model_dir: Path, configs: list[dict]) -> list[str]:
    """The `.py` files named by the auto_maps / custom pipelines, plus what they import relatively, recursively."""
    modules: set[str] = set()
    for config in configs:
        references = list((config.get("auto_map") or {}).values())
        references += [p.get("impl") for p in (config.get("custom_pipelines") or {}).values()]
        for reference in references:
            for item in reference if isinstance(reference, list) else [reference]:
                if item:
                    modules.add(item.split("--")[-1].rsplit(".", 1)[0])
    pending, found = sorted(modules), []
    while pending:
        module = pending.pop()
        if module in found:
            continue
        path = model_dir / f"{module}.py"
        if not path.is_file():
            raise SystemExit(f"{model_dir}: the auto_map needs {path.name}, which is missing.")
        found.append(module)
        source = path.read_text(encoding="utf-8")
        pending += re.findall(r"^\s*from \.(\w+) import", source, flags=re.MULTILINE)
        pending += re.findall(r"^\s*from \. import (\w+)", source, flags=re.MULTILINE)
    return sorted(f"{module}.py" for module in found)


def load_run(model_dir: Path) -> dict:
    """The run's config, results and flags, refusing a folder that is not a trained ROC model."""
    if not model_dir.is_dir():
        raise SystemExit(f"--model_dir {model_dir} is not a folder.")
    config = read_json(model_dir / "config.json")
    auto_map = config.get("auto_map") or {}
    if config.get("model_type") != "roc" or "AutoModel" not in auto_map:
        raise SystemExit(
            f"{model_dir}/config.json is not a ROC model saved with remote code (model_type "
            f"{config.get('model_type')!r}, auto_map {auto_map}); pass the --output_dir of train.py."
        )
    if TASK not in (config.get("custom_pipelines") or {}):
        raise SystemExit(f"{model_dir}/config.json registers no {TASK!r} pipeline (custom_pipelines).")
    if not ((model_dir / "model.safetensors").is_file() or (model_dir / "model.safetensors.index.json").is_file()):
        raise SystemExit(f"{model_dir} has no model.safetensors (only safetensors weights are published).")
    check_finite_weights(model_dir)
    eval_results = read_json(model_dir / "eval_results.json")
    if not eval_results.get("splits") or eval_results.get("split") not in eval_results["splits"]:
        raise SystemExit(f"{model_dir}/eval_results.json has no per-split metrics (was the run finished?).")
    training_args_path = model_dir / "training_args.json"
    training_args = read_json(training_args_path) if training_args_path.is_file() else None
    processor_config = read_json(model_dir / "processor_config.json")
    tokenizer_config = read_json(model_dir / "tokenizer_config.json")
    return {
        "config": config,
        "eval_results": eval_results,
        "training_args": training_args,
        "processor_config": processor_config,
        "code": code_files(model_dir, [config, processor_config, tokenizer_config]),
    }


def check_finite_weights(model_dir: Path) -> None:
    """Refuse weights holding NaN or infinity (a diverged run): they load, verify and predict one label forever."""
    import torch
    from safetensors import safe_open

    shards = sorted(model_dir.glob("model*.safetensors"))
    for shard in shards:
        with safe_open(str(shard), framework="pt") as weights:
            for name in weights.keys():
                tensor = weights.get_tensor(name)
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    raise SystemExit(
                        f"Refusing to push {model_dir}: {shard.name} holds non-finite values (NaN or infinity) in "
                        f"{name}; the run diverged. Retrain with a lower learning rate."
                    )


def model_files(model_dir: Path, code: list[str], splits: list[str]) -> list[str]:
    """Relative paths to stage: code, weights, tokenizers, processor, relation tokenizer, and the reports of the
    evaluated `splits`. A file that is a symbolic link leading out of `model_dir` is refused."""
    top = sorted(p.name for p in model_dir.iterdir() if p.is_file())
    picked = set(code)
    for pattern in MODEL_FILE_PATTERNS + RUN_REPORTS:
        picked.update(fnmatch.filter(top, pattern))
    picked.update(
        name for split in splits for template in SPLIT_REPORTS if (name := template.format(split=split)) in top
    )
    relation_dir = model_dir / RELATION_TOKENIZER_DIR
    picked.update(
        f"{RELATION_TOKENIZER_DIR}/{name}" for name in RELATION_TOKENIZER_FILES if (relation_dir / name).is_file()
    )
    for name in picked:
        try:
            inside_folder(model_dir, name)
        except ValueError as err:
            raise SystemExit(f"Refusing to push: {err}") from None
    return sorted(picked)


def public_training_args(training_args: dict | None) -> dict | None:
    if training_args is None:
        return None
    return {key: value for key, value in training_args.items() if not SECRET_KEY.search(key)}


# --------------------------------------------------------------------------------------------------- staging
def stage(target: Path, fill, protected: list[Path]) -> None:
    """`stage_atomically` with its refusals as one-line errors: only a folder this script staged is replaced."""
    try:
        stage_atomically(target, fill, protected)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link the big files (weights, parquet shards) when possible; copy the rest (they may be rewritten)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix in (".safetensors", ".parquet"):
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    shutil.copy2(source, target)


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def stage_model(model_dir: Path, staged: Path, run: dict, args: argparse.Namespace, dataset_info: dict) -> list[str]:
    """Stage the model folder to publish in `staged` (replacing only an earlier staging); returns its files."""
    files: list[str] = []
    protected = [model_dir, *([Path(args.dataset_dir)] if args.dataset_dir else [])]

    def fill(folder: Path) -> None:
        files.extend(fill_model_folder(model_dir, folder, run, args, dataset_info))

    stage(staged, fill, protected)
    return files


def fill_model_folder(
    model_dir: Path, staged: Path, run: dict, args: argparse.Namespace, dataset_info: dict
) -> list[str]:
    """Write the model folder to publish into the empty `staged`; returns its files (relative paths)."""
    files = model_files(model_dir, run["code"], sorted(run["eval_results"]["splits"]))
    for name in files:
        if name.endswith(".json") and name in (*REPORT_PATTERNS, "config.json"):
            # results carry local paths (model, dataset, command); config.json the encoders' `_name_or_path`
            write_json(staged / name, redact_local_paths(read_json(model_dir / name)))
        else:
            link_or_copy(model_dir / name, staged / name)
    write_json(staged / RELATION_BANK_FILE, relation_bank_payload(run["config"]))
    training_args = redact_local_paths(public_training_args(run["training_args"]))
    if training_args is not None:
        write_json(staged / "training_args.json", training_args)
    files = sorted({*files, *(name for name in GENERATED_FILES if name != "README.md" and (staged / name).exists())})
    card = build_model_card(
        repo_id=args.repo_id,
        config=run["config"],
        eval_results=redact_local_paths(run["eval_results"]),
        training_args=training_args,
        processor_config=run["processor_config"],
        build_report=dataset_info.get("build_report"),
        dataset_repo_id=args.dataset_repo_id,
        dataset_name=dataset_info.get("pretty_name"),
        license=args.license,
        files=[*files, "README.md"],
    )
    card.save(staged / "README.md")
    return sorted([*files, "README.md"])


def read_dataset_info(dataset_dir: Path | None) -> dict:
    """What the card needs from the dataset folder: its build report and pretty name (both optional)."""
    if dataset_dir is None:
        return {}
    if not dataset_dir.is_dir():
        raise SystemExit(f"--dataset_dir {dataset_dir} is not a folder.")
    info = {}
    report = dataset_dir / "build_report.json"
    if report.is_file():
        info["build_report"] = read_json(report)
    else:
        log(f"{dataset_dir} has no build_report.json: the card will say the NER backend is unknown")
    readme = dataset_dir / "README.md"
    if readme.is_file():
        from huggingface_hub import DatasetCard

        info["pretty_name"] = DatasetCard.load(readme).data.to_dict().get("pretty_name")
    return info


# ---------------------------------------------------------------------------------------------- verification
def local_dataset(name: str | None) -> Path | None:
    """A dataset named in eval_results.json, if it is a folder here (relative names are tried from the repo too)."""
    if not name:
        return None
    for candidate in (Path(name), PACKAGE_ROOT / name):
        if candidate.is_dir():
            return candidate
    return None


def dataset_row(dataset_path: Path, config_name: str | None, split: str, example_id: str) -> dict | None:
    """The row `example_id` of a local dataset folder, streamed (no Arrow cache is written)."""
    import datasets

    stream = datasets.load_dataset(str(dataset_path), config_name, split=split, streaming=True)
    for i, row in enumerate(stream):
        if row.get("id") == example_id:
            return row
        if i >= MAX_ROWS_SCANNED:
            break
    return None


def collect_arrow_readers() -> None:
    """Free half-read streaming parquet iterators now, while pyarrow is alive.

    Collected only at interpreter exit, they make pyarrow abort the process ("terminate called without an active
    exception", exit code 134) after all the work is done (huggingface/datasets#7566, apache/arrow#45214).
    """
    gc.collect()


def _span(entity: dict) -> dict | None:
    if not isinstance(entity, dict) or entity.get("start") is None or entity.get("end") is None:
        return None  # e.g. MORE's visual objects, which have a box instead of word offsets
    entity_type = entity.get("type")
    return {
        "name": entity.get("name"),
        "start": int(entity["start"]),
        "end": int(entity["end"]),
        "type": entity_type if isinstance(entity_type, str) else None,
    }


def verification_example(eval_results: dict, model_dir: Path, dataset_dir: Path | None, workdir: Path) -> dict:
    """The first example the run predicted (with its recorded prediction), else the card's fixed example."""
    split = eval_results["split"]
    predictions = model_dir / f"predictions_{split}.jsonl"
    dataset_path = dataset_dir or local_dataset(eval_results.get("dataset"))
    if predictions.is_file() and dataset_path is not None:
        with predictions.open(encoding="utf-8") as f:
            recorded = json.loads(f.readline() or "null")
        try:
            row = dataset_row(dataset_path, eval_results.get("dataset_config"), split, recorded["id"])
        except Exception as err:  # any reading problem only costs the comparison with the recorded prediction
            log(f"could not read {split} of {dataset_path} ({type(err).__name__}: {err}); using a fixed example")
            row = None
        collect_arrow_readers()
        subject, object_ = (_span(row["subject"]), _span(row["object"])) if row else (None, None)
        if row and subject and object_:
            example = {"tokens": list(row["tokens"]), "subject": subject, "object": object_}
            image_path = None
            if row.get("image") is not None:
                image_path = workdir / "example.png"
                row["image"].convert("RGB").save(image_path)
            return {
                "example": example,
                "image": image_path,
                "source": f"{split} {recorded['id']}",
                "recorded": recorded,
            }
    return {"example": EXAMPLE, "image": None, "source": "fixed example", "recorded": None}


def child_env(hf_home: Path) -> dict:
    """The environment of the check: offline, an empty HF cache, and no credentials at all."""
    env = {key: value for key, value in os.environ.items() if key not in TOKEN_ENV}
    env.update({"HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home), "TOKENIZERS_PARALLELISM": "false"})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)  # the checker
    return env


def verify_model_folder(staged: Path, example: dict, snippet: str, labels: list[str], timeout: int) -> dict:
    """Load `staged` in a fresh offline process as a user would; refuse (SystemExit) if anything fails."""
    with tempfile.TemporaryDirectory(prefix="roc-verify-") as workdir:
        spec = {
            "markers": list(ENTITY_MARKERS),
            "bank_file": RELATION_BANK_FILE,
            "task": TASK,
            "top_k": min(3, len(labels)),
            "example": example["example"],
            "image": str(example["image"]) if example["image"] else None,
            "snippet": snippet,
        }
        spec_path = Path(workdir) / "verify_spec.json"
        write_json(spec_path, spec)
        command = [sys.executable, "-m", "roc_mre.hub.verify", str(staged), str(spec_path)]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                cwd=workdir,
                env=child_env(Path(workdir) / "hf-home"),
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise SystemExit(
                f"Refusing to push {staged}: loading it in a fresh offline process took over {timeout} s "
                "(--verify_timeout)."
            ) from None
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise SystemExit(
            f"Refusing to push {staged}: it does not load in a fresh offline process with "
            f"trust_remote_code=True (exit code {done.returncode}). Last lines of its stderr:\n{tail}"
        )
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    problems = []
    if result["config_class"] != "ROCConfig":
        problems.append(f"AutoConfig gave {result['config_class']}, not ROCConfig")
    if not result["model_module"].startswith("transformers_modules."):
        problems.append(f"the model class came from {result['model_module']}, not from the folder's code")
    if result["labels"] != labels:
        problems.append(f"the loaded model's labels {result['labels']} differ from config.json's {labels}")
    if not result["predictions"]:
        problems.append("the pipeline returned no prediction")
    if problems:
        raise SystemExit(f"Refusing to push {staged}: " + "; ".join(problems) + ".")
    return result


def compare_with_record(result: dict, example: dict) -> bool | None:
    """Whether the loaded folder repeats the run's recorded prediction (a warning only: the data may have moved)."""
    recorded = example["recorded"]
    if recorded is None:
        return None
    top = result["predictions"][0]
    same = top["relation"] == recorded["prediction"] and abs(top["score"] - recorded["score"]) < 1e-3
    if same:
        log(f"the staged model repeats the run's prediction for {example['source']}: {top['relation']}")
    else:
        log(
            f"WARNING: for {example['source']} the staged model predicts {top['relation']} ({top['score']:.4f}) "
            f"but the run recorded {recorded['prediction']} ({recorded['score']:.4f}); was the dataset rebuilt?"
        )
    return same


# --------------------------------------------------------------------------------------------------- dataset
def stage_dataset(dataset_dir: Path, staged: Path, repo_id: str, protected: list[Path]) -> list[str]:
    """The dataset folder staged by the dataset code (`datasets_scripts.hub_folder.stage_for_repo`): its card,
    report and shards only. Returns the staged files; names the files of `dataset_dir` that stay behind."""
    from datasets_scripts.hub_folder import left_out_files, stage_for_repo

    files: list[str] = []

    def fill(folder: Path) -> None:
        try:
            files.extend(stage_for_repo(dataset_dir, folder, repo_id))
        except ValueError as err:
            raise SystemExit(f"Refusing to push the dataset: {err}") from None

    stage(staged, fill, [dataset_dir, *protected])
    left_out = left_out_files(dataset_dir, files)
    if left_out:
        log(f"not published (not part of a built dataset): {', '.join(left_out)}")
    return files


def verify_dataset_folder(folder: Path, model_labels: list[str]) -> dict:
    """`load_dataset(folder)` must give every split (streamed: one row each); refuse the push otherwise."""
    import datasets

    try:
        splits = datasets.load_dataset(str(folder), streaming=True)
        rows = {name: next(iter(split)) for name, split in splits.items()}
        features = next(iter(splits.values())).features
    except Exception as err:
        raise SystemExit(
            f"Refusing to push the dataset {folder}: load_dataset fails ({type(err).__name__}: {err})."
        ) from None
    if not rows:
        raise SystemExit(f"Refusing to push the dataset {folder}: load_dataset finds no split.")
    names = getattr((features or {}).get("relation"), "names", None)
    if names is not None and names != model_labels:
        log(f"WARNING: the dataset's relation labels differ from the model's ({len(names)} vs {len(model_labels)})")
    return {"splits": sorted(rows)}


# ---------------------------------------------------------------------------------------------------- upload
def transport_errors() -> tuple[type[Exception], ...]:
    """The HTTP client's own errors (httpx2 in huggingface_hub 2.x), so a dead network gives a message, not a trace."""
    try:
        from huggingface_hub.utils import httpx
    except ImportError:
        return ()
    return (httpx.HTTPError,)


def validate_card(staged: Path) -> None:
    """The Hub's own check of the card's YAML (`/api/validate-yaml`), before anything is created or uploaded."""
    from huggingface_hub import ModelCard

    try:
        ModelCard.load(staged / "README.md").validate(repo_type="model")
    except ValueError as err:
        raise SystemExit(f"Refusing to push: the Hub rejects the model card's metadata: {err}") from None


def upload(
    staged: Path,
    files: list[str],
    repo_id: str,
    repo_type: str,
    owned: tuple[str, ...],
    message: str,
    revision: str | None = None,
    **create,
) -> str:
    """create_repo(exist_ok=True, `create`), the branch `revision` if given, then ONE commit of exactly
    `files` (`commit_files`), which also deletes the remote files this script owns (`owned`) that the new folder no
    longer has, such as an old `per_relation_test.md`; every other file of the repository is left alone."""
    from huggingface_hub import HfApi

    api = HfApi()  # token: HF_TOKEN or the stored login, found by huggingface_hub
    api.create_repo(repo_id, repo_type=repo_type, exist_ok=True, **create)
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    return commit_files(
        api,
        repo_id=repo_id,
        repo_type=repo_type,
        folder=staged,
        files=files,
        owned_patterns=owned,
        commit_message=message,
        revision=revision,
    )


def stage_space(target: Path, args: argparse.Namespace, config: dict, protected: list[Path]) -> list[str]:
    """The demo Space for `args.repo_id`, staged under the marker rule of every staging folder."""
    files: list[str] = []

    def fill(folder: Path) -> None:
        reads_images = config.get("vision_model_name") is not None
        files.extend(fill_space_folder(folder, args.space, args.repo_id, reads_images, log=log))

    stage(target, fill, protected)
    return files


def push(args: argparse.Namespace) -> dict:
    """Stage, verify and (unless `--dry_run`) upload, as the flags of `roc_mre.hub.cli` say; returns the summary."""
    redact_library_logs()
    if not args.dry_run:
        check_token()
    model_dir = Path(args.model_dir)
    dataset_dir = Path(args.dataset_dir) if args.dataset_dir else None
    run = load_run(model_dir)
    dataset_info = read_dataset_info(dataset_dir)
    labels = relation_bank_payload(run["config"])["labels"]

    temporary = args.staging_dir is None
    # absolute: the fresh-process check runs in another working directory
    staged = Path(args.staging_dir or Path(tempfile.mkdtemp(prefix="roc-push-")) / "model").resolve()
    dataset_staged = staged.with_name(staged.name + "-dataset")
    space_staged = staged.with_name(staged.name + "-space")
    summary = {"repo_id": args.repo_id, "revision": args.revision or "main", "dry_run": args.dry_run}
    try:
        log(f"staging {model_dir} in {staged}")
        files = stage_model(model_dir, staged, run, args, dataset_info)
        summary.update(staged_dir=str(staged), files=files)

        with tempfile.TemporaryDirectory(prefix="roc-push-example-") as workdir:
            example = verification_example(run["eval_results"], model_dir, dataset_dir, Path(workdir))
            log(f"loading the staged folder in a fresh offline process ({example['source']})")
            snippet = usage_snippet(str(staged.resolve()), run["config"])
            result = verify_model_folder(staged, example, snippet, labels, args.verify_timeout)
        summary["verification"] = {
            "example": example["source"],
            "predictions": result["predictions"],
            "matches_recorded_prediction": compare_with_record(result, example),
            "card_snippet_output": result["snippet_output"],
            "card_snippet_labels": result["snippet_labels"],
            "card_snippet_score_offsets": result["snippet_score_offsets"],
        }
        log("the staged folder loads with AutoConfig / AutoModel / AutoProcessor / pipeline; the card's snippet runs")

        push_dataset = dataset_dir is not None and args.dataset_repo_id is not None
        if push_dataset:
            log(f"staging the dataset {dataset_dir} in {dataset_staged}")
            dataset_files = stage_dataset(dataset_dir, dataset_staged, args.dataset_repo_id, [model_dir, staged])
            try:
                dataset_check = verify_dataset_folder(dataset_staged, labels)
            finally:
                collect_arrow_readers()
            summary["dataset"] = {
                "repo_id": args.dataset_repo_id,
                "staged_dir": str(dataset_staged),
                "files": dataset_files,
                **dataset_check,
            }
            log(f"load_dataset reads the dataset folder: splits {dataset_check['splits']}")

        if args.space:
            log(f"staging the demo Space {args.space} in {space_staged}")
            space_files = stage_space(
                space_staged, args, run["config"], [model_dir, staged, *([dataset_dir] if dataset_dir else [])]
            )
            verify_space_folder(space_staged)
            summary["space"] = {"repo_id": args.space, "staged_dir": str(space_staged), "files": space_files}
            log("the staged Space imports its own copy of the project and its app.py starts")

        if args.dry_run:
            log(f"dry run: nothing uploaded; the staged model folder is {staged}")
            return summary

        from huggingface_hub.errors import HfHubHTTPError

        try:
            validate_card(staged)
            if push_dataset:
                from datasets_scripts.hub_folder import push_folder

                log(f"uploading the dataset to {args.dataset_repo_id}")
                summary["dataset"]["commit_url"] = push_folder(
                    dataset_staged, args.dataset_repo_id, private=args.private, log=log
                )
            primary = run["eval_results"]["split"]
            f1 = run["eval_results"]["splits"][primary]["metrics"]["f1"]
            message = args.commit_message or f"Upload ROC model (micro-F1 {f1} % on {primary})"
            target = f"{args.repo_id} ({summary['revision']})"
            log(f"uploading {len(files)} files to {target} in one commit: {', '.join(files)}")
            summary["commit_url"] = upload(
                staged,
                files,
                args.repo_id,
                "model",
                MANAGED_PATTERNS,
                message,
                private=args.private,
                revision=args.revision,
            )
            if args.space:
                log(f"uploading {len(space_files)} files to the Space {args.space} in one commit")
                summary["space"]["commit_url"] = upload(
                    space_staged,
                    space_files,
                    args.space,
                    "space",
                    SPACE_MANAGED_PATTERNS,
                    f"Demo of {args.repo_id}",
                    private=args.private,
                    space_sdk="gradio",
                )
        except (HfHubHTTPError, OSError, *transport_errors()) as err:  # OSError: offline mode, refused connection
            raise SystemExit(f"The upload failed ({type(err).__name__}): {redact_secrets(str(err))}") from None
        log(f"done: {summary['commit_url']}")
        return summary
    finally:
        if temporary and not args.dry_run:
            shutil.rmtree(staged.parent, ignore_errors=True)
