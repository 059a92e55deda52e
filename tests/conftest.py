"""Shared fixtures: tiny random ROC models over the embedded MiniLM tokenizer (no network, seconds to build)."""

import os
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from modeling_roc import EMBEDDED_TEXT_ENCODER, ENTITY_MARKERS, ROCConfig, ROCModel, ROCProcessor, resolve_encoder_path


REPO_ROOT = Path(__file__).resolve().parent.parent
MNRE_DIR = Path(os.environ.get("MNRE_DIR", REPO_ROOT.parent / "shared" / "data" / "mnre"))

TINY_BANK = {
    "None": "There is no relation between the two entities.",
    "/per/per/couple": "The subject and the object are two people who are married or dating.",
    "/per/org/member_of": "The subject is a person who is a member of the object organization.",
}
TINY_IMAGE_SIZE = 32
TINY_VISION = "vit_tiny_patch16_224"


@pytest.fixture(scope="session")
def tokenizer():
    tok = AutoTokenizer.from_pretrained(resolve_encoder_path(EMBEDDED_TEXT_ENCODER))
    tok.add_special_tokens({"additional_special_tokens": list(ENTITY_MARKERS)})
    return tok


def tiny_bert(vocab_size: int, hidden_size: int = 32) -> dict:
    return {
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "max_position_embeddings": 512,
    }


@pytest.fixture
def make_model(tokenizer):
    """Factory: a tiny random ROC model (text + relation BERTs of different widths, tiny ViT) with overrides."""

    def make(**overrides) -> ROCModel:
        torch.manual_seed(0)
        kwargs = {
            "text_config": tiny_bert(len(tokenizer)),
            "relation_config": tiny_bert(len(tokenizer), hidden_size=24),
            "vision_model_name": TINY_VISION,
            "vision_image_size": TINY_IMAGE_SIZE,
            "num_fusion_layers": 2,
            "relation_bank": TINY_BANK,
            "fusion_dropout": 0.0,
            "pair_embed_dim": 16,  # differs from the relation width (24): exercises the relation projection
        }
        kwargs.update(overrides)
        model = ROCModel(ROCConfig(**kwargs))
        model.set_relation_tokenizer(tokenizer)
        return model

    return make


@pytest.fixture
def processor(tokenizer):
    image_config = {
        "input_size": [3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE],
        "interpolation": "bicubic",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "crop_pct": 1.0,
        "crop_mode": "center",
    }
    return ROCProcessor(tokenizer=tokenizer, image_config=image_config, max_length=64)


EXAMPLES = [
    ("Rafael Nadal gets engaged to Mery Perello".split(), (0, 2, "PERSON"), (5, 7, "PERSON"), 1),
    ("Bob Smith works for Google in London".split(), (0, 2, "PERSON"), (4, 5, "ORG"), 2),
    ("RT @cnn : Paris is lovely in spring".split(), (1, 2, None), (3, 4, "GPE"), 0),
    ("Alice joined the Red Cross last year".split(), (0, 1, "PERSON"), (3, 5, "ORG"), 2),
]


def span(start: int, end: int, entity_type: str | None) -> dict:
    return {"start": start, "end": end, "type": entity_type}


@pytest.fixture
def batch(processor):
    """Four labelled examples; two carry images (one red, one blue), two have none."""
    from PIL import Image

    images = [Image.new("RGB", (40, 30), (255, 0, 0)), None, Image.new("RGB", (50, 50), (0, 0, 255)), None]
    return processor(
        [e[0] for e in EXAMPLES],
        [span(*e[1]) for e in EXAMPLES],
        [span(*e[2]) for e in EXAMPLES],
        images=images,
        labels=[e[3] for e in EXAMPLES],
    )
