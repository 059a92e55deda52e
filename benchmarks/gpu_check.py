"""GPU readiness check: ROC at the paper's size, a few bf16 optimizer steps, no Hub and no dataset needed.

    python benchmarks/gpu_check.py --name 1gpu                                               # one process
    accelerate launch --multi_gpu --num_processes 8 benchmarks/gpu_check.py --name 8gpu      # every GPU
    bash benchmarks/gpu_check.sh                                                             # both, GPUs counted

The paper's setting (Hei et al., 2025) with randomly initialised weights of the right shapes: BERT-base text and
relation encoders (12 layers, 768 wide, BERT's 30,522-word vocabulary through the embedded MiniLM tokenizer, which
is the same WordPiece vocabulary), timm ViT-B/32 at 384 px, 3 fusion layers, the MNRE relation bank (23 labels),
batch 32 per process, synthetic 384 x 384 images and MNRE-length sentences (~40 words with markers and type
prompts). It trains `--steps` optimizer steps through Accelerate (the same `prepare` / `accumulate` / `backward`
as train.py), then saves the model the way train.py does (`get_state_dict` + `save_pretrained`) and reloads it.

Then, on the main process, inference as users run it: pair inference (the pair pipeline's forward) and triple
extraction (`TripleExtractor` over synthetic posts with given entities and images), each in `--inference_dtype`
(bf16 by default) without and with `torch.compile`, timing the compile (first call) apart from the steady state and
recording peak GPU memory per variant.

Prints and writes `benchmarks/results/gpu_check_<name>.json`: median step time (the first `--warmup_steps` steps
are excluded: CUDA kernels and allocator warm-up), examples/s over all processes, peak GPU memory per process
(`torch.cuda.max_memory_allocated`), the device and the settings. `--size tiny` runs the same code in seconds on a
CPU (the test suite does, so this script cannot rot while no GPU is lent).
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from datasets_scripts.relation_bank import load_relation_bank  # noqa: E402
from modeling_roc import EMBEDDED_TEXT_ENCODER, ROCConfig, ROCModel, ROCProcessor  # noqa: E402


SIZES = {
    # (text / relation encoder, vision encoder, image size, fusion layers)
    "paper": (
        {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
        "vit_base_patch32_384",
        384,
        3,
    ),
    "tiny": (
        {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37},
        "vit_tiny_patch16_224",
        32,
        1,
    ),
}
WORDS = "RT @user : Rafael Nadal gets engaged to Mery Perello after eleven years together in Mallorca".split()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="gpu", help="Results file suffix: benchmarks/results/gpu_check_<name>.json")
    parser.add_argument("--size", default="paper", choices=sorted(SIZES), help="paper (BERT-base + ViT-B/32) or tiny.")
    parser.add_argument("--steps", type=int, default=8, help="Optimizer steps to run (default: %(default)s).")
    parser.add_argument("--warmup_steps", type=int, default=2, help="Leading steps left out of the timing.")
    parser.add_argument("--batch_size", type=int, default=32, help="Examples per process and step (the paper's 32).")
    parser.add_argument("--max_words", type=int, default=40, help="Words per synthetic sentence (MNRE: ~15-40).")
    parser.add_argument(
        "--mixed_precision", default="bf16", choices=["no", "bf16", "fp16"], help="Default: %(default)s."
    )
    parser.add_argument(
        "--inference_dtype", default="bf16", choices=["bf16", "fp32"], help="Weights of the inference timings."
    )
    parser.add_argument(
        "--compile_backend",
        default="inductor",
        help="torch.compile backend of the compiled variants (default: %(default)s; 'eager' traces without codegen).",
    )
    parser.add_argument("--inference_repeats", type=int, default=5, help="Timed passes per inference variant.")
    parser.add_argument("--extraction_posts", type=int, default=64, help="Synthetic posts per extraction pass.")
    parser.add_argument("--no_inference", action="store_true", help="Time training only.")
    parser.add_argument("--output_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    if min(args.inference_repeats, args.extraction_posts) < 1:
        parser.error("--inference_repeats and --extraction_posts must be >= 1")
    if args.steps <= args.warmup_steps:
        parser.error(f"--steps ({args.steps}) must exceed --warmup_steps ({args.warmup_steps}): nothing to time")
    if min(args.batch_size, args.max_words) < 1:
        parser.error("--batch_size and --max_words must be >= 1")
    return args


def build(size: str) -> tuple[ROCModel, ROCProcessor]:
    encoder, vision, image_size, fusion_layers = SIZES[size]
    processor = ROCProcessor.from_encoders(EMBEDDED_TEXT_ENCODER, vision_encoder=vision, vision_image_size=image_size)
    bert = {"model_type": "bert", "vocab_size": len(processor.tokenizer), "max_position_embeddings": 512, **encoder}
    config = ROCConfig(
        text_config=bert,
        relation_config=bert,
        vision_model_name=vision,
        vision_image_size=image_size,
        num_fusion_layers=fusion_layers,
        relation_bank=load_relation_bank("mnre"),
    )
    model = ROCModel(config)
    model.set_relation_tokenizer(processor.tokenizer)
    return model, processor


def synthetic_batch(processor: ROCProcessor, batch_size: int, max_words: int, num_labels: int, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    words = (WORDS * (max_words // len(WORDS) + 1))[:max_words]
    size = processor.image_config["input_size"]
    batch = processor(
        [words] * batch_size,
        [{"start": 4, "end": 6, "type": "PERSON"}] * batch_size,
        [{"start": 9, "end": 11, "type": "PERSON"}] * batch_size,
    )
    batch["pixel_values"] = torch.randn(batch_size, *size, generator=generator)
    batch["image_mask"] = torch.ones(batch_size, dtype=torch.bool)
    batch["labels"] = torch.randint(0, num_labels, (batch_size,), generator=generator)
    return dict(batch)


def _timed(call, repeats: int, on_gpu: bool) -> tuple[float, float, float | None]:
    """(first call s, median of `repeats` later calls s, peak GPU GiB over them) of `call()`."""
    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    call()
    if on_gpu:
        torch.cuda.synchronize()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        if on_gpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None
    return first, statistics.median(times), peak


def synthetic_posts(count: int, image_size: int) -> list[dict]:
    """Posts with their entities given (3 entities: 6 ordered pairs each) and an image, as users pass them."""
    from PIL import Image

    entities = [{"start": 4, "end": 6, "type": "PERSON"}, {"start": 9, "end": 11, "type": "PERSON"},
                {"start": 15, "end": 16, "type": "GPE"}]  # fmt: skip
    image = Image.new("RGB", (image_size + 16, image_size), color=(120, 90, 60))
    return [{"id": k, "tokens": WORDS, "entities": entities, "image": image} for k in range(count)]


def inference_timings(model: ROCModel, processor: ROCProcessor, args: argparse.Namespace, device) -> dict:
    """Pair inference and triple extraction, plain and compiled, in `--inference_dtype`."""
    from roc_mre.extraction import TripleExtractor

    on_gpu = device.type == "cuda"
    dtype = torch.bfloat16 if args.inference_dtype == "bf16" else torch.float32
    model = model.eval().to(device=device, dtype=dtype)
    batch = synthetic_batch(processor, args.batch_size, args.max_words, len(model.relation_labels), seed=0)
    batch.pop("labels")
    batch = {k: v.to(device) for k, v in batch.items()}
    batch["pixel_values"] = batch["pixel_values"].to(dtype)
    posts = synthetic_posts(args.extraction_posts, processor.image_config["input_size"][-1])
    results = {}
    for compiled in (False, True):
        runner = torch.compile(model, backend=args.compile_backend) if compiled else model

        def pairs(runner=runner):
            with torch.inference_mode():
                runner(**batch)

        first, median, peak = _timed(pairs, args.inference_repeats, on_gpu)
        extractor = TripleExtractor(  # precision="float32": the model as given, already in --inference_dtype
            runner, processor, ner=None, batch_size=args.batch_size, max_entities=None, precision="float32"
        )
        failed = [record["error"] for record in extractor.extract(posts[:1]) if "error" in record]
        if failed:
            raise RuntimeError(f"the synthetic post cannot be extracted: {failed[0]}")
        extract_first, extract_median, extract_peak = _timed(
            lambda extractor=extractor: extractor.extract(posts), args.inference_repeats, on_gpu
        )
        pairs_per_pass = extractor.last_stats["pairs"]
        results["compiled" if compiled else "eager"] = {
            "pair_inference": {
                "first_call_s": round(first, 3),
                "step_s": round(median, 4),
                "examples_per_s": round(args.batch_size / median, 1),
                "peak_gpu_memory_gib": None if peak is None else round(peak, 2),
            },
            "extraction": {
                "posts": len(posts),
                "pairs": pairs_per_pass,
                "first_call_s": round(extract_first, 3),
                "pass_s": round(extract_median, 4),
                "pairs_per_s": round(pairs_per_pass / extract_median, 1),
                "peak_gpu_memory_gib": None if extract_peak is None else round(extract_peak, 2),
            },
        }
    eager, compiled = results["eager"], results["compiled"]
    return {
        "dtype": args.inference_dtype,
        "compile_backend": args.compile_backend,
        "repeats": args.inference_repeats,
        **results,
        "ratios": {
            "compiled_vs_eager_pair_inference": round(
                eager["pair_inference"]["step_s"] / compiled["pair_inference"]["step_s"], 3
            ),
            "compiled_vs_eager_extraction": round(eager["extraction"]["pass_s"] / compiled["extraction"]["pass_s"], 3),
            "extraction_vs_pair_inference_eager": round(
                eager["extraction"]["pairs_per_s"] / eager["pair_inference"]["examples_per_s"], 3
            ),
        },
    }


def main(argv: list[str] | None = None) -> dict:
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list

    args = parse_args(argv)
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    torch.manual_seed(0)
    model, processor = build(args.size)
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model, optimizer = accelerator.prepare(model, optimizer)
    num_labels = len(accelerator.unwrap_model(model).relation_labels)
    batch = synthetic_batch(processor, args.batch_size, args.max_words, num_labels, seed=accelerator.process_index)
    batch = {k: v.to(accelerator.device) for k, v in batch.items()}
    on_gpu = accelerator.device.type == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()

    model.train()
    step_times = []
    for _ in range(args.steps):
        if on_gpu:
            torch.cuda.synchronize()
        started = time.perf_counter()
        with accelerator.accumulate(model):
            loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        if on_gpu:
            torch.cuda.synchronize()
        step_times.append(time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None
    peaks = accelerator.gather_for_metrics([peak], use_gather_object=True)

    # the final save of train.py (sharding-safe) and a reload of what it wrote
    with tempfile.TemporaryDirectory() as own_folder:
        folder = broadcast_object_list([own_folder])[0]  # every process saves into the main process's folder
        state_dict = accelerator.get_state_dict(model)
        accelerator.unwrap_model(model).save_pretrained(
            folder, state_dict=state_dict, is_main_process=accelerator.is_main_process, save_function=accelerator.save
        )
        accelerator.wait_for_everyone()
        reloaded = accelerator.is_main_process and ROCModel.from_pretrained(folder) is not None
        accelerator.wait_for_everyone()

    step_s = statistics.median(step_times[args.warmup_steps :])
    result = {
        "benchmark": "gpu_check",
        "name": args.name,
        "size": args.size,
        "device": torch.cuda.get_device_name() if on_gpu else f"CPU ({platform.machine()})",
        "num_processes": accelerator.num_processes,
        "distributed_type": accelerator.distributed_type.value,
        "mixed_precision": accelerator.mixed_precision,
        "parameters": parameters,
        "per_process_batch_size": args.batch_size,
        "words_per_example": args.max_words,
        "image_size": processor.image_config["input_size"][-1],
        "steps": args.steps,
        "timed_steps": args.steps - args.warmup_steps,
        "step_time_s": round(step_s, 4),
        "examples_per_s": round(args.batch_size * accelerator.num_processes / step_s, 1),
        "peak_gpu_memory_gib_per_process": None if peak is None else [round(p, 2) for p in peaks],
        "final_loss": round(loss.item(), 4),
        "save_and_reload": bool(reloaded) if accelerator.is_main_process else None,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    if accelerator.is_main_process and not args.no_inference:
        result["inference"] = inference_timings(accelerator.unwrap_model(model), processor, args, accelerator.device)
    if accelerator.is_main_process:
        output = Path(args.output_dir) / f"gpu_check_{args.name}.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(result, indent=2))
        print(f"wrote {output}")
    return result


if __name__ == "__main__":
    main()
