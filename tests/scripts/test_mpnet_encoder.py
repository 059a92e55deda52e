"""ROC on an MPNet text encoder (all-mpnet-base-v2's architecture: no token_type_ids, `<s>` / `</s>` / `<mask>`
specials, relative position buckets), on a tiny random MPNet: the processor, training, the remote-code round trip
that `roc-push --dry_run` checks in a fresh process, and the triple extractor."""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers.tiny_models import REPO_ROOT
from helpers.train_fixtures import tiny_recipe, write_tiny_mpnet

from modeling_roc import ENTITY_MARKERS, ROCModel, ROCProcessor


BANK = {
    "None": "There is no relation between the two entities.",
    "/per/per/couple": "The subject and the object are two people who are married or dating.",
}
WORDS = "Rafael Nadal <s> gets engaged to Mery Perello </s> <mask>".split()
SUBJECT = {"start": 0, "end": 2, "type": "PERSON"}
OBJECT = {"start": 6, "end": 8, "type": "PERSON"}


@pytest.fixture(scope="module")
def mpnet(tmp_path_factory):
    return write_tiny_mpnet(tmp_path_factory.mktemp("mpnet") / "encoder")


def test_the_processor_marks_entities_with_mpnets_own_special_tokens(mpnet):
    processor = ROCProcessor.from_encoders(str(mpnet), max_length=64)
    tokenizer = processor.tokenizer
    batch = processor([WORDS], [SUBJECT], [OBJECT])
    assert "token_type_ids" not in batch  # MPNet has none; a BERT-only input would break its forward
    ids = batch["input_ids"][0].tolist()
    assert ids[0] == tokenizer.cls_token_id == tokenizer.convert_tokens_to_ids("<s>")
    assert ids[-1] == tokenizer.sep_token_id == tokenizer.convert_tokens_to_ids("</s>")
    # the special tokens written in the post stay text: one <s> and one </s> in the whole sequence, no mask
    specials = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id}
    assert [i for i in ids if i in specials] == [tokenizer.cls_token_id, tokenizer.sep_token_id]
    markers = [tokenizer.convert_tokens_to_ids(m) for m in ENTITY_MARKERS]
    assert ids[batch["subject_index"][0]] == markers[0] and ids[batch["object_index"][0]] == markers[2]
    # mention masking writes MPNet's mask token, not BERT's [MASK]
    masked = processor([WORDS], [{**SUBJECT, "masked": True}], [OBJECT])["input_ids"][0].tolist()
    assert masked.count(tokenizer.mask_token_id) == 2 and "[MASK]" not in tokenizer.convert_ids_to_tokens(masked)
    # a caption is a second segment closed by MPNet's separator
    captioned = ROCProcessor.from_encoders(str(mpnet), max_length=64, caption_mode="text")
    with_caption = captioned([WORDS], [SUBJECT], [OBJECT], captions=["A couple smiling."])["input_ids"][0].tolist()
    assert len(with_caption) > len(ids) and with_caption[-1] == tokenizer.sep_token_id


def test_a_roc_model_on_mpnet_trains_and_retrieves(mpnet):
    torch.manual_seed(0)
    model = ROCModel.from_encoders(str(mpnet), relation_bank=BANK, num_fusion_layers=1, pair_embed_dim=16)
    processor = ROCProcessor.from_encoders(str(mpnet), max_length=64)
    assert type(model.text_model).__name__ == "MPNetModel"
    batch = processor([WORDS, WORDS], [SUBJECT, SUBJECT], [OBJECT, OBJECT], labels=[1, 0])
    out = model(**batch)
    assert out.logits.shape == (2, len(BANK)) and torch.isfinite(out.loss)
    out.loss.backward()
    marker_rows = model.text_model.get_input_embeddings().weight.grad
    assert marker_rows is not None and marker_rows.abs().sum() > 0  # the markers' embeddings learn


@pytest.mark.slow
def test_an_mpnet_run_loads_as_remote_code_publishes_and_extracts(mpnet, tmp_path):
    run = tmp_path / "run"
    recipe = tiny_recipe(tmp_path)
    recipe[recipe.index("--text_encoder") + 1] = str(mpnet)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    trained = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *recipe, "--output_dir", str(run)],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-4000:]
    assert json.loads((run / "config.json").read_text())["text_config"]["model_type"] == "mpnet"

    # roc-push --dry_run loads the staged folder in a fresh offline process (AutoConfig / AutoModel /
    # AutoProcessor / both pipelines, the package unimportable), runs the card's snippet and compares its
    # prediction with the run's own record
    pushed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "push_to_hub.py"), "--model_dir", str(run), "--repo_id", "org/roc-mpnet",
         "--dry_run", "--staging_dir", str(tmp_path / "staged")],
        capture_output=True, text=True, env={**env, "HF_HOME": str(tmp_path / "hf")}, cwd=REPO_ROOT, timeout=900,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr[-4000:]
    assert "the staged folder loads with AutoConfig / AutoModel / AutoProcessor / pipeline" in pushed.stderr

    from transformers import pipeline

    from roc_mre.extraction import TripleExtractor

    post = "Alice married Bob in a small ceremony"
    pipe = pipeline("multimodal-relation-extraction", model=str(run), trust_remote_code=True, precision="float32")
    extractor = TripleExtractor.from_pretrained(str(run), ner=None, precision="float32")
    triples = extractor({"text": post, "entities": [{"start": 0, "end": 1, "type": "PERSON"},
                                                    {"start": 2, "end": 3, "type": "PERSON"}]})  # fmt: skip
    expected = set()
    for subject, object in ((0, 2), (2, 0)):
        example = {"tokens": post.split(), "subject": {"start": subject, "end": subject + 1, "type": "PERSON"},
                   "object": {"start": object, "end": object + 1, "type": "PERSON"}}  # fmt: skip
        top = pipe(example, top_k=1)[0]
        if top["relation"] != "None":
            expected.add((subject, top["relation"], object))
    assert {(t["subject"]["start"], t["relation"], t["object"]["start"]) for t in triples} == expected
