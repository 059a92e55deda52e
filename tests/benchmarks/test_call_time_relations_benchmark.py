"""benchmarks/call_time_relations.py: it decides as a user's call does, and its summary keeps settings apart."""

import sys

import pytest
import torch
from helpers.tiny_models import REPO_ROOT, span


sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import call_time_relations as ctr  # noqa: E402


POSTS = [
    ("Alice joined the Red Cross last year".split(), span(0, 1, "PERSON"), span(3, 5, "ORG")),
    ("Carol met Dave at the Paris office".split(), span(0, 1, "PERSON"), span(2, 3, "PERSON")),
    ("Bob Smith works for Google in London".split(), span(0, 2, "PERSON"), span(4, 5, "ORG")),
    ("Eve left Acme for Initech in June".split(), span(0, 1, "PERSON"), span(2, 3, "ORG")),
]


@pytest.mark.parametrize("decision", ["whitened_prototype", "cosine_bar"])
def test_the_benchmark_decides_as_the_model_forward_does(make_model, processor, decision):
    model = make_model(pair_pool_size=4, example_decision=decision).eval()
    tokens, subjects, objects = (list(column) for column in zip(*POSTS))
    inputs = processor(tokens, subjects, objects)
    inputs = {k: v for k, v in inputs.items() if k != "labels"}
    with torch.no_grad():
        pairs = model.get_pair_features(**inputs).float()
        model.pair_pool.copy_(pairs.flip(0) + 0.1)
    example = {"tokens": tokens[1], "subject": subjects[1], "object": objects[1]}
    given = {
        "founded_by": "The subject founded the object.",
        "met": {"description": "They met.", "examples": [example]},
    }
    relations = model.embed_examples(model.call_time_relations(given), processor)
    with torch.no_grad():
        forward = model(**inputs, relations=relations).decision_logits.argmax(-1).tolist()
    names = ["founded_by", "None", "met"]  # a dataset's label order differs from the call's
    rate = model.config.new_relation_false_positive_rate
    predicted, _ = ctr.score_setting(model, pairs, names, relations, rate, model.config.prototype_weight, decision)
    assert predicted == [names.index(relations.labels[j]) for j in forward]


def test_the_summary_keeps_each_decision_rule_apart_and_averages_draws_then_folds():
    def setting(decision, f1, draw=0):
        return {"shots": 5, "draw": draw, "rate": 0.05, "prototype_weight": 0.5, "example_decision": decision,
                "seen_f1_change": 0.0, "unseen_f1": f1, "unseen_precision": f1, "unseen_recall": f1,
                "gold_first_among_held_out": 50.0}  # fmt: skip

    folds = [
        {"settings": [setting("whitened_prototype", 30.0), setting("whitened_prototype", 20.0, 1),
                      setting("cosine_bar", 10.0)]},
        {"settings": [setting("whitened_prototype", 40.0), setting("cosine_bar", 30.0)]},
    ]  # fmt: skip
    rows = {row["example_decision"]: row for row in ctr.summarize(folds)}
    assert rows["whitened_prototype"]["unseen_f1"] == 32.5  # fold means 25 and 40
    assert rows["whitened_prototype"]["unseen_f1_per_fold"] == [25.0, 40.0]
    assert rows["cosine_bar"]["unseen_f1"] == 20.0 and rows["cosine_bar"]["folds"] == 2
