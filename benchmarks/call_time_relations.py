"""Relations the model was never trained on, given at call time with 0 / 1 / 5 / 20 examples: are they predicted?

    python benchmarks/call_time_relations.py --name minilm_identity --folds 0 1 2 3 4 --shots 0 1 5 20 -- \
        --config mnre_minilm_offline --num_train_epochs 2 --pair_embed_dim 384 --pair_activation identity \
        --relation_dropout 0.3 --relation_wordings benchmarks/relation_paraphrases_mnre.json

Everything after `--` is the train.py recipe. Each fold holds out the relations `unseen_relations.held_out_folds`
gives (k = 4, one per frequency band) and trains on the rest, with none of their examples (the bank and the
`pair_pool` then know only the seen relations and None); a finished run in `--runs_dir/<name>/fold<f>` is collected,
not retrained, and the same folds' runs of `unseen_relations.py` (`fold<f>-shots0`) are found there too. Then, with no
retraining, the validation split is scored with relations given at call time, exactly as a user gives them
(`CallTimeRelations`, `ROCModel.embed_examples`, `get_call_time_relation_features`, `relation_bars`,
`call_time_decision_logits`): every seen relation with its trained description, every held-out one with its reviewed
description plus N labelled examples drawn from its training examples (which the fold never trained on), `--draws`
draws per N. Each setting is scored at every false-positive rate of the pool rule (`--rates`), prototype weight
(`--weights`) and rule deciding a relation given with examples (`--decisions`: the pool-whitened prototype, the
default, and the cosine bar it replaced), so the report shows the curve, not only the default.

Reported per fold, shots and setting: seen-relation micro-F1 and its change against the same model given only the
seen relations (the cost of adding the new ones), unseen micro P / R / F1, and how often the gold relation scores
first among the held-out ones (the "which" question). The validation pairs are encoded once per fold (the model is
fixed); only the relation side changes between settings. Writes `benchmarks/results/call_time_relations_<name>.json`.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import datasets
from results_io import result_name, write_result
from unseen_relations import fold_splits, held_out_folds, subset_scores, train, write_parquet_folder


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

RATES = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1)
WEIGHTS = (0.5, 1.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, type=result_name, help="results: call_time_relations_<name>.json")
    parser.add_argument("--dataset", default="data/mnre", help="The built MNRE folder (default: %(default)s).")
    parser.add_argument("--runs_dir", default="runs/call-time", help="Where fold runs are trained or found.")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="Folds to run.")
    parser.add_argument("--k", type=int, default=4, help="Relations held out per fold (default: %(default)s).")
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 1, 5, 20], help="Examples given per relation.")
    parser.add_argument("--draws", type=int, default=3, help="Draws of the examples per shot count (0 shots: one).")
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES), help="Pool false-positive rates.")
    parser.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS), help="Prototype weights.")
    parser.add_argument(
        "--decisions",
        nargs="+",
        default=["whitened_prototype", "cosine_bar"],
        choices=["whitened_prototype", "cosine_bar"],
        help="How a relation given with examples decides whether it holds (`ROCConfig.example_decision`); the first "
        "is the default's, the others comparator rows.",
    )
    parser.add_argument("--seed", type=int, default=42, help="Seed of the fold data and the example draws.")
    parser.add_argument("--batch_size", type=int, default=128, help="Pairs per forward pass when encoding.")
    parser.add_argument("--output_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    parser.add_argument("recipe", nargs=argparse.REMAINDER, help="-- then the train.py recipe")
    args = parser.parse_args(argv)
    args.recipe = [a for a in args.recipe if a != "--"]
    if not args.recipe:
        parser.error("give the train.py recipe after --, e.g. -- --config mnre_minilm_offline")
    if not Path(args.dataset).is_dir():
        parser.error(f"--dataset {args.dataset}: no such folder (roc-build mnre --output_dir {args.dataset} ...)")
    return args


def encode_pairs(model, processor, rows: datasets.Dataset, batch_size: int):
    """H_E of every row, in order, `(len(rows), pair_embed_dim)` (float32, eval mode, no gradients)."""
    import torch

    from roc_mre.training.data_collator import ROCDataCollator

    collator = ROCDataCollator(processor, use_images=False)
    chunks = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = collator([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
            inputs = {k: v for k, v in batch.items() if k not in ("labels", "example_index")}
            chunks.append(model.get_pair_features(**inputs).float())
    return torch.cat(chunks)


def score_setting(
    model, pairs, names, relations, rate: float, weight: float, decision: str = "whitened_prototype"
) -> tuple:
    """Dataset label ids predicted for the encoded validation `pairs` under call-time `relations`, and the logits,
    exactly as the model's forward decides (`relation_bars`, `call_time_decision_logits`)."""
    import torch
    import torch.nn.functional as F

    model.config.new_relation_false_positive_rate = rate
    model.config.prototype_weight = weight
    model.config.example_decision = decision
    model._call_time_cache.clear()
    with torch.no_grad():
        embeds = model.get_call_time_relation_features(relations)
        bars = model.relation_bars(relations, embeds)
        scale = model.get_logit_scale()
        logits = scale * F.normalize(pairs, dim=-1) @ F.normalize(embeds, dim=-1).t()
        decided = model.call_time_decision_logits(pairs, relations, logits, scale, bars).argmax(-1).tolist()
    return [names.index(relations.labels[j]) for j in decided], logits


