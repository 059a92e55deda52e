"""Generated inputs for train.py tests: a tiny dataset folder (parquet splits) and a tiny random BERT encoder."""

import json
import random
from pathlib import Path

import datasets
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from modeling_roc import EMBEDDED_TEXT_ENCODER, resolve_encoder_path

from .tiny_models import TINY_BANK


LABELS = ["None", "/per/per/couple", "/per/org/member_of"]
BANK = TINY_BANK
PEOPLE = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"]
ORGS = ["Google", "UNICEF", "Arsenal", "NASA", "Oxfam", "Reuters"]
TEMPLATES = {
    1: "{a} married {b} in a small ceremony",
    2: "{a} joined {b} as an engineer",
    0: "{a} and {b} appear in the news today",
}

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "tokens": datasets.List(datasets.Value("string")),
        "subject": {
            "name": datasets.Value("string"),
            "start": datasets.Value("int32"),
            "end": datasets.Value("int32"),
            "type": datasets.Value("string"),
        },
        "object": {
            "name": datasets.Value("string"),
            "start": datasets.Value("int32"),
            "end": datasets.Value("int32"),
            "type": datasets.Value("string"),
        },
        "relation": datasets.ClassLabel(names=LABELS),
    }
)


def _rows(split: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 3
        a = rng.choice(PEOPLE)
        b = rng.choice(ORGS if label == 2 else PEOPLE if label == 1 else ORGS + PEOPLE)
        tokens = TEMPLATES[label].format(a=a, b=b).split()
        object_index = tokens.index(b)
        rows.append(
            {
                "id": f"tiny-{split}-{i:04d}",
                "tokens": tokens,
                "subject": {"name": a, "start": 0, "end": 1, "type": "PERSON"},
                "object": {
                    "name": b,
                    "start": object_index,
                    "end": object_index + 1,
                    "type": "ORG" if b in ORGS else "PERSON",
                },
                "relation": label,
            }
        )
    return rows


def write_tiny_dataset(folder: Path, sizes: dict[str, int] | None = None, captions: bool = False) -> Path:
    """A folder `load_dataset(folder)` reads as splits train / validation / test (parquet, ClassLabel kept);
    `captions`: with a `caption` column (a text of the imagined image, None for every fifth row)."""
    sizes = sizes or {"train": 48, "validation": 21, "test": 15}
    folder.mkdir(parents=True, exist_ok=True)
    features = datasets.Features({**FEATURES, "caption": datasets.Value("string")}) if captions else FEATURES
    for seed, (split, n) in enumerate(sizes.items()):
        rows = _rows(split, n, seed)
        if captions:
            for i, row in enumerate(rows):
                row["caption"] = None if i % 5 == 4 else f"A photo of {row['tokens'][0]} at an event."
        dataset = datasets.Dataset.from_list(rows, features=features)
        dataset.to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    return folder


def write_bank(path: Path) -> Path:
    path.write_text(json.dumps(BANK), encoding="utf-8")
    return path


def write_tiny_encoder(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BERT with the MiniLM tokenizer (fast to train, loads like any Hub encoder).

    Seeded: an unseeded encoder made every test session train a different tiny model (one in three ended near a
    tie between two relations, and tests of exact triples failed at random).
    """
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path(EMBEDDED_TEXT_ENCODER))
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
    )
    return _save_seeded(BertModel, config, tokenizer, folder, seed)


def _save_seeded(model_class, config, tokenizer, folder: Path, seed: int) -> Path:
    """A random `model_class(config)` drawn from `seed` (the global RNG untouched), saved with `tokenizer`."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = model_class(config)
    encoder.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_tiny_mpnet(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random MPNet (no token_type_ids, `<s>`/`</s>`/`<mask>` specials, relative position
    buckets) with an MPNet tokenizer over the MiniLM WordPiece vocabulary: all-mpnet-base-v2's architecture, tiny."""
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizer

    words = (Path(resolve_encoder_path(EMBEDDED_TEXT_ENCODER)) / "vocab.txt").read_text(encoding="utf-8").split("\n")
    specials = ["<s>", "<pad>", "</s>", "<mask>"]
    vocab = {token: i for i, token in enumerate(specials + [w for w in words if w and w not in specials])}
    tokenizer = MPNetTokenizer(vocab=vocab)
    config = MPNetConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    return _save_seeded(MPNetModel, config, tokenizer, folder, seed)


def tiny_recipe(root: Path) -> list[str]:
    """train.py flags for a seconds-long run on the tiny dataset, bank and encoder (written under `root`)."""
    return [
        "--dataset_name_or_path", str(write_tiny_dataset(root / "dataset")),
        "--relation_bank", str(write_bank(root / "bank.json")),
        "--text_encoder", str(write_tiny_encoder(root / "encoder")),
        "--num_fusion_layers", "1",
        "--num_train_epochs", "1",
        "--per_device_train_batch_size", "8",
        "--learning_rate", "1e-3",
        "--seed", "7",
    ]  # fmt: skip
