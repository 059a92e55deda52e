"""Which int8 scheme keeps a ROC model's accuracy on the CPU, and at what speed: measured in one run.

    python benchmarks/int8_schemes.py --model runs/default-seed42 --name default_seed42 --keep_most_sensitive 2 4

1. Sensitivity, on `--calibration_examples` training examples (their labels are not used): every linear layer that
   `quantize_int8` would quantize is quantized alone (per-channel), and the training predictions it flips against
   float32 are counted (ties broken by the mean squared change of the logits). Chosen on training data, so the
   validation numbers below do not select the layers they are reported on. Skipped when `--keep_most_sensitive` is
   given no K (nothing reads it then).
2. Schemes, each `quantize_int8(model, per_channel=..., keep_float=...)`: `per_tensor` (one scale per weight matrix,
   the old default), `per_channel` (one scale per output row), `per_channel_keep<K>` (the K most sensitive layers of
   step 1 left in float32) for each `--keep_most_sensitive K`, `per_channel_rule` (the layers matching `--keep_float`
   patterns left in float32: a fixed rule, as a default needs); each under every quantized engine of `--engines`
   (torch's kernels: `x86`/`fbgemm`, or `onednn`, which uses AMX / VNNI int8 instructions where the CPU has them),
   reported as `<scheme>/<engine>`. With `--bfloat16`, also bfloat16, the other cheap way to use a recent CPU's
   matrix units: the float32 model under `torch.autocast("cpu", torch.bfloat16)` (`bfloat16_autocast`), the encoders
   and fusion layers in bfloat16 with the pair head and retrieval in float32 (`bfloat16_encoders`:
   `precision="bfloat16"`, what `"auto"` picks on such a CPU), and the whole model cast to bfloat16
   (`bfloat16_whole_model`). With `--onnxruntime`, also the text encoder in ONNX Runtime, float32
   (`precision="onnxruntime"`, what `"auto"` picks on an AMD CPU without bfloat16 units).
3. For float32 and each scheme: micro-F1 over every label but None (the field's metric) and accuracy on the whole
   `--split`, agreement with float32, with `--rebatch_size` the share of predictions unchanged when the same examples
   come in batches of another size (dynamic int8 scales activations per batch, padding included), and examples/s on
   the same `--num_batches` x `--batch_size` examples, timed `--repeats` times interleaved so that machine noise hits
   every side alike (the median counts), with the load average at start and end.

Writes `benchmarks/results/int8_schemes_<name>.json`. The target it answers (issue "Fast where users run it"): int8
within 0.3 micro-F1 of float32 at 2.5x its speed or more.
"""

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import datasets
import torch
from results_io import cpu_record, existing_dir, positive_int, result_name, write_result


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from modeling_roc import ROCModel, ROCProcessor, bfloat16_encoders, quantize_int8  # noqa: E402
from modeling_roc.precision_roc import onnxruntime_text_encoder  # noqa: E402
from roc_mre.metrics.re_f1.re_f1 import micro_scores  # noqa: E402
from roc_mre.training.data_collator import ROCDataCollator  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=existing_dir, required=True, help="A trained ROC run folder.")
    parser.add_argument("--dataset", type=existing_dir, default="data/mnre", help="Dataset folder built by roc-build.")
    parser.add_argument("--split", default="validation", help="Split the F1 and the speed are measured on.")
    parser.add_argument("--calibration_split", default="train", help="Split the layer sensitivity is measured on.")
    parser.add_argument("--calibration_examples", type=positive_int, default=512)
    parser.add_argument(
        "--keep_most_sensitive", type=int, nargs="*", default=[2, 4], help="K values of per_channel_keep<K>."
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        default=[torch.backends.quantized.engine],
        choices=torch.backends.quantized.supported_engines,
        help="torch.backends.quantized engines to measure each scheme under (default: the current one).",
    )
    parser.add_argument(
        "--keep_float",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="Also measure `per_channel_rule`: per-channel with the layers matching these fnmatch patterns in float32 "
        "(a fixed rule, the same for every model, as a default must be).",
    )
    parser.add_argument(
        "--bfloat16",
        action="store_true",
        help="Also measure bfloat16: autocast, the encoders in bfloat16 (precision='bfloat16'), the whole model.",
    )
    parser.add_argument(
        "--onnxruntime",
        action="store_true",
        help="Also measure the text encoder in ONNX Runtime, float32 (precision='onnxruntime'; needs roc-mre[onnx]).",
    )
    parser.add_argument("--batch_size", type=positive_int, default=32)
    parser.add_argument(
        "--rebatch_size",
        type=int,
        default=0,
        help="Also predict the split in batches of this size and report, per scheme, the share of predictions that "
        "stay the same (`same_prediction_rebatched`): 100 unless a prediction depends on its batch mates (0: skip).",
    )
    parser.add_argument("--num_batches", type=positive_int, default=8, help="Batches of the speed measurement.")
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--max_eval_samples", type=positive_int, help="Evaluate F1 on the first N examples only.")
    parser.add_argument("--name", type=result_name, default="default", help="Suffix of the results file.")
    parser.add_argument("--output_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    if any(k < 1 for k in args.keep_most_sensitive):
        parser.error("--keep_most_sensitive: every K must be at least 1")
    return args


def batches_of(split: datasets.Dataset, processor: ROCProcessor, batch_size: int) -> list[dict]:
    split = split.remove_columns([c for c in ("image",) if c in split.column_names])
    collate = ROCDataCollator(processor, index_column=None)
    rows = [split[i] for i in range(len(split))]
    return [collate(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]


def logits_of(model: ROCModel, batches: list[dict]) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([model(**{k: v for k, v in b.items() if k != "labels"}).logits.float() for b in batches])


def quantizable_layers(model: ROCModel) -> list[str]:
    """The linear layers `quantize_int8` can quantize (read back from a copy with none kept in float32, so the two
    never disagree)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    every = quantize_int8(model, keep_float=())
    return [name for name, module in every.named_modules() if isinstance(module, DynamicQuantizedLinear)]


def layer_sensitivity(model: ROCModel, batches: list[dict]) -> list[dict]:
    """Each quantizable layer quantized alone: predictions flipped against float32, and the mean squared logit change;
    most sensitive first."""
    reference = logits_of(model, batches)
    layers = quantizable_layers(model)
    rows = []
    for name in layers:
        others = [other for other in layers if other != name]
        logits = logits_of(quantize_int8(model, keep_float=others), batches)
        rows.append(
            {
                "layer": name,
                "flips": int((logits.argmax(-1) != reference.argmax(-1)).sum()),
                "logit_mse": round(float(((logits - reference) ** 2).mean()), 6),
            }
        )
    return sorted(rows, key=lambda row: (-row["flips"], -row["logit_mse"]))


def scores(predictions: list[int], references: list[int], none_id: int) -> dict:
    micro = micro_scores(list(zip(predictions, references)), positive=lambda label: label != none_id)
    accuracy = sum(p == r for p, r in zip(predictions, references)) / len(references)
    return {
        "accuracy": round(100 * accuracy, 2),
        **{key: round(100 * micro[key], 2) for key in ("precision", "recall", "f1")},
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(0)
    load_start = os.getloadavg()
    started = time.time()
    splits = datasets.load_dataset(args.dataset)
    model = ROCModel.from_pretrained(args.model).eval()
    processor = ROCProcessor.from_pretrained(args.model)
    labels = splits[args.split].features["relation"].names
    if model.config.relation_labels != labels:
        raise SystemExit(f"error: {args.model} predicts {model.config.relation_labels}, the dataset has {labels}")
    none_id = labels.index("None")

    torch.backends.quantized.engine = args.engines[0]  # the sensitivity is measured under the first engine
    calibration = splits[args.calibration_split].shuffle(seed=0)
    calibration = calibration.select(range(min(args.calibration_examples, len(calibration))))
    sensitivity = []
    if args.keep_most_sensitive:
        sensitivity = layer_sensitivity(model, batches_of(calibration, processor, args.batch_size))

    schemes = {"per_tensor": (False, []), "per_channel": (True, [])}
    for k in args.keep_most_sensitive:
        schemes[f"per_channel_keep{k}"] = (True, [row["layer"] for row in sensitivity[:k]])
    if args.keep_float:
        schemes["per_channel_rule"] = (True, list(args.keep_float))
    models = {"float32": model}
    for engine in args.engines:
        torch.backends.quantized.engine = engine  # weights are packed for the engine current when quantizing
        for name, (per_channel, keep) in schemes.items():
            models[f"{name}/{engine}"] = quantize_int8(model, per_channel=per_channel, keep_float=keep)
    engine_of = {name: name.rsplit("/", 1)[1] for name in models if name != "float32"}

    bfloat16_schemes = []
    if args.bfloat16:
        models["bfloat16_autocast"] = model
        models["bfloat16_encoders"] = bfloat16_encoders(model)
        models["bfloat16_whole_model"] = bfloat16_encoders(model).to(torch.bfloat16)
        bfloat16_schemes = ["bfloat16_autocast", "bfloat16_encoders", "bfloat16_whole_model"]
    other_schemes = []
    if args.onnxruntime:
        models["onnxruntime"] = onnxruntime_text_encoder(model)
        other_schemes.append("onnxruntime")

    def run(name: str, batches: list[dict]) -> torch.Tensor:
        if name in engine_of:
            torch.backends.quantized.engine = engine_of[name]
        if name == "bfloat16_whole_model":  # its pixel inputs too (none in a text-only model)
            batches = [{k: v.bfloat16() if v.is_floating_point() else v for k, v in b.items()} for b in batches]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bfloat16_autocast"):
            return logits_of(models[name], batches)

    evaluation = splits[args.split]
    if args.max_eval_samples:
        evaluation = evaluation.select(range(min(args.max_eval_samples, len(evaluation))))
    batches = batches_of(evaluation, processor, args.batch_size)
    references = torch.cat([b["labels"] for b in batches]).tolist()
    predictions = {name: run(name, batches).argmax(-1).tolist() for name in models}
    # Does a prediction depend on the other examples of its batch (dynamic int8 scales activations per batch)?
    rebatched = {}
    if args.rebatch_size:
        other_batches = batches_of(evaluation, processor, args.rebatch_size)
        rebatched = {name: run(name, other_batches).argmax(-1).tolist() for name in models}

    def batch_independence(name: str) -> float | None:
        if name not in rebatched:
            return None
        same = sum(a == b for a, b in zip(predictions[name], rebatched[name]))
        return round(100 * same / len(references), 2)

    timed = batches[: args.num_batches]
    timed_examples = sum(len(b["labels"]) for b in timed)
    for name in models:
        run(name, timed)  # warm-up
    seconds = {name: [] for name in models}
    for _ in range(args.repeats):
        for name in models:
            begin = time.perf_counter()
            run(name, timed)
            seconds[name].append(time.perf_counter() - begin)
    speed = {name: timed_examples / statistics.median(times) for name, times in seconds.items()}

    float_scores = scores(predictions["float32"], references, none_id)
    results = {
        "float32": {
            **float_scores,
            "examples_per_s": round(speed["float32"], 1),
            "same_prediction_rebatched": batch_independence("float32"),
        }
    }
    for name in [*engine_of, *bfloat16_schemes, *other_schemes]:
        per_channel, keep = schemes.get(name.rsplit("/", 1)[0], (None, []))
        own = scores(predictions[name], references, none_id)
        agree = sum(a == b for a, b in zip(predictions[name], predictions["float32"])) / len(references)
        results[name] = {
            **own,
            "f1_drop_points": round(float_scores["f1"] - own["f1"], 2),
            "agreement_with_float32": round(100 * agree, 2),
            "same_prediction_rebatched": batch_independence(name),
            "examples_per_s": round(speed[name], 1),
            "speedup_vs_float32": round(speed[name] / speed["float32"], 3),
            "per_channel": per_channel,
            "keep_float": keep,
            "engine": engine_of.get(name),
        }
    record = {
        "benchmark": f"int8_schemes_{args.name}",
        "command": shlex.join(["python", "benchmarks/int8_schemes.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cpu": cpu_record(),
            "onnxruntime": __import__("onnxruntime").__version__ if args.onnxruntime else None,
            "load_average_1_5_15min": [round(v, 2) for v in load_start],
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        },
        "model": args.model,
        "dataset": args.dataset,
        "split": args.split,
        "eval_examples": len(references),
        "speed_examples": timed_examples,
        "batch_size": args.batch_size,
        "rebatch_size": args.rebatch_size or None,
        "repeats": args.repeats,
        "calibration": {
            "split": args.calibration_split,
            "examples": len(calibration) if sensitivity else 0,
            "engine": args.engines[0],
        },
        "target": "int8 (or another CPU precision) within 0.3 micro-F1 of float32 at >= 2.5x its speed",
        "schemes": results,
        "sensitivity": sensitivity,
        "wall_time_s": round(time.time() - started, 1),
        "raw_seconds": {name: [round(s, 4) for s in times] for name, times in seconds.items()},
    }
    path = Path(args.output_dir) / f"int8_schemes_{args.name}.json"
    write_result(path, record)
    for name, row in results.items():
        drop = row.get("f1_drop_points", 0.0)
        print(f"{name:>22}: F1 {row['f1']:6.2f} (drop {drop:+.2f}), {row['examples_per_s']:7.1f} ex/s", flush=True)
    print(path)
    return record


if __name__ == "__main__":
    main()
