import json
import os
import subprocess
import sys

import pytest
import torch
from helpers.tiny_models import TINY_BANK, span

from modeling_roc import TASK, ROCRelationExtractionPipeline


EXAMPLE = {
    "tokens": "Bob Smith works for Google".split(),
    "subject": span(0, 2, "PERSON"),
    "object": span(4, 5, "ORG"),
}

# Runs in a fresh interpreter: offline, empty HF cache, and the project package made unimportable, so everything
# must come from the saved folder's remote code.
RELOAD_SCRIPT = """
import json, sys
sys.modules["modeling_roc"] = None
import torch
from PIL import Image
from transformers import AutoConfig, AutoModel, AutoProcessor, pipeline

folder = sys.argv[1]
config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
example = json.loads(sys.argv[2])
image = Image.new("RGB", (8, 8), (9, 99, 199))
inputs = processor(example["tokens"], example["subject"], example["object"], images=image)
with torch.no_grad():
    logits = model(**inputs).logits
# precision="float32" as in this process (the tests' CPU has no bfloat16 units); through pipeline()'s kwargs
pipe = pipeline("multimodal-relation-extraction", model=folder, trust_remote_code=True, device=-1,
                precision="float32")
# a model and processor already loaded (remote code that never imported the pipeline module) work too
loaded = pipeline("multimodal-relation-extraction", model=model, processor=processor, device=-1,
                  precision="float32")
print(json.dumps({
    "config_class": type(config).__name__, "model_module": type(model).__module__,
    "logits": logits.tolist(), "pipeline": pipe(example, top_k=2), "labels": model.config.relation_labels,
    "loaded_pipeline": loaded(example, top_k=2),
}))
"""


@pytest.fixture
def pipe(make_model, processor):
    return ROCRelationExtractionPipeline(model=make_model().eval(), processor=processor, device=-1)


def test_pipeline_returns_relation_score_and_description(pipe):
    result = pipe(EXAMPLE)
    assert [set(r) for r in result] == [{"relation", "score", "description"}] * 3
    assert [r["score"] for r in result] == sorted((r["score"] for r in result), reverse=True)
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-5)
    assert all(r["description"] == TINY_BANK[r["relation"]] for r in result)
    assert len(pipe(EXAMPLE, top_k=1)) == 1


def test_pipeline_batches_examples_with_and_without_images(pipe):
    from PIL import Image

    with_image = dict(EXAMPLE, image=Image.new("RGB", (10, 10), (255, 255, 0)))
    batched = pipe([EXAMPLE, with_image, EXAMPLE], batch_size=2, top_k=1)
    one_by_one = [pipe(x, top_k=1) for x in (EXAMPLE, with_image, EXAMPLE)]
    assert [r[0]["relation"] for r in batched] == [r[0]["relation"] for r in one_by_one]
    for got, want in zip(batched, one_by_one):
        assert got[0]["score"] == pytest.approx(want[0]["score"], abs=1e-5)


def test_pipeline_names_the_missing_keys(pipe):
    with pytest.raises(ValueError, match="'tokens', 'subject', 'object'"):
        pipe({"text": "Bob works for Google"})


