"""Relations never seen in training: does retrieval over descriptions find them, and how much does the wording matter?

ROC represents each relation by the embedding of a text, so a relation can be added to a trained model by writing a
description and calling `model.set_relation_bank(...)`, with no retraining. This benchmark measures that promise:

    python benchmarks/unseen_relations.py --name 2ep --ceiling_run runs/unseen-ceiling -- \
        --config mnre_minilm_offline --num_train_epochs 2
    python benchmarks/unseen_relations.py --name 2ep --folds 0 --shots 5 -- ...   # few-shot on fold 0

Everything after `--` is the recipe, passed to train.py unchanged (its `--dataset_name_or_path` is the full dataset).
For each fold, k relations are held out (`held_out_folds`: the non-None relations ranked by training frequency, cut
into k bands from frequent to rare, fold f taking the f-th relation of every band, so each fold mixes frequent and
rare ones and no relation is in two folds):

- training: their training examples are removed (not relabelled None, which would teach the model to call them None),
  except `--shots N` of each (few-shot); with no shots the model's bank holds only the seen relations, so it never
  saw the held-out descriptions, not even as negatives. The best epoch is selected on the seen relations' validation
  examples only: the held-out ones are unknown at training time.
- evaluation, on the whole validation split: the bank holds every relation, the held-out ones added with a text in
  one of three wordings (`WORDINGS`): the reviewed description of the shipped bank, a one-line paraphrase
  (`relation_paraphrases_mnre.json`) and the label name (`per per peer`). The seen relations keep their descriptions.
  A recipe trained on label names (`-- ... --relation_source label_name`, the comparator "label names instead of
  descriptions") reads only the label of every relation, so only the label-name wording is reported for it.

Reported per fold and wording: micro-F1 on the seen relations, micro P / R / F1 and accuracy on the unseen ones, where
the unseen examples went (right, None, a wrong seen relation, a wrong unseen one), how their gold relation ranks
(`unseen_ranking`: best of the held-out ones, i.e. the classic zero-shot accuracy against a chance of 1/k; best of
all but None; top 3), and the field's metrics over all labels (accuracy, micro-F1 with None excluded) plus the
None-inclusive weighted F1 of the ROC paper's MNRE table.
Score offsets (`offset_sweep`, per fold and wording, and a plot `..._offsets.png`): the same metrics with 0 to 0.6
added to the held-out relations' cosine, what `set_relation_bank(bank, score_offsets=...)` does when a user adds
relations; with several folds, `offset_chosen_on_other_folds` reports each fold at the offset that was best on the
other folds (by all-label micro-F1, or by unseen F1), an offset chosen without the relations it is applied to.
`calibration_ceiling` (per fold and wording) is the opposite, an upper bound: offsets tuned on the scored fold itself,
one for all held-out relations and one per relation, and each held-out relation's `own_score_auc`; when it stays
below a target, no calibration reaches it and the training has to change.
Comparators on the same folds: the model trained on every relation (`--ceiling_run`, or trained here: the ceiling)
and a classification head or learned label vectors, which have one output per training label and so score 0 on an
unseen relation by construction (their floor; `set_relation_bank` refuses new labels for them).

Runs go to `--runs_dir/<name>/fold<f>-shots<n>/` (a finished run, one with `all_results.json`, is collected, not
retrained, so an interrupted benchmark goes on where it stopped). Writes
`benchmarks/results/unseen_relations_<name>.json`, a plot of the unseen-relation F1 by wording beside it and the
offset plot.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shlex
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
from results_io import existing_file, positive_int, result_name, write_result


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

PARAPHRASES_FILE = Path(__file__).resolve().parent / "relation_paraphrases_mnre.json"
WORDINGS = ("description", "paraphrase", "label_name")
# offsets added to the held-out relations' cosine similarity (what `set_relation_bank(..., score_offsets=...)` does):
# 0 to 0.6: on MNRE with MiniLM, seen-relation F1 is near 0 by 0.5 (unseen_relations_minilm_2ep_fewshot_offsets.png)
OFFSETS = tuple(round(0.025 * i, 3) for i in range(25))
CALIBRATION_CRITERIA = ("all_f1", "unseen_f1")
# Decision rules besides the plain argmax, evaluated on the same scores (see `calibrated_scores`).
CALIBRATION_RULES = ("standardized", "aligned_new")
# Unlabelled training pairs whose scores give each relation's score statistics for `CALIBRATION_RULES`.
REFERENCE_PAIRS = 1000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--name", required=True, type=result_name, help="Results file suffix: results/unseen_relations_<name>.json"
    )
    parser.add_argument("--k", type=int, default=4, help="Relations held out per fold (default 4).")
    parser.add_argument(
        "--folds", type=int, nargs="+", default=[0, 1, 2], help="Which folds to run (0-based; default 0 1 2)."
    )
    parser.add_argument(
        "--shots",
        type=int,
        nargs="+",
        default=[0],
        help="Training examples kept per held-out relation; several values run several trainings (e.g. 0 1 5 20).",
    )
    parser.add_argument(
        "--ceiling_run",
        help="A finished train.py run on every relation with the same recipe (the ceiling); trained here if omitted.",
    )
    parser.add_argument("--no_ceiling", action="store_true", help="Skip the ceiling (no run given, none trained).")
    parser.add_argument(
        "--paraphrases", type=existing_file, default=str(PARAPHRASES_FILE), help="JSON {label: one-line paraphrase}."
    )
    parser.add_argument("--runs_dir", default="runs/unseen_relations", help="Where the fold runs are trained.")
    parser.add_argument("--output_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    parser.add_argument("--eval_batch_size", type=positive_int, default=128, help="Examples per evaluation batch.")
    parser.add_argument("--note", default="", help="Free text stored with the result.")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the train.py recipe")
    args = parser.parse_args(argv)
    args.train_args = [a for a in args.train_args if a != "--"]
    if not args.train_args:
        parser.error("give the train.py recipe after --, e.g. -- --config mnre_minilm_offline")
    if args.k < 1:
        parser.error(f"--k must be >= 1, got {args.k}")
    if any(n < 0 for n in args.shots):
        parser.error(f"--shots must be >= 0, got {args.shots}")
    if any(a == "--output_dir" or a.startswith("--output_dir=") for a in args.train_args):
        parser.error("--output_dir is set by the benchmark (--runs_dir/<name>/...); drop it from the recipe")
    return args


# ---------------------------------------------------------------------------------------------------------- folds
def held_out_folds(train_counts: dict[str, int], none_label: str, k: int) -> list[list[str]]:
    """Every fold this rule allows: rank the non-None relations by training count (ties by name), cut the ranking
    into `k` contiguous bands from frequent to rare, and let fold f hold out the f-th relation of each band.

    So every fold has one relation from each frequency band (a frequent one, ..., a rare one), the folds are disjoint,
    and there are as many folds as the smallest band has relations.
    """
    ranked = sorted((label for label in train_counts if label != none_label), key=lambda r: (-train_counts[r], r))
    if len(ranked) < k:
        raise ValueError(f"--k {k}: only {len(ranked)} relations besides {none_label!r} to hold out")
    size, extra = divmod(len(ranked), k)
    bands, start = [], 0
    for band in range(k):
        end = start + size + (band < extra)
        bands.append(ranked[start:end])
        start = end
    return [[band[f] for band in bands] for f in range(min(len(b) for b in bands))]


def fold_splits(
    splits: datasets.DatasetDict, held_out: list[str], shots: int, seed: int, train_split: str, validation_split: str
) -> tuple[datasets.DatasetDict, dict]:
    """The training data of one fold: held-out examples removed from train (but `shots` of each) and validation.

    With no shots the `relation` ClassLabel holds only the seen labels (ids remapped), so train.py builds a bank
    without the held-out relations. Returns the splits and a count of what was removed.
    """
    names = splits[train_split].features["relation"].names
    held_ids = {names.index(label) for label in held_out}
    train = splits[train_split]
    relations = train["relation"]
    keep = [i for i, r in enumerate(relations) if r not in held_ids]
    rng = random.Random(seed)
    kept_shots = {}
    for label in held_out:
        label_id = names.index(label)
        rows = [i for i, r in enumerate(relations) if r == label_id]
        chosen = sorted(rng.sample(rows, min(shots, len(rows))))
        kept_shots[label] = len(chosen)
        keep += chosen
    train = train.select(sorted(keep))
    validation = splits[validation_split]
    validation = validation.select([i for i, r in enumerate(validation["relation"]) if r not in held_ids])
    out = datasets.DatasetDict({train_split: train, validation_split: validation})
    if shots == 0:
        seen = [label for label in names if label not in held_out]
        out = out.map(lambda batch: {"relation": [seen.index(names[r]) for r in batch["relation"]]}, batched=True)
        out = out.cast_column("relation", datasets.ClassLabel(names=seen))
    report = {
        "train_examples": len(train),
        "train_removed": len(splits[train_split]) - len(train),
        "validation_examples_for_selection": len(validation),
        "shots_kept": kept_shots,
    }
    return out, report


def write_parquet_folder(splits: datasets.DatasetDict, folder: Path) -> None:
    """`data/<split>-00000-of-00001.parquet`: a folder `load_dataset` reads with its features (ClassLabel) intact."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        split.to_parquet(str(folder / "data" / f"{name}-00000-of-00001.parquet"))


