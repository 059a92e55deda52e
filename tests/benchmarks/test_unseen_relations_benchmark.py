"""benchmarks/unseen_relations.py: the fold rule, the fold data, the scores, and a whole run on the tiny dataset."""

import json
import os
import subprocess
import sys

import datasets
import pytest
from helpers.tiny_models import REPO_ROOT, TINY_BANK
from helpers.train_fixtures import tiny_recipe, write_tiny_dataset


sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import unseen_relations as ur  # noqa: E402


COUNTS = {"None": 900, "a": 90, "b": 80, "c": 70, "d": 60, "e": 50, "f": 40, "g": 30, "h": 20, "i": 10}


def test_each_fold_holds_out_one_relation_of_every_frequency_band_and_no_relation_twice():
    folds = ur.held_out_folds(COUNTS, "None", k=3)
    # ranked a..i, bands [a b c] [d e f] [g h i]: fold f takes the f-th of each band
    assert folds == [["a", "d", "g"], ["b", "e", "h"], ["c", "f", "i"]]
    uneven = ur.held_out_folds(COUNTS, "None", k=4)  # bands of 3, 2, 2, 2: as many folds as the smallest band
    assert uneven == [["a", "d", "f", "h"], ["b", "e", "g", "i"]]
    with pytest.raises(ValueError, match="only 9 relations"):
        ur.held_out_folds(COUNTS, "None", k=10)


def _splits():
    names = ["None", "x", "y", "z"]
    feature = datasets.Features({"relation": datasets.ClassLabel(names=names), "n": datasets.Value("int32")})
    train = [0] * 6 + [1] * 5 + [2] * 5 + [3] * 4
    validation = [0, 1, 2, 3, 2, 2]
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"relation": train, "n": list(range(len(train)))}, features=feature),
            "validation": datasets.Dataset.from_dict(
                {"relation": validation, "n": list(range(len(validation)))}, features=feature
            ),
        }
    )


def test_zero_shot_fold_data_has_no_held_out_example_and_no_held_out_label():
    out, report = ur.fold_splits(_splits(), ["y"], shots=0, seed=0, train_split="train", validation_split="validation")
    names = out["train"].features["relation"].names
    assert names == ["None", "x", "z"]  # the bank train.py builds never holds the held-out relation
    assert [names[r] for r in out["train"]["relation"]] == ["None"] * 6 + ["x"] * 5 + ["z"] * 4
    assert [names[r] for r in out["validation"]["relation"]] == ["None", "x", "z"]
    assert report == {
        "train_examples": 15,
        "train_removed": 5,
        "validation_examples_for_selection": 3,
        "shots_kept": {"y": 0},
    }


def test_few_shot_fold_data_keeps_that_many_examples_of_each_held_out_relation(tmp_path):
    out, report = ur.fold_splits(
        _splits(), ["y", "z"], shots=2, seed=0, train_split="train", validation_split="validation"
    )
    names = out["train"].features["relation"].names
    assert names == ["None", "x", "y", "z"]  # seen in training, so in the bank
    relations = [names[r] for r in out["train"]["relation"]]
    assert relations.count("y") == 2 and relations.count("z") == 2 and relations.count("x") == 5
    assert report["shots_kept"] == {"y": 2, "z": 2}
    # the folder train.py reads keeps the ClassLabel
    ur.write_parquet_folder(out, tmp_path / "fold")
    reloaded = datasets.load_dataset(str(tmp_path / "fold"))
    assert reloaded["train"].features["relation"].names == names
    assert reloaded["validation"]["relation"] == [0, 1]  # the held-out y and z are not selected on


def test_subset_scores_count_only_the_given_labels_as_positives():
    predictions = [1, 1, 2, 0, 3, 3]
    references = [1, 2, 2, 3, 3, 0]
    unseen = ur.subset_scores(predictions, references, {3})
    # one right 3 of two predicted 3s and two gold 3s
    assert unseen == {"precision": 50.0, "recall": 50.0, "f1": 50.0, "gold": 2, "predicted": 2}
    assert ur.unseen_outcomes(predictions, references, {2, 3}, none_id=0) == {
        "correct": 50.0,  # indices 2 and 4
        "none": 25.0,  # index 3
        "wrong_seen": 25.0,  # index 1: a 2 called 1
        "other_unseen": 0.0,
    }
    assert ur.unseen_outcomes([1, 3], [2, 2], {2, 3}, none_id=0) == {
        "correct": 0.0,
        "none": 0.0,
        "wrong_seen": 50.0,
        "other_unseen": 50.0,
    }


