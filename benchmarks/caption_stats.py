"""Benchmark (not a training run): what each captioner's text gives the model, measured before any training.

    python benchmarks/caption_stats.py --dataset data/mnre --captions ../shared/data/mnre/captions

For every CAMIM captioner whose files are in `--captions`, on each split of the built MNRE dataset (`--dataset`, the
text-only build: its entity types shape the marked text the caption is appended to):
1. coverage: examples whose image has a caption;
2. length: the caption's tokens under the text encoder's tokenizer (median, 90th percentile);
3. what survives `--use_captions` (the caption as a second segment after the marked, type-prompted text, within
   `--max_length`): the share of caption tokens kept, and of examples whose caption is kept whole / dropped entirely;
4. whether the caption names an entity: the share of examples whose caption contains the subject's or the object's
   name (case-insensitive). A caption that never names the entities can inform the relation only indirectly (the
   scene: a stage, a pitch, a wedding), which bounds what it can add to the sentence.
Results go to `benchmarks/results/caption_stats.json`; training results with captions are `quality_captions_*.json`.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from results_io import existing_dir  # noqa: E402

from datasets_scripts.captions import CAPTIONERS, caption_file_name, image_key, read_caption_file  # noqa: E402


def caption_fit(processor, rows: dict, captions: list[str | None], chunk: int = 256) -> list[tuple[int, int]]:
    """Per example with a caption: (caption tokens, caption tokens that fit) under `processor`'s `max_length`.

    Measured with the processor itself, so it counts exactly what `--use_captions` trains on: the encoded length
    with the caption, minus the length without it and the separator that closes the caption segment.
    """
    fits = []
    for start in range(0, len(captions), chunk):
        part = slice(start, start + chunk)
        tokens, subjects, objects = rows["tokens"][part], rows["subject"][part], rows["object"][part]
        texts = captions[part]
        without = processor(tokens, subjects, objects)["attention_mask"].sum(dim=1).tolist()
        with_caption = processor(tokens, subjects, objects, captions=texts)["attention_mask"].sum(dim=1).tolist()
        for text, bare, full in zip(texts, without, with_caption):
            if text is None:
                continue
            length = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
            fits.append((length, max(full - bare - 1, 0)))
    return fits


def names_entity(caption: str | None, subject: dict, object: dict) -> tuple[bool, bool]:
    """(the caption names the subject or the object, it names both), case-insensitive."""
    if caption is None:
        return False, False
    text = caption.lower()
    found = [entity["name"].lower() in text for entity in (subject, object)]
    return any(found), all(found)


def split_stats(processor, rows: dict, captions: list[str | None]) -> dict:
    """The four measurements of the module docstring for one split and one captioner."""
    fits = caption_fit(processor, rows, captions)
    named = [names_entity(c, s, o) for c, s, o in zip(captions, rows["subject"], rows["object"])]
    with_caption = len(fits)
    lengths = sorted(length for length, _ in fits)

    def share(count: int) -> float:
        return round(100 * count / with_caption, 2) if with_caption else 0.0

    return {
        "examples": len(captions),
        "with_caption": with_caption,
        "caption_tokens_median": statistics.median(lengths) if lengths else 0,
        "caption_tokens_p90": lengths[int(0.9 * (len(lengths) - 1))] if lengths else 0,
        "caption_tokens_kept_percent": round(100 * sum(k for _, k in fits) / max(sum(lengths), 1), 2),
        "caption_kept_whole_percent": share(sum(k >= length for length, k in fits)),
        "caption_dropped_percent": share(sum(k == 0 for _, k in fits)),
        "names_subject_or_object_percent": share(sum(any_ for any_, _ in named)),
        "names_both_percent": share(sum(both for _, both in named)),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dataset", type=existing_dir, required=True, help="MNRE dataset folder built by datasets_scripts.build."
    )
    parser.add_argument(
        "--captions", type=existing_dir, required=True, help="Folder of CAMIM caption files (<captioner>_<split>.*)."
    )
    parser.add_argument(
        "--captioners", nargs="+", default=list(CAPTIONERS), choices=list(CAPTIONERS), help="Default: all six."
    )
    parser.add_argument("--text_encoder", default="embedded:all-MiniLM-L6-v2", help="Whose tokenizer counts.")
    parser.add_argument("--max_length", type=int, default=128, help="train.py's --max_length (default 128).")
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "caption_stats.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import datasets

    from modeling_roc import ROCProcessor

    started = time.time()
    dataset = datasets.load_dataset(args.dataset)
    processor = ROCProcessor.from_encoders(args.text_encoder, max_length=args.max_length)
    results: dict[str, dict] = {}
    for captioner in args.captioners:
        for split, rows in dataset.items():
            path = Path(args.captions) / caption_file_name(captioner, split)
            if not path.exists():
                print(f"{captioner}: no {path.name}, split {split} skipped")
                continue
            by_image = read_caption_file(path)
            columns = rows.select_columns(["tokens", "subject", "object", "image_id"])[:]
            captions = [by_image.get(image_key(image)) for image in columns["image_id"]]
            results.setdefault(captioner, {})[split] = split_stats(processor, columns, captions)
            print(f"{captioner} {split}: {json.dumps(results[captioner][split])}")
    arguments = argv if argv is not None else sys.argv[1:]
    record = {
        "benchmark": "caption_stats",
        "command": shlex.join(["python", "benchmarks/caption_stats.py", *arguments]),
        "machine": f"{platform.machine()} {platform.system()}",
        "text_encoder": args.text_encoder,
        "max_length": args.max_length,
        "captioners": results,
        "wall_time_s": round(time.time() - started, 2),
    }
    Path(args.output).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
