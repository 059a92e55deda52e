"""The paper's ablations, same code, flags only: each run adds one switch to a reference recipe.

    python benchmarks/ablations.py --name short --parallel 2 -- --config mnre_minilm_offline \
        --num_train_epochs 1
    python benchmarks/ablations.py --name full --from_run reference=runs/q --from_run no_fusion=runs/q-nofusion -- ...
    python benchmarks/ablations.py --name full \
        --from_run reference=benchmarks/results/quality_a_default_rerun.json -- ...

Everything after `--` is the reference recipe, passed to train.py unchanged. The reference and every ablation train
into `--runs_dir/<name>/<ablation>/` (a finished run, one with `all_results.json`, is collected, not retrained, so an
interrupted benchmark goes on where it stopped). `--from_run NAME=PATH` collects a run trained elsewhere: its folder,
or the `benchmarks/quality.py` results file written for it (run folders do not outlive a machine; results files are
committed). Writes `benchmarks/results/ablations_<name>.json`: each run's
validation metrics, learning curve and Δ micro-F1 against the reference, next to the Δ the paper reports.

`--parallel N` trains N runs at once with `cpu_count // N` threads each: on a small CPU machine two single-threaded
trainings get more done than one two-threaded training. `--reference_seeds 43 44` also trains the reference under
other seeds and records the spread of its F1: the noise floor that a Δ has to clear before it means anything.
`--ablation_seeds 43` (each one of `--reference_seeds`) trains every ablation under that seed too, so each Δ is also
measured against the reference of the same seed and reported with its own spread over seeds (`delta_f1_seeds`).
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from results_io import result_name, write_result


REPO_ROOT = Path(__file__).resolve().parent.parent

# name -> (train.py flags added to the reference, what the switch removes)
ABLATIONS: dict[str, tuple[list[str], str]] = {
    "classification_head": (["--head", "classification"], "retrieval over relation embeddings -> linear classifier"),
    "no_relation_description": (["--relation_source", "label_name"], "relation descriptions -> the label names"),
    "no_relation_embedding": (["--relation_source", "learned"], "relation encoder -> one free vector per label"),
    "no_entity_types": (["--no_entity_types"], "NER type prompts removed from the text"),
    "no_entity_position": (["--entity_pooling", "mean"], "marker-position pooling -> mean over all tokens"),
    "no_fusion": (["--no_fusion"], "fusion encoder removed"),
}

# Δ F1 the paper reports on MNRE for the matching ablation (Hei et al., 2025, arXiv 2509.21151; Table 4 for the
# classification head, Table 3 for the others: "w/o relation embedding" = fixed label ids, "w/o entity position" =
# global average pooling, "w/o entity encoder" = no fusion Transformer), None where it has no such ablation. The
# paper's MNRE numbers use a None-inclusive metric (accuracy, P, R and F1 within a point of each other;
# ../shared/notes/mnre-metric-and-anchors.md), so they sit beside our `delta_weighted_f1` as much as `delta_f1`.
PAPER_DELTA_F1: dict[str, float | None] = {
    "classification_head": -14.97,
    "no_relation_description": None,
    "no_relation_embedding": -2.86,
    "no_entity_types": -1.96,
    "no_entity_position": -0.66,
    "no_fusion": -0.60,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--name", required=True, type=result_name, help="Results file suffix: benchmarks/results/ablations_<name>.json"
    )
    parser.add_argument(
        "--only", nargs="+", choices=sorted(ABLATIONS), default=sorted(ABLATIONS), help="Ablations to run."
    )
    parser.add_argument(
        "--from_run",
        action="append",
        default=[],
        metavar="ABLATION=RUN_DIR",
        help=(
            "Collect a finished run instead of training it ('reference', 'reference_seed<SEED>', an ablation name or "
            "'<ablation>_seed<SEED>'): its run folder or its benchmarks/quality.py results file (quality_*.json). "
            "Repeatable."
        ),
    )
    parser.add_argument(
        "--reference_seeds",
        type=int,
        nargs="+",
        default=[],
        metavar="SEED",
        help="Also train the reference with these seeds: the spread of its F1 over seeds is the noise a Δ must clear.",
    )
    parser.add_argument(
        "--ablation_seeds",
        type=int,
        nargs="+",
        default=[],
        metavar="SEED",
        help="Also train every ablation with these seeds (each one of --reference_seeds, the reference its Δ is "
        "measured against): each Δ then has its own spread over seeds.",
    )
    parser.add_argument("--parallel", type=int, default=1, help="Runs trained at once.")
    parser.add_argument("--runs_dir", default=str(REPO_ROOT / "runs" / "ablations"))
    parser.add_argument("--note", default="", help="Free text stored with the result (schedule, machine load).")
    parser.add_argument("--output_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the reference's train.py arguments")
    args = parser.parse_args()
    args.train_args = [a for a in args.train_args if a != "--"]
    if not args.train_args:
        parser.error("give the reference recipe's train.py arguments after --")
    if args.parallel < 1:
        parser.error("--parallel must be at least 1")
    unpaired = sorted(set(args.ablation_seeds) - set(args.reference_seeds))
    if unpaired:
        parser.error(
            f"--ablation_seeds {' '.join(map(str, unpaired))}: not in --reference_seeds, so no reference of that seed "
            "to measure the Δ against"
        )
    given = {}
    seed_runs = {_seeded("reference", seed) for seed in args.reference_seeds}
    seed_runs |= {_seeded(name, seed) for name in ABLATIONS for seed in args.ablation_seeds}
    for item in args.from_run:
        name, sep, run_dir = item.partition("=")
        if not sep or name not in {"reference", *seed_runs, *ABLATIONS}:
            parser.error(
                f"--from_run {item!r}: expected reference=RUN_DIR, reference_seed<SEED>=RUN_DIR for a seed of "
                "--reference_seeds, <ablation>=RUN_DIR, or <ablation>_seed<SEED>=RUN_DIR for one of --ablation_seeds"
            )
        if not (Path(run_dir).is_dir() or Path(run_dir).is_file()):
            parser.error(f"--from_run {item!r}: {run_dir} is neither a run folder nor a quality results file")
        given[name] = Path(run_dir)
    args.from_run = given
    return args


def _seeded(name: str, seed: int) -> str:
    """The run name of `name` (the reference or an ablation) trained under another seed."""
    return f"{name}_seed{seed}"


def run_commands(
    train_args: list[str],
    names: list[str],
    runs_dir: Path,
    reference_seeds: list[int],
    ablation_seeds: Sequence[int] = (),
) -> dict[str, list[str]]:
    """train.py arguments of the reference, each ablation and their reseeded copies; the last flag wins in argparse."""
    commands = {"reference": [*train_args, "--output_dir", str(runs_dir / "reference")]}
    for seed in reference_seeds:
        name = _seeded("reference", seed)
        commands[name] = [*train_args, "--seed", str(seed), "--output_dir", str(runs_dir / name)]
    for name in names:
        commands[name] = [*train_args, *ABLATIONS[name][0], "--output_dir", str(runs_dir / name)]
        for seed in ablation_seeds:
            seeded = _seeded(name, seed)
            flags = [*ABLATIONS[name][0], "--seed", str(seed)]
            commands[seeded] = [*train_args, *flags, "--output_dir", str(runs_dir / seeded)]
    return commands


def train_all(commands: dict[str, list[str]], parallel: int) -> list[str]:
    """Train the runs that have no results yet, `parallel` at a time, each with its share of the CPU threads.
    Returns the names of the runs it trained."""
    threads = str(max(1, (os.cpu_count() or 1) // parallel))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    pending = [(name, argv) for name, argv in commands.items() if not _finished(_output_dir(argv))]
    trained = [name for name, _ in pending]
    running: list[tuple[str, subprocess.Popen, object]] = []
    failed = []
    while pending or running:
        while pending and len(running) < parallel:
            name, argv = pending.pop(0)
            output_dir = _output_dir(argv)
            output_dir.parent.mkdir(parents=True, exist_ok=True)
            argv = [*argv, *_continue_flags(output_dir)]
            log = open(output_dir.with_suffix(".log"), "a", encoding="utf-8")
            print(f"[{name}] python train.py {shlex.join(argv)}  (log: {log.name})", flush=True)
            process = subprocess.Popen(
                [sys.executable, str(REPO_ROOT / "train.py"), *argv], cwd=REPO_ROOT, env=env, stdout=log, stderr=log
            )
            running.append((name, process, log))
        time.sleep(5)
        for entry in list(running):
            name, process, log = entry
            if process.poll() is not None:
                log.close()
                running.remove(entry)
                print(f"[{name}] finished with exit code {process.returncode}", flush=True)
                if process.returncode != 0:
                    failed.append(name)
    if failed:
        raise SystemExit(f"training failed for {failed}: see their .log files")
    return trained


def _output_dir(argv: list[str]) -> Path:
    return Path(argv[len(argv) - 1 - argv[::-1].index("--output_dir") + 1])


def _continue_flags(run_dir: Path) -> list[str]:
    """A killed run resumes from its latest complete checkpoint; one killed before its first checkpoint restarts."""
    if any((c / "training_state.json").is_file() for c in run_dir.glob("checkpoints/checkpoint_*")):
        return ["--resume_from_checkpoint", "latest"]
    if run_dir.is_dir() and any(run_dir.iterdir()):
        return ["--overwrite_output_dir"]
    return []


def _finished(run_dir: Path) -> bool:
    return (run_dir / "all_results.json").is_file()


def collect(run_dir: Path) -> dict:
    """A finished run's metrics on its selection (validation) split, where ablation deltas are measured.

    `run_dir` is a run folder or the `benchmarks/quality.py` results file of one: the same fields under the same
    names, the training arguments inlined."""
    if run_dir.is_file():
        results = json.loads(run_dir.read_text(encoding="utf-8"))
        missing = [key for key in ("splits", "learning_curve", "training_args", "command") if key not in results]
        if missing:
            raise SystemExit(f"{run_dir}: not a benchmarks/quality.py results file (no {', '.join(missing)})")
        training_args = results["training_args"]
    else:
        results = json.loads((run_dir / "all_results.json").read_text(encoding="utf-8"))
        training_args = json.loads((run_dir / "training_args.json").read_text(encoding="utf-8"))
    split = training_args["validation_split"]
    return {
        "run_dir": str(run_dir),
        "seed": training_args["seed"],
        "dataset": results["dataset"],
        "command": results["command"],
        "wall_time_s": results["wall_time_s"],
        "best_epoch": results["best_epoch"],
        "split": split,
        "metrics": results["splits"][split]["metrics"],
        "learning_curve": [{"epoch": row["epoch"], "f1": row[split]["f1"]} for row in results["learning_curve"]],
    }


def seed_spread(runs: dict[str, dict], seeds: list[int]) -> dict:
    """The reference's F1 under each seed: a Δ inside this range is not evidence either way."""
    reference = runs["reference"]
    f1_by_seed = {str(reference["seed"]): reference["metrics"]["f1"]}
    for seed in seeds:
        f1_by_seed[str(seed)] = runs[_seeded("reference", seed)]["metrics"]["f1"]
    values = list(f1_by_seed.values())
    return {
        "f1_by_seed": f1_by_seed,
        "f1_mean": round(statistics.fmean(values), 2),
        "f1_std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
        "f1_range": round(max(values) - min(values), 2),
    }


