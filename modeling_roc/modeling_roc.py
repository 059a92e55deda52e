"""ROC: Retrieval over Classification for multimodal relation extraction.

Paper: Hei et al., "Retrieval over Classification: Integrating Relation Semantics for Multimodal Relation
Extraction", EMNLP 2025, https://arxiv.org/abs/2509.21151.

An entity pair, marked in type-prompted text (and optionally fused with image patches), is embedded as
H_E = σ(W[H_s; H_o] + b). Each relation is embedded from its natural-language description by a separate encoder
(H_r, mean-pooled). Prediction retrieves the relation whose description is most similar: logits = cos(H_E, H_r) / τ,
trained with InfoNCE. Because relations are text, `set_relation_bank` can add relations after training.

This file is copied next to the weights by `save_pretrained` (remote code): it imports only `transformers`, `timm`
(for a vision encoder only), `torch`, `huggingface_hub` (for `push_to_hub`), the standard library, and its siblings
`configuration_roc`, `pipeline_roc` and `card_roc`.
"""

import json
import math
import numbers
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput, logging

from .configuration_roc import (
    ENTITY_MARKERS,
    MARKER_INIT_WORDS,
    NONE_LABELS,
    MarkerInit,
    ROCConfig,
    check_score_offsets,
    resolve_encoder_path,
)


logger = logging.get_logger(__name__)

RELATION_TOKENIZER_DIR = "relation_tokenizer"
# Call-time relation sets whose embeddings (and examples' detectors) an eval-mode model keeps, oldest dropped first.
MAX_CACHED_RELATION_SETS = 32


