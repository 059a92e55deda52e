"""Speed of ROC relative to its own text encoder, measured in one run on the same MNRE batches.

    python benchmarks/speed.py --dataset data/mnre --model runs/mnre-minilm-offline

(a) inference: ROC forward (relation bank cached) vs the bare text encoder's forward      goal >= 0.95
(b) training step: ROC forward + backward + AdamW step vs the bare text encoder's forward + backward   goal <= 1.6
(c) peak memory (process RSS on CPU; `torch.cuda.max_memory_allocated` on GPU)
(d) --group_by_length: ROC training steps over the same examples batched by similar length vs in file order, and
    the padded token count of each batching

Ratios are throughput ratios for (a) (higher is better) and time ratios for (b) (lower is better). Each measurement
is the median of `--repeats` passes over the same batches, interleaved, so machine noise hits both sides alike.
Writes `benchmarks/results/speed_<name>.json`.
"""

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import datasets
import torch


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from results_io import existing_dir  # noqa: E402

from datasets_scripts.relation_bank import load_relation_bank, ordered_bank  # noqa: E402
from modeling_roc import EMBEDDED_TEXT_ENCODER, ROCModel, ROCProcessor  # noqa: E402
from roc_mre.training.data_collator import ROCDataCollator  # noqa: E402
from roc_mre.training.length_grouped_sampler import LengthGroupedSampler  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dataset", type=existing_dir, default="data/mnre", help="Dataset folder built by datasets_scripts.build."
    )
    parser.add_argument("--split", default="validation")
    parser.add_argument(
        "--model", type=existing_dir, help="A trained ROC run folder; default: a fresh model from --text_encoder."
    )
    parser.add_argument("--text_encoder", default=EMBEDDED_TEXT_ENCODER)
    parser.add_argument("--num_fusion_layers", type=int, default=1, help="For a fresh model.")
    parser.add_argument("--freeze_relation_encoder", action="store_true", help="For a fresh model.")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_batches", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="default", help="Suffix of the results file.")
    parser.add_argument("--output_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    return parser.parse_args()


def load_model(args, label_names):
    if args.model:
        return ROCModel.from_pretrained(args.model), ROCProcessor.from_pretrained(args.model)
    bank = ordered_bank(label_names, load_relation_bank("mnre"))
    model = ROCModel.from_encoders(
        args.text_encoder,
        relation_bank=bank,
        num_fusion_layers=args.num_fusion_layers,
        freeze_relation_encoder=args.freeze_relation_encoder,
    )
    return model, ROCProcessor.from_encoders(args.text_encoder)


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    args = parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    split = datasets.load_dataset(args.dataset)[args.split]
    split = split.remove_columns([c for c in ("image",) if c in split.column_names])
    label_names = split.features["relation"].names
    model, processor = load_model(args, label_names)
    model.to(device)
    collate = ROCDataCollator(processor, index_column=None)
    rows = split.select(range(args.batch_size * args.num_batches))
    examples = [rows[i] for i in range(len(rows))]

    def make_batches(order: list[int]) -> list[dict]:
        chunks = [order[j : j + args.batch_size] for j in range(0, len(order), args.batch_size)]
        return [{k: v.to(device) for k, v in collate([examples[i] for i in c]).items()} for c in chunks]

    batches = make_batches(list(range(len(examples))))
    lengths = [int(b["attention_mask"][i].sum()) for b in batches for i in range(len(b["attention_mask"]))]
    grouper = LengthGroupedSampler(lengths, args.batch_size, mega_batch_factor=args.num_batches)
    grouped_batches = make_batches(list(grouper))
    encoder = model.text_model
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    encoder_optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-5)

    def encoder_forward():
        with torch.no_grad():
            for b in batches:
                encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"])

    def roc_forward():
        with torch.no_grad():
            for b in batches:
                model(**{k: v for k, v in b.items() if k != "labels"})

    def encoder_train():
        for b in batches:
            hidden = encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
            hidden.float().pow(2).mean().backward()  # a scalar of the encoder's output: backward through it all
            encoder_optimizer.zero_grad()

    def roc_train(on=batches):
        for b in on:
            model(**b).loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    started = time.time()
    model.eval()
    encoder_forward(), roc_forward()  # warm-up; fills the relation cache
    inference = {"encoder": [], "roc": []}
    for _ in range(args.repeats):
        inference["encoder"].append(timed(encoder_forward))
        inference["roc"].append(timed(roc_forward))
    inference_peak = peak_memory_mb()

    model.train()
    encoder_train(), roc_train()
    training = {"encoder": [], "roc": [], "roc_grouped_by_length": []}
    for _ in range(args.repeats):
        training["encoder"].append(timed(encoder_train))
        training["roc"].append(timed(roc_train))
        training["roc_grouped_by_length"].append(timed(lambda: roc_train(grouped_batches)))

    med = {
        "inf": {side: statistics.median(times) for side, times in inference.items()},
        "train": {side: statistics.median(times) for side, times in training.items()},
    }
    n = len(rows)
    result = {
        "benchmark": f"speed_{args.name}",
        "command": shlex.join(["python", *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        },
        "wall_time_s": round(time.time() - started, 1),
        "model": args.model or f"fresh from {args.text_encoder}",
        "config": {
            "num_fusion_layers": model.config.num_fusion_layers if model.config.use_fusion else 0,
            "freeze_relation_encoder": model.config.freeze_relation_encoder,
            "head": model.config.head,
            "vision": model.config.vision_model_name,
        },
        "examples": n,
        "batch_size": args.batch_size,
        "inference_examples_per_s": {k: round(n / v, 1) for k, v in med["inf"].items()},
        "train_step_s": {k: round(v / len(batches), 4) for k, v in med["train"].items()},
        "ratios": {
            "inference_vs_encoder": round(med["inf"]["encoder"] / med["inf"]["roc"], 3),
            "train_step_vs_encoder": round(med["train"]["roc"] / med["train"]["encoder"], 3),
            "grouped_vs_file_order_train_time": round(med["train"]["roc_grouped_by_length"] / med["train"]["roc"], 3),
        },
        "padded_tokens_vs_real": {
            "file_order": round(sum(b["input_ids"].numel() for b in batches) / sum(lengths), 3),
            "grouped_by_length": round(sum(b["input_ids"].numel() for b in grouped_batches) / sum(lengths), 3),
        },
        "goals": {"inference_vs_encoder": ">= 0.95", "train_step_vs_encoder": "<= 1.6"},
        "peak_memory_mb": {"after_inference": round(inference_peak, 1), "after_training": round(peak_memory_mb(), 1)},
        "raw_seconds": {"inference": inference, "training": training},
    }
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / f"speed_{args.name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    shown = ("ratios", "padded_tokens_vs_real", "inference_examples_per_s", "train_step_s", "peak_memory_mb")
    print(json.dumps({k: result[k] for k in shown}))


if __name__ == "__main__":
    main()