def test_unseen_ranking_separates_which_new_relation_from_new_relation_or_not():
    # labels: 0 None, 1 seen, 2 and 3 unseen
    scores = [
        [5.0, 1.0, 3.0, 2.0],  # gold 2: None wins overall, but 2 is the best unseen and the best non-None
        [5.0, 4.0, 1.0, 3.0],  # gold 3: best unseen, but the seen 1 beats it without None
        [0.0, 1.0, 3.0, 2.0],  # gold 3: 2 is the better unseen one
        [9.0, 9.0, 9.0, 9.0],  # gold 1 (seen): not counted
    ]
    ranking = ur.unseen_ranking(scores, [2, 3, 3, 1], {2, 3}, none_id=0)
    assert ranking == {
        "among_unseen_accuracy": 66.67,
        "without_none_accuracy": 33.33,
        "top3": 100.0,
        "chance_among_unseen": 50.0,
    }


def test_the_offset_sweep_predicts_what_the_models_score_offsets_predict(make_model, batch):
    """The sweep shifts saved scores instead of re-running the model: both must give the same metrics."""
    import torch

    model = make_model().eval()
    names = list(TINY_BANK)
    held_out = [names[-1]]
    references = batch["labels"].tolist()
    with torch.no_grad():
        plain = model(**batch)
    sweep = ur.offset_sweep(
        plain.logits.tolist(), references, names, held_out, float(plain.logit_scale), offsets=(0.0, 0.3, 2.5)
    )
    assert [point["offset"] for point in sweep] == [0.0, 0.3, 2.5]
    for point in sweep:
        model.set_relation_bank(dict(TINY_BANK), score_offsets={held_out[0]: point["offset"]})
        with torch.no_grad():
            metrics = ur.fold_metrics(model(**batch).logits.tolist(), references, names, held_out)
        assert point["seen_f1"] == metrics["seen_f1"] and point["unseen_f1"] == metrics["unseen"]["f1"]
        assert point["all_f1"] == metrics["all"]["f1"]
    # past any cosine gap every example goes to the held-out relation
    assert sweep[-1]["unseen_recall"] == 100.0 and sweep[-1]["seen_f1"] == 0.0


def _fold_with_sweep(fold: int, curve: list[float]) -> dict:
    sweep = [
        {"offset": o, "seen_f1": 50.0 - o, "unseen_f1": v, "all_f1": v, "unseen_precision": 0.0}
        for o, v in zip((0.0, 0.1, 0.2), curve)
    ]
    return {"fold": fold, "shots": 0, "wordings": {"description": {"offset_sweep": sweep}}}


def test_each_fold_gets_the_offset_that_was_best_on_the_other_folds():
    folds = [_fold_with_sweep(0, [1, 9, 2]), _fold_with_sweep(1, [1, 2, 9]), _fold_with_sweep(2, [1, 2, 8])]
    chosen = ur.cross_fold_offsets(folds, "description", "all_f1")
    # fold 0 from folds 1-2 (means 1, 2, 8.5): 0.2; fold 1 from 0, 2 (1, 5.5, 5): 0.1; fold 2 from 0, 1 (1, 5.5, 5.5):
    # a tie goes to the smaller offset, 0.1
    assert [(p["fold"], p["offset"], p["all_f1"]) for p in chosen["per_fold"]] == [
        (0, 0.2, 2),
        (1, 0.1, 2),
        (2, 0.1, 2),
    ]
    assert chosen["criterion"] == "all_f1" and chosen["all_f1"]["mean"] == 2.0
    assert ur.cross_fold_offsets(folds[:1], "description", "all_f1") is None  # nothing to choose it on
    with pytest.raises(ValueError, match="criterion must be one of"):
        ur.cross_fold_offsets(folds, "description", "seen")


def test_wordings_change_only_the_held_out_relations():
    bank = {"None": "no relation", "/per/per/peer": "long reviewed text", "/per/per/couple": "another reviewed text"}
    paraphrases = {"/per/per/peer": "colleagues"}
    assert ur.wording_bank(bank, ["/per/per/peer"], "description", paraphrases) == bank
    assert ur.wording_bank(bank, ["/per/per/peer"], "paraphrase", paraphrases)["/per/per/peer"] == "colleagues"
    named = ur.wording_bank(bank, ["/per/per/peer"], "label_name", paraphrases)
    assert named == {**bank, "/per/per/peer": "per per peer"}
    with pytest.raises(ValueError, match="no paraphrase for '/per/per/couple'"):
        ur.wording_bank(bank, ["/per/per/couple"], "paraphrase", paraphrases)


