"""int8 dynamic quantization for CPU inference: speed and F1 against float32, measured in one run.

    python benchmarks/quantization.py --model runs/mnre-minilm-offline --dataset data/mnre --name minilm_default

On the same validation batches (`--num_batches` x `--batch_size` examples, timed `--repeats` times, interleaved so
that machine noise hits every side alike; the median counts):
(a) examples/s of the float32 ROC model, of `quantize_int8(model)` and of the bare float32 text encoder;
(b) validation accuracy / micro-F1 (None excluded) of float32 and int8 on the whole split, and how often their
    predictions agree.
Writes `benchmarks/results/quantization_<name>.json`. The extraction CLI makes int8 its CPU default only if the F1
drop is below half a point (`f1_drop_points`).
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import datasets
import evaluate
import torch


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from results_io import existing_dir  # noqa: E402

from modeling_roc import ROCModel, ROCProcessor, quantize_int8  # noqa: E402
from roc_mre.training.data_collator import ROCDataCollator  # noqa: E402
from roc_mre.training.loop import METRIC_PATH, percent_metrics  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=existing_dir, required=True, help="A trained ROC run folder.")
    parser.add_argument(
        "--dataset", type=existing_dir, default="data/mnre", help="Dataset folder built by datasets_scripts.build."
    )
    parser.add_argument("--split", default="validation")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_batches", type=int, default=8, help="Batches of the speed measurement.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max_eval_samples", type=int, help="Evaluate F1 on the first N examples only.")
    parser.add_argument("--name", default="default", help="Suffix of the results file.")
    parser.add_argument("--output_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(0)
    split = datasets.load_dataset(args.dataset)[args.split]
    split = split.remove_columns([c for c in ("image",) if c in split.column_names])
    if args.max_eval_samples:
        split = split.select(range(min(args.max_eval_samples, len(split))))
    float32 = ROCModel.from_pretrained(args.model).eval()
    processor = ROCProcessor.from_pretrained(args.model)
    int8 = quantize_int8(float32)
    labels = split.features["relation"].names
    if float32.config.relation_labels != labels:
        raise SystemExit(f"error: {args.model} predicts {float32.config.relation_labels}, the dataset has {labels}")
    negative = labels.index("None")
    collate = ROCDataCollator(processor, index_column=None)
    examples = [split[i] for i in range(len(split))]
    batches = [collate(examples[i : i + args.batch_size]) for i in range(0, len(examples), args.batch_size)]
    timed_batches = batches[: args.num_batches]
    timed_examples = sum(len(b["labels"]) for b in timed_batches)

    def roc(model):
        def run():
            with torch.inference_mode():
                for b in timed_batches:
                    model(**{k: v for k, v in b.items() if k != "labels"})

        return run

    def encoder():
        with torch.inference_mode():
            for b in timed_batches:
                float32.text_model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])

    sides = {"encoder_float32": encoder, "roc_float32": roc(float32), "roc_int8": roc(int8)}
    started = time.time()
    for run in sides.values():
        run()  # warm-up; fills the relation caches
    seconds = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, run in sides.items():
            begin = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - begin)
    speed = {name: round(timed_examples / statistics.median(times), 1) for name, times in seconds.items()}

    predictions = {"float32": [], "int8": []}
    references = []
    with torch.inference_mode():
        for b in batches:
            inputs = {k: v for k, v in b.items() if k != "labels"}
            predictions["float32"] += float32(**inputs).logits.argmax(-1).tolist()
            predictions["int8"] += int8(**inputs).logits.argmax(-1).tolist()
            references += b["labels"].tolist()
    metric = evaluate.load(METRIC_PATH)  # the field's micro P / R / F1 over every label but None, and accuracy
    scores = {
        name: percent_metrics(metric.compute(predictions=p, references=references, negative_label=negative))
        for name, p in predictions.items()
    }
    agreement = sum(a == b for a, b in zip(predictions["float32"], predictions["int8"])) / len(references)

    result = {
        "benchmark": f"quantization_{args.name}",
        "command": shlex.join(["python", "benchmarks/quantization.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "model": args.model,
        "dataset": args.dataset,
        "split": args.split,
        "speed_examples": timed_examples,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "examples_per_s": speed,
        "ratios": {
            "int8_vs_float32": round(speed["roc_int8"] / speed["roc_float32"], 3),
            "int8_vs_bare_encoder": round(speed["roc_int8"] / speed["encoder_float32"], 3),
            "float32_vs_bare_encoder": round(speed["roc_float32"] / speed["encoder_float32"], 3),
        },
        "eval_examples": len(references),
        "metrics": scores,
        "f1_drop_points": round(scores["float32"]["f1"] - scores["int8"]["f1"], 2),
        "prediction_agreement": round(100 * agreement, 2),
        "wall_time_s": round(time.time() - started, 1),
        "raw_seconds": seconds,
    }
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / f"quantization_{args.name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("examples_per_s", "ratios", "metrics", "f1_drop_points")}, indent=2))
    return result


if __name__ == "__main__":
    main()
