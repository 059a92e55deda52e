"""Evaluation artefacts a user can check by hand: predictions per example, per-relation scores, confusion matrix.

`predictions.jsonl` holds everything needed to recompute the metrics independently (id, gold, prediction, score).
"""

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path


def per_relation_report(
    predictions: Sequence[int], references: Sequence[int], label_names: Sequence[str]
) -> list[dict[str, float | int | str]]:
    """Precision / recall / F1 / support of every relation (one-vs-rest), `None` included for information."""
    true_positive = Counter(p for p, r in zip(predictions, references) if p == r)
    predicted = Counter(predictions)
    gold = Counter(references)
    rows = []
    for label_id, name in enumerate(label_names):
        tp = true_positive[label_id]
        precision = tp / predicted[label_id] if predicted[label_id] else 0.0
        recall = tp / gold[label_id] if gold[label_id] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {
                "relation": name,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": gold[label_id],
                "predicted": predicted[label_id],
            }
        )
    return rows


def format_report(rows: list[dict], title: str) -> str:
    """A Markdown table of `per_relation_report` rows (percentages)."""
    width = max(len(r["relation"]) for r in rows)
    lines = [
        f"### {title}",
        "",
        f"| {'relation'.ljust(width)} | precision | recall |   F1  | support | predicted |",
        f"|{'-' * (width + 2)}|----------:|-------:|------:|--------:|----------:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['relation'].ljust(width)} | {100 * r['precision']:9.1f} | {100 * r['recall']:6.1f} | "
            f"{100 * r['f1']:5.1f} | {r['support']:7d} | {r['predicted']:9d} |"
        )
    return "\n".join(lines) + "\n"


def confusion_matrix(predictions: Sequence[int], references: Sequence[int], num_labels: int) -> list[list[int]]:
    """`matrix[gold][predicted]` counts."""
    matrix = [[0] * num_labels for _ in range(num_labels)]
    for p, r in zip(predictions, references):
        matrix[r][p] += 1
    return matrix


def plot_confusion_matrix(matrix: list[list[int]], label_names: Sequence[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix as a PNG (counts in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(label_names)
    rates = [[c / max(sum(row), 1) for c in row] for row in matrix]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * n + 3), max(5, 0.45 * n + 2)))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels=label_names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels=label_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            if matrix[i][j]:
                color = "white" if rates[i][j] > 0.5 else "black"
                ax.text(j, i, matrix[i][j], ha="center", va="center", fontsize=6, color=color)
    fig.colorbar(image, ax=ax, fraction=0.04, label="fraction of the gold row")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_predictions(
    path: Path,
    ids: Sequence[str],
    predictions: Sequence[int],
    references: Sequence[int],
    scores: Sequence[float],
    label_names: Sequence[str],
) -> None:
    """One JSON line per example: `{"id", "gold", "prediction", "score"}` (labels as names)."""
    with open(path, "w", encoding="utf-8") as f:
        for example_id, p, r, s in zip(ids, predictions, references, scores):
            record = {"id": example_id, "gold": label_names[r], "prediction": label_names[p], "score": round(s, 6)}
            f.write(json.dumps(record) + "\n")


__all__ = ["confusion_matrix", "format_report", "per_relation_report", "plot_confusion_matrix", "write_predictions"]