def test_a_bfloat16_pipeline_scores_with_a_copy_and_saves_the_float32_model(
    make_model, processor, tmp_path, monkeypatch
):
    from safetensors import safe_open

    import modeling_roc.precision_roc as precision_roc

    monkeypatch.setattr(precision_roc, "cpu_has_native_bfloat16", lambda: True)  # a CPU with bfloat16 units
    model = make_model().eval()
    pipe = ROCRelationExtractionPipeline(model=model, processor=processor, device=-1, precision="bfloat16")
    assert pipe.model is model and pipe.scoring_model.text_model.dtype == torch.bfloat16
    float32 = ROCRelationExtractionPipeline(model=model, processor=processor, device=-1, precision="float32")
    assert float32.scoring_model is model
    assert [r["relation"] for r in pipe(EXAMPLE, top_k=2)] == [r["relation"] for r in float32(EXAMPLE, top_k=2)]
    # a relation bank set on the given model reaches the bfloat16 copy (the model card's "new relations" snippet)
    pipe.model.set_relation_bank({"None": TINY_BANK["None"], "/per/per/couple": TINY_BANK["/per/per/couple"]})
    assert pipe.scoring_model.text_model.dtype == torch.bfloat16
    assert {r["relation"] for r in pipe(EXAMPLE, top_k=None)} == {"None", "/per/per/couple"}
    pipe.save_pretrained(tmp_path / "saved")
    with safe_open(str(tmp_path / "saved" / "model.safetensors"), "pt") as weights:
        assert {weights.get_slice(name).get_dtype() for name in weights.keys()} == {"F32"}
    assert pipe.resolved_precision == "bfloat16" and float32.resolved_precision == "float32"
    # new weights on the given model (load_state_dict) reach the copy too, not only a new config
    before = pipe(EXAMPLE, top_k=None)
    with torch.no_grad():
        model.pair_proj.weight.mul_(-1.0)
    assert pipe.scoring_model.pair_proj.weight.dtype == torch.float32
    assert torch.equal(pipe.scoring_model.pair_proj.weight, model.pair_proj.weight)
    assert pipe(EXAMPLE, top_k=None) != before
    # "float32" by name scores in float32, also for a model loaded in bfloat16
    as_bf16 = ROCRelationExtractionPipeline(model=make_model().eval().to(torch.bfloat16), processor=processor,
                                            device=-1, precision="float32")  # fmt: skip
    assert as_bf16.scoring_model.text_model.dtype == torch.float32 and as_bf16.model.dtype == torch.bfloat16


def test_remote_code_round_trip_offline_gives_the_same_logits(pipe, tmp_path):
    from PIL import Image

    folder = tmp_path / "roc-tiny"
    pipe.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_roc.ROCConfig", "AutoModel": "modeling_roc.ROCModel"}
    assert config["custom_pipelines"][TASK]["impl"] == "pipeline_roc.ROCRelationExtractionPipeline"
    for name in (
        "configuration_roc.py",
        "modeling_roc.py",
        "processing_roc.py",
        "pipeline_roc.py",
        "precision_roc.py",
    ):
        assert (folder / name).is_file(), name
    assert (folder / "relation_tokenizer" / "tokenizer.json").is_file()

    inputs = pipe.processor(
        EXAMPLE["tokens"], EXAMPLE["subject"], EXAMPLE["object"], images=Image.new("RGB", (8, 8), (9, 99, 199))
    )
    with torch.no_grad():
        expected = pipe.model(**inputs).logits

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    done = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(folder), json.dumps(EXAMPLE)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert reloaded["config_class"] == "ROCConfig"
    assert reloaded["model_module"].startswith("transformers_modules.")
    assert reloaded["labels"] == list(TINY_BANK)
    # Same weights and code: equal up to float32 rounding. Two processes running multithreaded CPU kernels may differ
    # in the last bit (4.8e-7 on logits near 4 with 2 threads, transformers 5.24); a wrong load differs by far more.
    torch.testing.assert_close(torch.tensor(reloaded["logits"]), expected, rtol=1e-5, atol=1e-5)
    in_process = pipe(EXAMPLE, top_k=2)
    assert [r["relation"] for r in reloaded["pipeline"]] == [r["relation"] for r in in_process]
    assert [r["score"] for r in reloaded["pipeline"]] == pytest.approx([r["score"] for r in in_process], abs=1e-6)
    assert [r["relation"] for r in reloaded["loaded_pipeline"]] == [r["relation"] for r in in_process]


def test_top_k_none_returns_every_relation_and_bad_values_are_refused(pipe):
    assert len(pipe(EXAMPLE)) == 3, "the default is 3"
    everything = pipe(EXAMPLE, top_k=None)
    assert {r["relation"] for r in everything} == set(TINY_BANK), "top_k=None: all, as in text-classification"
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="top_k"):
            pipe(EXAMPLE, top_k=bad)


