"""Benchmark (not a test): triple extraction from raw MNRE sentences, its speed and a label-free quality check.

    python benchmarks/extraction.py --dataset data/mnre --split validation --model runs/a-frozenrel-fusion1

Every unique sentence of the split is a post (text only, no image). The extractor (`roc_mre.extraction`) runs
end to end: NER -> ordered entity pairs -> ROC, in chunks of `--chunk_size` posts as the command line does.

Speed: posts/s with NER included, without it (model + pair building only), and NER alone; pairs scored per second.
The model's own batch throughput is measured in the same run on the very pairs the extractor scored (the pairs
sorted by length, one processor call and one forward per batch of `--batch_size`, nothing else), so the ratio
extraction / model says what the extraction path costs beyond the model. Where the time goes is timed per stage:
NER (with pair building), tokenization (the processor calls), the text encoder (hooks on `text_model`), fusion and
head (the rest of the forward) and post-processing (everything else: batching, triples, records). The first pass runs
the model in float32; `--precisions int8 bfloat16` repeats the speed part at each of those precisions
(`modeling_roc.for_inference`; bfloat16 is what `precision="auto"` picks on a CPU with hardware bfloat16).

Quality check, needing no new labels: the same model scores the dataset's gold pairs with the pair-level pipeline
(`ROCRelationExtractionPipeline`, gold spans and the dataset's NER types). For every gold pair whose two spans are
entities the extractor found, the extractor's decision (a triple's relation, or `None` when it produced no triple)
must equal the pair-level top-1 relation: the inputs are identical when the types coincide, so agreement there must
be 100% (a relation of the model's `symmetric_relations` found in both directions is reported once: the gold pair
of the direction left out counts the reported triple when the pair-level prediction is that same relation). Gold
pairs whose spans NER did not find (coverage) and those typed differently are reported apart, as are the extra
non-`None` triples on pairs the dataset does not annotate, and the end-to-end recall of the gold triples.
Results go to `benchmarks/results/extraction.json`.
"""

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

import datasets
import torch
import transformers


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from results_io import existing_dir  # noqa: E402

from datasets_scripts.relation_bank import load_relation_bank, ordered_bank  # noqa: E402
from modeling_roc import EMBEDDED_TEXT_ENCODER, ROCModel, ROCProcessor, ROCRelationExtractionPipeline  # noqa: E402
from roc_mre.extraction import DEFAULT_NER, TripleExtractor, candidate_pairs  # noqa: E402


DEFAULT_RUN = REPO_ROOT / "runs" / "a-frozenrel-fusion1"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dataset", type=existing_dir, default=str(REPO_ROOT / "data" / "mnre"), help="Dataset folder (MNRE build)."
    )
    parser.add_argument("--split", default="validation", help="Split whose sentences are the posts.")
    parser.add_argument(
        "--model",
        help=f"A trained ROC run folder; default {DEFAULT_RUN} when it holds model.safetensors and "
        "eval_results.json, else an untrained model from --text_encoder (speed only).",
    )
    parser.add_argument("--text_encoder", default=EMBEDDED_TEXT_ENCODER, help="For an untrained model.")
    parser.add_argument("--ner", default=DEFAULT_NER, help="NER backend (use the one the dataset was built with).")
    parser.add_argument("--batch_size", type=int, default=32, help="Entity pairs per model call.")
    parser.add_argument("--chunk_size", type=int, default=64, help="Posts per extractor call (as the CLI).")
    parser.add_argument("--max_posts", type=int, help="Only the first N unique sentences (a shorter run).")
    parser.add_argument(
        "--precisions",
        nargs="*",
        default=[],
        choices=["int8", "bfloat16"],
        help="Also time the speed part at these precisions (the first pass is float32).",
    )
    parser.add_argument(
        "--output",
        default=str(REPO_ROOT / "benchmarks" / "results" / "extraction.json"),
        help="Where to write the results JSON.",
    )
    return parser.parse_args(argv)


def machine() -> dict:
    return {
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
    }