@dataclass
class ROCOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            InfoNCE (retrieval head) or cross-entropy (classification head).
        logits (`torch.FloatTensor` of shape `(batch_size, num_relations)`):
            Scaled cosine similarity of each pair to each relation of the bank (retrieval), or class logits.
        pair_embeds (`torch.FloatTensor` of shape `(batch_size, pair_embed_dim)`):
            The entity-pair embeddings H_E.
        relation_embeds (`torch.FloatTensor` of shape `(num_relations, pair_embed_dim)`, *optional*):
            The relation embeddings H_r (retrieval head only).
        logit_scale (`torch.FloatTensor` of shape `()`, *optional*):
            1/τ as used for these logits (retrieval head only).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned with `output_hidden_states=True`):
            The text encoder's hidden states (embeddings, then each layer), `(batch_size, text_len, hidden_size)`.
        attentions (`tuple(torch.FloatTensor)`, *optional*, returned with `output_attentions=True`):
            The text encoder's attention weights per layer (needs `attn_implementation="eager"`).
        relation_bars (`torch.FloatTensor` of shape `(num_relations,)`, *optional*, with call-time `relations`):
            The cosine similarity each given relation must pass (NaN: it competes with "no relation", or its
            examples' detector decides); see `CallTimeRelations.decision_logits`.
        decision_logits (`torch.FloatTensor` of shape `(batch_size, num_relations)`, *optional*, with call-time
            `relations`): each relation's margin past its bar in logits ("no relation" at 0): the argmax is the
            decision and the softmax the score a caller shows (`ROCModel.call_time_decision_logits`).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    pair_embeds: torch.FloatTensor | None = None
    relation_embeds: torch.FloatTensor | None = None
    logit_scale: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    relation_bars: torch.FloatTensor | None = None
    decision_logits: torch.FloatTensor | None = None


def bank_contrastive_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """InfoNCE of each pair against every relation of the bank.

    The positive of pair i is the description of its gold relation; every other relation is a negative. Unlike
    in-batch negatives this stays correct when several pairs of a batch share a relation (no false negatives).
    """
    return F.cross_entropy(logits, labels)


def in_batch_contrastive_loss(
    pair_embeds: torch.Tensor, relation_embeds: torch.Tensor, labels: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """The paper's InfoNCE: pair i against the gold-relation descriptions of the batch's pairs (in-batch negatives).

    Warning: when two pairs of a batch share a relation, that relation's description is both the positive and a
    negative of each of them (a false negative), which is why `loss_mode="bank"` is the default.
    """
    targets = relation_embeds[labels]  # (batch, dim): description embedding of each pair's gold relation
    logits = logit_scale * F.normalize(pair_embeds, dim=-1) @ F.normalize(targets, dim=-1).t()  # (batch, batch)
    return F.cross_entropy(logits, torch.arange(len(labels), device=logits.device))


def masked_mean(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the unmasked positions; the denominator is clamped so empty rows give zeros, not NaNs."""
    mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)  # (batch, seq, 1)
    return (hidden_states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def readable_label(label: str) -> str:
    """`/per/org/member_of` -> `per org member of`: the label itself as text (ablation without descriptions)."""
    return " ".join(label.replace("_", " ").replace("/", " ").split()) or label


CALL_TIME_KEYS = ("description", "threshold", "examples", "symmetric", "allowed_head", "allowed_tail")
# A relation given with examples: at most this many are encoded (each is one forward pass of the pair encoder).
MAX_CALL_TIME_EXAMPLES = 64


def _check_example(label: str, k: int, example) -> dict:
    """One labelled example of a call-time relation: `{"tokens": [...], "subject": span, "object": span}`."""
    where = f"`relations[{label!r}]['examples'][{k}]`"
    if not isinstance(example, dict) or not {"tokens", "subject", "object"} <= set(example):
        raise ValueError(f"{where} must be a dict with 'tokens', 'subject' and 'object', got {example!r}.")
    tokens = example["tokens"]
    if not isinstance(tokens, (list, tuple)) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"{where}['tokens'] must be a non-empty list of words, got {tokens!r}.")
    for key in ("subject", "object"):
        span = example[key]
        ok = isinstance(span, dict) and all(
            isinstance(span.get(k), int) and not isinstance(span.get(k), bool) for k in ("start", "end")
        )
        if not ok or not 0 <= span["start"] < span["end"] <= len(tokens):
            raise ValueError(f"{where}['{key}'] must be {{'start', 'end'}} word offsets in its tokens, got {span!r}.")
    return {"tokens": list(tokens), "subject": dict(example["subject"]), "object": dict(example["object"])}


@dataclass(frozen=True)
class CallTimeRelations:
    """Relations given for one call (`relations=` of the pipelines and `forward`), in the place of the bank.

    `labels[0]` is the model's "no relation" label (with its trained description), then the given relations in the
    order given. Each relation has a bar its cosine similarity must pass to be predicted (`ROCModel.relation_bars`):
    `thresholds[i]` when given; a relation given with a trained description competes with "no relation" as
    in the bank; any other relation (a new one) gets the bar its description or examples reach on the model's
    `pair_pool` (pairs of its training data) at the configured false-positive rate, or competes with "no relation"
    for a model saved without a pool. `examples[i]` (labelled pairs) make relation i's embedding their prototype
    with its description, and (with a pool) a detector fit on them decides whether it holds
    (`ROCModel.example_detectors`); `symmetric[i]` says whether (A, r, B) means (B, r, A) (default False).
    `allowed_heads[i]` / `allowed_tails[i]` (GLiREL's `allowed_head` / `allowed_tail`): the entity types its subject /
    object may have (None: any); a pair of other types never gets relation i (`allowed`).
    """

    labels: tuple[str, ...]
    descriptions: tuple[str, ...]
    thresholds: tuple[float | None, ...]
    symmetric: tuple[bool, ...] = ()
    examples: tuple[tuple[dict, ...], ...] = ()
    # pair embeddings of `examples`, one `(k, pair_embed_dim)` tensor (or None) per label: `ROCModel.embed_examples`
    example_embeds: tuple = field(default=(), compare=False, repr=False)
    allowed_heads: tuple[frozenset[str] | None, ...] = ()
    allowed_tails: tuple[frozenset[str] | None, ...] = ()

    def allowed(self, subject_type: str | None, object_type: str | None) -> list[bool]:
        """Per label, whether a pair of these entity types may get it ("no relation" always). Types compare without
        case; a pair whose type is unknown (None, "UNKNOWN") is not filtered on that side: nothing says it fails."""

        def fits(kinds: frozenset[str] | None, kind: str | None) -> bool:
            return kinds is None or kind is None or kind.upper() == "UNKNOWN" or kind.upper() in kinds

        heads = self.allowed_heads or (None,) * len(self.labels)
        tails = self.allowed_tails or (None,) * len(self.labels)
        return [i == 0 or (fits(heads[i], subject_type) and fits(tails[i], object_type)) for i in range(len(heads))]

    @property
    def bank(self) -> dict[str, str]:
        return dict(zip(self.labels, self.descriptions))

    @property
    def symmetric_labels(self) -> list[str]:
        return [label for label, symmetric in zip(self.labels, self.symmetric) if symmetric]

    @property
    def needs_example_embeds(self) -> bool:
        return any(self.examples) and not self.example_embeds

    @classmethod
    def parse(cls, relations, none_label: str, none_description: str) -> "CallTimeRelations":
        """From `{label: description}` or `{label: {"description", "threshold", "examples", "symmetric"}}`, or a
        list of labels (each described by its own words, as GLiREL takes them); one-line errors."""
        if isinstance(relations, CallTimeRelations):
            return relations
        if isinstance(relations, (list, tuple)) and relations and all(isinstance(r, str) for r in relations):
            if len(set(relations)) != len(relations):
                raise ValueError(f"`relations`: a label is given twice in {list(relations)!r}.")
            relations = {label: readable_label(label) for label in relations}
        if not isinstance(relations, dict) or not relations:
            raise ValueError(
                "`relations` must be a non-empty dict {label: description} or {label: {'description': ..., "
                f"'threshold': ..., 'examples': [...], 'symmetric': ...}}, or a list of labels; got {relations!r}."
            )
        labels, descriptions, thresholds, symmetric, examples = [none_label], [none_description], [None], [False], [()]
        heads, tails = [None], [None]
        for label, value in relations.items():
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"`relations`: every label must be a non-empty string, got {label!r}.")
            if label.strip().lower() in {n.lower() for n in (*NONE_LABELS, none_label)}:
                raise ValueError(
                    f"`relations`: {label!r} names 'no relation' (the model's {none_label!r}); it is always included."
                )
            threshold, given_examples, is_symmetric, head, tail = None, (), False, None, None
            if isinstance(value, dict):
                unknown = sorted(set(value) - set(CALL_TIME_KEYS))
                if unknown:
                    raise ValueError(f"`relations[{label!r}]`: unknown keys {unknown} ({', '.join(CALL_TIME_KEYS)}).")
                threshold = value.get("threshold")
                is_symmetric = value.get("symmetric", False)
                if not isinstance(is_symmetric, bool):
                    raise ValueError(f"`relations[{label!r}]['symmetric']` must be a bool, got {is_symmetric!r}.")
                raw_examples = value.get("examples") or []
                if not isinstance(raw_examples, (list, tuple)):
                    raise ValueError(f"`relations[{label!r}]['examples']` must be a list, got {raw_examples!r}.")
                if len(raw_examples) > MAX_CALL_TIME_EXAMPLES:
                    raise ValueError(
                        f"`relations[{label!r}]['examples']`: {len(raw_examples)} given, at most "
                        f"{MAX_CALL_TIME_EXAMPLES} are used; pass a sample."
                    )
                given_examples = tuple(_check_example(label, k, e) for k, e in enumerate(raw_examples))
                head = _entity_types(label, "allowed_head", value.get("allowed_head"))
                tail = _entity_types(label, "allowed_tail", value.get("allowed_tail"))
                value = value.get("description", readable_label(label) if given_examples else None)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"`relations[{label!r}]`: the description must be a non-empty string, got {value!r}.")
            if threshold is not None:
                if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
                    raise ValueError(f"`relations[{label!r}]['threshold']` must be a number, got {threshold!r}.")
                if not -1.0 <= float(threshold) <= 1.0:
                    raise ValueError(
                        f"`relations[{label!r}]['threshold']` is a cosine similarity in [-1, 1], got {threshold}."
                    )
                threshold = float(threshold)
            labels.append(label)
            descriptions.append(value.strip())
            thresholds.append(threshold)
            symmetric.append(is_symmetric)
            examples.append(given_examples)
            heads.append(head)
            tails.append(tail)
        return cls(
            tuple(labels), tuple(descriptions), tuple(thresholds), tuple(symmetric), tuple(examples),
            allowed_heads=tuple(heads), allowed_tails=tuple(tails),
        )  # fmt: skip

    def decision_logits(self, logits: torch.Tensor, logit_scale, bars: torch.Tensor | None = None) -> torch.Tensor:
        """`logits` `(batch, len(labels))` (scaled cosines, column 0 "no relation") turned into scaled margins: each
        relation's cosine minus its bar (`bars`, NaN: "no relation"'s cosine in that row), "no relation" at 0.

        Their softmax is the score a caller shows and their argmax the decision, so a relation is predicted exactly
        when it passes its bar by the widest margin, and the score never contradicts the decision. With no bars
        (every relation competing with "no relation") this is the plain softmax over `logits`.
        """
        if bars is None:
            bars = torch.tensor(
                [math.nan if t is None else t for t in self.thresholds], device=logits.device, dtype=logits.dtype
            )
        bars = bars.to(device=logits.device, dtype=logits.dtype)
        similarity = logits / logit_scale
        bar = torch.where(bars.isnan(), similarity[:, :1], bars.unsqueeze(0))  # (batch, labels)
        margins = similarity - bar
        margins[:, 0] = 0.0
        return margins * logit_scale

    def decide(self, logits: torch.Tensor, logit_scale, bars: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted index of each row of `logits`: the relation past its bar by the widest margin, else 0."""
        return self.decision_logits(logits, logit_scale, bars).argmax(-1)


def _entity_types(label: str, key: str, value) -> frozenset[str] | None:
    """`allowed_head` / `allowed_tail` of a call-time relation: None, or a non-empty list of entity type names."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"`relations[{label!r}][{key!r}]` must be a non-empty list of entity types, got {value!r}.")
    if not all(isinstance(kind, str) and kind.strip() for kind in value):
        raise ValueError(
            f"`relations[{label!r}][{key!r}]`: every entity type must be a non-empty string, got {value!r}."
        )
    return frozenset(kind.strip().upper() for kind in value)


def init_marker_embeddings(text_model: nn.Module, tokenizer) -> None:
    """Seed each entity marker's input embedding with the mean embedding of its `MARKER_INIT_WORDS`."""
    embeddings = text_model.get_input_embeddings().weight  # (vocab, hidden)
    with torch.no_grad():
        for marker, words in MARKER_INIT_WORDS.items():
            word_ids = tokenizer(words, add_special_tokens=False)["input_ids"]
            embeddings[tokenizer.convert_tokens_to_ids(marker)] = embeddings[word_ids].mean(0)


@contextmanager
def _quiet_transformers_notices():
    """transformers' own log below errors, for the duration of a call whose notices are expected."""
    previous = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(previous)


def _build_encoder(config) -> nn.Module:
    """A randomly initialised BERT-family encoder; pooler dropped where the class allows it (it is never used)."""
    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


def _saved_scalar_logit_scale(path, subfolder: str, hub_kwargs: dict) -> torch.Tensor | None:
    """The 0-d `logit_scale` of a checkpoint saved by an earlier version, or None if it has no such tensor."""
    from safetensors import safe_open
    from transformers.utils import cached_file

    try:
        weights = cached_file(path, "model.safetensors", subfolder=subfolder, **hub_kwargs)
    except OSError:
        return None
    with safe_open(weights, framework="pt") as f:
        if "logit_scale" not in f.keys():
            return None
        tensor = f.get_tensor("logit_scale")
    return tensor if tensor.dim() == 0 else None


class ROCFusionEncoder(nn.Module):
    """N Transformer encoder layers over the concatenated [text tokens; image tokens]."""

    def __init__(self, config: ROCConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=config.text_config.hidden_size,
                nhead=config.num_fusion_heads,
                dim_feedforward=config.fusion_intermediate_size,
                dropout=config.fusion_dropout,
                activation="gelu",
                batch_first=True,
                norm_first=False,  # post-norm, as BERT; `_post_norm_layer_at` relies on it
            )
            for _ in range(config.num_fusion_layers)
        )

    def forward(
        self, hidden_states: torch.Tensor, padding_mask: torch.Tensor, output_positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Fuse `(batch, seq, hidden)` states; `padding_mask` is True where a position must be ignored.

        With `output_positions` `(batch, k)`, only those positions' outputs are returned, `(batch, k, hidden)`, and
        the last layer computes nothing else: its queries and feed-forward run on k tokens instead of all of them,
        which is most of a fusion layer's cost when only the two entity markers are read.
        """
        # Only a plain layer's sub-modules may be called directly: a sharded one (FSDP wraps it, FSDP2 swaps its
        # class) gathers its parameters in its own forward alone, so it runs whole and the positions are read after.
        fast = output_positions is not None and type(self.layers[-1]) is nn.TransformerEncoderLayer
        for layer in self.layers[:-1] if fast else self.layers:
            hidden_states = layer(hidden_states, src_key_padding_mask=padding_mask)
        if fast:
            return _post_norm_layer_at(self.layers[-1], hidden_states, padding_mask, output_positions)
        if output_positions is None:
            return hidden_states
        rows = torch.arange(len(hidden_states), device=hidden_states.device)[:, None]
        return hidden_states[rows, output_positions]


def _compute_dtype(module: nn.Module) -> torch.dtype:
    """The dtype `module` computes in: that of its first floating-point weight. float32 when it has none that is a
    tensor: an int8 copy's linear layers (`quantize_int8`) keep packed weights and take float32 activations."""
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def _post_norm_layer_at(
    layer: nn.TransformerEncoderLayer, states: torch.Tensor, padding_mask: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """`layer(states)[rows, positions]` without computing the other positions (keys and values still see them all)."""
    rows = torch.arange(len(states), device=states.device)[:, None]
    queries = states[rows, positions]
    attended = layer.self_attn(queries, states, states, key_padding_mask=padding_mask, need_weights=False)[0]
    x = layer.norm1(queries + layer.dropout1(attended))
    return layer.norm2(x + layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))))


class ROCPreTrainedModel(PreTrainedModel):
    config_class = ROCConfig
    base_model_prefix = "roc"
    main_input_name = "input_ids"
    input_modalities = ["image", "text"]
    # `activation_checkpointing_enable()` (transformers 5's `gradient_checkpointing_enable`) reaches the text and
    # relation encoders' layers; the fusion layers, one to three on top, keep their activations
    supports_gradient_checkpointing = True
    # the attention implementation is the text and relation encoders' (BERT-family: eager and SDPA); the fusion
    # layers are torch's own TransformerEncoderLayer, which runs SDPA by itself
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, ROCModel) and module.logit_scale is not None:
            init.constant_(module.logit_scale, math.log(1.0 / self.config.retrieval_temperature))
        if isinstance(module, ROCModel) and module.caption_type_embedding is not None:
            init.zeros_(module.caption_type_embedding)
        if hasattr(module, "init_non_persistent_buffers"):  # timm modules (e.g. Swin's relative position index)
            module.init_non_persistent_buffers()


