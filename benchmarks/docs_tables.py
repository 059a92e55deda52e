"""Write the tables of numbers in the docs and the README from `benchmarks/results/*.json`, so that no figure in a
table can drift from the file it came from.

    python benchmarks/docs_tables.py            # rewrite every generated block in README.md and docs/*.md
    python benchmarks/docs_tables.py --check    # exit 1 naming the pages whose blocks are not current (CI)

A generated block is the text between `<!-- table: NAME -->` and `<!-- /table -->`; NAME is one of `TABLES`. The
prose around the blocks is written by hand, and says which results file each claim comes from.
"""

import argparse
import json
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "benchmarks" / "results"
PAGES = ("README.md", "docs/*.md")
BLOCK = re.compile(r"(<!-- table: (?P<name>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.DOTALL)
# Flags every recipe of a kind shares; a table shows what a run added to them.
COMMON_FLAGS = {"--config", "--output_dir", "--logging_steps", "--dataset_name_or_path"}
# The config the tables' "beyond the config" means; another one is shown with the flags.
DEFAULT_CONFIGS = {"mnre_minilm_offline", "configs/mnre_minilm_offline.yaml", "mnre_minilm_offline.yaml"}


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def results(prefix: str) -> list[tuple[str, dict]]:
    return [
        (path.stem, json.loads(path.read_text(encoding="utf-8"))) for path in sorted(RESULTS.glob(f"{prefix}*.json"))
    ]


def number(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}".replace("-", "−")


def signed(value, digits: int = 2) -> str:
    """A difference: "+0.58", "−1.30"."""
    return ("+" if value is not None and value > 0 else "") + number(value, digits)


def added_flags(command: str) -> str:
    """The flags of a train.py command beyond `COMMON_FLAGS`, as code, or "(the config as shipped)"."""
    words = shlex.split(command)
    if "train.py" in " ".join(words[:3]):
        words = words[words.index(next(w for w in words if w.endswith("train.py"))) + 1 :]
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
            continue
        if word in COMMON_FLAGS:
            value = words[words.index(word) + 1] if words.index(word) + 1 < len(words) else ""
            if word == "--config" and value not in DEFAULT_CONFIGS:
                kept += [word, value]
            skip = True
            continue
        kept.append(word)
    return f"`{' '.join(kept)}`" if kept else "(the config as shipped)"


def table(header: list[str], rows: list[list[str]], align: str) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- tables
def quality_table() -> str:
    """Every full training run of `benchmarks/quality.py`: flags added to the offline default, validation metrics."""
    rows = []
    for name, run in results("quality_"):
        metrics = run["metrics"]
        rows.append(
            [
                f"`{name}`",
                added_flags(run["command"]),
                str(run.get("best_epoch", "–")),
                number(metrics["accuracy"]),
                number(metrics["precision"]),
                number(metrics["recall"]),
                f"**{number(metrics['f1'])}**",
                number(run.get("wall_time_s"), 0),
            ]
        )
    return table(
        ["results file", "flags beyond the config", "best epoch", "acc", "P", "R", "micro-F1", "wall s"],
        rows,
        "llrrrrrr",
    )


def headline_table() -> str:
    """The shipped offline default at its three seeds, and their mean."""
    runs = [("42", "quality_a_default_rerun"), ("43", "quality_a_default_seed43"), ("44", "quality_a_default_seed44")]
    rows, f1s = [], []
    for seed, name in runs:
        metrics = load(name)["metrics"]
        f1s.append(metrics["f1"])
        rows.append(
            [
                f"offline default, seed {seed}",
                number(metrics["accuracy"]),
                number(metrics["precision"]),
                number(metrics["recall"]),
                number(metrics["f1"]),
                f"`{name}.json`",
            ]
        )
    rows.append(["mean of the three seeds", "", "", "", f"**{number(sum(f1s) / len(f1s))}**", ""])
    return table(["model (MNRE validation, 1,624 pairs)", "acc", "P", "R", "micro-F1", "results file"], rows, "lrrrrl")


def ablations_table() -> str:
    """The paper's ablations on the full schedule: Δ micro-F1 against the default of the same seed, per seed, beside
    the paper's Δ (every `ablations_full_4epochs*.json` collection; a seed not run is "not run")."""
    by_ablation: dict[str, dict] = {}
    for _, collection in results("ablations_full_4epochs"):
        for ablation in collection["ablations"]:
            entry = by_ablation.setdefault(ablation["ablation"], {"ablation": ablation, "deltas": {}})
            seeds = (ablation.get("delta_f1_seeds") or {}).get("by_seed") or {str(ablation["seed"]): ablation}
            entry["deltas"].update({int(seed): run["delta_f1"] for seed, run in seeds.items()})
    rows = []
    for entry in sorted(by_ablation.values(), key=lambda e: sum(e["deltas"].values()) / len(e["deltas"])):
        ablation, deltas = entry["ablation"], entry["deltas"]
        per_seed = [signed(deltas[seed]) if seed in deltas else "not run" for seed in (42, 43, 44)]
        mean = sum(deltas.values()) / len(deltas)
        rows.append(
            [
                ablation["what"],
                f"`{' '.join(ablation['flags'])}`",
                *per_seed,
                f"**{signed(mean)}**",
                signed(ablation.get("paper_delta_f1")),
            ]
        )
    return table(
        ["ablation", "flag", "Δ F1 seed 42", "Δ F1 seed 43", "Δ F1 seed 44", "mean", "paper Δ"], rows, "llrrrrr"
    )


def unseen_table() -> str:
    """Every run of `benchmarks/unseen_relations.py`: per shots and wording, seen / unseen F1, H and ranking."""
    rows = []
    for name, run in results("unseen_relations_"):
        if "summary" not in run:
            continue
        folds = ", ".join(str(fold) for fold in sorted({f["fold"] for f in run.get("folds", [])}))
        for key, summary in sorted(run["summary"].items()):
            if "/" not in key or "seen_f1" not in summary:
                continue
            shots, wording = key.split("/", 1)
            rows.append(
                [
                    f"`{name}`",
                    added_flags(" ".join(run.get("recipe", []))),
                    folds,
                    shots.removeprefix("shots"),
                    wording,
                    number(summary["seen_f1"]["mean"]),
                    number(summary["unseen_f1"]["mean"]),
                    number(summary.get("harmonic_mean", {}).get("mean")),
                    number(summary.get("among_unseen_accuracy", {}).get("mean")),
                    number(summary.get("unseen_predicted_none", {}).get("mean")),
                ]
            )
    return table(
        [
            "results file",
            "recipe beyond the config",
            "folds",
            "shots",
            "wording",
            "seen F1",
            "unseen F1",
            "H",
            "gold first among held-out %",
            "unseen → None %",
        ],
        rows,
        "lllrlrrrrr",
    )


def speed_table() -> str:
    """Inference and training speed of ROC against its bare text encoder (`benchmarks/speed.py`)."""
    rows = []
    for name, run in results("speed_"):
        rows.append(
            [
                f"`{name}`",
                str(run["config"].get("num_fusion_layers")),
                number(run["inference_examples_per_s"]["encoder"], 1),
                number(run["inference_examples_per_s"]["roc"], 1),
                number(run["ratios"]["inference_vs_encoder"], 3),
                number(run["ratios"]["train_step_vs_encoder"], 3),
                number(run["peak_memory_mb"]["after_training"], 0),
            ]
        )
    return table(
        [
            "results file",
            "fusion layers",
            "encoder ex/s",
            "ROC ex/s",
            "inference ratio",
            "train step ratio",
            "peak MB",
        ],
        rows,
        "lrrrrrr",
    )


def quantization_table() -> str:
    """float32 against dynamic int8 (`benchmarks/quantization.py`): speed and micro-F1 on the same examples."""
    rows = []
    for name, run in results("quantization_"):
        metrics = run["metrics"]
        rows.append(
            [
                f"`{name}`",
                number(run["examples_per_s"]["roc_float32"], 1),
                number(run["examples_per_s"]["roc_int8"], 1),
                number(run["ratios"]["int8_vs_float32"], 2) + "x",
                number(metrics["float32"]["f1"]),
                number(metrics["int8"]["f1"]),
                signed(-run["f1_drop_points"]),
                number(run["prediction_agreement"], 1),
            ]
        )
    return table(
        ["results file", "float32 ex/s", "int8 ex/s", "speed-up", "float32 F1", "int8 F1", "Δ F1", "agreement %"],
        rows,
        "lrrrrrrr",
    )


def int8_schemes_table() -> str:
    """Every int8 scheme against float32 on the same model and examples (`benchmarks/int8_schemes.py`): the runs
    that chose the int8 rule (the `_precision` runs have their own table)."""
    return schemes_table(
        [(name, run) for name, run in results("int8_schemes_") if not name.endswith(("_precision", "_families"))]
    )


def precision_table() -> str:
    """The CPU precisions `for_inference` offers, against float32 in one run per model (`int8_schemes_*_precision`)."""
    runs = [(name, run) for name, run in results("int8_schemes_") if name.endswith("_precision")]
    return schemes_table(runs, rebatched=True)


def schemes_table(runs: list[tuple[str, dict]], rebatched: bool = False) -> str:
    """One row per scheme of each run; with `rebatched`, also how many predictions survive another batch size."""
    rows = []
    for name, run in runs:
        base = run["schemes"]["float32"]
        for scheme, row in run["schemes"].items():
            if scheme == "float32":
                continue
            rows.append(
                [
                    f"`{name}`",
                    f"`{scheme}`",
                    str(len(row["keep_float"])),
                    number(base["f1"]),
                    number(row["f1"]),
                    signed(-row["f1_drop_points"]),
                    number(row["agreement_with_float32"], 1),
                    number(base["examples_per_s"], 1),
                    number(row["examples_per_s"], 1),
                    number(row["speedup_vs_float32"], 2) + "x",
                    *([number(row["same_prediction_rebatched"], 1)] if rebatched else []),
                ]
            )
    header = ["results file", "scheme", "layers kept float32", "float32 F1", "F1", "Δ F1", "agreement %",
              "float32 ex/s", "ex/s", "speed-up"]  # fmt: skip
    if rebatched:
        header.append("same prediction, other batch size %")
    return table(header, rows, "llrrrrrrrr" + "r" * rebatched)


def extraction_table() -> str:
    """Triple extraction over MNRE validation posts against the bare model on the same pairs, per weight type
    (`benchmarks/extraction.py`), with where the time goes."""
    run = load("extraction")
    start, end = run["machine"]["load_average_1_5_15min"][0], run["machine"]["load_average_at_end"][0]
    rows = []
    for kind, speed in run["speed"].items():
        if not isinstance(speed, dict):
            continue
        stages = speed["stages_pct"]
        rows.append(
            [
                kind,
                str(run["pairs_scored"]),
                number(speed["pairs_per_s_end_to_end"], 1),
                number(speed["model_pairs_per_s_same_pairs"], 1),
                f"**{number(speed['extraction_vs_model'], 3)}**",
                *(
                    number(stages[name], 1)
                    for name in ("ner_s", "tokenization_s", "encoder_s", "fusion_and_head_s", "post_processing_s")
                ),
            ]
        )
    header = [
        "weights",
        "pairs",
        "extraction pairs/s (with NER)",
        "bare model pairs/s, same pairs",
        "extraction / model",
        "NER %",
        "tokenization %",
        "text encoder %",
        "fusion and head %",
        "post-processing %",
    ]
    note = (
        f"\n{run['posts']} posts, batches of {run['batch_size']}; load average {number(start)} at the start, "
        f"{number(end)} at the end (`extraction.json`).\n"
    )
    return table(header, rows, "lrrrrrrrrr") + note


def newcomer_table() -> str:
    """The README's first commands, timed from a fresh clone (`benchmarks/newcomer_path.py`)."""
    run = load("newcomer_path")
    rows = [[step["name"], f"`{step['command']}`", number(step["wall_time_s"], 0)] for step in run["steps"]]
    rows.append(["total", "", f"**{number(sum(step['wall_time_s'] for step in run['steps']), 0)}**"])
    return table(["step", "command", "seconds"], rows, "llr")


# The docs show the shipped prototype weight and three pool rates around the default; the results files hold the grid.
CALL_TIME_SHOWN = {"prototype_weight": (None, 0.5), "rate": (0.02, 0.05, 0.1)}


def call_time_table() -> str:
    """Relations given at call time with N examples (`benchmarks/call_time_relations.py`): per shots, rule deciding a
    relation given with examples and pool rate (`CALL_TIME_SHOWN`), the means over folds (and draws) of the cost to
    the seen relations and the unseen scores."""
    rows = []
    for name, run in results("call_time_relations_"):
        for row in run["summary"]:
            if any(row.get(key) not in shown for key, shown in CALL_TIME_SHOWN.items()):
                continue
            decision = row.get("example_decision") or ("cosine_bar" if row["shots"] else "–")
            rows.append([
                f"`{name}`", str(row["folds"]), str(row["shots"]), decision.replace("_", " "),
                number(row["rate"], 3), signed(row["seen_f1_change"]), number(row["unseen_precision"]),
                number(row["unseen_recall"]), f"**{number(row['unseen_f1'])}**",
                number(row["gold_first_among_held_out"]),
            ])  # fmt: skip
    return table(
        ["results file", "folds", "shots", "decided by", "pool rate", "Δ seen F1", "unseen P", "unseen R",
         "unseen F1", "gold first among held-out %"],
        rows,
        "lrrlrrrrrr",
    )  # fmt: skip


def encoder_speed_table() -> str:
    """Pair-pipeline throughput per run and precision (`benchmarks/encoder_speed.py`), with the CPU measured on."""
    rows = []
    for name, run in results("encoder_speed_"):
        cpu = run["cpu"]
        flags = ", ".join(flag for flag, present in cpu["flags"].items() if present)
        for row in run["results"]:
            precision = row["precision"] + (f" ({row['resolved_precision']})" if row["precision"] == "auto" else "")
            rows.append([
                f"`{name}`", f"{row['text_layers']} x {row['text_hidden']}", precision,
                number(row["examples_per_s"], 1), f"{cpu['vendor']} ({flags})",
            ])  # fmt: skip
    return table(["results file", "text encoder", "precision", "examples/s", "CPU"], rows, "lllrl")


def cpu_family(cpu: dict) -> str:
    """A column name for the CPU a results file was measured on: vendor, its widest matrix units, any emulation."""
    flags = cpu["flags"]
    units = (
        "AMX" if flags.get("amx_tile") else "AVX-512" if flags.get("avx512f") else "AVX2" if flags.get("avx2") else ""
    )
    emulated = cpu.get("emulation") or {}
    family = f"{cpu['vendor'] or 'unknown'} {units}".strip()
    if emulated:
        family += ", " + " ".join(f"{k}={v}" for k, v in sorted(emulated.items()))
    return family


def cpu_families_table() -> str:
    """Rows: precision / engine; columns: CPU family (`int8_schemes_*_families`, each run on one CPU with every
    scheme against float32). A cell: speed-up over float32 on that CPU, and the F1 change."""
    runs = [(name, run) for name, run in results("int8_schemes_") if name.endswith("_families")]
    columns = list(dict.fromkeys(cpu_family(run["machine"]["cpu"]) for _, run in runs))
    cells: dict[str, dict[str, str]] = {}
    for _, run in runs:
        column = cpu_family(run["machine"]["cpu"])
        float32 = run["schemes"]["float32"]
        cells.setdefault("float32 (torch)", {})[column] = f"1.00x ({number(float32['examples_per_s'], 1)} ex/s)"
        for scheme, row in run["schemes"].items():
            if scheme != "float32":
                change = signed(-row["f1_drop_points"] or 0.0)  # no "−0.00"
                cells.setdefault(scheme, {})[column] = f"{number(row['speedup_vs_float32'])}x ({change} F1)"
    rows = [
        [f"`{scheme}`", *(by_column.get(column, "–") for column in columns)] for scheme, by_column in cells.items()
    ]
    return table(["precision / engine", *columns], rows, "l" + "r" * len(columns))


TABLES: dict[str, Callable[[], str]] = {
    "headline": headline_table,
    "quality": quality_table,
    "ablations": ablations_table,
    "unseen": unseen_table,
    "speed": speed_table,
    "quantization": quantization_table,
    "int8_schemes": int8_schemes_table,
    "precision": precision_table,
    "extraction": extraction_table,
    "newcomer": newcomer_table,
    "call_time": call_time_table,
    "encoder_speed": encoder_speed_table,
    "cpu_families": cpu_families_table,
}


def render(text: str, page: str) -> str:
    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"{page}: unknown table {name!r} (known: {', '.join(TABLES)})")
        return f"{match.group(1)}{TABLES[name]()}{match.group(4)}"

    return BLOCK.sub(fill, text)


def pages() -> list[Path]:
    return sorted({path for pattern in PAGES for path in REPO_ROOT.glob(pattern)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Change nothing; exit 1 if a page is not current.")
    args = parser.parse_args(argv)
    stale = []
    for path in pages():
        text = path.read_text(encoding="utf-8")
        new = render(text, str(path.relative_to(REPO_ROOT)))
        if new != text:
            stale.append(str(path.relative_to(REPO_ROOT)))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"not current: {', '.join(stale)} (run: python benchmarks/docs_tables.py)", file=sys.stderr)
        return 1
    print(f"{'stale' if args.check else 'rewrote'}: {', '.join(stale) or 'nothing'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