def load_model(args, label_names: list[str]) -> tuple:
    """The trained run if there is one (quality numbers mean something), else an untrained model (speed only)."""
    path = args.model
    if path is None and all((DEFAULT_RUN / name).is_file() for name in ("model.safetensors", "eval_results.json")):
        path = str(DEFAULT_RUN)
    if path:
        model = ROCModel.from_pretrained(path)
        info = {"model": os.path.relpath(path, REPO_ROOT) if Path(path).exists() else path, "trained": True}
        results = Path(path) / "eval_results.json"
        if results.is_file():
            info["model_eval_results"] = json.loads(results.read_text())["splits"]
        return model, ROCProcessor.from_pretrained(path), info
    bank = ordered_bank(label_names, load_relation_bank("mnre"))
    model = ROCModel.from_encoders(args.text_encoder, relation_bank=bank, num_fusion_layers=1)
    return model, ROCProcessor.from_encoders(args.text_encoder), {"model": args.text_encoder, "trained": False}


class StageClock:
    """Seconds spent per stage of the extractor's scoring: the processor's calls (a proxy around it) and the text
    encoder's forward (hooks); `forward_s` is every model forward, so fusion and head are `forward_s - encoder_s`."""

    def __init__(self) -> None:
        self.seconds: Counter = Counter()
        self._started: dict[str, float] = {}

    def watch(self, model) -> None:
        for name, module in (("forward_s", model), ("encoder_s", model.text_model)):
            module.register_forward_pre_hook(lambda *_, name=name: self._start(name))
            module.register_forward_hook(lambda *_, name=name: self._stop(name))

    def _start(self, name: str) -> None:
        self._started[name] = time.perf_counter()

    def _stop(self, name: str) -> None:
        self.seconds[name] += time.perf_counter() - self._started.pop(name)

    def processor(self, processor):
        clock = self

        class TimedProcessor:
            def __call__(self, *args, **kwargs):
                started = time.perf_counter()
                try:
                    return processor(*args, **kwargs)
                finally:
                    clock.seconds["tokenization_s"] += time.perf_counter() - started

            def __getattr__(self, name):
                return getattr(processor, name)

        return TimedProcessor()


def time_extraction(extractor: TripleExtractor, posts: list[dict], chunk_size: int, clock: StageClock) -> tuple:
    """The CLI's path over every post, chunk by chunk: the records, the summed `last_stats`, and the stages."""
    clock.seconds.clear()
    records, totals = [], Counter()
    for begin in range(0, len(posts), chunk_size):
        records += extractor.extract(posts[begin : begin + chunk_size], return_entities=True)
        totals.update(extractor.last_stats)
    stages = {
        "ner_s": totals["ner_s"],
        "tokenization_s": clock.seconds["tokenization_s"],
        "encoder_s": clock.seconds["encoder_s"],
        "fusion_and_head_s": clock.seconds["forward_s"] - clock.seconds["encoder_s"],
    }
    stages["post_processing_s"] = totals["total_s"] - sum(stages.values())
    return records, totals, {name: round(value, 3) for name, value in stages.items()}


def model_throughput(extractor: TripleExtractor, records: list[dict], posts: list[dict], batch_size: int) -> float:
    """Pairs/s of the bare model on the pairs the extractor scored: length-sorted batches, one processor call and one
    forward each (the floor any extraction path pays)."""
    items = []
    for post, record in zip(posts, records):
        entities = [{k: e[k] for k in ("start", "end", "type")} for e in record["entities"]]
        for i, j in candidate_pairs(entities):
            items.append((post["tokens"], entities[i], entities[j]))
    items.sort(key=lambda item: len(item[0]))
    model, processor = extractor.model, extractor.processor
    started = time.perf_counter()
    with torch.inference_mode():
        for begin in range(0, len(items), batch_size):
            tokens, subjects, objects = zip(*items[begin : begin + batch_size])
            model(**processor(list(tokens), list(subjects), list(objects)))
    return len(items) / (time.perf_counter() - started)


def speed_report(n_posts: int, totals: Counter, stages: dict, model_pairs_per_s: float) -> dict:
    extraction_pairs_per_s = totals["pairs"] / totals["total_s"]
    return {
        "extraction_s": round(totals["total_s"], 3),
        "posts_per_s_with_ner": round(n_posts / totals["total_s"], 2),
        "posts_per_s_without_ner": round(n_posts / (totals["total_s"] - totals["ner_s"]), 2),
        "ner_posts_per_s": round(n_posts / totals["ner_s"], 1),
        "pairs_per_s_end_to_end": round(extraction_pairs_per_s, 1),
        "pairs_per_s_scoring": round(totals["pairs"] / totals["score_s"], 1),
        "model_pairs_per_s_same_pairs": round(model_pairs_per_s, 1),
        "extraction_vs_model": round(extraction_pairs_per_s / model_pairs_per_s, 3),
        "stages_s": stages,
        "stages_pct": {name: round(100 * value / totals["total_s"], 1) for name, value in stages.items()},
    }