def test_unknown_arguments_are_refused_not_swallowed(pipe, make_model, processor):
    with pytest.raises(TypeError, match="unknown arguments \\['topk'\\]"):
        pipe(EXAMPLE, topk=1)
    with pytest.raises(TypeError, match="unknown arguments \\['min_scor'\\]"):
        ROCRelationExtractionPipeline(model=make_model().eval(), processor=processor, device=-1, min_scor=0.5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'caption'"):
        processor(EXAMPLE["tokens"], EXAMPLE["subject"], EXAMPLE["object"], caption="a typo of captions")


def test_an_image_given_to_a_text_only_model_is_a_warning(make_model, processor, caplog):
    from PIL import Image
    from transformers.utils import logging

    text_only = ROCRelationExtractionPipeline(
        model=make_model(vision_model_name=None).eval(), processor=processor, device=-1
    )
    import logging as std_logging

    std_logging.Logger.warning_once.cache_clear()  # said once per process: an earlier test may have said it already
    logging.enable_propagation()
    try:
        with caplog.at_level("WARNING"):
            with_image = text_only({**EXAMPLE, "image": Image.new("RGB", (8, 8))})
    finally:
        logging.disable_propagation()
    assert "text-only" in caplog.text and "images given are ignored" in caplog.text
    assert with_image == text_only(EXAMPLE), "the prediction comes from the text"


def test_relations_given_at_call_time_replace_the_bank_for_that_call_only(pipe):
    founded = "The subject person founded the object organisation."
    result = pipe(EXAMPLE, relations={"founded_by": founded}, top_k=None)
    assert {r["relation"] for r in result} == {"None", "founded_by"}
    assert all(set(r) == {"relation", "score", "description", "similarity", "threshold"} for r in result)
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-5)
    # a threshold decides: -1 is always reached, 1 never (random weights: cosines are strictly inside)
    assert pipe(EXAMPLE, relations={"founded_by": {"description": founded, "threshold": -1.0}})[0]["relation"] == (
        "founded_by"
    )
    assert pipe(EXAMPLE, relations={"founded_by": {"description": founded, "threshold": 1.0}})[0]["relation"] == "None"
    assert {r["relation"] for r in pipe(EXAMPLE, top_k=None)} == set(TINY_BANK), "the bank is back for the next call"


def test_the_score_shown_is_what_decided_a_thresholded_relation(pipe):
    founded = "The subject person founded the object organisation."
    for threshold in (-1.0, 1.0, None):
        relation = {"description": founded, "threshold": threshold}
        result = pipe(EXAMPLE, relations={"founded_by": relation, "works_at": "The subject works at the object."})
        scores = [r["score"] for r in result]
        assert scores == sorted(scores, reverse=True), "ordered by the score shown"
        top = result[0]
        by_label = {r["relation"]: r for r in result}
        if threshold == -1.0:  # always passed: predicted, and its score is the highest
            assert top["relation"] == "founded_by" and top["threshold"] == -1.0 and top["score"] > 0.5
        if threshold == 1.0:  # never passed: never first
            assert top["relation"] != "founded_by" and by_label["founded_by"]["threshold"] == 1.0
        for entry in result:  # a relation outscores "no relation" exactly when it passes its bar
            if entry["relation"] != "None":
                bar = entry["threshold"] if entry["threshold"] is not None else by_label["None"]["similarity"]
                assert (entry["score"] > by_label["None"]["score"]) == (entry["similarity"] > bar)


def test_a_pipeline_in_onnxruntime_scores_as_float32_and_follows_the_models_weights(make_model, processor):
    pytest.importorskip("onnxruntime")
    model = make_model(vision_model_name=None).eval()
    pipe = ROCRelationExtractionPipeline(model=model, processor=processor, device=-1, precision="onnxruntime")
    float32 = ROCRelationExtractionPipeline(model=model, processor=processor, device=-1, precision="float32")
    assert pipe.resolved_precision == "onnxruntime"

    def assert_same(relations=None):
        got = pipe(EXAMPLE, top_k=None, relations=relations)
        expected = float32(EXAMPLE, top_k=None, relations=relations)
        assert [r["relation"] for r in got] == [r["relation"] for r in expected]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected], abs=1e-4)

    assert_same()
    assert_same({"founded_by": "The subject founded the object."})
    with torch.no_grad():  # the text encoder's new weights are exported again
        model.text_model.embeddings.word_embeddings.weight.mul_(-1.0)
    assert_same()


