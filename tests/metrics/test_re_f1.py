"""The relation-extraction metric against hand-computed cases (HVPNeT's definition: micro P/R/F1 without None)."""

import pytest
from helpers.tiny_models import REPO_ROOT


@pytest.fixture(scope="module")
def metric():
    import evaluate

    from roc_mre.metrics import RE_F1

    return evaluate.load(RE_F1)


def test_mixed_case(metric):
    # gold:  None r1 r1 r2 None r2 ; pred: r1 r1 None r2 None r1
    # correct non-None = 2 (r1@1, r2@3); predicted non-None = 4; gold non-None = 4
    scores = metric.compute(predictions=[1, 1, 0, 2, 0, 1], references=[0, 1, 1, 2, 0, 2], negative_label=0)
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(0.5)
    assert scores["accuracy"] == pytest.approx(3 / 6)
    assert (scores["correct"], scores["predicted"], scores["gold"]) == (2, 4, 4)


def test_all_none_gold_and_predictions_score_zero_f1_but_full_accuracy(metric):
    scores = metric.compute(predictions=[0, 0, 0], references=[0, 0, 0], negative_label=0)
    assert scores["accuracy"] == 1.0
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)


def test_a_real_relation_for_a_gold_none_is_a_false_positive(metric):
    scores = metric.compute(predictions=[1, 2], references=[1, 0], negative_label=0)
    assert scores["precision"] == 0.5 and scores["recall"] == 1.0
    assert scores["f1"] == pytest.approx(2 / 3)


def test_no_none_at_all_equals_accuracy(metric):
    scores = metric.compute(predictions=[1, 2, 2, 3], references=[1, 2, 3, 3], negative_label=0)
    assert scores["precision"] == scores["recall"] == scores["f1"] == scores["accuracy"] == 0.75


def test_negative_label_can_be_any_id(metric):
    scores = metric.compute(predictions=[5, 1], references=[5, 5], negative_label=5)
    assert (scores["predicted"], scores["gold"], scores["f1"]) == (1, 0, 0.0)


def test_batches_accumulate(metric):
    metric.add_batch(predictions=[1, 0], references=[1, 1])
    metric.add_batch(predictions=[2], references=[0])
    scores = metric.compute(negative_label=0)
    assert (scores["correct"], scores["predicted"], scores["gold"], scores["num_examples"]) == (1, 2, 2, 3)


def test_equals_scikit_learn_on_random_predictions(metric):
    """micro P / R / F1 over every label but None = scikit-learn's micro average with `labels` = the others;
    the weighted family = scikit-learn's weighted average over every label."""
    import random

    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    rng = random.Random(0)
    references = [rng.choice([0, 0, 0, 1, 2, 3, 4]) for _ in range(300)]
    predictions = [r if rng.random() < 0.6 else rng.choice([0, 1, 2, 3, 4, 5]) for r in references]
    scores = metric.compute(predictions=predictions, references=references, negative_label=0)
    others = sorted(set(references + predictions) - {0})
    micro = precision_recall_fscore_support(references, predictions, labels=others, average="micro", zero_division=0)
    weighted = precision_recall_fscore_support(references, predictions, average="weighted", zero_division=0)
    assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx(micro[:3])
    assert (scores["weighted_precision"], scores["weighted_recall"], scores["weighted_f1"]) == pytest.approx(
        weighted[:3]
    )
    assert scores["weighted_recall"] == pytest.approx(accuracy_score(references, predictions))


def test_the_metric_card_and_its_references_ship_with_the_metric(metric):
    from huggingface_hub import ModelCard  # any Hub card parser reads the YAML header

    card = ModelCard.load(REPO_ROOT / "roc_mre" / "metrics" / "re_f1" / "README.md")
    assert "metric" in card.data.tags and "HVPNeT" in card.text and "weighted" in card.text
    assert any("HVPNeT" in url for url in metric.codebase_urls)
    assert any("arxiv.org/abs/2509.21151" in url for url in metric.reference_urls)


def test_label_strings_score_as_their_ids_do(metric):
    names = ["None", "r1", "r2"]
    ids = metric.compute(predictions=[1, 1, 0, 2, 0, 1], references=[0, 1, 1, 2, 0, 2], negative_label=0)
    strings = metric.compute(
        predictions=[names[i] for i in [1, 1, 0, 2, 0, 1]], references=[names[i] for i in [0, 1, 1, 2, 0, 2]]
    )
    assert strings == ids


def test_the_metric_loads_from_any_folder(tmp_path, monkeypatch):
    import evaluate

    from roc_mre.metrics import RE_F1

    monkeypatch.chdir(tmp_path)
    assert evaluate.load(RE_F1).compute(predictions=[1], references=[1])["f1"] == 1.0
