"""`pipeline("multimodal-relation-extraction", model=..., trust_remote_code=True)` for ROC models.

Input per example: `{"tokens": [...], "subject": {"start", "end", "type"}, "object": {...}, "image": optional,
"caption": optional}` (`caption`: a text describing the image, for a model trained with captions); the object may
be a visual object `{"box": [cx, cy, w, h], "type": "OBJECT"}` (MORE), a region of the image.
Output per example: the `top_k` relations `[{"relation", "score", "description"}, ...]`, best first (3 by default;
`top_k=None` returns every relation, as in text-classification), where `score` is the softmax over the relation bank
of the scaled cosine similarities.

`relations={label: description | {"description", "threshold", "examples", "symmetric"}}` (or a list of labels, each
described by its own words) scores this call against the given relations (plus the model's "no relation") instead of
the bank; the model is unchanged. Each relation must pass a bar (`threshold`): the given one, else for a relation the
model was not trained on the cosine only 5% of its training pairs reach (`ROCModel.relation_bars`), else "no
relation"'s own similarity. Each entry then also has `similarity` (the cosine) and `threshold` (its bar, None where it
competes with "no relation"), and `score` is the softmax of the margins past the bars, so the first entry is always
the prediction. `examples` (a few labelled pairs) make the relation's embedding their prototype with its
description, and a detector fit on them against the model's training pairs decides whether the relation holds
(`ROCModel.example_detectors`; its `threshold` is then None). This file is copied next to the weights.
"""

import math
from typing import Any

import torch
from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import logging

from .configuration_roc import CAPTIONS_IGNORED, reads_captions
from .precision_roc import InferenceCopy, precision_from_quantize, resolve_precision
from .processing_roc import is_visual_object


logger = logging.get_logger(__name__)

TASK = "multimodal-relation-extraction"
_REQUIRED_KEYS = ("tokens", "subject", "object")
DEFAULT_TOP_K = 3
_UNSET = object()  # `top_k` not given: keep the default; `None` means every relation