def test_a_datasets_dataset_is_streamed_row_by_row_extra_columns_ignored(pipe):
    import datasets

    other = {"tokens": "Alice married Bob".split(), "subject": span(0, 1, "PERSON"), "object": span(2, 3, "PERSON")}
    rows = datasets.Dataset.from_list(
        [{**EXAMPLE, "relation": 3}, {**other, "relation": 0}, {**EXAMPLE, "relation": 1}]
    )
    streamed = list(pipe(rows, top_k=2, batch_size=2))
    one_by_one = [pipe(example, top_k=2) for example in (EXAMPLE, other, EXAMPLE)]
    assert [[r["relation"] for r in result] for result in streamed] == [[r["relation"] for r in result] for result in
                                                                         one_by_one]  # fmt: skip
    assert [result[0]["score"] for result in streamed] == pytest.approx([r[0]["score"] for r in one_by_one], abs=1e-5)
    with pytest.raises(ValueError, match=r"no \['object'\] column"):
        pipe(rows.remove_columns("object"))


def test_examples_given_at_call_time_decide_without_changing_the_model(make_model, processor):
    words = "Alice joined the Red Cross last year while Carol met Dave at the Paris office in June".split()
    others = [(words[i : i + 7], (0, 1), (3, 5)) for i in range(12)]  # a pool of 12 different training pairs
    model = make_model(pair_pool_size=len(others), prototype_weight=1.0).eval()
    with torch.no_grad():
        pool = model.get_pair_features(**processor(
            [t for t, _, _ in others], [{"start": a, "end": b, "type": "PERSON"} for _, (a, b), _ in others],
            [{"start": a, "end": b, "type": "ORG"} for _, _, (a, b) in others]))  # fmt: skip
        model.pair_pool.copy_(pool)
    bank_before = dict(model.config.relation_bank)
    features_before = model.get_relation_features().clone()
    pipe = ROCRelationExtractionPipeline(model=model, processor=processor, device=-1, precision="float32")
    odd = "The subject is a kind of weather that falls on the object."
    without = pipe(EXAMPLE, relations={"engaged_to": odd}, top_k=None)
    with_examples = pipe(EXAMPLE, relations={"engaged_to": {"description": odd, "examples": [EXAMPLE]}}, top_k=None)
    entry = {r["relation"]: r for r in with_examples}["engaged_to"]
    assert entry["similarity"] == pytest.approx(1.0, abs=1e-4)  # the prototype of the pair itself
    assert entry["threshold"] is None  # its examples' detector decides, not a cosine bar
    assert with_examples[0]["relation"] == "engaged_to"
    model.config.example_decision = "cosine_bar"  # the rule it replaced: the cosine against the pool's bar
    by_cosine = {
        r["relation"]: r
        for r in pipe(EXAMPLE, relations={"engaged_to": {"description": odd, "examples": [EXAMPLE]}}, top_k=None)
    }
    assert by_cosine["engaged_to"]["threshold"] is not None and by_cosine["engaged_to"]["threshold"] < 1.0
    model.config.example_decision = "whitened_prototype"
    assert {r["relation"]: r["similarity"] for r in without}["engaged_to"] != entry["similarity"]
    assert model.config.relation_bank == bank_before and torch.equal(model.get_relation_features(), features_before)
    # a trained relation given with its trained description competes with "no relation", as in the bank
    trained = pipe(EXAMPLE, relations={"/per/per/couple": TINY_BANK["/per/per/couple"]}, top_k=None)
    assert all(r["threshold"] is None for r in trained)


