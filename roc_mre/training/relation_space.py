"""Training that keeps the relation space general, so a relation described after training can be retrieved.

Three pieces, each a train.py flag, all read by `RelationSpaceLoss` (the training loss when any is on):

- `--negative_pool`: many relations as negatives, not the bank's 19-22. Each pair is also contrasted against
  `--negatives_per_step` descriptions drawn from a pool of relations that are not the dataset's (Wikidata properties,
  CC0). Pool entries that mean the same as a relation of `--relation_bank` (all of the file's relations, including
  any held out of the training data) are dropped first (`exclude_matches`), so they are never pushed away from the
  pairs they describe and a held-out relation stays unseen.
- `--relation_dropout P`: the label set changes every step: each relation other than the gold ones and `None`
  leaves the softmax with probability P.
- `--relation_wordings FILE`: several wordings per relation (`{label: text or [texts]}`, e.g. the one-line
  paraphrases): each step every relation is represented by one of its wordings (the bank's description among them),
  drawn at random.

All three need the pair embedded in the frozen description space (a frozen relation encoder and no `relation_proj`,
i.e. `--pair_embed_dim` equal to the relation encoder's width): the texts are then encoded once, before training,
and a description met for the first time after training lands in the very space the pairs were trained against.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F


# The Wikidata property pool as GLiREL (jackboyla/GLiREL) publishes it, pinned.
WIKIDATA_POOL_URL = (
    "https://raw.githubusercontent.com/jackboyla/GLiREL/21439913a47fef1ba9ffafa9b3ecdc315729f168/"
    "data/all_wikidata_properties.json"
)
WIKIDATA_POOL_SHA256 = "d5ca72e29f785d16df403612ba8555f64bb7bf5b5882d90efdaf15d61bdcccbf"
# Most Wikidata properties are identifiers (`IMDb ID`), not relations between two entities.
IDENTIFIER = re.compile(r"\bID\b|identifier|\bURL\b|\bcode\b", re.IGNORECASE)
# Pool entries at least this similar (cosine of the frozen description encoder) to a relation of the bank file are
# taken to mean the same and dropped. Chosen by reading the matches of MNRE's 22 relations with MiniLM: 0.45 catches
# "spouse" for /per/per/couple, "member of" for /per/org/member_of, "place of birth" for /per/loc/place_of_birth.
DEFAULT_EXCLUSION_THRESHOLD = 0.45


def resolve_pool_path(pool: str) -> Path:
    """`pool` as a local file: a path, or `wikidata` (downloaded from GLiREL's pinned commit, sha256-checked)."""
    if pool != "wikidata":
        path = Path(pool)
        if not path.is_file():
            raise FileNotFoundError(f"--negative_pool {pool}: no such file (or pass 'wikidata' to download it).")
        return path
    import datasets

    from datasets_scripts.downloads import verify_sha256

    path = Path(datasets.DownloadManager().download(WIKIDATA_POOL_URL))
    verify_sha256(path, WIKIDATA_POOL_SHA256, WIKIDATA_POOL_URL, "pass a local copy with --negative_pool PATH")
    return path


def load_pool(path: Path) -> tuple[dict[str, str], dict]:
    """The relations of a pool file as `{label: description}` and a report of what was skipped and why.

    Takes Wikidata's list of `{propertyLabel, propertyDescription}` or a plain `{label: description}` JSON object;
    entries without a description and identifier properties are skipped.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"--negative_pool {path}: not a readable JSON file ({err}).") from None
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list) and all(isinstance(entry, dict) for entry in raw):
        items = [(entry.get("propertyLabel"), entry.get("propertyDescription")) for entry in raw]
    else:
        raise ValueError(
            f"--negative_pool {path}: expected a list of Wikidata properties or an object {{label: description}}."
        )
    pool, skipped = {}, {"no_description": 0, "identifier": 0, "duplicate": 0}
    for label, description in items:
        if not isinstance(label, str) or not isinstance(description, str) or not description.strip():
            skipped["no_description"] += 1
        elif IDENTIFIER.search(label) or IDENTIFIER.search(description):
            skipped["identifier"] += 1
        elif label in pool:
            skipped["duplicate"] += 1
        else:
            pool[label.strip()] = description.strip()
    return pool, {"entries": len(items), "kept": len(pool), "skipped": skipped}


def pool_text(label: str, description: str) -> str:
    """How a pool relation is written for the encoder: its name and its description, as the bank's texts read."""
    return f"{label}: {description}"


def exclude_matches(
    pool_states: torch.Tensor, reference_states: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which pool entries to keep: those whose cosine to every reference text (a relation's description, name or
    other wording) stays below `threshold`. Returns the keep mask and each entry's best cosine."""
    similarity = F.normalize(pool_states.float(), dim=-1) @ F.normalize(reference_states.float(), dim=-1).t()
    best = similarity.max(dim=1).values
    return best < threshold, best


def read_wordings(path: str) -> dict[str, list[str]]:
    """Every entry of a wordings file, a JSON object `{label: text or [texts]}`, as `{label: [texts]}`."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"--relation_wordings {path}: not a readable JSON file ({err}).") from None
    if not isinstance(raw, dict):
        raise ValueError(f"--relation_wordings {path}: expected an object {{label: text or [texts]}}.")
    wordings = {}
    for label, value in raw.items():
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError(f"--relation_wordings {path}: {label!r} must map to a non-empty text or a list of them.")
        wordings[label] = [t.strip() for t in texts]
    return wordings


@dataclass
class RelationSpaceLoss:
    """The bank InfoNCE with pool negatives, relation dropout and wording sampling (see the module docstring).

    `wording_states[i]` holds the encoded wordings of bank relation i (row 0: the bank's own text);
    `pool_states` the encoded pool (kept entries only). Draws come from a generator seeded by (seed, step, rank), so
    a resumed or multi-process run draws the same negatives at the same step.
    """

    wording_states: list[torch.Tensor]
    pool_states: torch.Tensor | None
    negatives_per_step: int
    relation_dropout: float
    none_id: int
    none_weight: float
    seed: int

    def __call__(self, outputs, labels: torch.Tensor, step: int, rank: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(hash((self.seed, step, rank)) % (2**63))
        device = outputs.pair_embeds.device
        choice = [int(torch.randint(len(states), (1,), generator=generator)) for states in self.wording_states]
        relations = torch.stack([states[k] for states, k in zip(self.wording_states, choice)]).to(device)
        pairs = F.normalize(outputs.pair_embeds.float(), dim=-1)
        logits = outputs.logit_scale.float() * pairs @ F.normalize(relations.float(), dim=-1).t()
        if self.relation_dropout > 0:
            dropped = torch.rand(len(relations), generator=generator) < self.relation_dropout
            dropped[self.none_id] = False
            dropped[labels.cpu()] = False
            logits = logits.masked_fill(dropped.to(device)[None, :], torch.finfo(logits.dtype).min)
        weights = torch.ones(logits.shape[1], device=device)
        weights[self.none_id] = self.none_weight
        if self.pool_states is not None and self.negatives_per_step:
            count = min(self.negatives_per_step, len(self.pool_states))
            picked = torch.randperm(len(self.pool_states), generator=generator)[:count]
            negatives = F.normalize(self.pool_states[picked].to(device).float(), dim=-1)
            logits = torch.cat([logits, outputs.logit_scale.float() * pairs @ negatives.t()], dim=1)
            weights = torch.cat([weights, torch.ones(count, device=device)])
        return F.cross_entropy(logits, labels, weight=weights)


def wants_relation_space_loss(args) -> bool:
    return bool(args.negative_pool or args.relation_dropout or args.relation_wordings)


def check_model_supports(model) -> None:
    """Refuse (ValueError) a model whose description space moves during training or is mapped by `relation_proj`."""
    config = model.config
    if config.head != "retrieval" or config.relation_source != "description" or model.relation_model is None:
        raise ValueError(
            "--negative_pool / --relation_dropout / --relation_wordings need the retrieval head over descriptions "
            f"(got head={config.head!r}, relation_source={config.relation_source!r})."
        )
    if not config.freeze_relation_encoder or model.relation_proj is not None:
        raise ValueError(
            "--negative_pool / --relation_dropout / --relation_wordings map the pair into the frozen description "
            "space: "
            "pass --freeze_relation_encoder and --pair_embed_dim equal to the relation encoder's width "
            f"({config.relation_config.hidden_size}), so no relation_proj is trained."
        )
    if config.loss_mode != "bank":
        raise ValueError("--negative_pool / --relation_dropout / --relation_wordings extend loss_mode='bank'.")


def build_relation_space_loss(model, args, bank: dict[str, str], bank_file: dict[str, str], none_id: int, log):
    """The `RelationSpaceLoss` of `args` for `model` (unwrapped) and its report (what the pool kept and dropped)."""
    check_model_supports(model)
    from modeling_roc.modeling_roc import readable_label

    labels = list(bank)
    wordings = read_wordings(args.relation_wordings) if args.relation_wordings else {}
    texts = [[bank[label], *wordings.get(label, [])] for label in labels]
    flat = [text for group in texts for text in group]
    states = model.encode_relation_texts(flat).cpu()
    wording_states, start = [], 0
    for group in texts:
        wording_states.append(states[start : start + len(group)])
        start += len(group)
    report = {"wordings_per_relation": {label: len(group) for label, group in zip(labels, texts)}}

    pool_states = None
    if args.negative_pool:
        pool, pool_report = load_pool(resolve_pool_path(args.negative_pool))
        names = list(pool)
        log(f"encoding {len(names):,} pool relations once (frozen relation encoder)")
        pool_states = model.encode_relation_texts([pool_text(name, pool[name]) for name in names]).cpu()
        # every relation of the bank file, held-out ones included, in every wording known here
        reference = [*bank_file.values(), *(readable_label(label) for label in bank_file)]
        reference += [text for label in bank_file for text in wordings.get(label, [])]
        reference_states = model.encode_relation_texts(reference).cpu()
        keep, _ = exclude_matches(pool_states, reference_states, args.pool_exclusion_threshold)
        dropped = sorted((names[i] for i in torch.nonzero(~keep).flatten().tolist()), key=str.lower)
        pool_states = pool_states[keep]
        pool_report.update(
            excluded_as_matching_a_bank_relation=len(dropped),
            exclusion_threshold=args.pool_exclusion_threshold,
            excluded=dropped,
            used=int(keep.sum()),
        )
        report["negative_pool"] = pool_report
        log(
            f"negative pool: {pool_report['kept']:,} relations of {pool_report['entries']:,} after skipping "
            f"identifiers; {len(dropped)} dropped as matching a relation of --relation_bank; {int(keep.sum()):,} used"
        )
    loss = RelationSpaceLoss(
        wording_states=wording_states,
        pool_states=pool_states,
        negatives_per_step=args.negatives_per_step,
        relation_dropout=args.relation_dropout,
        none_id=none_id,
        none_weight=args.none_weight,
        seed=args.seed,
    )
    return loss, report


__all__ = [
    "build_relation_space_loss",
    "check_model_supports",
    "wants_relation_space_loss",
    "DEFAULT_EXCLUSION_THRESHOLD",
    "RelationSpaceLoss",
    "exclude_matches",
    "load_pool",
    "read_wordings",
    "pool_text",
    "resolve_pool_path",
]
