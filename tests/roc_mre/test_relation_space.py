"""Training that keeps the relation space general (`roc_mre.training.relation_space`): the negative pool and its
exclusion of relations that mean the same as the bank's, relation dropout and wording sampling in the loss."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from helpers.tiny_models import REPO_ROOT
from helpers.train_fixtures import write_bank, write_tiny_dataset, write_tiny_encoder

from roc_mre.training.relation_space import RelationSpaceLoss, exclude_matches, load_pool, read_wordings


WIKIDATA_LIKE = [
    {"propertyLabel": "spouse", "propertyDescription": "the subject has the object as their spouse"},
    {"propertyLabel": "IMDb ID", "propertyDescription": "identifier for a film on IMDb"},
    {"propertyLabel": "Freebase ID", "propertyDescription": "the entry in Freebase"},
    {"propertyLabel": "no text", "propertyDescription": ""},
    {"propertyLabel": "located in the administrative territorial entity", "propertyDescription": "is located in"},
]


def test_the_pool_skips_identifiers_and_entries_without_a_description(tmp_path):
    path = tmp_path / "pool.json"
    path.write_text(json.dumps(WIKIDATA_LIKE))
    pool, report = load_pool(path)
    assert list(pool) == ["spouse", "located in the administrative territorial entity"]
    assert report == {"entries": 5, "kept": 2, "skipped": {"no_description": 1, "identifier": 2, "duplicate": 0}}
    (tmp_path / "plain.json").write_text(json.dumps({"founded by": "the object founded the subject"}))
    assert load_pool(tmp_path / "plain.json")[0] == {"founded by": "the object founded the subject"}
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a list of Wikidata properties"):
        load_pool(tmp_path / "bad.json")


def test_pool_entries_matching_a_relation_are_excluded_and_others_kept():
    reference = torch.tensor([[1.0, 0.0, 0.0]])  # a held-out relation's description
    pool = torch.tensor([[0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.3, 0.5, 0.8]])
    keep, best = exclude_matches(pool, reference, threshold=0.45)
    assert keep.tolist() == [False, True, True]
    assert best[0] > 0.99 and best[1] == 0.0


def _loss(**overrides):
    wordings = [torch.eye(4)[i : i + 1] for i in range(3)]
    wordings[1] = torch.stack([torch.eye(4)[1], torch.eye(4)[3]])  # relation 1 has a second wording
    kwargs = dict(
        wording_states=wordings, pool_states=None, negatives_per_step=0, relation_dropout=0.0, none_id=0,
        none_weight=1.0, seed=3,
    )  # fmt: skip
    kwargs.update(overrides)
    return RelationSpaceLoss(**kwargs)


def test_the_loss_adds_pool_negatives_and_drops_relations_but_never_the_gold_or_none():
    pairs = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], requires_grad=True)
    outputs = SimpleNamespace(pair_embeds=pairs, logit_scale=torch.tensor(10.0))
    labels = torch.tensor([1, 2])
    plain = _loss()(outputs, labels, step=0, rank=0)
    assert torch.isfinite(plain)
    pool = torch.tensor([[0.0, 0.99, 0.1, 0.0]])  # a distractor near relation 1's pairs
    harder = _loss(pool_states=pool, negatives_per_step=8)(outputs, labels, step=0, rank=0)
    assert harder > plain, "a pool negative close to the pair raises the loss"
    # all non-gold, non-None relations dropped: only None and the gold columns stay
    dropped = _loss(relation_dropout=0.999)(outputs, torch.tensor([1, 1]), step=0, rank=0)
    assert torch.isfinite(dropped)
    # the same step draws the same wordings and negatives (resumable), another step may differ
    again = _loss(pool_states=pool, negatives_per_step=8)(outputs, labels, step=0, rank=0)
    assert torch.equal(again, harder)


def test_wordings_file_takes_a_text_or_a_list(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"a": "one", "b": ["two", "three"]}))
    assert read_wordings(str(path)) == {"a": ["one"], "b": ["two", "three"]}
    path.write_text(json.dumps({"a": ""}))
    with pytest.raises(ValueError, match="non-empty text"):
        read_wordings(str(path))


@pytest.mark.slow
def test_train_py_with_the_pool_records_what_it_dropped_and_refuses_a_projected_space(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "dataset", {"train": 24, "validation": 9})
    bank = write_bank(tmp_path / "bank.json")
    encoder = write_tiny_encoder(tmp_path / "encoder")
    pool = tmp_path / "pool.json"
    # one entry worded exactly as a bank relation (must be dropped), one unrelated
    couple = json.loads(bank.read_text())["/per/per/couple"]
    pool.write_text(json.dumps({"married to": couple, "twinned administrative body": "a twin city of the subject"}))
    base = [
        sys.executable, str(REPO_ROOT / "train.py"), "--dataset_name_or_path", str(dataset), "--relation_bank",
        str(bank), "--text_encoder", str(encoder), "--num_train_epochs", "1", "--num_fusion_layers", "1",
        "--freeze_relation_encoder", "--negative_pool", str(pool), "--relation_dropout", "0.3",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    width = json.loads((encoder / "config.json").read_text())["hidden_size"]
    done = subprocess.run(
        [*base, "--pair_embed_dim", str(width), "--output_dir", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "relation_space.json").read_text())["negative_pool"]
    # the entry worded as a bank relation is dropped (a random tiny encoder may find the other one close too)
    assert "married to" in report["excluded"] and report["used"] == report["kept"] - len(report["excluded"])
    refused = subprocess.run(
        [*base, "--pair_embed_dim", str(width + 8), "--output_dir", str(tmp_path / "projected")],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "error: --negative_pool / --relation_dropout / --relation_wordings map the pair" in refused.stderr
