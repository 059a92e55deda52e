"""Pair-pipeline throughput of several trained runs side by side (e.g. MiniLM against MPNet), at each precision.

    python benchmarks/encoder_speed.py --name minilm_vs_mpnet --models runs/smoke runs/mpnet-seed42

Every model scores the same validation pairs through `pipeline("multimodal-relation-extraction", ...)` at each
`--precisions` value (`auto` is recorded as what it chose on this CPU); the passes are interleaved over
`--repeats` rounds, so machine noise hits every model alike, and the median examples/s is reported with the CPU
(model, vendor, flags) it was measured on. Speed does not depend on the weights, only on the architecture: a smoke run
of a config measures that config. Writes `benchmarks/results/encoder_speed_<name>.json`.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import datasets
from results_io import cpu_record, existing_dir, positive_int, result_name, write_result


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, type=result_name, help="results: encoder_speed_<name>.json")
    parser.add_argument("--models", nargs="+", required=True, help="Trained run folders.")
    parser.add_argument(
        "--dataset", type=existing_dir, default="data/mnre", help="Built MNRE folder (default: %(default)s)."
    )
    parser.add_argument("--split", default="validation")
    parser.add_argument("--examples", type=positive_int, default=256, help="Pairs scored per pass.")
    parser.add_argument("--batch_size", type=positive_int, default=32)
    parser.add_argument("--precisions", nargs="+", default=["float32", "auto"])
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--output_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    for model in args.models:
        if not (Path(model) / "config.json").is_file():
            parser.error(f"--models {model}: not a trained run folder (no config.json)")
    if not Path(args.dataset).is_dir():
        parser.error(f"--dataset {args.dataset}: no such folder")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from transformers import pipeline

    from modeling_roc.precision_roc import resolve_precision

    rows = datasets.load_dataset(args.dataset)[args.split].select(range(args.examples))
    examples = [{k: row[k] for k in ("tokens", "subject", "object")} for row in rows]
    pipes = {}
    for model in args.models:
        for precision in args.precisions:
            pipes[(model, precision)] = pipeline(
                "multimodal-relation-extraction", model=model, trust_remote_code=True, precision=precision
            )
            pipes[(model, precision)](examples[: args.batch_size], batch_size=args.batch_size)  # warm up
    seconds = {key: [] for key in pipes}
    for _ in range(args.repeats):
        for key, pipe in pipes.items():
            started = time.perf_counter()
            pipe(examples, batch_size=args.batch_size, top_k=1)
            seconds[key].append(time.perf_counter() - started)
    results = []
    for (model, precision), times in seconds.items():
        config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
        results.append({
            "model": model,
            "text_encoder": config["text_config"].get("_name_or_path") or config["text_config"]["model_type"],
            "text_layers": config["text_config"]["num_hidden_layers"],
            "text_hidden": config["text_config"]["hidden_size"],
            "precision": precision,
            "resolved_precision": resolve_precision(precision, "cpu"),
            "examples_per_s": round(args.examples / statistics.median(times), 1),
            "seconds": [round(t, 3) for t in times],
        })  # fmt: skip
    record = {
        "benchmark": "encoder_speed",
        "command": " ".join(["python", "benchmarks/encoder_speed.py", *(argv or sys.argv[1:])]),
        "cpu": cpu_record(),
        "examples": args.examples,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "results": results,
    }
    path = write_result(Path(args.output_dir) / f"encoder_speed_{args.name}.json", record)
    for row in results:
        print(f"{row['model']} {row['precision']} ({row['resolved_precision']}): {row['examples_per_s']} examples/s")
    print(f"wrote {path}")
    return record


if __name__ == "__main__":
    main()