class ROCRelationExtractionPipeline(Pipeline):
    """Scores an entity pair of a sentence (optionally with its image) against every relation of the model's bank."""

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False

    def __init__(self, *args, precision: str = "auto", quantize: str | None = None, **kwargs):
        """`precision`: `"auto"` (encoders and fusion layers in bfloat16 on a CPU with hardware bfloat16; the text
        encoder in ONNX Runtime on an AMD CPU without it, when installed; else float32), `"float32"`, `"bfloat16"`,
        `"int8"` or `"onnxruntime"` (CPU only); see `modeling_roc.for_inference`. The model given is not changed.
        `quantize="int8"` is the older spelling of `precision="int8"`. A copy (bfloat16, int8, onnxruntime) is made
        again when `self.model`'s config or weights change (`pipe.model.set_relation_bank(...)`, `load_state_dict`).
        `self.resolved_precision` says what `precision` chose on this machine."""
        precision = precision_from_quantize(precision, quantize)
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError(f"The {TASK} pipeline needs a ROCProcessor (`processor=`), none was given or found.")
        self.tokenizer = self.processor.tokenizer  # lets the base class pad batches (batch_size > 1)
        # scored with a copy at `precision`; `self.model` stays as given, so `save_pretrained` writes the float32 model
        self.precision = precision
        # what `precision` means here ("auto" differs by CPU): said once, and kept for callers to read
        self.resolved_precision = resolve_precision(precision, self.model.device)
        logger.info(f"scoring in {self.resolved_precision} (precision={precision!r})")
        self._scoring = InferenceCopy(self.model, precision)  # made now: a bad `precision` fails here, in one line

    @property
    def scoring_model(self):
        """The model the pipeline scores with: `self.model` at `self.precision`, remade after its config or any of its
        weights changed (`InferenceCopy`)."""
        return self._scoring.model

    def save_pretrained(self, save_directory, **kwargs) -> None:
        """Model, code, tokenizers and the processor, so the folder loads with `pipeline(..., trust_remote_code=True)`.

        (`Pipeline.save_pretrained` saves tokenizers and image processors but not a `processor`.)
        """
        super().save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory)

    def __call__(self, inputs, *args, **kwargs):
        """One example (a dict), a list of them, a generator, or a `datasets.Dataset` of rows with the example's keys
        (extra columns such as `relation` are ignored): a Dataset is streamed like a torch dataset, one result per
        row, in order (`for result in pipe(dataset["validation"], batch_size=32)`)."""
        if type(inputs).__module__.startswith("datasets.") and hasattr(inputs, "column_names"):
            inputs = _DatasetRows(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def _sanitize_parameters(self, top_k: int | None = _UNSET, relations: dict | None = None, **kwargs):
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} got unknown arguments {sorted(kwargs)} (it takes `top_k` and `relations`)."
            )
        forward_kwargs, postprocess_kwargs = {}, {}
        if top_k is not _UNSET:
            if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
                raise ValueError(f"`top_k` must be an integer >= 1, or None for every relation; got {top_k!r}.")
            postprocess_kwargs["top_k"] = top_k
        if relations is not None:
            model = self.scoring_model
            relation_set = model.call_time_relations(relations)  # checked once per call, not per example
            relation_set = model.embed_examples(relation_set, self.processor)  # examples encoded once per call
            forward_kwargs["relations"] = postprocess_kwargs["relations"] = relation_set
            return {"relations": relation_set}, forward_kwargs, postprocess_kwargs
        return {}, forward_kwargs, postprocess_kwargs

    def preprocess(self, inputs: dict[str, Any], relations=None) -> dict[str, torch.Tensor]:
        if not isinstance(inputs, dict) or any(key not in inputs for key in _REQUIRED_KEYS):
            raise ValueError(
                f"Each input must be a dict with keys {_REQUIRED_KEYS} (and optionally 'image' and 'caption'), got "
                f"{inputs!r}."
            )
        image = inputs.get("image")
        has_vision = getattr(self.model, "vision_model", None) is not None
        if is_visual_object(inputs["object"]) and (image is None or not has_vision):
            raise ValueError(
                "The object is a region of the image (a 'box', MORE), so it needs the post's image and a model with a "
                "vision encoder; got " + ("no image." if image is None else "a text-only model.")
            )
        if image is not None and not has_vision:
            logger.warning_once(
                "This ROC model is text-only (no vision encoder): the images given are ignored and relations are "
                "predicted from the text."
            )
        caption = inputs.get("caption")
        if caption is not None and not isinstance(caption, str):
            raise ValueError(
                f"'caption' must be a string (a text describing the image), got {type(caption).__name__}."
            )
        if caption is not None and not reads_captions(self.model.config):
            logger.warning_once(CAPTIONS_IGNORED)
            caption = None
        encoded = self.processor(
            inputs["tokens"],
            inputs["subject"],
            inputs["object"],
            images=image if has_vision else None,
            captions=caption,
        )
        if self.processor.caption_mode == "tokens" and "caption_input_ids" not in encoded:
            # every example carries caption inputs (masked when it has none), so that examples batch together
            encoded.update(self.processor.caption_token_inputs([None]))
        if has_vision and "pixel_values" not in encoded:
            # keep every example's keys identical so that examples can be batched together
            encoded.update(self.processor.no_image_inputs(1))
        encoded = dict(encoded)
        if "pixel_values" in encoded:
            # transformers' batch collate fails on `pixel_values` without a feature extractor (NameError on
            # `f_padding_value`, transformers 5.23) but concatenates a key named `image`: carry the pixels under it.
            encoded["image"] = encoded.pop("pixel_values")
        if relations is not None:
            # which given relations this pair's entity types allow (`allowed_head` / `allowed_tail`), one row per
            # example so that batches split back
            types = (inputs["subject"].get("type"), inputs["object"].get("type"))
            encoded["relation_allowed"] = torch.tensor([relations.allowed(*types)])
        return encoded

    def _forward(self, model_inputs: dict[str, torch.Tensor], relations=None) -> dict[str, torch.Tensor]:
        if "image" in model_inputs:
            model_inputs["pixel_values"] = model_inputs.pop("image")
        if relations is None:
            return {"logits": self.scoring_model(**model_inputs).logits}
        allowed = model_inputs.pop("relation_allowed")
        outputs = self.scoring_model(**model_inputs, relations=relations)
        # one row per example, so that batched outputs split back into examples
        batch = len(outputs.logits)
        return {
            "logits": outputs.logits,
            "logit_scale": outputs.logit_scale.reshape(1).expand(batch),
            "relation_bars": outputs.relation_bars.reshape(1, -1).expand(batch, -1),
            "decision_logits": outputs.decision_logits.masked_fill(
                ~allowed.to(outputs.decision_logits.device), -math.inf
            ),
        }

    def postprocess(
        self, model_outputs: dict[str, torch.Tensor], top_k: int | None = DEFAULT_TOP_K, relations=None
    ) -> list[dict[str, Any]]:
        logits = model_outputs["logits"][0].float()
        if relations is None:
            labels, bank = self.model.config.relation_labels, self.model.config.relation_bank
            probabilities = logits.softmax(-1)
        else:
            # the score is the softmax of each relation's margin past its bar, so the best score is the decision
            labels, bank = list(relations.labels), relations.bank
            scale = model_outputs["logit_scale"].float().reshape(-1)[0]
            bars = model_outputs["relation_bars"].float().reshape(-1, len(labels))[0]
            probabilities = model_outputs["decision_logits"][0].float().softmax(-1)
            similarity = (logits / scale).tolist()
        scores, indices = probabilities.topk(len(labels) if top_k is None else min(top_k, len(labels)))
        ranked = [
            {"relation": labels[i], "score": score, "description": bank[labels[i]]}
            for score, i in zip(scores.tolist(), indices.tolist())
        ]
        if relations is not None:
            for entry in ranked:
                i = labels.index(entry["relation"])
                entry["similarity"] = similarity[i]
                entry["threshold"] = None if i == 0 or bars[i].isnan() else float(bars[i])
        return ranked


class _DatasetRows(torch.utils.data.Dataset):
    """A `datasets.Dataset` as the torch dataset the base pipeline streams (it iterates torch datasets, and took a
    `datasets.Dataset` for a single malformed example); each row keeps only the keys an example reads."""

    KEYS = (*_REQUIRED_KEYS, "image", "caption")

    def __init__(self, rows):
        missing = [key for key in _REQUIRED_KEYS if key not in rows.column_names]
        if missing:
            raise ValueError(f"The dataset has no {missing} column(s); an example needs {_REQUIRED_KEYS}.")
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        return {key: row[key] for key in self.KEYS if key in row and row[key] is not None}


def register_task() -> None:
    """Register the task for this process, once per pipeline class: the same class registered again (a module loaded
    anew) changes nothing and would only log transformers' "already registered. Overwriting" warning."""
    registered = PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl")
    if registered is not None and registered.__qualname__ == ROCRelationExtractionPipeline.__qualname__:
        if registered is ROCRelationExtractionPipeline:
            return
        del PIPELINE_REGISTRY.supported_tasks[TASK]  # this module's class (e.g. the remote code's) replaces it quietly
    PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=ROCRelationExtractionPipeline, pt_model=AutoModel)


register_task()

__all__ = ["ROCRelationExtractionPipeline", "TASK"]
