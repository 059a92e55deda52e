"""Relation-extraction accuracy and micro precision / recall / F1 excluding the `None` relation.

The field's convention (HVPNeT's `metrics.py`, MEGA, ROC): over all examples, a *correct* prediction is a non-`None`
prediction equal to a non-`None` gold label; precision = correct / non-`None` predictions, recall = correct /
non-`None` gold labels. So predicting a real relation for a gold `None` is a false positive and predicting `None` (or
another relation) for a gold relation is a false negative. Accuracy counts every example, `None` included.

The ROC paper's MNRE table uses a None-inclusive variant instead, so its four numbers sit close together: the
support-weighted precision / recall / F1 over **every** label, `None` included (scikit-learn's `average="weighted"`;
weighted recall equals accuracy). Both families are returned, each named for what it is: `precision` / `recall` /
`f1` (the field's, None excluded: the headline) and `weighted_precision` / `weighted_recall` / `weighted_f1`.

Load it offline from any folder with `evaluate.load(roc_mre.metrics.RE_F1)` (the path of this folder inside the
installed package); `relation_extraction_scores` is the same computation as a plain function. Labels may be ids or
the label strings the pipelines return.
"""

from collections.abc import Callable

import datasets
import evaluate


_CITATION = """\
@inproceedings{hei2025roc,
  title={Retrieval over Classification: Integrating Relation Semantics for Multimodal Relation Extraction},
  author={Hei, Lei and Liao, Tingjing and Pei, Yingxin and Qi, Yiyang and Wang, Jiaqi and Li, Ruiting and
          Ren, Feiliang},
  booktitle={EMNLP},
  year={2025}
}
"""

# Where the None-excluded definition comes from (HVPNeT's evaluation code, which MEGA and ROC report with) and the
# scikit-learn average the None-inclusive family equals.
REFERENCE_URLS = [
    "https://arxiv.org/abs/2509.21151",
    "https://aclanthology.org/2022.findings-naacl.121/",
    "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.precision_recall_fscore_support.html",
]
CODEBASE_URLS = ["https://github.com/zjunlp/HVPNeT/blob/main/modules/metrics.py"]

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]` or `list[str]`): predicted relation ids, or label strings (what the pipelines return).
    references (`list[int]` or `list[str]`): gold relation ids or label strings, of the same kind as the predictions.
    negative_label (`int` or `str`, *optional*): the `None` (no relation) label; default 0 for ids, "None" for strings.
Returns:
    accuracy, precision, recall, f1 (None excluded), weighted_precision, weighted_recall, weighted_f1 (None
    included, support-weighted), all fractions in [0, 1]; num_examples, and the counts `correct`, `predicted`
    (non-`None` predictions), `gold` (non-`None` gold labels).
Example:
    >>> from roc_mre.metrics import RE_F1
    >>> metric = evaluate.load(RE_F1)
    >>> metric.compute(predictions=[1, 0, 2], references=[1, 2, 0], negative_label=0)["f1"]
    0.5
    >>> metric.compute(predictions=["/per/per/couple", "None"], references=["/per/per/couple", "None"])["f1"]
    1.0
"""
# Ids, or the label strings a pipeline returns.
FEATURES = [
    datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
    datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
]


def _label(value):
    return value if isinstance(value, str) else int(value)  # numpy integers compare and hash as ints


def relation_extraction_scores(predictions, references, negative_label: int | str | None = None) -> dict[str, float]:
    """Accuracy and micro P/R/F1 over every label but `negative_label` (see the module docstring).

    Labels are ids or label strings (not mixed); `negative_label` defaults to 0 for ids and "None" for strings.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    pairs = list(zip((_label(p) for p in predictions), (_label(r) for r in references)))
    kinds = {type(label) for pair in pairs for label in pair}
    if len(kinds) > 1:
        raise ValueError("predictions and references must be all ids or all label strings, not a mix")
    strings = kinds == {str}
    if negative_label is None:
        negative_label = "None" if strings else 0
    elif isinstance(negative_label, str) != strings and pairs:
        raise ValueError(
            f"negative_label={negative_label!r} is not of the labels' kind ({'strings' if strings else 'ids'})"
        )
    micro = micro_scores(pairs, positive=lambda label: label != negative_label)
    accuracy = sum(p == r for p, r in pairs) / len(pairs) if pairs else 0.0
    return {
        "accuracy": accuracy,
        "precision": micro["precision"],
        "recall": micro["recall"],
        "f1": micro["f1"],
        **weighted_scores(pairs),
        "num_examples": len(pairs),
        "correct": micro["correct"],
        "predicted": micro["predicted"],
        "gold": micro["gold"],
    }


def micro_scores(pairs: list[tuple[int, int]], positive: Callable[[int], bool]) -> dict[str, float]:
    """Micro P / R / F1 (fractions) counting only the labels `positive` accepts, with the counts behind them.

    The field's metric is this with every label but `None` positive; the unseen-relation benchmark narrows
    `positive` to the held-out (or the seen) relations, so both share one definition of a correct prediction: a
    positive prediction equal to its positive gold label.
    """
    correct = sum(p == r and positive(r) for p, r in pairs)
    predicted = sum(positive(p) for p, _ in pairs)
    gold = sum(positive(r) for _, r in pairs)
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "correct": correct,
        "predicted": predicted,
        "gold": gold,
    }


def weighted_scores(pairs: list[tuple[int, int]]) -> dict[str, float]:
    """Support-weighted P / R / F1 over every label, `None` included (scikit-learn's `average="weighted"`).

    Each label's own precision, recall and F1, averaged with its gold count as weight; a label never in the gold
    labels weighs 0 (its false positives still lower the precision of nothing but itself).
    """
    labels = sorted({label for pair in pairs for label in pair})
    totals = {"weighted_precision": 0.0, "weighted_recall": 0.0, "weighted_f1": 0.0}
    for label in labels:
        true_positive = sum(p == r == label for p, r in pairs)
        predicted = sum(p == label for p, _ in pairs)
        support = sum(r == label for _, r in pairs)
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        totals["weighted_precision"] += support * precision
        totals["weighted_recall"] += support * recall
        totals["weighted_f1"] += support * f1
    return {key: value / len(pairs) if pairs else 0.0 for key, value in totals.items()}


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS_DESCRIPTION)
class ReF1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=FEATURES,
            reference_urls=REFERENCE_URLS,
            codebase_urls=CODEBASE_URLS,
        )

    def _compute(self, predictions, references, negative_label: int | str | None = None) -> dict[str, float]:
        return relation_extraction_scores(predictions, references, negative_label)