def posts_from_split(split: datasets.Dataset) -> tuple[list[dict], list[list[dict]]]:
    """Unique sentences as posts, with the gold pairs annotated on each."""
    names = split.features["relation"].names
    posts, gold, index = [], [], {}
    for row in split:
        key = tuple(row["tokens"])
        if key not in index:
            index[key] = len(posts)
            posts.append({"id": f"post-{len(posts)}", "tokens": list(row["tokens"])})
            gold.append([])
        gold[index[key]].append(
            {
                "id": row["id"],
                "subject": {k: row["subject"][k] for k in ("start", "end", "type")},
                "object": {k: row["object"][k] for k in ("start", "end", "type")},
                "relation": names[row["relation"]],
            }
        )
    return posts, gold


def main(argv=None) -> dict:
    args = parse_args(argv)
    start_all = time.perf_counter()
    started_on = machine()  # the load average shows whether other work shared the CPU
    split = datasets.load_dataset(args.dataset, split=args.split).select_columns(
        ["id", "tokens", "subject", "object", "relation"]
    )
    posts, gold = posts_from_split(split)
    if args.max_posts:
        posts, gold = posts[: args.max_posts], gold[: args.max_posts]
    model, processor, model_info = load_model(args, split.features["relation"].names)
    extractor = TripleExtractor(model, processor, ner=args.ner, batch_size=args.batch_size, precision="float32")
    none_label = extractor.none_label

    clock = StageClock()
    clock.watch(model)
    extractor.processor = clock.processor(processor)
    extractor.extract(posts[:8])  # warm-up: loads the NER model, encodes the relation bank once
    records, totals, stages = time_extraction(extractor, posts, args.chunk_size, clock)
    own = model_throughput(extractor, records, posts, args.batch_size)
    speed = {"float32": speed_report(len(posts), totals, stages, own)}
    for kind in args.precisions:
        other = TripleExtractor(model, processor, ner=extractor.tagger, batch_size=args.batch_size, precision=kind)
        other_clock = StageClock()
        other_clock.watch(other.model)
        other.processor = other_clock.processor(processor)
        other.extract(posts[:8])
        _, q_totals, q_stages = time_extraction(other, posts, args.chunk_size, other_clock)
        q_model = model_throughput(other, records, posts, args.batch_size)
        speed[kind] = speed_report(len(posts), q_totals, q_stages, q_model)
    errors = [r for r in records if "error" in r]
    if errors:
        raise RuntimeError(f"{len(errors)} posts failed, e.g. {errors[0]}")

    # pair-level predictions of the same model on the gold pairs (gold spans, dataset types)
    pair_pipe = ROCRelationExtractionPipeline(
        model=model, processor=processor, device=model.device, precision="float32"
    )
    pair_inputs = [
        {"tokens": post["tokens"], "subject": pair["subject"], "object": pair["object"]}
        for post, pairs in zip(posts, gold)
        for pair in pairs
    ]
    pair_start = time.perf_counter()
    pair_labels = [r[0]["relation"] for r in pair_pipe(pair_inputs, batch_size=args.batch_size, top_k=1)]
    pair_s = time.perf_counter() - pair_start
    pair_predictions = iter(pair_labels)

    counts = Counter()
    extra_by_relation = Counter()
    symmetric = set(getattr(model.config, "symmetric_relations", None) or ())
    for pairs, record in zip(gold, records):
        entities = {(e["start"], e["end"]): e["type"] for e in record["entities"]}
        triples = {
            (t["subject"]["start"], t["subject"]["end"], t["object"]["start"], t["object"]["end"]): t
            for t in record["triples"]
        }
        gold_keys = set()
        counts["candidate_pairs_without_type_filter"] += len(candidate_pairs(record["entities"]))
        counts["entities"] += len(entities)
        for pair in pairs:
            s, o = pair["subject"], pair["object"]
            key = (s["start"], s["end"], o["start"], o["end"])
            gold_keys.add(key)
            predicted = next(pair_predictions)
            triple = triples.get(key)
            reverse = triples.get((key[2], key[3], key[0], key[1]))
            if triple is None and reverse is not None and reverse["relation"] == predicted in symmetric:
                # both directions scored the same symmetric relation: the extractor reported the better-scored one
                triple = reverse
            extracted = triple["relation"] if triple else none_label
            counts["gold_pairs"] += 1
            counts["pair_level_correct"] += predicted == pair["relation"]
            if pair["relation"] != none_label:
                counts["gold_triples"] += 1
                counts["gold_triples_extracted"] += extracted == pair["relation"]
            found = (s["start"], s["end"]) in entities and (o["start"], o["end"]) in entities
            if not found:
                continue
            counts["gold_pairs_found"] += 1
            ner_types = (entities[(s["start"], s["end"])], entities[(o["start"], o["end"])])
            same_types = ner_types == (s["type"], o["type"])
            group = "same_types" if same_types else "different_types"
            counts[f"{group}_pairs"] += 1
            counts[f"{group}_agree"] += extracted == predicted
        for key, triple in triples.items():
            if key not in gold_keys:
                counts["extra_triples"] += 1
                extra_by_relation[triple["relation"]] += 1
                counts["extra_triples_reversing_a_gold_pair"] += (key[2], key[3], key[0], key[1]) in gold_keys
        counts["triples"] += len(triples)

    def rate(numerator: int, denominator: int) -> float | None:
        return round(100 * numerator / denominator, 2) if denominator else None

    n_posts = len(posts)
    quality = {
        "gold_pairs": counts["gold_pairs"],
        "gold_pairs_found_by_ner": counts["gold_pairs_found"],
        "coverage_pct": rate(counts["gold_pairs_found"], counts["gold_pairs"]),
        "found_with_same_types": counts["same_types_pairs"],
        "agreement_same_types_pct": rate(counts["same_types_agree"], counts["same_types_pairs"]),
        "found_with_different_types": counts["different_types_pairs"],
        "agreement_different_types_pct": rate(counts["different_types_agree"], counts["different_types_pairs"]),
        "extra_non_none_triples_on_unannotated_pairs": counts["extra_triples"],
        "extra_triples_per_post": round(counts["extra_triples"] / n_posts, 3),
        "extra_triples_that_reverse_a_gold_pair": counts["extra_triples_reversing_a_gold_pair"],
        "extra_triples_by_relation": dict(extra_by_relation.most_common()),
        "pair_level_accuracy_pct": rate(counts["pair_level_correct"], counts["gold_pairs"]),
        "gold_non_none_triples": counts["gold_triples"],
        "end_to_end_recall_of_gold_triples_pct": rate(counts["gold_triples_extracted"], counts["gold_triples"]),
    }
    run_predictions = REPO_ROOT / model_info["model"] / f"predictions_{args.split}.jsonl"
    if model_info["trained"] and run_predictions.is_file() and not args.max_posts:
        by_id = {json.loads(line)["id"]: json.loads(line)["prediction"] for line in run_predictions.open()}
        ids = [pair["id"] for pairs in gold for pair in pairs]
        quality["pair_pipeline_matches_train_py_predictions_pct"] = rate(
            sum(by_id.get(i) == p for i, p in zip(ids, pair_labels)), len(ids)
        )

    wall = time.perf_counter() - start_all
    finished_on = machine()
    results = {
        "benchmark": "extraction",
        "command": shlex.join([sys.executable.split("/")[-1], *sys.argv]) if argv is None else shlex.join(argv),
        "machine": {**started_on, "load_average_at_end": finished_on["load_average_1_5_15min"]},
        **model_info,
        "ner_backend": extractor.tagger.name,
        "dataset": os.path.relpath(args.dataset, REPO_ROOT),
        "split": args.split,
        "posts": n_posts,
        "max_posts": args.max_posts,
        "entities": counts["entities"],
        "pairs_scored": totals["pairs"],
        "pairs_skipped_by_type_filter": counts["candidate_pairs_without_type_filter"] - totals["pairs"],
        "triples": counts["triples"],
        "batch_size": args.batch_size,
        "chunk_size": args.chunk_size,
        "speed": {**speed, "pair_level_pipeline_pairs_per_s": round(len(pair_inputs) / pair_s, 1)},
        "quality": quality,
        "wall_time_s": round(wall, 3),
        "notes": "Posts are the unique sentences of the split, text only, tokens as given. ner_s includes pair "
        "enumeration (negligible); the relation bank is encoded once, in the warm-up. Agreement compares the "
        "extractor's relation (None where it made no triple; min_score 0) with the pair-level pipeline's top-1 on "
        "the gold pairs whose two spans the NER found; coverage is limited by the NER (handles, hashtags and "
        "lower-case names are not entities). A load average near or above the core count means other work shared the "
        "CPU: speeds are then lower bounds.",
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
