"""Benchmark: does a model trained with captions use what its caption says? Three evaluations of one trained run.

    python benchmarks/caption_reliance.py --name blip_seed42 --model runs/captions-text-blip-seed42 \
        --dataset data/mnre-captions-BLIP

The same saved model is evaluated (`train.py --do_eval`, the code path every results file uses) on one split, three
ways:
- `own`: every example with the caption of its own image (what training saw);
- `other_image`: every example with the caption of a different image (a seeded shuffle in which no example keeps a
  caption of its own image): the same kind of text, the wrong content; one evaluation per `--seeds` value, since a
  single shuffle moves micro-F1 by about a point;
- `none`: no caption at all (the column dropped, as for a post without an image).
If `own` beats every `other_image` shuffle, the model reads the caption's content; if `own` lies among them, it uses
captions at most as a kind of text; if `none` is best, the captions cost the model more than they give. The
results file `benchmarks/results/caption_reliance_<name>.json` holds every metric set, the F1 differences to `own`
and the commands; the split's variants are written under `--work_dir` (default: `<model>/caption_reliance`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
from results_io import existing_dir  # noqa: E402


def other_image_order(images: list[str], seed: int) -> list[int]:
    """A seeded permutation `order` with `images[order[i]] != images[i]` for every i (each caption moves image).

    A shuffle, then every example still holding a caption of its own image swaps with a random partner for which the
    swap fixes it and breaks nothing; `ValueError` when one image holds more than half the examples (no such
    permutation exists).
    """
    largest = max((images.count(image) for image in set(images)), default=0)
    if 2 * largest > len(images):
        raise ValueError(f"one image holds {largest} of {len(images)} examples: their captions cannot all move")
    rng = random.Random(seed)
    order = list(range(len(images)))
    rng.shuffle(order)
    for _ in range(100 * len(images)):
        clashes = [i for i in range(len(images)) if images[order[i]] == images[i]]
        if not clashes:
            return order
        i = clashes[0]
        j = rng.randrange(len(images))
        if images[order[j]] != images[i] and images[order[i]] != images[j]:
            order[i], order[j] = order[j], order[i]
    raise RuntimeError("no caption order found in which every example moves image")  # not reached in practice


def write_conditions(dataset: str, split: str, work_dir: Path, seeds: list[int]) -> dict[str, Path]:
    """The split as `own`, `none` and `other_image_seed<n>` per seed, each a parquet folder `load_dataset` reads."""
    import datasets

    rows = datasets.load_dataset(dataset, split=split)
    if "caption" not in rows.column_names:
        raise SystemExit(f"{dataset}: split {split!r} has no caption column (build it with --captions)")
    key = "image_id" if "image_id" in rows.column_names else "id"
    images = [str(value) for value in rows[key]]
    captions = rows["caption"]
    variants = {"own": rows, "none": rows.remove_columns("caption")}
    for seed in seeds:
        moved = [captions[j] for j in other_image_order(images, seed)]
        variants[f"other_image_seed{seed}"] = rows.remove_columns("caption").add_column(
            "caption", moved, feature=rows.features["caption"]
        )
    folders = {}
    for condition, variant in variants.items():
        folder = work_dir / "data" / condition
        folder.mkdir(parents=True, exist_ok=True)
        variant.to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
        folders[condition] = folder
    return folders


def evaluate_condition(model: str, data: Path, split: str, output_dir: Path, with_captions: bool) -> dict:
    """`train.py --do_eval` of the saved model on one variant; its `eval_results.json` metrics."""
    command = [
        sys.executable, str(REPO_ROOT / "train.py"),
        "--model_name_or_path", model,
        "--dataset_name_or_path", str(data),
        "--do_eval", "--eval_split", split,
        "--output_dir", str(output_dir),
        *(["--use_captions"] if with_captions else []),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    results = json.loads((output_dir / "eval_results.json").read_text(encoding="utf-8"))
    return {"command": results["command"], "metrics": results["metrics"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="Results file suffix: caption_reliance_<name>.json")
    parser.add_argument("--model", type=existing_dir, required=True, help="A run folder trained with --use_captions.")
    parser.add_argument(
        "--dataset", type=existing_dir, required=True, help="The dataset with the caption column it was trained on."
    )
    parser.add_argument("--split", default="validation", help="Split to evaluate (default: validation).")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="Seeds of the other-image shuffles (default 0 1 2)."
    )
    parser.add_argument("--work_dir", help="Variants and evaluations go here (default: MODEL/caption_reliance).")
    parser.add_argument("--output_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    model = str(Path(args.model).resolve())
    training_args = json.loads((Path(model) / "training_args.json").read_text(encoding="utf-8"))
    if not training_args.get("use_captions"):
        raise SystemExit(f"{args.model} was trained without --use_captions: there is no caption use to measure")
    work_dir = Path(args.work_dir or Path(model) / "caption_reliance").resolve()
    if work_dir.exists() and any(work_dir.iterdir()):
        raise SystemExit(f"--work_dir {work_dir} is not empty (an earlier measurement?): give another folder")
    started = time.time()
    folders = write_conditions(args.dataset, args.split, work_dir, args.seeds)
    evaluations = {
        condition: evaluate_condition(
            model, folder, args.split, work_dir / f"eval-{condition}", with_captions=condition != "none"
        )
        for condition, folder in folders.items()
    }
    f1 = {condition: evaluation["metrics"]["f1"] for condition, evaluation in evaluations.items()}
    shuffled = [f1[f"other_image_seed{seed}"] for seed in args.seeds]
    summary = {
        "own": f1["own"],
        "other_image_mean": round(sum(shuffled) / len(shuffled), 2),
        "other_image_min": min(shuffled),
        "other_image_max": max(shuffled),
        "none": f1["none"],
    }
    record = {
        "benchmark": f"caption_reliance_{args.name}",
        "command": shlex.join(["python", "benchmarks/caption_reliance.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "model": args.model,
        "caption_mode": training_args.get("caption_mode"),
        "dataset": args.dataset,
        "split": args.split,
        "shuffle_seeds": args.seeds,
        "conditions": evaluations,
        "f1": summary,
        "f1_minus_own": {key: round(value - summary["own"], 2) for key, value in summary.items() if key != "own"},
        "wall_time_s": round(time.time() - started, 1),
    }
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"caption_reliance_{args.name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"{path}: {args.split} micro-F1 {json.dumps(record['f1'])}")
    return record


if __name__ == "__main__":
    main()
