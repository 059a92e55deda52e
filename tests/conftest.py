"""Fixtures: tiny random ROC models over the embedded MiniLM tokenizer (no network, seconds to build)."""

import pytest
import torch
from helpers.tiny_models import EXAMPLES, TINY_BANK, TINY_IMAGE_SIZE, TINY_VISION, span, tiny_bert
from transformers import AutoTokenizer

from modeling_roc import EMBEDDED_TEXT_ENCODER, ENTITY_MARKERS, ROCConfig, ROCModel, ROCProcessor, resolve_encoder_path


@pytest.fixture(autouse=True, scope="session")  # session: before the module-scoped models and extractors
def _float32_unless_asked():
    """`precision="auto"` picks bfloat16 on CPUs with bfloat16 units, so the same test would compute differently on
    different machines. In-process, tests see a CPU without them (auto = float32); the tests of the bfloat16 path ask
    for it (`precision="bfloat16"`) or patch this back. Subprocesses (the CLI, remote code) keep the real CPU's
    answer and compare with themselves."""
    import modeling_roc.precision_roc

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(modeling_roc.precision_roc, "cpu_has_native_bfloat16", lambda: False)
        yield


@pytest.fixture(scope="session")
def tokenizer():
    tok = AutoTokenizer.from_pretrained(resolve_encoder_path(EMBEDDED_TEXT_ENCODER))
    tok.add_special_tokens({"additional_special_tokens": list(ENTITY_MARKERS)})
    return tok


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