def test_the_shipped_paraphrases_cover_every_mnre_relation_in_one_line():
    from datasets_scripts.relation_bank import load_relation_bank

    paraphrases = json.loads(ur.PARAPHRASES_FILE.read_text())
    labels = [label for label in load_relation_bank("mnre") if label != "None"]
    assert sorted(paraphrases) == sorted(labels)
    assert all("\n" not in text and len(text) < 100 for text in paraphrases.values())


def test_a_classification_recipe_is_refused_it_cannot_score_an_unseen_relation(tmp_path, capsys):
    dataset = write_tiny_dataset(tmp_path / "dataset")
    with pytest.raises(SystemExit, match="0 by construction"):
        ur.main(["--name", "x", "--", "--dataset_name_or_path", str(dataset), "--head", "classification"])


def test_own_score_auc_is_one_when_the_score_separates_the_relation_and_a_half_when_it_cannot():
    references = [1, 1, 0, 0]
    assert ur.own_score_auc([[0, 0.9], [0, 0.8], [0, 0.1], [0, 0.2]], references, 1) == 1.0
    assert ur.own_score_auc([[0, 0.1], [0, 0.2], [0, 0.9], [0, 0.8]], references, 1) == 0.0
    assert ur.own_score_auc([[0, 0.5]] * 4, references, 1) == 0.5  # ties count half


def test_the_calibration_ceiling_finds_the_offset_that_lifts_a_new_relation_scored_below_the_trained_ones():
    # labels: 0 None, 1 seen, 2 unseen. The unseen relation's examples score it highest among the new ones but 0.1
    # (cosine) below the seen one, so it is never predicted; an offset of 0.1-0.2 predicts it exactly.
    label_names = ["None", "/per/per/seen", "/per/per/new"]
    scores = [[0.3, 0.5, 0.4], [0.3, 0.5, 0.4], [0.2, 0.6, 0.1], [0.6, 0.3, 0.2]]
    references = [2, 2, 1, 0]
    plain = ur.fold_metrics(scores, references, label_names, ["/per/per/new"])
    assert plain["unseen"]["f1"] == 0.0
    ceiling = ur.calibration_ceiling(scores, references, label_names, ["/per/per/new"], logit_scale=1.0)
    assert ceiling["global"]["unseen_f1"] == ceiling["per_relation"]["unseen_f1"] == 100.0
    assert 0.1 < ceiling["global"]["offset"] <= 0.2 and ceiling["global"]["seen_f1"] == 100.0
    assert ceiling["own_score_auc"] == {"/per/per/new": 1.0}


def test_a_whole_run_trains_each_fold_without_its_relations_and_retrieves_them_by_description(tmp_path):
    recipe = tiny_recipe(tmp_path)
    # run from the user's folder with a relative --runs_dir: the fold data the script writes and the training that
    # reads it must resolve it alike
    common = ["--name", "tiny", "--k", "1", "--folds", "0", "--runs_dir", "runs"]
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "unseen_relations.py"), *common]
    command += ["--output_dir", str(tmp_path / "results"), "--", *recipe]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    record = json.loads((tmp_path / "results" / "unseen_relations_tiny.json").read_text())
    assert (tmp_path / "results" / "unseen_relations_tiny.png").stat().st_size > 0
    (row,) = record["folds"]
    held_out = row["held_out"]
    assert held_out == record["all_folds"][0] and len(held_out) == 1
    run = tmp_path / "runs" / "tiny" / "fold0-shots0"
    trained_bank = json.loads((run / "model" / "config.json").read_text())["relation_bank"]
    assert held_out[0] not in trained_bank  # never seen, not even as a negative
    reloaded = datasets.load_dataset(str(run / "data"))
    assert held_out[0] not in reloaded["train"].features["relation"].names
    assert set(row["wordings"]) == set(ur.WORDINGS)
    for scores in row["wordings"].values():
        # every unseen validation example is counted in exactly one outcome
        assert sum(scores["unseen_outcomes"].values()) == pytest.approx(100.0, abs=0.05)
        assert scores["unseen"]["gold"] == row["held_out_validation_counts"][held_out[0]] > 0
        assert scores["unseen_ranking"]["among_unseen_accuracy"] == 100.0  # one held-out relation: always the best
    assert row["ceiling"]["unseen"]["gold"] == row["wordings"]["description"]["unseen"]["gold"]
    ceiling_bank = json.loads((tmp_path / "runs" / "tiny" / "all-relations" / "config.json").read_text())
    assert held_out[0] in ceiling_bank["relation_bank"]
    assert record["summary"]["shots0/description"]["folds"] == 1
    sweep = row["wordings"]["description"]["offset_sweep"]
    assert [p["offset"] for p in sweep] == list(ur.OFFSETS)
    assert sweep[0]["unseen_f1"] == row["wordings"]["description"]["unseen"]["f1"]  # offset 0: the plain scores
    assert sweep[-1]["unseen_recall"] >= sweep[0]["unseen_recall"]  # raising new relations only finds more of them
    assert (tmp_path / "results" / "unseen_relations_tiny_offsets.png").stat().st_size > 0
    assert "offset_chosen_on_other_folds" not in record["summary"]["shots0/description"]  # one fold: none to choose on
    assert set(row["wordings"]["description"]["rules"]) == set(ur.CALIBRATION_RULES)
    ceiling = row["wordings"]["description"]["calibration_ceiling"]
    assert ceiling["global"]["unseen_f1"] >= row["wordings"]["description"]["unseen"]["f1"]  # tuned on the fold
    assert set(ceiling["own_score_auc"]) == set(held_out)
    ceiling_summary = record["summary"]["shots0/description"]["calibration_ceiling"]
    assert set(ceiling_summary) == {"global", "per_relation", "own_score_auc"}
    assert row["reference_pairs"] == min(ur.REFERENCE_PAIRS, row["data"]["train_examples"])
    assert set(record["summary"]["shots0/description"]["rules"]["aligned_new"]) == set(ur.RULE_SUMMARY)

    # Called again, the finished runs are collected, not retrained.
    stamp = (run / "model" / "all_results.json").stat().st_mtime_ns
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "collecting the finished run" in again.stdout
    assert (run / "model" / "all_results.json").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "results" / "unseen_relations_tiny.json").read_text())["folds"] == record["folds"]