def delta_over_seeds(runs: dict[str, dict], name: str, seeds: list[int]) -> dict:
    """Δ of ablation `name` under each seed, each against the reference of the same seed: how far the Δ itself moves
    when only the seed changes, which the reference's own spread does not say (a switch can change the noise)."""
    pairs = {str(runs["reference"]["seed"]): (runs[name], runs["reference"])}
    pairs |= {str(seed): (runs[_seeded(name, seed)], runs[_seeded("reference", seed)]) for seed in seeds}
    by_seed = {
        seed: {
            "f1": run["metrics"]["f1"],
            "reference_f1": reference["metrics"]["f1"],
            "delta_f1": round(run["metrics"]["f1"] - reference["metrics"]["f1"], 2),
            "delta_weighted_f1": _delta_weighted_f1(run, reference),
            "best_epoch": run["best_epoch"],
            "wall_time_s": run["wall_time_s"],
        }
        for seed, (run, reference) in pairs.items()
    }
    deltas = [row["delta_f1"] for row in by_seed.values()]
    return {
        "by_seed": by_seed,
        "delta_f1_mean": round(statistics.fmean(deltas), 2),
        "delta_f1_min": min(deltas),
        "delta_f1_max": max(deltas),
        "same_sign_every_seed": all(d < 0 for d in deltas) or all(d > 0 for d in deltas),
    }