class ROCModel(ROCPreTrainedModel):
    """Entity-pair encoder + relation-description encoder, scored by scaled cosine similarity.

    The relation bank (label -> description) lives in `config.relation_bank`; its embeddings are computed once and
    cached while the model is in eval mode, and recomputed after `train()`, `load_state_dict` or `set_relation_bank`.
    """

    def __init__(self, config: ROCConfig):
        super().__init__(config)
        if not config.relation_bank:
            raise ValueError("ROCConfig.relation_bank is empty: a ROC model needs at least one relation description.")
        text_hidden = config.text_config.hidden_size

        self.text_model = _build_encoder(config.text_config)
        self.vision_model = None
        self.vision_proj = None
        if config.vision_model_name is not None:
            self.vision_model = self._build_vision_model(config, pretrained=False)
            self.vision_proj = nn.Linear(self.vision_model.num_features, text_hidden)
        self.fusion = ROCFusionEncoder(config) if config.use_fusion else None
        # added to every caption token, so the fusion layers can tell the caption from the post it describes
        self.caption_type_embedding = nn.Parameter(torch.zeros(text_hidden)) if config.caption_tokens else None

        pooled_width = 2 * text_hidden if config.entity_pooling == "marker" else text_hidden
        self.pair_proj = nn.Linear(pooled_width, config.pair_embed_dim)
        self.pair_activation = ACT2FN["linear" if config.pair_activation == "identity" else config.pair_activation]

        self.relation_model = None
        self.relation_proj = None
        self.relation_embeddings = None
        self.classifier = None
        self.logit_scale = None
        if config.head == "classification":
            self.classifier = nn.Sequential(
                nn.Dropout(config.classifier_dropout), nn.Linear(config.pair_embed_dim, config.num_labels)
            )
        else:
            if config.relation_source == "learned":
                self.relation_embeddings = nn.Embedding(config.num_labels, config.pair_embed_dim)
            else:
                self.relation_model = _build_encoder(config.relation_config)
                self.relation_model.requires_grad_(not config.freeze_relation_encoder)
                if config.relation_config.hidden_size != config.pair_embed_dim:
                    self.relation_proj = nn.Linear(config.relation_config.hidden_size, config.pair_embed_dim)
            if config.learnable_temperature:
                # shape (1,), not (): FSDP2 cannot shard a 0-d parameter
                self.logit_scale = nn.Parameter(torch.full((1,), math.log(1.0 / config.retrieval_temperature)))

        # pair embeddings of a sample of the training pairs (filled by train.py): what a new relation's score must
        # beat, so that it fires on about `new_relation_false_positive_rate` of the traffic the model was trained on
        if config.pair_pool_size:
            self.register_buffer("pair_pool", torch.zeros(config.pair_pool_size, config.pair_embed_dim))
        else:
            self.pair_pool = None
        self.relation_tokenizer = None
        self._relation_inputs = None  # tokenized bank, rebuilt only when the bank changes
        self._relation_cache = None  # relation embeddings, valid only in eval mode
        self._frozen_relation_states = None  # a frozen relation encoder's pooled outputs, until the bank changes
        self._call_time_cache = {}  # relation sets given at call time -> their H_r, valid only in eval mode
        self._pool_precision_cache = None  # (pool version, (mean, precision)) of the examples' detectors
        self.post_init()
        self.train(self.training)  # applies the frozen relation encoder's eval mode
        # `pipeline("multimodal-relation-extraction", model=<this model>)` needs the task registered in this process,
        # also when the model came from remote code that never imported the pipeline module
        from . import pipeline_roc  # noqa: F401

    # ----------------------------------------------------------------------------------------------- construction
    @staticmethod
    def _build_vision_model(config: ROCConfig, pretrained: bool) -> nn.Module:
        # in a try block: transformers' remote-code check then does not require timm of text-only models
        try:
            import timm
        except ImportError as err:
            raise ImportError(
                f"This ROC model has a vision encoder ({config.vision_model_name}): pip install timm"
            ) from err

        kwargs = {"img_size": config.vision_image_size} if config.vision_image_size else {}
        return timm.create_model(config.vision_model_name, pretrained=pretrained, num_classes=0, **kwargs)

    @classmethod
    def from_encoders(
        cls,
        text_encoder: str,
        relation_bank: dict[str, str],
        relation_encoder: str | None = None,
        vision_encoder: str | None = None,
        vision_pretrained: bool = False,
        marker_init: MarkerInit = "mean",
        **config_kwargs,
    ) -> "ROCModel":
        """Build a ROC model whose sub-encoders carry pretrained weights.

        Args:
            text_encoder: Hub id, local folder, or an embedded name such as `"embedded:all-MiniLM-L6-v2"`.
            relation_bank: label -> description, in label-id order.
            relation_encoder: same forms as `text_encoder`; defaults to `text_encoder`.
            vision_encoder: a timm model name, or `None` for a text-only model.
            vision_pretrained: download timm's pretrained weights (needs the network); random init otherwise.
            marker_init: how the new entity-marker embeddings start: `"mean"` as transformers' resizing leaves them
                (one shared vector), `"words"` from words the encoder knows (`MARKER_INIT_WORDS`): distinct from the
                first step; on MNRE it learns faster in the first epoch and ends no better (README, Results).
            config_kwargs: any other `ROCConfig` field (`num_fusion_layers`, `loss_mode`, ...).
        """
        if marker_init not in ("mean", "words"):
            raise ValueError(f"`marker_init` must be 'mean' or 'words', got {marker_init!r}.")
        text_path = resolve_encoder_path(text_encoder)
        relation_path = resolve_encoder_path(relation_encoder or text_encoder)
        tokenizer = AutoTokenizer.from_pretrained(text_path)
        tokenizer.add_special_tokens({"additional_special_tokens": list(ENTITY_MARKERS)})
        config = ROCConfig(
            text_config=AutoConfig.from_pretrained(text_path).to_dict(),
            relation_config=AutoConfig.from_pretrained(relation_path).to_dict(),
            vision_model_name=vision_encoder,
            relation_bank=relation_bank,
            **config_kwargs,
        )
        model = cls(config)
        text_weights = AutoModel.from_pretrained(text_path).state_dict()
        model.text_model.load_state_dict(text_weights, strict=False)  # strict=False: the unused pooler
        # transformers' mean resizing is the "mean" marker init; its notice (printed on every training start) says
        # nothing a user can act on here
        with _quiet_transformers_notices():
            model.text_model.resize_token_embeddings(len(tokenizer))
        if marker_init == "words":
            init_marker_embeddings(model.text_model, tokenizer)
        model.config.text_config.vocab_size = len(tokenizer)
        if model.relation_model is not None:
            model.relation_model.load_state_dict(AutoModel.from_pretrained(relation_path).state_dict(), strict=False)
            model.relation_tokenizer = AutoTokenizer.from_pretrained(relation_path)
        if vision_encoder is not None and vision_pretrained:
            pretrained_vision = cls._build_vision_model(config, pretrained=True)
            model.vision_model.load_state_dict(pretrained_vision.state_dict())
        return model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, plus the relation tokenizer saved in `relation_tokenizer/`.

        Folders saved before `logit_scale` became shape `(1,)` (a 0-d parameter cannot be sharded by FSDP2) load
        too: their scalar is read from the checkpoint and nothing else may differ.
        """
        hub_kwargs = {
            k: kwargs[k]
            for k in ("cache_dir", "revision", "token", "local_files_only", "force_download")
            if k in kwargs
        }
        scalar = None
        if not kwargs.get("ignore_mismatched_sizes"):
            scalar = _saved_scalar_logit_scale(pretrained_model_name_or_path, kwargs.get("subfolder", ""), hub_kwargs)
        if scalar is None:
            loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        else:
            verbosity = logging.get_verbosity()
            logging.set_verbosity_error()  # the expected mismatch report would read like a failure
            try:
                loaded, info = super().from_pretrained(
                    pretrained_model_name_or_path,
                    *model_args,
                    **{**kwargs, "ignore_mismatched_sizes": True, "output_loading_info": True},
                )
            finally:
                logging.set_verbosity(verbosity)
            mismatched = [key for key, *_ in info["mismatched_keys"]]
            if mismatched != ["logit_scale"]:
                raise RuntimeError(
                    f"{pretrained_model_name_or_path}: weights of the wrong shape besides logit_scale: {mismatched}"
                )
            with torch.no_grad():
                loaded.logit_scale.copy_(scalar.reshape(1))
            if kwargs.get("output_loading_info"):
                loaded = (loaded, {**info, "mismatched_keys": []})
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        if model.relation_model is not None:
            subfolder = "/".join(p for p in (kwargs.get("subfolder", ""), RELATION_TOKENIZER_DIR) if p)
            try:
                model.relation_tokenizer = AutoTokenizer.from_pretrained(
                    pretrained_model_name_or_path, subfolder=subfolder, **hub_kwargs
                )
            except OSError:
                logger.warning(
                    f"No relation tokenizer in {pretrained_model_name_or_path}/{subfolder}; call "
                    "`model.set_relation_tokenizer(tokenizer)` before encoding relations."
                )
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`, plus the relation tokenizer and the pair-level pipeline.

        The pipeline is registered in `config.json` and its file copied by every save path (this one, `push_to_hub`,
        `Trainer.save_model`, a training script's sharded save), so any saved folder loads with
        `pipeline(model=folder, trust_remote_code=True)`, not only one saved through the pipeline object.
        """
        # relative import: it also makes `save_pretrained` copy pipeline_roc.py beside this file
        from .pipeline_roc import TASK, ROCRelationExtractionPipeline

        if any(type(module).__module__.startswith("torch.ao.nn.quantized") for module in self.modules()):
            raise ValueError(
                "This is an int8 copy made by `quantize_int8` for CPU inference: its packed weights do not load back "
                "with `from_pretrained`. Save the float32 model and call `quantize_int8` after loading it."
            )

        self.config.custom_pipelines = {
            TASK: {"impl": f"pipeline_roc.{ROCRelationExtractionPipeline.__name__}", "pt": ["AutoModel"]}
        }
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.relation_tokenizer is not None and kwargs.get("is_main_process", True):
            self.relation_tokenizer.save_pretrained(os.path.join(save_directory, RELATION_TOKENIZER_DIR))

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
        license: str | None = None,
        processor=None,
    ) -> str:
        """`PreTrainedModel.push_to_hub` (same arguments, plus `license` and `processor`), with a ROC model card
        instead of transformers' generic one, in one commit.

        `processor` (the run's `ROCProcessor`, as `Trainer.push_to_hub` pushes its processing class) is required:
        without its files the published repo would not load in `pipeline(...)` or `AutoProcessor`, and the card's
        snippet would fail.

        When the repo has no `README.md` yet, the card is `card_roc.roc_model_card`: the relations and their
        descriptions, usage (with relations chosen at call time), license (default Apache-2.0) and citation. It says
        that no metrics are recorded: the weights carry none (`roc-push` publishes a training run with its metrics).
        A card already on the Hub is kept, as transformers keeps it (`tags` are added to it). Returns the commit URL.
        """
        import tempfile

        if processor is None or not hasattr(processor, "save_pretrained"):
            raise ValueError(
                "push_to_hub needs the processor too (processor=ROCProcessor.from_pretrained(run) or "
                "AutoProcessor.from_pretrained(run, trust_remote_code=True)): without its tokenizer and "
                "processor_config.json the published repo does not load in pipeline(...) or AutoProcessor."
            )
        from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
        from huggingface_hub.errors import EntryNotFoundError

        # relative imports: they also make `save_pretrained` copy card_roc.py and pipeline_roc.py beside this file
        from .card_roc import DEFAULT_LICENSE, roc_model_card
        from .pipeline_roc import TASK

        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        try:
            card = ModelCard.load(repo_id, token=token)
            card.data.tags = list(dict.fromkeys([*(card.data.tags or []), *(tags or [])]))
        except EntryNotFoundError:
            card = roc_model_card(repo_id, self.config, TASK, license=license or DEFAULT_LICENSE, tags=tags)
        if revision is not None and not revision.startswith("refs/pr"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, max_shard_size=max_shard_size)
            processor.save_pretrained(folder)
            card.save(os.path.join(folder, "README.md"))
            operations = [
                CommitOperationAdd(path_in_repo=os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"),
                                   path_or_fileobj=os.path.join(root, name))
                for root, _, names in os.walk(folder)
                for name in sorted(names)
            ]  # fmt: skip
            commit = api.create_commit(
                repo_id,
                operations=operations,
                commit_message=commit_message or "Upload ROC model",
                commit_description=commit_description,
                revision=revision,
                create_pr=create_pr,
            )
        return commit.pr_url if create_pr else commit.commit_url

    def get_input_embeddings(self) -> nn.Module:
        """The text encoder's token embeddings (entity markers included), as `resize_token_embeddings` expects."""
        return self.text_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.text_model.set_input_embeddings(value)

    # ------------------------------------------------------------------------------------------------ relation bank
    @property
    def relation_labels(self) -> list[str]:
        return self.config.relation_labels

    def set_relation_tokenizer(self, tokenizer) -> None:
        self.relation_tokenizer = tokenizer
        self._invalidate_relation_cache(retokenize=True)

    def set_relation_bank(self, relation_bank: dict[str, str], score_offsets: dict[str, float] | None = None) -> None:
        """Swap or extend the relations the model retrieves from, with no retraining.

        Only the retrieval head over descriptions (or label names) can do this: a classification head or learned
        label embeddings have one fixed output per training label.

        `score_offsets` (label -> number, default none) is added to those relations' cosine similarity when
        predicting. A relation added after training starts well below the trained ones, whose descriptions training
        pulled towards their pairs, and is then almost never predicted; a positive offset lets it compete
        (`benchmarks/unseen_relations.py` measures how much it costs the trained relations). The offsets replace any
        set before and are saved with the model (`config.relation_score_offsets`).
        """
        if not relation_bank:
            raise ValueError("`relation_bank` must map at least one label to a description.")
        for label, description in relation_bank.items():
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"relation labels must be non-empty strings, got {label!r} (configs key on them).")
            if not isinstance(description, str) or not description.strip():
                raise ValueError(
                    f"relation {label!r}: the description must be a non-empty string, got {description!r} (the model "
                    "retrieves relations by their description; an empty one matches nothing in particular)."
                )
        if self.relation_model is None and list(relation_bank) != self.relation_labels:
            raise ValueError(
                f"This model (head={self.config.head!r}, relation_source={self.config.relation_source!r}) has a "
                f"fixed label set {self.relation_labels}; only descriptions of those labels can change."
            )
        labels = list(relation_bank)
        self.config.relation_score_offsets = check_score_offsets(score_offsets or {}, labels, self.config.head)
        self.config.relation_bank = dict(relation_bank)
        symmetric = self.config.symmetric_relations
        self.config.symmetric_relations = [label for label in symmetric if label in relation_bank]
        self.config.id2label = dict(enumerate(labels))
        self.config.label2id = {label: i for i, label in enumerate(labels)}
        self._invalidate_relation_cache(retokenize=True)

    def _invalidate_relation_cache(self, retokenize: bool = False) -> None:
        self._relation_cache = None
        self._call_time_cache = {}
        if retokenize:
            self._relation_inputs = None
            self._frozen_relation_states = None

    def train(self, mode: bool = True):
        inference_only = getattr(self, "inference_only", None)
        if mode and inference_only:
            raise RuntimeError(
                f"This model is a {inference_only} copy for inference (`for_inference`); it cannot be trained. Train "
                "the float32 model it was made from."
            )
        self._invalidate_relation_cache()  # weights are about to change
        super().train(mode)
        if self.relation_model is not None and self.config.freeze_relation_encoder:
            self.relation_model.eval()  # fixed weights, fixed embeddings: no dropout in the cached descriptions
        return self

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._invalidate_relation_cache(retokenize=True)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _tokenized_relations(self, device: torch.device) -> dict[str, torch.Tensor]:
        if self._relation_inputs is None:
            if self.relation_tokenizer is None:
                raise ValueError(
                    "This ROC model has no relation tokenizer: build it with `ROCModel.from_encoders`, load it with "
                    "`from_pretrained`, or call `model.set_relation_tokenizer(tokenizer)`."
                )
            self._relation_inputs = self.relation_tokenizer(
                self.relation_texts(self.config.relation_bank),
                padding=True,
                truncation=True,
                max_length=self.config.relation_max_length,
                return_tensors="pt",
            )
        return {k: v.to(device) for k, v in self._relation_inputs.items() if k in ("input_ids", "attention_mask")}

    def relation_texts(self, relation_bank: dict[str, str]) -> list[str]:
        """What the relation encoder reads for each relation of `relation_bank`: its description, or its label name
        (`relation_source="label_name"`)."""
        if self.config.relation_source == "label_name":
            return [readable_label(label) for label in relation_bank]
        return list(relation_bank.values())

    @torch.no_grad()
    def encode_relation_texts(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """Mean-pooled relation-encoder states of `texts`, `(len(texts), relation_hidden)`, before `relation_proj`.

        Used for descriptions that are not the bank's (relations given at call time, training negatives and other
        wordings); with a frozen relation encoder these are exactly the states the bank gets.
        """
        if self.relation_model is None:
            raise ValueError(
                f"This model (head={self.config.head!r}, relation_source={self.config.relation_source!r}) has no "
                "relation encoder: it cannot embed new relation texts."
            )
        if self.relation_tokenizer is None:
            raise ValueError(
                "This ROC model has no relation tokenizer: build it with `ROCModel.from_encoders`, load it with "
                "`from_pretrained`, or call `model.set_relation_tokenizer(tokenizer)`."
            )
        was_training = self.relation_model.training
        self.relation_model.eval()
        chunks = []
        try:
            for start in range(0, len(texts), batch_size):
                inputs = self.relation_tokenizer(
                    texts[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.config.relation_max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.relation_model(
                    input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
                ).last_hidden_state
                chunks.append(masked_mean(hidden, inputs["attention_mask"]))
        finally:
            self.relation_model.train(was_training)
        return torch.cat(chunks) if chunks else torch.empty(0, self.config.relation_config.hidden_size)

    def project_relation_states(self, states: torch.Tensor) -> torch.Tensor:
        """H_r from relation-encoder states (`relation_proj` where the widths differ)."""
        return self.relation_proj(states) if self.relation_proj is not None else states

    def call_time_relations(self, relations: dict) -> CallTimeRelations:
        """`relations` (see `CallTimeRelations.parse`) checked against this model, "no relation" first."""
        if self.relation_model is None:
            raise ValueError(
                f"This model (head={self.config.head!r}, relation_source={self.config.relation_source!r}) has a "
                "fixed label set: relations given at call time need the retrieval head over descriptions."
            )
        none_label = next((label for label in self.relation_labels if label in NONE_LABELS), None)
        if none_label is None:
            raise ValueError(
                f"This model's bank has no no-relation label (one of {NONE_LABELS}): relations given at call time "
                "replace the bank and need it to say 'no relation'."
            )
        return CallTimeRelations.parse(relations, none_label, self.config.relation_bank[none_label])

    @torch.no_grad()
    def embed_examples(self, relations: CallTimeRelations, processor) -> CallTimeRelations:
        """`relations` with the pair embeddings of their examples (`processor` encodes them as it encodes posts)."""
        if not relations.needs_example_embeds:
            return relations
        embeds = []
        for examples in relations.examples:
            if not examples:
                embeds.append(None)
                continue
            inputs = processor(
                [e["tokens"] for e in examples], [e["subject"] for e in examples], [e["object"] for e in examples]
            )
            if getattr(processor, "caption_mode", None) == "tokens":
                inputs.update(processor.caption_token_inputs([None] * len(examples)))
            inputs = {k: v.to(self.device) for k, v in inputs.items() if k != "labels"}
            embeds.append(self.get_pair_features(**inputs).float())
        return replace(relations, example_embeds=tuple(embeds))

    def get_call_time_relation_features(self, relations: CallTimeRelations) -> torch.Tensor:
        """H_r of a call-time relation set, `(len(relations.labels), pair_embed_dim)`, computed without touching the
        bank or the model; kept per set while in eval mode (a server answering many calls encodes each set once).

        A relation given with examples is the normalized mean of its description's embedding and its examples'
        prototype (the mean of their normalized pair embeddings), weighted by `config.prototype_weight`.
        """
        if relations.needs_example_embeds:
            raise ValueError(
                "Relations given with examples need their pair embeddings: the pipelines and TripleExtractor compute "
                "them; with the model alone call `model.embed_examples(relations, processor)` first."
            )
        key = (relations.labels, relations.descriptions, json.dumps(relations.examples, sort_keys=True))
        if not self.training and key in self._call_time_cache:
            return self._call_time_cache[key]
        states = self.encode_relation_texts(self.relation_texts(relations.bank))
        with torch.no_grad():
            embeds = self.project_relation_states(states)
        weight = float(getattr(self.config, "prototype_weight", 0.5))
        for i, example_embeds in enumerate(relations.example_embeds):
            if example_embeds is not None and len(example_embeds):
                prototype = F.normalize(F.normalize(example_embeds.to(embeds), dim=-1).mean(0), dim=-1)
                embeds[i] = (1 - weight) * F.normalize(embeds[i], dim=-1) + weight * prototype
        self._remember_call_time(key, embeds)
        return embeds

    def _remember_call_time(self, key: tuple, value) -> None:
        """Keep what a call-time relation set computed (eval mode only), the oldest entry dropped past the cap."""
        if self.training:
            return
        if len(self._call_time_cache) >= MAX_CACHED_RELATION_SETS:
            self._call_time_cache.pop(next(iter(self._call_time_cache)))
        self._call_time_cache[key] = value

    def has_pair_pool(self) -> bool:
        return self.pair_pool is not None and bool(self.pair_pool.abs().sum() > 0)

    def relation_bars(self, relations: CallTimeRelations, relation_embeds: torch.Tensor) -> torch.Tensor:
        """The cosine similarity each relation of `relations` must pass to be predicted, `(len(labels),)`.

        NaN means "compete with no relation": "no relation" itself, a relation given with a description the model
        was trained on (under any label), and any relation of a model saved without a `pair_pool`. A given
        `threshold` is its bar. Every other relation (new, re-described, or given with examples) gets the cosine
        that only `config.new_relation_false_positive_rate` of the pool's pairs reach: a rule that needs no examples
        and puts a relation the model was not trained on on the same footing as the trained ones.
        """
        bars = torch.full((len(relations.labels),), math.nan, device=relation_embeds.device)
        detected = self._detected_relations(relations)  # decided by their examples' detector: no cosine bar
        pooled = self.has_pair_pool()
        if pooled:
            pool = F.normalize(self.pair_pool.to(relation_embeds), dim=-1)
            similarity = pool @ F.normalize(relation_embeds, dim=-1).t()  # (pool, labels)
            rate = float(getattr(self.config, "new_relation_false_positive_rate", 0.05))
            pool_bars = torch.quantile(similarity.float(), 1.0 - rate, dim=0)
        trained_descriptions = set(self.config.relation_bank.values())
        for i, description in enumerate(relations.descriptions):
            threshold = relations.thresholds[i]
            trained = description in trained_descriptions and not relations.examples[i]
            if i == 0:
                continue
            if threshold is not None:
                bars[i] = threshold
            elif pooled and not trained and i not in detected:
                bars[i] = pool_bars[i]
        return bars

    def _pool_precision(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalized pool's mean and shrunk inverse covariance, kept until the pool or the shrinkage changes."""
        key = (self.pair_pool._version, self.pair_pool.data_ptr(), self.config.example_shrinkage)
        if self._pool_precision_cache is not None and self._pool_precision_cache[0] == key:
            return self._pool_precision_cache[1]
        pool = F.normalize(self.pair_pool.detach().float(), dim=-1)
        mean = pool.mean(0)
        centered = pool - mean
        covariance = centered.t() @ centered / len(pool)
        shrink = float(self.config.example_shrinkage) * covariance.diagonal().mean()
        eye = torch.eye(len(covariance), device=covariance.device)
        precision = torch.linalg.inv(covariance + shrink * eye)
        self._pool_precision_cache = (key, (mean, precision))
        return mean, precision

    def example_detectors(self, relations: CallTimeRelations) -> dict[int, tuple[torch.Tensor, float, float]]:
        """`{relation index: (weight, offset, spread)}`: a linear detector for each relation given with examples and
        no `threshold` (with `config.example_decision="whitened_prototype"` and a filled `pair_pool`).

        Why not the cosine to the prototype: most of the pool's pairs (the model's own training pairs, "no relation"
        first) sit close to any prototype along directions the pool itself varies in; whitening by the pool's
        covariance (shrunk toward its mean variance, `config.example_shrinkage`) discounts them, as exemplar LDA
        does. A pair's decision logit is `(normalize(pair) @ weight - offset) / spread`: `offset` is the score only
        `config.new_relation_false_positive_rate` of the pool reaches, `spread` the pool scores' standard deviation,
        so one pool standard deviation past the bar counts as one logit, the unit of the trained relations' margins.
        """
        given = self._detected_relations(relations)
        if not given:
            return {}
        rate = float(getattr(self.config, "new_relation_false_positive_rate", 0.05))
        # fit once per relation set while in eval mode (a pipeline calls the forward once per batch)
        key = ("detectors", relations.labels, json.dumps(relations.examples, sort_keys=True), rate,
               self.config.example_shrinkage, self.pair_pool._version)  # fmt: skip
        if not self.training and key in self._call_time_cache:
            return self._call_time_cache[key]
        mean, precision = self._pool_precision()
        pool = F.normalize(self.pair_pool.detach().float(), dim=-1)
        detectors = {}
        for i in given:
            examples = F.normalize(relations.example_embeds[i].detach().float().to(mean.device), dim=-1)
            weight = precision @ (examples.mean(0) - mean)
            pool_scores = pool @ weight
            offset = float(torch.quantile(pool_scores, 1.0 - rate))
            detectors[i] = (weight, offset, float(pool_scores.std().clamp_min(1e-6)))
        self._remember_call_time(key, detectors)
        return detectors

    def _detected_relations(self, relations: CallTimeRelations) -> list[int]:
        """The indices of `relations` that `example_detectors` decides: given with examples, without a `threshold`,
        under `config.example_decision="whitened_prototype"`, with a filled `pair_pool`."""
        if getattr(self.config, "example_decision", "whitened_prototype") != "whitened_prototype":
            return []
        if not relations.example_embeds or not self.has_pair_pool():
            return []
        return [
            i for i, embeds in enumerate(relations.example_embeds)
            if i and embeds is not None and len(embeds) and relations.thresholds[i] is None
        ]  # fmt: skip

    def call_time_decision_logits(
        self, pair_embeds: torch.Tensor, relations: CallTimeRelations, logits: torch.Tensor, logit_scale, bars
    ) -> torch.Tensor:
        """The decision logits of `pair_embeds` under call-time `relations`, `(batch, len(labels))`: the margins
        past the bars (`CallTimeRelations.decision_logits`), a relation with an examples' detector scored by it."""
        decision = relations.decision_logits(logits.float(), logit_scale, bars)
        detectors = self.example_detectors(relations)
        if detectors:
            pairs = F.normalize(pair_embeds.detach().float(), dim=-1)
            for i, (weight, offset, spread) in detectors.items():
                decision[:, i] = (pairs @ weight.to(pairs.device) - offset) / spread
        return decision

    def get_relation_features(self) -> torch.Tensor:
        """H_r for every relation of the bank, `(num_relations, pair_embed_dim)`; cached while in eval mode."""
        if self._relation_cache is not None and not self.training:
            return self._relation_cache
        if self.relation_embeddings is not None:
            embeds = self.relation_embeddings.weight
        else:
            embeds = self._frozen_relation_states
            if embeds is None:
                inputs = self._tokenized_relations(self.device)
                with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_relation_encoder):
                    hidden = self.relation_model(**inputs).last_hidden_state  # (relations, seq, hidden)
                embeds = masked_mean(hidden, inputs["attention_mask"])
                if self.config.freeze_relation_encoder:
                    self._frozen_relation_states = embeds.detach()
            embeds = self.project_relation_states(embeds)
        if not self.training:
            embeds = embeds.detach()
            self._relation_cache = embeds
        return embeds

    # ------------------------------------------------------------------------------------------------- pair side
    def get_pair_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        subject_index: torch.Tensor | None = None,
        object_index: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        caption_input_ids: torch.Tensor | None = None,
        caption_attention_mask: torch.Tensor | None = None,
        caption_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """H_E = σ(W[H_s; H_o] + b), `(batch, pair_embed_dim)`."""
        return self._encode_pairs(
            input_ids,
            attention_mask,
            subject_index,
            object_index,
            pixel_values,
            image_mask,
            token_type_ids,
            caption_input_ids,
            caption_attention_mask,
            caption_mask,
        )[0]

    def _encode_pairs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        subject_index: torch.Tensor | None = None,
        object_index: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        caption_input_ids: torch.Tensor | None = None,
        caption_attention_mask: torch.Tensor | None = None,
        caption_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, ModelOutput]:
        """H_E and the text encoder's outputs (with its hidden states / attentions when asked)."""
        text_outputs = self.text_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        # Each stage reads its inputs in its own dtype, so a copy whose encoders run in bfloat16
        # (`precision_roc.bfloat16_encoders`) hands float32 to the float32 head and retrieval.
        head_dtype = _compute_dtype(self.pair_proj)
        fusion_dtype = head_dtype if self.fusion is None else _compute_dtype(self.fusion)
        text_states = text_outputs.last_hidden_state.to(fusion_dtype)  # (batch, text_len, hidden)
        text_len = text_states.shape[1]
        marker_pooling = self.config.entity_pooling == "marker"
        if marker_pooling and (subject_index is None or object_index is None):
            raise ValueError("`subject_index` and `object_index` are required with entity_pooling='marker'.")
        hidden_states, padding_mask = text_states, attention_mask == 0
        if caption_input_ids is not None:
            if self.caption_type_embedding is None:
                raise ValueError(
                    "`caption_input_ids` were given to a model without caption tokens (config.caption_tokens=False); "
                    "use the processor's caption_mode='text' for it."
                )
            if caption_attention_mask is None:
                caption_attention_mask = torch.ones_like(caption_input_ids)
            caption_states = self.text_model(
                input_ids=caption_input_ids, attention_mask=caption_attention_mask
            ).last_hidden_state.to(fusion_dtype)  # (batch, caption_len, hidden)
            caption_padding = caption_attention_mask == 0
            if caption_mask is not None:
                caption_padding = caption_padding | ~caption_mask.bool()[:, None]
            caption_states = caption_states + self.caption_type_embedding.to(fusion_dtype)
            hidden_states = torch.cat([hidden_states, caption_states], dim=1)
            padding_mask = torch.cat([padding_mask, caption_padding], dim=1)
        if pixel_values is not None and self.vision_model is not None:
            image_states = self.vision_proj(self._image_tokens(pixel_values))  # (batch, patches, hidden)
            image_states = image_states.to(fusion_dtype)
            if image_mask is None:
                image_mask = torch.ones(len(pixel_values), dtype=torch.bool, device=pixel_values.device)
            image_padding = ~image_mask.bool()[:, None].expand(-1, image_states.shape[1])
            hidden_states = torch.cat([hidden_states, image_states], dim=1)
            padding_mask = torch.cat([padding_mask, image_padding], dim=1)
        markers = torch.stack([subject_index, object_index], dim=1) if marker_pooling else None
        if self.fusion is not None and markers is not None and not self.training:
            # Inference reads only the two marker outputs, so the last fusion layer computes only those. Training runs
            # the full layers: same result, and the dropout draws, hence seeded runs, stay as published.
            pooled = self.fusion(hidden_states, padding_mask, output_positions=markers).flatten(1)
        else:
            if self.fusion is not None:
                hidden_states = self.fusion(hidden_states, padding_mask)
            text_states = hidden_states[:, :text_len]
            if markers is not None:
                rows = torch.arange(len(text_states), device=text_states.device)[:, None]
                pooled = text_states[rows, markers].flatten(1)  # [H_s; H_o]
            else:
                pooled = masked_mean(text_states, attention_mask)
        return self.pair_activation(self.pair_proj(pooled.to(head_dtype))), text_outputs

    def _image_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # the processor gives float32 pixels; a bf16 / fp16 vision tower needs its own dtype (as HF vision models cast)
        dtype = next(self.vision_model.parameters()).dtype
        features = self.vision_model.forward_features(pixel_values.to(dtype))
        if features.dim() == 4:  # CNN feature map (batch, channels, h, w) -> (batch, h*w, channels)
            features = features.flatten(2).transpose(1, 2)
        return features

    def _score_offsets(self, logits: torch.Tensor) -> torch.Tensor:
        """`config.relation_score_offsets` as a row over the bank (zeros for relations without one)."""
        offsets = self.config.relation_score_offsets
        row = [float(offsets.get(label, 0.0)) for label in self.relation_labels]
        return torch.tensor(row, device=logits.device, dtype=logits.dtype)

    def get_logit_scale(self) -> torch.Tensor:
        if self.logit_scale is None:
            return torch.tensor(1.0 / self.config.retrieval_temperature, device=self.device)
        return self.logit_scale.clamp(max=math.log(self.config.max_logit_scale)).exp().squeeze(0)  # shape ()

    # --------------------------------------------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        subject_index: torch.Tensor | None = None,
        object_index: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        caption_input_ids: torch.Tensor | None = None,
        caption_attention_mask: torch.Tensor | None = None,
        caption_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        relations: dict | CallTimeRelations | None = None,
        **kwargs,
    ) -> ROCOutput | tuple:
        r"""
        relations (`dict` or `CallTimeRelations`, *optional*):
            Relations for this call only, in the place of the bank: `{label: description}` or `{label:
            {"description": ..., "threshold": ...}}`. The logits' columns are then "no relation" followed by the
            given relations (`model.call_time_relations(relations).labels`); the model and its bank are unchanged.
            The output's `decision_logits` say what is predicted (argmax) and with what score (softmax). Inference
            only (no `labels`).
        """
        if relations is not None:
            if labels is not None:
                raise ValueError("`labels` index the bank; they cannot be combined with call-time `relations`.")
            relations = self.call_time_relations(relations)
        output_hidden_states = kwargs.pop("output_hidden_states", None)
        output_attentions = kwargs.pop("output_attentions", None)
        kwargs.pop("num_items_in_batch", None)  # Trainer's loss normalisation: the losses here are means already
        if kwargs:
            raise TypeError(f"ROCModel.forward got unexpected arguments {sorted(kwargs)}.")
        output_hidden_states = bool(
            self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        output_attentions = bool(self.config.output_attentions if output_attentions is None else output_attentions)
        pair_embeds, text_outputs = self._encode_pairs(
            input_ids,
            attention_mask,
            subject_index,
            object_index,
            pixel_values,
            image_mask,
            token_type_ids,
            caption_input_ids,
            caption_attention_mask,
            caption_mask,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        relation_embeds = logit_scale = relation_bars = decision_logits = None
        if self.classifier is not None:
            logits = self.classifier(pair_embeds)
            loss = F.cross_entropy(logits, labels) if labels is not None else None
        else:
            if relations is not None:
                relation_embeds = self.get_call_time_relation_features(relations)
                relation_bars = self.relation_bars(relations, relation_embeds)
            else:
                relation_embeds = self.get_relation_features()
            relation_embeds = relation_embeds.to(device=pair_embeds.device, dtype=pair_embeds.dtype)
            logit_scale = self.get_logit_scale()
            # (batch, relations): scaled cosine similarity of every pair to every relation
            logits = logit_scale * F.normalize(pair_embeds, dim=-1) @ F.normalize(relation_embeds, dim=-1).t()
            if relations is not None:
                decision_logits = self.call_time_decision_logits(
                    pair_embeds, relations, logits, logit_scale, relation_bars
                )
            loss = None
            if labels is not None:
                if self.config.loss_mode == "bank":
                    loss = bank_contrastive_loss(logits, labels)
                else:
                    loss = in_batch_contrastive_loss(pair_embeds, relation_embeds, labels, logit_scale)
            # after the loss: offsets calibrate predictions of relations added after training, they are not trained
            if self.config.relation_score_offsets and relations is None:
                logits = logits + logit_scale * self._score_offsets(logits)
        output = ROCOutput(
            loss=loss,
            logits=logits,
            pair_embeds=pair_embeds,
            relation_embeds=relation_embeds,
            logit_scale=logit_scale,
            hidden_states=text_outputs.hidden_states if output_hidden_states else None,
            attentions=text_outputs.attentions if output_attentions else None,
            relation_bars=relation_bars,
            decision_logits=decision_logits,
        )
        if return_dict is False:
            return output.to_tuple()
        return output


__all__ = [
    "ROCModel",
    "ROCOutput",
    "ROCPreTrainedModel",
    "bank_contrastive_loss",
    "in_batch_contrastive_loss",
]
