"""`model.push_to_hub` publishes a ROC card (license, citation, relations, call-time usage), never transformers'
generic one, in one commit, against a loopback stand-in for the Hub."""

import json
import os
import subprocess
import sys

import pytest
from helpers.hub_stub import HubStub
from helpers.tiny_models import TINY_BANK

import roc_mre.hub
from modeling_roc.card_roc import DEFAULT_LICENSE, ROC_CITATION


SECRET = "hf_cardTestTokenThatMustNotLeak0123456789"
PUSH = """
import sys
from transformers import AutoModel, AutoProcessor
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
try:
    model.push_to_hub("org/roc-card")
except ValueError as err:
    print("refused:", err, file=sys.stderr)
processor = AutoProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
print(model.push_to_hub("org/roc-card", license="mit", tags=["my-tag"], commit_message="ROC weights",
                        processor=processor))
"""


@pytest.mark.slow
def test_model_push_to_hub_writes_a_roc_card_in_one_commit(make_model, tokenizer, tmp_path):
    from modeling_roc import ROCProcessor

    model = make_model(vision_model_name=None)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    ROCProcessor(tokenizer=tokenizer).save_pretrained(tmp_path / "model")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN", "HF_ENDPOINT")}
    with HubStub() as hub:
        env.update(HF_ENDPOINT=hub.url, HF_TOKEN=SECRET, HF_HOME=str(tmp_path / "hf-home"))
        done = subprocess.run(
            [sys.executable, "-c", PUSH, str(tmp_path / "model")],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert SECRET not in done.stdout + done.stderr
    assert "refused: push_to_hub needs the processor too" in done.stderr  # no repo that pipeline() cannot load
    (commit,) = hub.commits  # one commit: weights, code, processor and card together
    assert commit.summary == "ROC weights" and done.stdout.strip().startswith(hub.url)
    assert {"config.json", "model.safetensors", "modeling_roc.py", "card_roc.py", "README.md", "processor_config.json",
            "tokenizer.json", "processing_roc.py"} <= set(commit.files)  # fmt: skip
    card = commit.files["README.md"].decode()
    assert "automatically generated" not in card  # not transformers' generic card
    assert "license: mit" in card and "my-tag" in card and "library_name: transformers" in card
    assert ROC_CITATION in card
    assert "No evaluation results are recorded" in card and "roc-push" in card
    for label, description in TINY_BANK.items():
        assert f"`{label}`" in card and description in card
    assert "relations={" in card  # the call-time relations snippet
    assert json.loads(commit.files["config.json"])["relation_bank"] == TINY_BANK


def test_the_card_default_license_is_the_publishing_tools():
    assert DEFAULT_LICENSE == roc_mre.hub.DEFAULT_LICENSE