def _delta_weighted_f1(run: dict, reference: dict) -> float | None:
    """Δ on the None-inclusive family, which the paper's Δ uses (runs older than it do not record it)."""
    if "weighted_f1" not in run["metrics"] or "weighted_f1" not in reference["metrics"]:
        return None
    return round(run["metrics"]["weighted_f1"] - reference["metrics"]["weighted_f1"], 2)


def main() -> None:
    args = parse_args()
    runs_dir = Path(args.runs_dir) / args.name
    commands = run_commands(args.train_args, args.only, runs_dir, args.reference_seeds, args.ablation_seeds)
    to_train = {name: argv for name, argv in commands.items() if name not in args.from_run}
    started = time.time()
    trained_now = train_all(to_train, args.parallel)

    run_dirs = {name: args.from_run.get(name, _output_dir(argv)) for name, argv in commands.items()}
    runs = {name: collect(run_dir) for name, run_dir in run_dirs.items()}
    reference = runs["reference"]
    rows = []
    for name in args.only:
        run = runs[name]
        row = {
            "ablation": name,
            "flags": ABLATIONS[name][0],
            "what": ABLATIONS[name][1],
            **run,
            "delta_f1": round(run["metrics"]["f1"] - reference["metrics"]["f1"], 2),
            "delta_weighted_f1": _delta_weighted_f1(run, reference),
            "paper_delta_f1": PAPER_DELTA_F1[name],
        }
        if args.ablation_seeds:
            row["delta_f1_seeds"] = delta_over_seeds(runs, name, args.ablation_seeds)
        rows.append(row)
    record = {
        "benchmark": f"ablations_{args.name}",
        "note": args.note,
        "command": shlex.join(["python", "benchmarks/ablations.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {args.parallel} run(s) at a time",
        "wall_time_s": round(time.time() - started, 1),  # of this call: runs finished earlier are only collected
        "trained_in_this_call": trained_now,
        "runs_wall_time_s_sum": round(sum(run["wall_time_s"] for run in runs.values()), 1),
        "dataset": reference["dataset"],
        "split": reference["split"],
        "reference": reference,
        "ablations": rows,
    }
    if args.reference_seeds:
        record["reference_seeds"] = seed_spread(runs, args.reference_seeds)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"ablations_{args.name}.json"
    write_result(path, record)
    print(f"reference F1 {reference['metrics']['f1']}")
    if args.reference_seeds:
        spread = record["reference_seeds"]
        by_seed = spread["f1_by_seed"]
        print(f"reference F1 over {len(by_seed)} seeds: {by_seed} (range {spread['f1_range']})")
    for row in rows:
        paper = "n/a" if row["paper_delta_f1"] is None else f"{row['paper_delta_f1']:+.2f}"
        seeds = ""
        if "delta_f1_seeds" in row:
            over = row["delta_f1_seeds"]
            by_seed = "/".join(f"{d['delta_f1']:+.2f}" for d in over["by_seed"].values())
            seeds = f"  (seeds {'/'.join(over['by_seed'])}: {by_seed}, mean {over['delta_f1_mean']:+.2f})"
        delta = f"Δ {row['delta_f1']:+6.2f}{seeds}"
        print(f"{row['ablation']:<24} F1 {row['metrics']['f1']:6.2f}  {delta}  paper Δ {paper}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
