"""Benchmark (not a test): what the MNRE text alone can and cannot tell, measured on the release files.

    python benchmarks/mnre_text_stats.py --mnre_dir ../shared/data/mnre

Counts, with the builder's own parser:
1. the share of `None` per split;
2. training (sentence, subject span, object span) triples that occur more than once, how many of those carry
   different labels (text identical, label different, so only the image or annotation noise can decide), and how many
   of those come with different images (where a caption of the image could tell them apart);
3. validation examples whose (subject name, object name) pair, lower-cased, occurs in training: names a model could
   have memorised.
Results go to `benchmarks/results/mnre_text_stats.json`.
"""

import argparse
import json
import platform
import shlex
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from datasets_scripts.mnre import MNRE_LABELS, find_split_file, resolve_text_dir  # noqa: E402
from datasets_scripts.source_lines import read_source_file  # noqa: E402


def _name_pair(record) -> tuple[str, str]:
    return record.subject.name.lower(), record.object.name.lower()


def text_stats(splits: dict[str, list]) -> dict:
    """The counts listed in the module docstring, from parsed records per split."""
    stats = {
        "none_share_percent": {
            split: round(100 * sum(r.relation == "None" for r in records) / len(records), 2)
            for split, records in splits.items()
        },
        "num_examples": {split: len(records) for split, records in splits.items()},
    }
    occurrences = defaultdict(list)
    for r in splits["train"]:
        triple = (r.tokens, r.subject.start, r.subject.end, r.object.start, r.object.end)
        occurrences[triple].append((r.relation, r.image_id))
    repeated = [pairs for pairs in occurrences.values() if len(pairs) > 1]
    conflicting_pairs = [pairs for pairs in repeated if len({label for label, _ in pairs}) > 1]
    conflicting = [tuple(sorted({label for label, _ in pairs})) for pairs in conflicting_pairs]
    stats["train_repeated_triples"] = len(repeated)
    stats["train_repeated_triples_with_different_labels"] = len(conflicting)
    # the same text with different labels but different pictures: only the image (or a text of it) can tell them apart
    stats["train_conflicting_triples_with_different_images"] = sum(
        len({image for _, image in pairs}) > 1 for pairs in conflicting_pairs
    )
    stats["train_conflicting_label_sets"] = {" vs ".join(k): v for k, v in Counter(conflicting).most_common()}
    if "validation" in splits:
        train_pairs = {_name_pair(r) for r in splits["train"]}
        stats["validation_name_pairs_seen_in_train"] = sum(_name_pair(r) in train_pairs for r in splits["validation"])
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnre_dir", required=True, help="MNRE folder in the release layout (mnre_txt/ inside).")
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "mnre_text_stats.json"))
    args = parser.parse_args()

    started = time.time()
    _, text_dir = resolve_text_dir(args.mnre_dir)
    splits = {}
    for split in ("train", "validation", "test"):
        path = find_split_file(text_dir, split)
        if path is not None:
            splits[split] = read_source_file(path, labels=MNRE_LABELS).records
    if "train" not in splits:
        raise SystemExit(f"No MNRE training file in {text_dir}.")
    record = {
        "benchmark": "mnre_text_stats",
        "command": shlex.join(["python", "benchmarks/mnre_text_stats.py", "--mnre_dir", args.mnre_dir]),
        "machine": f"{platform.machine()} {platform.system()}",
        "dataset": "MNRE (release text files)",
        "stats": text_stats(splits),
    }
    record["wall_time_s"] = round(time.time() - started, 2)
    Path(args.output).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record["stats"], indent=2))


if __name__ == "__main__":
    main()