def among_held_out(logits, references, names, relations, held_out: list[str]) -> float:
    """% of the held-out relations' examples whose gold relation has the best cosine among the held-out ones."""
    columns = [relations.labels.index(label) for label in held_out]
    rows = [(i, r) for i, r in enumerate(references) if names[r] in held_out]
    if not rows:
        return 0.0
    best = [columns[int(logits[i, columns].argmax())] for i, _ in rows]
    return round(100 * sum(relations.labels[b] == names[r] for b, (_, r) in zip(best, rows)) / len(rows), 2)


def run_fold(args, fold: int, held_out: list[str], splits, names: list[str], bank: dict[str, str]) -> dict:
    from modeling_roc import ROCModel, ROCProcessor
    from modeling_roc.modeling_roc import CallTimeRelations

    run_dir = Path(args.runs_dir) / args.name / f"fold{fold}"
    data_dir = Path(args.runs_dir) / args.name / f"fold{fold}-data"
    if not (run_dir / "all_results.json").is_file():
        fold_data, report = fold_splits(splits, held_out, 0, args.seed, "train", "validation")
        write_parquet_folder(fold_data, data_dir)
        print(f"fold {fold}: holding out {held_out}; {report}", flush=True)
    train(args.recipe, data_dir, run_dir)
    model = ROCModel.from_pretrained(run_dir).eval()
    processor = ROCProcessor.from_pretrained(run_dir)
    if not model.has_pair_pool():
        raise SystemExit(f"error: {run_dir} has no pair_pool (trained before --pair_pool_size); retrain it")
    none_label, seen_bank = model.relation_labels[0], dict(model.config.relation_bank)
    validation = splits["validation"]
    references = validation["relation"]
    started = time.time()
    pairs = encode_pairs(model, processor, validation, args.batch_size)
    encode_s = time.time() - started
    train_relations = splits["train"]["relation"]
    train_rows = {label: [i for i, r in enumerate(train_relations) if names[r] == label] for label in held_out}
    seen_ids = {names.index(label) for label in seen_bank if label != none_label}
    unseen_ids = {names.index(label) for label in held_out}

    def parse(given: dict) -> CallTimeRelations:
        return CallTimeRelations.parse(given, none_label, seen_bank[none_label])

    seen_only = parse({label: seen_bank[label] for label in seen_bank if label != none_label})
    base_predictions, _ = score_setting(model, pairs, names, seen_only, args.rates[0], args.weights[0])
    base_seen_f1 = subset_scores(base_predictions, references, seen_ids)["f1"]
    results = []
    for shots in args.shots:
        for draw in range(1 if shots == 0 else args.draws):
            rng = random.Random(f"{args.seed}-{fold}-{shots}-{draw}")
            given = {label: seen_bank[label] for label in seen_bank if label != none_label}
            for label in held_out:
                chosen = rng.sample(train_rows[label], min(shots, len(train_rows[label])))
                examples = [{k: splits["train"][i][k] for k in ("tokens", "subject", "object")} for i in chosen]
                given[label] = {"description": bank[label], "examples": examples}
            relations = model.embed_examples(parse(given), processor)
            settings = [
                (rate, weight, decision)
                for rate in args.rates
                for weight in (args.weights if shots else args.weights[:1])
                for decision in (args.decisions if shots else args.decisions[:1])
            ]
            for rate, weight, decision in settings:
                predictions, logits = score_setting(model, pairs, names, relations, rate, weight, decision)
                seen_f1 = subset_scores(predictions, references, seen_ids)["f1"]
                unseen = subset_scores(predictions, references, unseen_ids)
                results.append({
                    "shots": shots, "draw": draw, "rate": rate, "prototype_weight": weight if shots else None,
                    "example_decision": decision if shots else None,
                    "seen_f1": seen_f1, "seen_f1_change": round(seen_f1 - base_seen_f1, 2),
                    "unseen_precision": unseen["precision"], "unseen_recall": unseen["recall"],
                    "unseen_f1": unseen["f1"],
                    "gold_first_among_held_out": among_held_out(logits, references, names, relations, held_out),
                })  # fmt: skip
            print(f"fold {fold}, {shots} shots, draw {draw}: done", flush=True)
    return {
        "fold": fold,
        "held_out": held_out,
        "run_dir": str(run_dir),
        "seen_f1_without_new_relations": base_seen_f1,
        "validation_encode_s": round(encode_s, 1),
        "pair_pool_size": int(model.config.pair_pool_size),
        "settings": results,
    }