def test_a_label_name_recipe_is_reported_under_the_one_wording_it_reads(tmp_path):
    """The comparator "label names instead of descriptions": the model embeds only each relation's label, so the
    description and paraphrase wordings would repeat its numbers under names that say otherwise."""
    recipe = [*tiny_recipe(tmp_path), "--relation_source", "label_name"]
    results = tmp_path / "results"
    common = ["--name", "names", "--k", "1", "--folds", "0", "--no_ceiling", "--runs_dir", str(tmp_path / "runs")]
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "unseen_relations.py"), *common]
    command += ["--output_dir", str(results), "--", *recipe]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    record = json.loads((results / "unseen_relations_names.json").read_text())
    (row,) = record["folds"]
    assert list(row["wordings"]) == ["label_name"]
    assert list(record["summary"]) == ["shots0/label_name"]
    config = json.loads((tmp_path / "runs" / "names" / "fold0-shots0" / "model" / "config.json").read_text())
    assert config["relation_source"] == "label_name"
    assert (results / "unseen_relations_names.png").stat().st_size > 0
    assert (results / "unseen_relations_names_offsets.png").stat().st_size > 0


def test_harmonic_mean_is_high_only_when_seen_and_unseen_both_are():
    assert ur.harmonic_mean(60.0, 0.0) == 0.0 and ur.harmonic_mean(0.0, 0.0) == 0.0
    assert ur.harmonic_mean(60.0, 40.0) == 48.0 and ur.harmonic_mean(50.0, 50.0) == 50.0


def test_aligned_new_moves_only_the_new_relations_onto_the_trained_relations_scale():
    names = ["None", "a", "b", "new"]
    # reference pairs: trained relations score around 5 with spread 1, the new one around 1 with spread 0.5
    reference = [[4.0, 4.0, 4.0, 0.5], [6.0, 6.0, 6.0, 1.5]]
    scores = [[5.0, 5.5, 4.0, 1.5], [5.0, 4.0, 4.0, 0.5]]
    aligned = ur.calibrated_scores(scores, reference, names, ["new"], "aligned_new")
    assert [row[:3] for row in aligned] == [row[:3] for row in scores], "trained relations and None untouched"
    assert [row[3] for row in aligned] == [6.0, 4.0]  # one deviation above its own mean -> above the trained mean
    standardized = ur.calibrated_scores(scores, reference, names, ["new"], "standardized")
    assert standardized[0] == [0.0, 0.5, -1.0, 1.0]
    metrics = ur.fold_metrics(aligned, [3, 0], names, ["new"])
    assert metrics["unseen"]["f1"] == 100.0 and ur.fold_metrics(scores, [3, 0], names, ["new"])["unseen"]["f1"] == 0
    with pytest.raises(ValueError, match="rule must be one of"):
        ur.calibrated_scores(scores, reference, names, ["new"], "magic")
