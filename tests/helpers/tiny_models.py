"""Paths and tiny random-model settings: no network, seconds to build."""

import os
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[2]
MNRE_DIR = Path(os.environ.get("MNRE_DIR", REPO_ROOT.parent / "shared" / "data" / "mnre"))

TINY_BANK = {
    "None": "There is no relation between the two entities.",
    "/per/per/couple": "The subject and the object are two people who are married or dating.",
    "/per/org/member_of": "The subject is a person who is a member of the object organization.",
}
TINY_IMAGE_SIZE = 32
TINY_VISION = "vit_tiny_patch16_224"

EXAMPLES = [
    ("Rafael Nadal gets engaged to Mery Perello".split(), (0, 2, "PERSON"), (5, 7, "PERSON"), 1),
    ("Bob Smith works for Google in London".split(), (0, 2, "PERSON"), (4, 5, "ORG"), 2),
    ("RT @cnn : Paris is lovely in spring".split(), (1, 2, None), (3, 4, "GPE"), 0),
    ("Alice joined the Red Cross last year".split(), (0, 1, "PERSON"), (3, 5, "ORG"), 2),
]


def tiny_bert(vocab_size: int, hidden_size: int = 32) -> dict:
    """A 2-layer BERT config (as `AutoConfig(...).to_dict()`) over the given vocabulary."""
    return {
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "max_position_embeddings": 512,
    }


def span(start: int, end: int, entity_type: str | None) -> dict:
    """An entity as the processor takes it: word offsets, end exclusive, and an NER type."""
    return {"start": start, "end": end, "type": entity_type}