def test_allowed_head_and_tail_keep_a_relation_off_pairs_of_other_types(pipe):
    founded = "The subject person founded the object organisation."
    always = {"description": founded, "threshold": -1.0}  # passes its bar on any pair
    assert pipe(EXAMPLE, relations={"founded_by": always})[0]["relation"] == "founded_by"
    for head, tail, kept in ((["PERSON"], ["ORG"], True), (["ORG"], None, False), (None, ["person", "GPE"], False)):
        given = {**always, "allowed_head": head, "allowed_tail": tail}
        result = {r["relation"]: r for r in pipe(EXAMPLE, relations={"founded_by": given}, top_k=None)}
        assert (result["founded_by"]["score"] > 0.5) is kept, (head, tail)
        if not kept:
            assert result["founded_by"]["score"] == 0.0 and result["None"]["score"] == pytest.approx(1.0)
    batch = pipe([EXAMPLE, {**EXAMPLE, "subject": span(0, 2, "ORG")}], relations={"founded_by": {
        **always, "allowed_head": ["ORG"]}}, batch_size=2)  # fmt: skip
    assert [result[0]["relation"] for result in batch] == ["None", "founded_by"], "per example, in a batch too"
    with pytest.raises(ValueError, match=r"\['allowed_head'\]` must be a non-empty list of entity types"):
        pipe(EXAMPLE, relations={"founded_by": {**always, "allowed_head": "PERSON"}})


def test_call_time_labels_as_a_list_and_no_relation_spellings(pipe):
    result = pipe(EXAMPLE, relations=["founded_by", "/per/org/member_of"], top_k=None)
    assert {r["relation"]: r["description"] for r in result}["/per/org/member_of"] == "per org member of"
    for spelled in ("none", " None", "NA"):
        with pytest.raises(ValueError, match="names 'no relation'"):
            pipe(EXAMPLE, relations={spelled: "nothing"})
    with pytest.raises(ValueError, match=r"\['examples'\]\[0\]"):
        pipe(EXAMPLE, relations={"founded_by": {"examples": [{"tokens": ["a"], "subject": {}, "object": {}}]}})


def test_a_bf16_model_with_images_casts_the_pixels_to_its_own_dtype(make_model, processor):
    from PIL import Image

    model = make_model().eval().to(torch.bfloat16)
    inputs = processor(EXAMPLE["tokens"], EXAMPLE["subject"], EXAMPLE["object"], images=Image.new("RGB", (8, 8)))
    assert inputs["pixel_values"].dtype == torch.float32
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


def test_a_caption_given_with_an_example_is_read(pipe):
    plain = pipe(EXAMPLE, top_k=None)
    captioned = pipe({**EXAMPLE, "caption": "Two colleagues at the Google office"}, top_k=None)
    score = {r["relation"]: r["score"] for r in plain}
    assert any(abs(r["score"] - score[r["relation"]]) > 1e-6 for r in captioned), "the caption reached the model"
    mixed = pipe([EXAMPLE, {**EXAMPLE, "caption": "Two colleagues at the Google office"}], top_k=None)
    assert [r["relation"] for r in mixed[1]] == [r["relation"] for r in captioned]
    with pytest.raises(ValueError, match="'caption' must be a string"):
        pipe({**EXAMPLE, "caption": 3})


def test_a_caption_given_to_a_model_trained_without_captions_is_ignored_with_a_warning(pipe, caplog):
    plain = pipe(EXAMPLE, top_k=None)
    pipe.model.config.trained_with_captions = False  # what train.py records without --use_captions
    with caplog.at_level("WARNING"):
        captioned = pipe({**EXAMPLE, "caption": "Two colleagues at the Google office"}, top_k=None)
    assert captioned == plain
    assert "trained without captions" in caplog.text
    pipe.model.config.trained_with_captions = True
    assert pipe({**EXAMPLE, "caption": "Two colleagues at the Google office"}, top_k=None) != plain


def test_a_module_loaded_again_and_a_model_built_log_no_noise():
    script = (
        "import importlib, modeling_roc\n"
        "from modeling_roc import ROCModel, pipeline_roc\n"
        "importlib.reload(pipeline_roc)  # what a second remote-code load does\n"
        "ROCModel.from_encoders('embedded:all-MiniLM-L6-v2', relation_bank={'None': 'no relation', 'a': 'a b'})\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "info"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "already registered" not in done.stderr
    assert "multivariate normal" not in done.stderr


def test_a_visual_object_without_an_image_is_refused(pipe):
    box = {"box": [0.5, 0.5, 0.2, 0.2], "type": "OBJECT"}
    with pytest.raises(ValueError, match="region of the image .* got no image"):
        pipe({**EXAMPLE, "object": box})