# -------------------------------------------------------------------------------------------------------- metrics
def subset_scores(predictions: list[int], references: list[int], positive: set[int]) -> dict:
    """Micro P / R / F1 (%) counting only the labels in `positive` as positives (as the field drops None)."""
    from roc_mre.metrics.re_f1.re_f1 import micro_scores

    scores = micro_scores(list(zip(predictions, references)), positive=positive.__contains__)
    return {
        **{key: round(100 * scores[key], 2) for key in ("precision", "recall", "f1")},
        "gold": scores["gold"],
        "predicted": scores["predicted"],
    }


def unseen_outcomes(predictions: list[int], references: list[int], unseen: set[int], none_id: int) -> dict:
    """Where the examples of unseen relations went, in % of them: right, None, a seen relation, another unseen one."""
    pairs = [(p, r) for p, r in zip(predictions, references) if r in unseen]
    counts = Counter(
        "correct" if p == r else "none" if p == none_id else "other_unseen" if p in unseen else "wrong_seen"
        for p, r in pairs
    )
    total = len(pairs) or 1
    return {key: round(100 * counts[key] / total, 2) for key in ("correct", "none", "wrong_seen", "other_unseen")}


def unseen_ranking(scores: list[list[float]], references: list[int], unseen: set[int], none_id: int) -> dict:
    """How the gold relation of an unseen example ranks, in % of those examples (chance: `chance_among_unseen`).

    `among_unseen_accuracy`: the gold one scores highest of the held-out relations (the classic zero-shot question,
    "which new relation is it?"); `without_none_accuracy`: highest of every relation but None; `top3`: among the
    three best of all. When these are high and the accuracy over all relations is low, the descriptions carry the
    meaning but the new relations' scores sit below the trained ones (a calibration gap, not a semantic one).
    """
    rows = [(row, r) for row, r in zip(scores, references) if r in unseen]
    if not rows:
        return {"among_unseen_accuracy": 0.0, "without_none_accuracy": 0.0, "top3": 0.0, "chance_among_unseen": 0.0}
    among = without_none = top3 = 0
    for row, gold in rows:
        among += max(unseen, key=lambda j: row[j]) == gold
        without_none += max((j for j in range(len(row)) if j != none_id), key=lambda j: row[j]) == gold
        top3 += gold in sorted(range(len(row)), key=lambda j: -row[j])[:3]
    share = 100 / len(rows)
    return {
        "among_unseen_accuracy": round(among * share, 2),
        "without_none_accuracy": round(without_none * share, 2),
        "top3": round(top3 * share, 2),
        "chance_among_unseen": round(100 / len(unseen), 2),
    }


