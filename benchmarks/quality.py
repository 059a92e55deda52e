"""Quality benchmark: train ROC on MNRE, select on validation, record the learning curve and the final metrics.

    python benchmarks/quality.py --name default -- --config mnre_minilm_offline --output_dir runs/q
    python benchmarks/quality.py --name default --from_run runs/q        # collect a run trained earlier

Everything after `--` is passed to train.py unchanged. Writes `benchmarks/results/quality_<name>.json` with the exact
train.py command, the machine, wall time, the metrics of the selected epoch on every evaluated split (accuracy / P /
R / micro-F1 in percent, as the papers print them) and the validation learning curve.
"""

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from results_io import result_name, write_result


REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--name", required=True, type=result_name, help="Results file suffix: benchmarks/results/quality_<name>.json"
    )
    parser.add_argument("--from_run", help="Collect this finished run folder instead of training.")
    parser.add_argument("--note", default="", help="Free text stored with the result (what this run changes).")
    parser.add_argument("--output_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then train.py arguments")
    args = parser.parse_args()
    args.train_args = [a for a in args.train_args if a != "--"]
    if bool(args.from_run) == bool(args.train_args):
        parser.error("give either --from_run RUN_DIR or train.py arguments after --")
    return args


def _output_dir_of(train_args: list[str]) -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    from train import parse_args as parse_train_args

    return Path(parse_train_args(train_args).output_dir)


def main() -> None:
    args = parse_args()
    if args.from_run:
        run_dir = Path(args.from_run)
    else:
        run_dir = _output_dir_of(args.train_args)
        started = time.time()
        subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), *args.train_args], check=True, cwd=REPO_ROOT)
        print(f"trained in {time.time() - started:.0f}s")
    results = json.loads((run_dir / "all_results.json").read_text(encoding="utf-8"))
    training_args = json.loads((run_dir / "training_args.json").read_text(encoding="utf-8"))
    record = {
        "benchmark": f"quality_{args.name}",
        "note": args.note,
        "command": results["command"],
        "machine": results["machine"],
        "platform": platform.platform(),
        "wall_time_s": results["wall_time_s"],
        "dataset": results["dataset"],
        "split": results["split"],
        "metrics": results["metrics"],
        "splits": results["splits"],
        "best_epoch": results["best_epoch"],
        "world_size": results["world_size"],
        "learning_curve": results["learning_curve"],
        "training_args": training_args,
        "run_dir": str(run_dir),
    }
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"quality_{args.name}.json"
    write_result(path, record)
    selection_split = training_args["validation_split"]
    curve = " ".join(f"{r['epoch']}:{r[selection_split]['f1']}" for r in results["learning_curve"])
    print(f"{path}: {results['split']} {json.dumps(results['metrics'])}; {selection_split} F1 by epoch {curve}")
    print(shlex.join(["python", *sys.argv]))


if __name__ == "__main__":
    main()