SETTING_KEYS = ("shots", "rate", "prototype_weight", "example_decision")
SCORE_KEYS = ("seen_f1_change", "unseen_f1", "unseen_precision", "unseen_recall", "gold_first_among_held_out")


def summarize(folds: list[dict]) -> list[dict]:
    """Per setting (shots, rate, prototype weight, example decision): the mean over folds of each fold's mean over
    draws, in the order the settings were scored."""
    settings = list(dict.fromkeys(tuple(s.get(k) for k in SETTING_KEYS) for f in folds for s in f["settings"]))
    rows = []
    for setting in settings:
        per_fold = []
        for fold in folds:
            picked = [s for s in fold["settings"] if tuple(s.get(k) for k in SETTING_KEYS) == setting]
            if picked:
                per_fold.append({k: statistics.mean(s[k] for s in picked) for k in SCORE_KEYS})
        mean = {k: round(statistics.mean(f[k] for f in per_fold), 2) for k in SCORE_KEYS}
        rows.append({**dict(zip(SETTING_KEYS, setting)), "folds": len(per_fold), **mean,
                     "unseen_f1_per_fold": [round(f["unseen_f1"], 2) for f in per_fold]})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from datasets_scripts.relation_bank import load_relation_bank
    from roc_mre.labels import find_none_label

    splits = datasets.load_dataset(args.dataset)
    names = splits["train"].features["relation"].names
    counts = {label: 0 for label in names}
    for r in splits["train"]["relation"]:
        counts[names[r]] += 1
    folds_all = held_out_folds(counts, find_none_label(names), args.k)
    bank = load_relation_bank("mnre")
    started = time.time()
    folds = [run_fold(args, f, folds_all[f], splits, names, bank) for f in args.folds]
    record = {
        "benchmark": "call_time_relations",
        "recipe": args.recipe,
        "machine": f"{platform.machine()} {__import__('os').cpu_count()} CPUs",
        "platform": platform.platform(),
        "folds": args.folds,
        "shots": args.shots,
        "draws": args.draws,
        "wall_time_s": round(time.time() - started, 1),
        "summary": summarize(folds),
        "per_fold": folds,
    }
    path = write_result(Path(args.output_dir) / f"call_time_relations_{args.name}.json", record)
    print(f"wrote {path}")
    return record


if __name__ == "__main__":
    main()