def fold_metrics(
    scores: list[list[float]], references: list[int], label_names: list[str], held_out: list[str]
) -> dict:
    """Seen / unseen / overall scores of one evaluation over every label of the dataset."""
    from roc_mre.labels import find_none_label
    from roc_mre.metrics.re_f1.re_f1 import relation_extraction_scores

    none_id = label_names.index(find_none_label(label_names))
    unseen = {label_names.index(label) for label in held_out}
    seen = set(range(len(label_names))) - unseen - {none_id}
    predictions = [max(range(len(row)), key=row.__getitem__) for row in scores]
    overall = relation_extraction_scores(predictions, references, negative_label=none_id)
    unseen_scores = subset_scores(predictions, references, unseen)
    seen_f1 = subset_scores(predictions, references, seen)["f1"]
    return {
        "seen_f1": seen_f1,
        "harmonic_mean": harmonic_mean(seen_f1, unseen_scores["f1"]),
        "unseen": {**unseen_scores, "accuracy": unseen_scores["recall"]},
        "unseen_outcomes": unseen_outcomes(predictions, references, unseen, none_id),
        "unseen_ranking": unseen_ranking(scores, references, unseen, none_id),
        "per_unseen_relation_f1": {
            label: subset_scores(predictions, references, {label_names.index(label)})["f1"] for label in held_out
        },
        "all": {
            "accuracy": round(100 * overall["accuracy"], 2),
            "f1": round(100 * overall["f1"], 2),
            "weighted_f1": round(100 * overall["weighted_f1"], 2),
        },
    }


def harmonic_mean(seen_f1: float, unseen_f1: float) -> float:
    """H of seen and unseen F1, the generalized zero-shot summary: high only when both are."""
    return round(2 * seen_f1 * unseen_f1 / (seen_f1 + unseen_f1), 2) if seen_f1 + unseen_f1 else 0.0


def column_statistics(reference_scores: list[list[float]]) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of every relation's score over reference pairs (unlabelled training pairs)."""
    columns = list(zip(*reference_scores))
    return [statistics.fmean(c) for c in columns], [statistics.pstdev(c) or 1.0 for c in columns]


def calibrated_scores(
    scores: list[list[float]],
    reference_scores: list[list[float]],
    label_names: list[str],
    held_out: list[str],
    rule: str,
) -> list[list[float]]:
    """`scores` under a decision rule that needs no tuning (`CALIBRATION_RULES`), from statistics of the scores of
    unlabelled training pairs (no held-out relation among them):

    - `standardized`: every relation's score as a z-score over the reference pairs (all relations alike);
    - `aligned_new`: the relations added after training keep their z-score but on the scale of the trained
      relations (the mean over the trained non-None relations of their reference mean and deviation); the trained
      relations and None are left as they are.
    """
    from roc_mre.labels import find_none_label

    means, deviations = column_statistics(reference_scores)
    if rule == "standardized":
        return [[(v - m) / d for v, m, d in zip(row, means, deviations)] for row in scores]
    if rule != "aligned_new":
        raise ValueError(f"rule must be one of {CALIBRATION_RULES}, got {rule!r}")
    none_id = label_names.index(find_none_label(label_names))
    new = {label_names.index(label) for label in held_out}
    trained = [j for j in range(len(label_names)) if j not in new and j != none_id]
    mean_trained = statistics.fmean(means[j] for j in trained)
    deviation_trained = statistics.fmean(deviations[j] for j in trained)
    return [
        [
            mean_trained + deviation_trained * (v - means[j]) / deviations[j] if j in new else v
            for j, v in enumerate(row)
        ]
        for row in scores
    ]


def offset_sweep(
    scores: list[list[float]],
    references: list[int],
    label_names: list[str],
    held_out: list[str],
    logit_scale: float,
    offsets: tuple[float, ...] = OFFSETS,
) -> list[dict]:
    """The headline metrics with each offset added to the held-out relations' cosine similarity.

    Exactly what `model.set_relation_bank(bank, score_offsets={label: offset, ...})` predicts (logits =
    (cos + offset) / τ), computed from one set of scores instead of one evaluation per offset.
    """
    unseen = {label_names.index(label) for label in held_out}
    rows = []
    for offset in offsets:
        shift = logit_scale * offset
        shifted = [[v + shift if j in unseen else v for j, v in enumerate(row)] for row in scores]
        metrics = fold_metrics(shifted, references, label_names, held_out)
        rows.append(
            {
                "offset": offset,
                "seen_f1": metrics["seen_f1"],
                "unseen_f1": metrics["unseen"]["f1"],
                "unseen_precision": metrics["unseen"]["precision"],
                "unseen_recall": metrics["unseen"]["recall"],
                "unseen_predicted_none": metrics["unseen_outcomes"]["none"],
                "all_f1": metrics["all"]["f1"],
                "all_weighted_f1": metrics["all"]["weighted_f1"],
            }
        )
    return rows


def own_score_auc(scores: list[list[float]], references: list[int], relation: int) -> float:
    """How well a relation's own score tells its examples from all others (ROC AUC, 0.5 = chance, 1 = perfect).

    No decision rule that shifts or rescales one relation's score can separate its examples better than this, so it
    bounds every calibration of that relation. Ties count half (the Mann-Whitney form)."""
    mine = [row[relation] for row, gold in zip(scores, references) if gold == relation]
    others = [row[relation] for row, gold in zip(scores, references) if gold != relation]
    if not mine or not others:
        return float("nan")
    ranked = sorted([(v, 1) for v in mine] + [(v, 0) for v in others])
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += sum(1 for _, is_mine in ranked[i:j] if is_mine) * (i + j + 1) / 2
        i = j
    return round((rank_sum - len(mine) * (len(mine) + 1) / 2) / (len(mine) * len(others)), 4)


def calibration_ceiling(
    scores: list[list[float]],
    references: list[int],
    label_names: list[str],
    held_out: list[str],
    logit_scale: float,
    offsets: tuple[float, ...] = OFFSETS,
    sweeps: int = 2,
) -> dict:
    """An upper bound, not a result: the best the held-out relations can do when their score offsets are tuned on the
    very examples they are scored on (which no user can do).

    `global`: one offset for all held-out relations, the one with the best unseen F1 on this fold. `per_relation`:
    an offset per held-out relation, found by coordinate ascent on unseen F1 from the global one (`sweeps` passes over
    the relations). If even these stay below a target, no calibration of the new relations' scores can reach it with
    this model: the pair representations themselves must change. `own_score_auc` says how separable each held-out
    relation's examples are by its score alone.
    """
    unseen = [label_names.index(label) for label in held_out]

    def shifted(offset_of: dict[int, float]) -> dict:
        rows = [[v + logit_scale * offset_of.get(j, 0.0) for j, v in enumerate(row)] for row in scores]
        metrics = fold_metrics(rows, references, label_names, held_out)
        return {"seen_f1": metrics["seen_f1"], "unseen_f1": metrics["unseen"]["f1"]}

    sweep = {offset: shifted(dict.fromkeys(unseen, offset)) for offset in offsets}
    best_global = max(offsets, key=lambda o: (sweep[o]["unseen_f1"], -o))
    per_relation = dict.fromkeys(unseen, best_global)
    for _ in range(sweeps):
        for j in unseen:
            trials = {o: shifted({**per_relation, j: o})["unseen_f1"] for o in offsets}
            per_relation[j] = max(offsets, key=lambda o: (trials[o], -abs(o - best_global)))
    return {
        "global": {"offset": best_global, **sweep[best_global]},
        "per_relation": {
            "offsets": {label_names[j]: per_relation[j] for j in unseen},
            **shifted(per_relation),
        },
        "own_score_auc": {label_names[j]: own_score_auc(scores, references, j) for j in unseen},
    }


def cross_fold_offsets(folds: list[dict], wording: str, criterion: str) -> dict | None:
    """An offset a user could have chosen without the relations they add: for each fold, the offset whose
    `criterion` is best on average over the *other* folds (other held-out relations, same shots and wording), and
    this fold's metrics at that offset. None with fewer than two folds.

    The folds share the validation examples of None and of most seen relations, so this is cross-relation, not
    cross-example, selection; a user would pick the offset by holding out relations of their own data the same way.
    """
    if criterion not in CALIBRATION_CRITERIA:
        raise ValueError(f"criterion must be one of {CALIBRATION_CRITERIA}, got {criterion!r}")
    if len(folds) < 2:
        return None
    per_fold = []
    for row in folds:
        others = [f["wordings"][wording]["offset_sweep"] for f in folds if f is not row]
        offsets = [point["offset"] for point in others[0]]
        best = max(range(len(offsets)), key=lambda i: (statistics.fmean(o[i][criterion] for o in others), -offsets[i]))
        per_fold.append({"fold": row["fold"], **row["wordings"][wording]["offset_sweep"][best]})
    summary = {key: spread([p[key] for p in per_fold]) for key in ("offset", "seen_f1", "unseen_f1", "all_f1")}
    return {"criterion": criterion, "per_fold": per_fold, **summary}


# ----------------------------------------------------------------------------------------------------- evaluation
def wording_bank(full_bank: dict[str, str], held_out: list[str], wording: str, paraphrases: dict[str, str]) -> dict:
    """The bank of every relation; the held-out ones written in `wording`, the seen ones as they were trained."""
    from modeling_roc.modeling_roc import readable_label

    if wording not in WORDINGS:
        raise ValueError(f"wording must be one of {WORDINGS}, got {wording!r}")
    bank = dict(full_bank)
    for label in held_out:
        if wording == "paraphrase":
            if label not in paraphrases:
                raise ValueError(f"no paraphrase for {label!r} in the paraphrases file")
            bank[label] = paraphrases[label]
        elif wording == "label_name":
            bank[label] = readable_label(label)
    return bank


def wordings_for(relation_source: str) -> tuple[str, ...]:
    """The wordings worth evaluating for a recipe. A model trained with `relation_source="label_name"` embeds only a
    bank's keys (`readable_label`), whatever text the bank holds, so for it every wording is the label name and the
    other two would repeat the same numbers under names that say otherwise."""
    return ("label_name",) if relation_source == "label_name" else WORDINGS


def predict(model, processor, split: datasets.Dataset, batch_size: int, use_captions: bool) -> list[list[float]]:
    """Retrieval scores over the model's current bank for every example, in order (one process, no accelerate)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from roc_mre.training.data_collator import ROCDataCollator, with_row_index

    if "image" in split.column_names:
        split = split.remove_columns("image")
    collator = ROCDataCollator(processor, use_images=False, use_captions=use_captions)
    loader = DataLoader(with_row_index(split), batch_size=batch_size, collate_fn=collator)
    model.eval()
    scores = []
    for batch in tqdm(loader, desc="predicting", leave=False):
        batch.pop("example_index")
        batch.pop("labels")
        with torch.no_grad():
            scores += model(**batch).logits.float().tolist()
    return scores


def evaluate_run(
    run_dir: Path,
    validation: datasets.Dataset,
    banks: dict[str, dict],
    batch_size: int,
    use_captions: bool,
    reference: datasets.Dataset | None = None,
) -> tuple[dict[str, list[list[float]]], float, dict[str, list[list[float]]]]:
    """Scores of the run's saved model on `validation` under each bank (columns in the dataset's label order), the
    model's 1/τ (what turns a cosine offset into a logit offset), and the scores of the `reference` pairs under each
    bank (for `calibrated_scores`; empty without `reference`)."""
    import torch

    from modeling_roc import ROCModel, ROCProcessor

    model = ROCModel.from_pretrained(run_dir)
    processor = ROCProcessor.from_pretrained(run_dir)
    out, reference_out = {}, {}
    for wording, bank in banks.items():
        model.set_relation_bank(bank)
        out[wording] = predict(model, processor, validation, batch_size, use_captions)
        if reference is not None:
            reference_out[wording] = predict(model, processor, reference, batch_size, use_captions)
    with torch.no_grad():
        logit_scale = float(model.get_logit_scale())
    return out, logit_scale, reference_out


# ----------------------------------------------------------------------------------------------------------- runs
def train(recipe: list[str], dataset: Path | str, run_dir: Path) -> None:
    """Train one run with the recipe into `run_dir`, unless it finished there before (then it is collected)."""
    if (run_dir / "all_results.json").is_file():
        print(f"collecting the finished run {run_dir}")
        return
    command = [sys.executable, str(REPO_ROOT / "train.py"), *recipe, "--dataset_name_or_path", str(dataset)]
    command += ["--output_dir", str(run_dir)]
    if (run_dir / "checkpoints").is_dir():
        command += ["--resume_from_checkpoint", "latest"]
    print(shlex.join(command), flush=True)
    # from the caller's folder: the recipe's paths, the fold data written here and the dataset read here all resolve
    # against it alike
    subprocess.run(command, check=True)


def _run_summary(run_dir: Path) -> dict:
    """What a reader needs of a collected run: its command, best epoch, validation metrics and wall time."""
    trained = json.loads((run_dir / "all_results.json").read_text(encoding="utf-8"))
    return {key: trained[key] for key in ("command", "best_epoch", "metrics", "wall_time_s")}


def spread(values: list[float]) -> dict:
    return {
        "mean": round(statistics.fmean(values), 2),
        "min": min(values),
        "max": max(values),
        "stdev": round(statistics.stdev(values), 2) if len(values) > 1 else None,
    }


def summarize(folds: list[dict]) -> dict:
    """Mean and range over folds of the headline numbers, per shots and wording, and of the ceiling."""
    summary = {}
    for shots in sorted({f["shots"] for f in folds}):
        rows = [f for f in folds if f["shots"] == shots]
        for wording in rows[0]["wordings"]:
            key = f"shots{shots}/{wording}"
            summary[key] = {
                "seen_f1": spread([r["wordings"][wording]["seen_f1"] for r in rows]),
                "harmonic_mean": spread([r["wordings"][wording]["harmonic_mean"] for r in rows]),
                "unseen_f1": spread([r["wordings"][wording]["unseen"]["f1"] for r in rows]),
                "unseen_accuracy": spread([r["wordings"][wording]["unseen"]["accuracy"] for r in rows]),
                "unseen_predicted_none": spread([r["wordings"][wording]["unseen_outcomes"]["none"] for r in rows]),
                "among_unseen_accuracy": spread(
                    [r["wordings"][wording]["unseen_ranking"]["among_unseen_accuracy"] for r in rows]
                ),
                "without_none_accuracy": spread(
                    [r["wordings"][wording]["unseen_ranking"]["without_none_accuracy"] for r in rows]
                ),
                "all_f1": spread([r["wordings"][wording]["all"]["f1"] for r in rows]),
                "folds": len(rows),
            }
            if all("rules" in r["wordings"][wording] for r in rows):
                summary[key]["rules"] = {
                    rule: {
                        metric: spread([pick(r["wordings"][wording]["rules"][rule]) for r in rows])
                        for metric, pick in RULE_SUMMARY.items()
                    }
                    for rule in CALIBRATION_RULES
                }
            if all("calibration_ceiling" in r["wordings"][wording] for r in rows):
                ceilings_of = [r["wordings"][wording]["calibration_ceiling"] for r in rows]
                summary[key]["calibration_ceiling"] = {
                    kind: {
                        metric: spread([c[kind][metric] for c in ceilings_of]) for metric in ("seen_f1", "unseen_f1")
                    }
                    for kind in ("global", "per_relation")
                }
                summary[key]["calibration_ceiling"]["own_score_auc"] = spread(
                    [auc for c in ceilings_of for auc in c["own_score_auc"].values()]
                )
            calibrated = {c: cross_fold_offsets(rows, wording, c) for c in CALIBRATION_CRITERIA}
            if all(calibrated.values()):
                summary[key]["offset_chosen_on_other_folds"] = calibrated
    ceilings = [f["ceiling"] for f in folds if f.get("ceiling") and f["shots"] == 0]
    if ceilings:
        summary["ceiling"] = {
            "seen_f1": spread([c["seen_f1"] for c in ceilings]),
            "unseen_f1": spread([c["unseen"]["f1"] for c in ceilings]),
            "unseen_accuracy": spread([c["unseen"]["accuracy"] for c in ceilings]),
            "all_f1": spread([c["all"]["f1"] for c in ceilings]),
            "folds": len(ceilings),
        }
    return summary


RULE_SUMMARY = {
    "seen_f1": lambda m: m["seen_f1"],
    "unseen_f1": lambda m: m["unseen"]["f1"],
    "harmonic_mean": lambda m: m["harmonic_mean"],
    "unseen_predicted_none": lambda m: m["unseen_outcomes"]["none"],
    "among_unseen_accuracy": lambda m: m["unseen_ranking"]["among_unseen_accuracy"],
    "all_f1": lambda m: m["all"]["f1"],
}


def plot(record: dict, path: Path) -> None:
    """Unseen-relation F1 per fold and wording, with the ceiling (trained on them) and the classification floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [f for f in record["folds"] if f["shots"] == 0]
    if not rows:
        return
    wordings = list(rows[0]["wordings"])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    width = 0.8 / (len(wordings) + 1)
    ticks = [i + width * len(wordings) / 2 for i in range(len(rows))]
    names = [f"fold {r['fold']}\n" + "\n".join(h.lstrip("/") for h in r["held_out"]) for r in rows]
    for w, wording in enumerate(wordings):
        xs = [i + w * width for i in range(len(rows))]
        label = wording.replace("_", " ")
        ax.bar(xs, [r["wordings"][wording]["unseen"]["f1"] for r in rows], width, label=label)
        ax2.bar(
            xs, [r["wordings"][wording]["unseen_ranking"]["among_unseen_accuracy"] for r in rows], width, label=label
        )
    if all(r.get("ceiling") for r in rows):
        xs = [i + len(wordings) * width for i in range(len(rows))]
        ax.bar(xs, [r["ceiling"]["unseen"]["f1"] for r in rows], width, label="ceiling (trained on them)")
        ax2.bar(xs, [r["ceiling"]["unseen_ranking"]["among_unseen_accuracy"] for r in rows], width, label="ceiling")
    ax2.axhline(
        rows[0]["wordings"][wordings[0]]["unseen_ranking"]["chance_among_unseen"],
        color="gray",
        ls="--",
        label="chance (1/k)",
    )
    ax.set_ylabel("micro-F1, held-out relations, all labels (%)")
    ax2.set_ylabel("accuracy among the held-out relations (%)")
    ax.set_title("Over all relations (classification head: 0 by construction)", fontsize=8)
    ax2.set_title("Which held-out relation is it? (gold unseen examples)", fontsize=8)
    for axis in (ax, ax2):
        axis.set_xticks(ticks)
        axis.set_xticklabels(names, fontsize=7)
        axis.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_offsets(record: dict, path: Path) -> None:
    """What a score offset on the new relations buys and costs: unseen, seen and all-label F1 against the offset,
    averaged over folds, one line per shot count (reviewed descriptions, or the label names a label-name recipe
    reads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wording = "description" if "description" in record["folds"][0]["wordings"] else "label_name"
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
    for shots in sorted({f["shots"] for f in record["folds"]}):
        sweeps = [f["wordings"][wording]["offset_sweep"] for f in record["folds"] if f["shots"] == shots]
        offsets = [point["offset"] for point in sweeps[0]]
        for axis, key in zip(axes, ("unseen_f1", "seen_f1", "all_f1")):
            mean = [statistics.fmean(sweep[i][key] for sweep in sweeps) for i in range(len(offsets))]
            axis.plot(offsets, mean, marker=".", label=f"{shots} shots ({len(sweeps)} folds)")
    titles = ("held-out relations", "seen relations", "all relations (the field's micro-F1, None excluded)")
    for axis, title in zip(axes, titles):
        axis.set_title(title, fontsize=8)
        axis.set_xlabel("offset added to the held-out relations' cosine")
        axis.legend(fontsize=6)
    axes[0].set_ylabel(f"micro-F1 (%), new relations as {wording.replace('_', ' ')}s")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    from datasets_scripts.relation_bank import load_relation_bank, ordered_bank
    from roc_mre.labels import find_none_label
    from train import parse_args as parse_train_args

    args = parse_args(argv)
    recipe = parse_train_args([*args.train_args, "--output_dir", "unused"])
    if recipe.head != "retrieval" or recipe.relation_source == "learned":
        raise SystemExit(
            f"error: the recipe's head={recipe.head!r}, relation_source={recipe.relation_source!r} has one fixed "
            "output per training label, so it cannot score an unseen relation (0 by construction); use retrieval."
        )
    splits = datasets.load_dataset(recipe.dataset_name_or_path, recipe.dataset_config_name)
    label_names = list(splits[recipe.train_split].features["relation"].names)
    none_label = find_none_label(label_names)
    counts = Counter(label_names[r] for r in splits[recipe.train_split]["relation"])
    all_folds = held_out_folds({label: counts.get(label, 0) for label in label_names}, none_label, args.k)
    for fold in args.folds:
        if not 0 <= fold < len(all_folds):
            raise SystemExit(f"error: --folds {fold}: the rule gives folds 0..{len(all_folds) - 1} for k={args.k}")
    full_bank = ordered_bank(label_names, load_relation_bank(recipe.relation_bank), recipe.relation_bank)
    paraphrases = json.loads(Path(args.paraphrases).read_text(encoding="utf-8"))
    validation = splits[recipe.validation_split]
    runs_dir = Path(args.runs_dir) / args.name
    ceiling_scores, ceiling_dir = None, None
    if not args.no_ceiling:
        ceiling_dir = Path(args.ceiling_run) if args.ceiling_run else runs_dir / "all-relations"
        train(args.train_args, recipe.dataset_name_or_path, ceiling_dir)
        ceiling_scores = evaluate_run(
            ceiling_dir, validation, {"description": full_bank}, args.eval_batch_size, recipe.use_captions
        )[0]["description"]

    references = list(validation["relation"])
    folds = []
    for fold in args.folds:
        held_out = all_folds[fold]
        banks = {w: wording_bank(full_bank, held_out, w, paraphrases) for w in wordings_for(recipe.relation_source)}
        for shots in args.shots:
            run_dir = runs_dir / f"fold{fold}-shots{shots}"
            fold_data, removed = fold_splits(
                splits, held_out, shots, recipe.seed, recipe.train_split, recipe.validation_split
            )
            if not (run_dir / "all_results.json").is_file():
                write_parquet_folder(fold_data, run_dir / "data")
            train(args.train_args, run_dir / "data", run_dir / "model")
            train_rows = fold_data[recipe.train_split]
            reference = train_rows.shuffle(seed=recipe.seed).select(range(min(REFERENCE_PAIRS, len(train_rows))))
            if shots:  # only pairs of trained relations: the statistics know nothing of the held-out ones
                seen_ids = {i for i, name in enumerate(label_names) if name not in held_out}
                reference = reference.select([i for i, r in enumerate(reference["relation"]) if r in seen_ids])
            scores, logit_scale, reference_scores = evaluate_run(
                run_dir / "model", validation, banks, args.eval_batch_size, recipe.use_captions, reference
            )
            trained = json.loads((run_dir / "model" / "all_results.json").read_text(encoding="utf-8"))
            row = {
                "fold": fold,
                "shots": shots,
                "held_out": held_out,
                "held_out_train_counts": {label: counts.get(label, 0) for label in held_out},
                "held_out_validation_counts": {
                    label: references.count(label_names.index(label)) for label in held_out
                },
                "data": removed,
                "best_epoch": trained["best_epoch"],
                "selection_f1_seen_validation": trained["metrics"]["f1"],
                "train_wall_time_s": trained["wall_time_s"],  # train.py's own, whether trained now or collected
                "logit_scale": round(logit_scale, 4),
                "reference_pairs": len(reference),
                "wordings": {
                    w: {
                        **fold_metrics(p, references, label_names, held_out),
                        "offset_sweep": offset_sweep(p, references, label_names, held_out, logit_scale),
                        "calibration_ceiling": calibration_ceiling(p, references, label_names, held_out, logit_scale),
                        "rules": {
                            rule: fold_metrics(
                                calibrated_scores(p, reference_scores[w], label_names, held_out, rule),
                                references,
                                label_names,
                                held_out,
                            )
                            for rule in CALIBRATION_RULES
                        },
                    }
                    for w, p in scores.items()
                },
                "run_dir": str(run_dir / "model"),
            }
            if ceiling_scores is not None:
                row["ceiling"] = fold_metrics(ceiling_scores, references, label_names, held_out)
            folds.append(row)
            unseen = {w: m["unseen"]["f1"] for w, m in row["wordings"].items()}
            ruled = {
                (w, rule): (r["seen_f1"], r["unseen"]["f1"])
                for w, m in row["wordings"].items()
                for rule, r in m["rules"].items()
            }
            print(f"fold {fold} shots {shots} held out {held_out}: unseen F1 {unseen}; (seen, unseen) {ruled}")

    record = {
        "benchmark": f"unseen_relations_{args.name}",
        "note": args.note,
        "command": shlex.join(["python", "benchmarks/unseen_relations.py", *(argv or sys.argv[1:])]),
        "recipe": args.train_args,
        "machine": f"{platform.machine()} {__import__('os').cpu_count()} CPUs",
        "dataset": recipe.dataset_name_or_path,
        "split": recipe.validation_split,
        "k": args.k,
        "fold_rule": "non-None relations ranked by training count, cut into k bands; fold f takes the f-th of each",
        "all_folds": all_folds,
        "ceiling_run": str(ceiling_dir) if ceiling_dir else None,
        "ceiling": _run_summary(ceiling_dir) if ceiling_dir else None,
        "classification_floor_unseen_f1": 0.0,
        "folds": folds,
        "summary": summarize(folds),
    }
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"unseen_relations_{args.name}.json"
    write_result(path, record)
    plot(record, output / f"unseen_relations_{args.name}.png")
    plot_offsets(record, output / f"unseen_relations_{args.name}_offsets.png")
    print(f"{path}: {json.dumps(record['summary'], indent=1)}")
    return record


if __name__ == "__main__":
    main()
