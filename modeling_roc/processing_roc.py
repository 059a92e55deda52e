"""ROC processor: entity-marked, type-prompted text (and optional images) -> model inputs.

A sentence `Rafael Nadal gets engaged to Mery Perello` with subject words [0, 2) and object words [5, 7) becomes
`<subj> Rafael Nadal [ person ] </subj> gets engaged to <obj> Mery Perello [ person ] </obj>`. The entity types come
from an NER tool, never from the gold relation label. An entity that is a region of the image (MORE's objects: a
`box` instead of a word span) gets an empty marked slot after the sentence, `<obj> [ object in the image ] </obj>`,
and the example's image input becomes that region, so the fusion encoder lets the slot attend to the object's patches.
This file is copied next to the weights (remote code).
"""

import functools
import math
import numbers
import os
import re
from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
from transformers import AutoTokenizer, BatchFeature
from transformers.processing_utils import ProcessorMixin

from .configuration_roc import ENTITY_MARKERS, resolve_encoder_path


# OntoNotes (stanza / spaCy English NER) and CoNLL coarse types as words a pretrained encoder already knows.
DEFAULT_TYPE_WORDS = {
    "PERSON": "person",
    "PER": "person",
    "NORP": "nationality or group",
    "FAC": "facility",
    "ORG": "organization",
    "GPE": "country or city",
    "LOC": "location",
    "PRODUCT": "product",
    "EVENT": "event",
    "WORK_OF_ART": "work of art",
    "LAW": "law",
    "LANGUAGE": "language",
    "DATE": "date",
    "TIME": "time",
    "PERCENT": "percent",
    "MONEY": "money",
    "QUANTITY": "quantity",
    "ORDINAL": "ordinal",
    "CARDINAL": "number",
    "MISC": "miscellaneous",
    "OBJECT": "object in the image",  # MORE's visual objects
}
# Type written for an entity the NER tool did not recognise (a tweet handle such as `@Titans`, say).
UNKNOWN_TYPE = "UNKNOWN"
# An image given as text that is not a file or URL is read as base64 only if it could be base64 (a missing path was
# reported as "Invalid base64" before).
BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=\s]+")
UNKNOWN_TYPE_WORD = "entity"
CaptionMode = Literal["text", "tokens"]
CAPTION_MODES = get_args(CaptionMode)


def plain_text(word: str, special_tokens: Sequence[str] = ()) -> str:
    """A piece of user text (a post's word, an NER type, a caption) that can never become a special token.

    The entity markers and the tokenizer's own special tokens (`special_tokens`: `[SEP]`, `[PAD]`, `[MASK]`...) are
    matched in raw text, so a literal `<obj>` or `[SEP]` in a post would be encoded as that token: it would move the
    position the model reads the entity from, or end a segment early. Each is spelled with spaces inside its
    brackets instead (`< obj >`, `[ SEP ]`), which a WordPiece tokenizer reads as the same ordinary tokens as the
    unbracketed text would give.
    """
    pattern = _special_token_pattern(tuple(special_tokens))
    return pattern.sub(lambda found: f"{found.group(0)[0]} {found.group(0)[1:-1]} {found.group(0)[-1]}", word)


@functools.lru_cache(maxsize=8)
def _special_token_pattern(special_tokens: tuple[str, ...]) -> "re.Pattern[str]":
    """One compiled pattern per tokenizer's special tokens (plus the markers), not one per word."""
    tokens = sorted({*ENTITY_MARKERS, *(t for t in special_tokens if len(t) >= 3)}, key=len, reverse=True)
    return re.compile("|".join(re.escape(token) for token in tokens), re.IGNORECASE)


def is_visual_object(entity: dict) -> bool:
    """An entity given as an image region (`box`) instead of a word span, like MORE's objects."""
    return entity.get("start") is None and entity.get("box") is not None


def crop_box(image, box: Sequence[float], example: int = 0):
    """The region `[cx, cy, w, h]` (fractions of the image size, as MORE stores it) of a PIL image, at least 1 px."""
    try:
        cx, cy, w, h = (float(v) for v in box)
    except (TypeError, ValueError) as err:
        raise ValueError(f"example {example}: an object box must be [cx, cy, w, h], got {box!r}") from err
    if not all(math.isfinite(v) for v in (cx, cy, w, h)) or w <= 0 or h <= 0:
        raise ValueError(f"example {example}: an object box needs finite values and a positive size, got {box!r}")
    width, height = image.size
    left = min(max(math.floor((cx - w / 2) * width), 0), width - 1)
    top = min(max(math.floor((cy - h / 2) * height), 0), height - 1)
    right = max(min(math.ceil((cx + w / 2) * width), width), left + 1)
    bottom = max(min(math.ceil((cy + h / 2) * height), height), top + 1)
    return image.crop((left, top, right, bottom))


def is_word_offset(value: Any) -> bool:
    """An integer offset: `1.7`, `True` or `"1"` are refused, not turned into 1 (that would move the entity)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_span(span: dict, role: str, num_words: int, example: int) -> tuple[int, int]:
    if not isinstance(span, dict) or not all(is_word_offset(span.get(key)) for key in ("start", "end")):
        raise ValueError(f"example {example}: {role} must be a dict with integer 'start' and 'end', got {span!r}")
    start, end = int(span["start"]), int(span["end"])
    if not 0 <= start < end <= num_words:
        raise ValueError(
            f"example {example}: {role} span [{start}, {end}) is out of range for {num_words} words "
            "(word offsets, end exclusive)."
        )
    return start, end


def keep_positions(length: int, blocks: list[tuple[int, int]], markers: list[int], budget: int) -> list[int]:
    """Token positions to keep so that at most `budget` remain and every entity marker survives.

    Markers come first, then the entity blocks (closest to a marker first), then context by distance to the
    blocks. When both entities fit in one window, the text between them counts as part of the block, so the kept
    text stays contiguous; otherwise each entity keeps its own context and the middle is cut.
    """
    if length <= budget:
        return list(range(length))
    if len(markers) > budget:
        raise ValueError(f"max_length leaves room for {budget} tokens, fewer than the {len(markers)} entity markers.")
    union = (min(b[0] for b in blocks), max(b[1] for b in blocks))
    if union[1] - union[0] <= budget:
        blocks = [union]

    def priority(pos: int) -> tuple[int, int]:
        if pos in markers:
            return (0, 0)
        if any(start <= pos < end for start, end in blocks):
            return (1, min(abs(pos - m) for m in markers))
        return (2, min(min(abs(pos - start), abs(pos - (end - 1))) for start, end in blocks))

    return sorted(sorted(range(length), key=lambda p: (priority(p), p))[:budget])


class ROCProcessor(ProcessorMixin):
    r"""
    Builds ROC inputs: entity markers and NER type prompts in the text, tokenized with markers that survive
    truncation; images (optional) transformed with the vision encoder's timm data config.

    Args:
        tokenizer (`PreTrainedTokenizerBase`):
            The text encoder's tokenizer, with `ENTITY_MARKERS` added as special tokens.
        image_config (`dict`, *optional*):
            timm data config of the vision encoder (`input_size`, `mean`, `std`, `interpolation`, `crop_pct`, ...).
            `None` for a text-only model.
        max_length (`int`, *optional*, defaults to 128):
            Token budget of the text, special tokens included.
        use_entity_types (`bool`, *optional*, defaults to `True`):
            Write `[ type ]` prompts inside the markers (off for the "w/o entity types" ablation).
        type_words (`dict[str, str]`, *optional*):
            NER type -> words written in the prompt. Unlisted types are written lower-cased with `_` as spaces.
        caption_mode (`str`, *optional*, defaults to `"text"`):
            Where a caption (a text of the image) goes: `"text"` appends it to the marked text as a second segment;
            `"tokens"` encodes it on its own (`caption_input_ids`), for a model with `caption_tokens=True` that hands
            its encoded tokens to the fusion layers, the slot where ROC puts image patches.
        max_caption_length (`int`, *optional*, defaults to 64):
            Token budget of a caption encoded on its own (`caption_mode="tokens"`), special tokens included.
    """

    def __init__(
        self,
        tokenizer=None,
        image_config: dict | None = None,
        max_length: int = 128,
        use_entity_types: bool = True,
        type_words: dict[str, str] | None = None,
        caption_mode: CaptionMode = "text",
        max_caption_length: int = 64,
        **kwargs,
    ):
        if caption_mode not in CAPTION_MODES:
            raise ValueError(f"`caption_mode` must be one of {CAPTION_MODES}, got {caption_mode!r}.")
        if max_caption_length < 3:
            raise ValueError(f"`max_caption_length` must be >= 3 ([CLS] word [SEP]), got {max_caption_length}.")
        self.caption_mode = caption_mode
        self.max_caption_length = max_caption_length
        self.image_config = image_config
        self.max_length = max_length
        self.use_entity_types = use_entity_types
        self.type_words = dict(DEFAULT_TYPE_WORDS if type_words is None else type_words)
        self._image_transform = None
        super().__init__(tokenizer, **kwargs)
        missing = [m for m in ENTITY_MARKERS if m not in self.tokenizer.get_vocab()]
        if missing:
            raise ValueError(
                f"The tokenizer lacks the entity markers {missing}; add them with "
                f"tokenizer.add_special_tokens({{'additional_special_tokens': {list(ENTITY_MARKERS)}}}) "
                "(ROCProcessor.from_encoders does) and resize the text encoder's embeddings."
            )

    @classmethod
    def from_encoders(
        cls,
        text_encoder: str,
        vision_encoder: str | None = None,
        vision_image_size: int | None = None,
        **kwargs,
    ) -> "ROCProcessor":
        """Processor for a model built with `ROCModel.from_encoders` from the same encoders."""
        tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path(text_encoder))
        tokenizer.add_special_tokens({"additional_special_tokens": list(ENTITY_MARKERS)})
        image_config = None
        if vision_encoder is not None:
            try:  # timm is needed for images only (and a try block keeps it out of the remote-code requirements)
                import timm
                from timm.data import resolve_model_data_config
            except ImportError as err:
                raise ImportError(f"vision_encoder={vision_encoder!r} needs timm: pip install timm") from err

            size_kwargs = {"img_size": vision_image_size} if vision_image_size else {}
            vision = timm.create_model(vision_encoder, pretrained=False, num_classes=0, **size_kwargs)
            image_config = {
                k: list(v) if isinstance(v, tuple) else v for k, v in resolve_model_data_config(vision).items()
            }
            if vision_image_size:
                image_config["input_size"] = [3, vision_image_size, vision_image_size]
        return cls(tokenizer=tokenizer, image_config=image_config, **kwargs)

    # ---------------------------------------------------------------------------------------------------- text
    def type_prompt(self, entity_type: str | None) -> list[str]:
        """`"PERSON"` -> `["[", "person", "]"]`."""
        if not entity_type or entity_type == UNKNOWN_TYPE:
            words = UNKNOWN_TYPE_WORD
        else:
            words = self.type_words.get(entity_type, entity_type.replace("_", " ").lower())
        return ["[", *self._plain(words).split(), "]"]

    def _plain(self, text: str) -> str:
        return plain_text(text, tuple(self.tokenizer.all_special_tokens))

    def mark_entities(self, tokens: Sequence[str], subject: dict, object: dict, example: int = 0) -> list[str]:
        """The words of the marked, type-prompted text (markers and prompts as extra words).

        Text entities are marked in place; a visual object (see `is_visual_object`) gets its marked slot after the
        sentence. An entity with `"masked": True` has its words replaced by the tokenizer's mask token (the training
        augmentation of `ROCDataCollator(mention_mask_prob=...)`); a mask token written in the text itself stays text.
        """
        entities = [(subject, "subject", ENTITY_MARKERS[:2]), (object, "object", ENTITY_MARKERS[2:])]
        spans = [
            (_check_span(entity, role, len(tokens), example), entity.get("type"), markers)
            for entity, role, markers in entities
            if not is_visual_object(entity)
        ]
        masked = {
            i
            for entity, _, _ in entities
            if entity.get("masked") and not is_visual_object(entity)
            for i in range(entity["start"], entity["end"])
        }
        words: list[str] = []
        for i in range(len(tokens) + 1):
            # close the entities ending here (inner one first), then open those starting here (outer one first)
            for (_, end), entity_type, (_, closer) in sorted(spans, key=lambda s: -s[0][0]):
                if end == i:
                    words += self._prompt(entity_type) + [closer]
            for (start, _), _, (opener, _) in sorted(spans, key=lambda s: -s[0][1]):
                if start == i:
                    words.append(opener)
            if i < len(tokens):
                words.append(self.tokenizer.mask_token if i in masked else self._plain(tokens[i]))
        for entity, _, (opener, closer) in entities:
            if is_visual_object(entity):
                words += [opener, *self._prompt(entity.get("type")), closer]
        return words

    def _prompt(self, entity_type: str | None) -> list[str]:
        return self.type_prompt(entity_type) if self.use_entity_types else []

    def _encode_text(
        self, tokens, subject, object, example: int, caption: str | None = None
    ) -> tuple[list[int], int, int]:
        """Token ids of the marked text (plus, given, the caption as a second segment) and the two marker positions.

        The marked text has the budget first: truncation shortens the caption, never an entity marker; a caption
        that no longer fits is left out.
        """
        words = self.mark_entities(tokens, subject, object, example)
        encoding = self.tokenizer(words, is_split_into_words=True, add_special_tokens=True)
        ids, word_ids = encoding["input_ids"], encoding.word_ids()
        text = [i for i, w in enumerate(word_ids) if w is not None]  # positions of text tokens, specials excluded
        prefix, suffix = ids[: text[0]], ids[text[-1] + 1 :]
        text_ids, text_word_ids = [ids[i] for i in text], [word_ids[i] for i in text]
        marker_word = {w: i for i, w in enumerate(words) if w in ENTITY_MARKERS}
        position = {m: text_word_ids.index(marker_word[m]) for m in ENTITY_MARKERS}
        subj_open, subj_close, obj_open, obj_close = (position[m] for m in ENTITY_MARKERS)
        kept = keep_positions(
            len(text_ids),
            [(subj_open, subj_close + 1), (obj_open, obj_close + 1)],
            list(position.values()),
            budget=self.max_length - len(prefix) - len(suffix),
        )
        input_ids = prefix + [text_ids[p] for p in kept] + suffix
        if caption is not None:
            room = self.max_length - len(input_ids) - 1  # one more separator closes the caption segment
            caption_ids = self.tokenizer(self._plain(caption), add_special_tokens=False)["input_ids"][: max(room, 0)]
            if caption_ids:
                input_ids += caption_ids + [self.tokenizer.sep_token_id]
        return input_ids, len(prefix) + kept.index(subj_open), len(prefix) + kept.index(obj_open)

    def caption_token_inputs(self, captions: Sequence[str | None]) -> dict[str, torch.Tensor]:
        """Each caption encoded on its own (`[CLS] caption [SEP]`, at most `max_caption_length` tokens).

        A row without a caption is encoded as `[CLS] [SEP]` (a fully masked row would make attention divide by
        zero) and marked False in `caption_mask`, so the fusion layers ignore its tokens.
        """
        encoding = self.tokenizer(
            [self._plain(caption) if caption is not None else "" for caption in captions],
            padding=True,
            truncation=True,
            max_length=self.max_caption_length,
            return_tensors="pt",
        )
        return {
            "caption_input_ids": encoding["input_ids"],
            "caption_attention_mask": encoding["attention_mask"],
            "caption_mask": torch.tensor([caption is not None for caption in captions]),
        }

    def collate(
        self, rows: Sequence[dict], label_column: str = "relation", use_images: bool | None = None
    ) -> BatchFeature:
        """A batch from dataset rows `{tokens, subject, object, relation?, image?}`, as a `data_collator`.

        With `Trainer`: `Trainer(model, args, data_collator=processor.collate, ...)` and
        `TrainingArguments(remove_unused_columns=False)` (Trainer otherwise drops the columns this reads, since they
        are not arguments of `forward`). Images are read when the processor has an image transform and the rows an
        `image` column (`use_images` decides otherwise); labels when the rows have `label_column`. The training
        script's collator (`roc_mre.training.data_collator`) adds masking, captions and row indices on top.
        """
        if not rows:
            raise ValueError("`collate` got no rows.")
        first = rows[0]
        if use_images is None:
            use_images = self.image_config is not None and "image" in first
        return self(
            [row["tokens"] for row in rows],
            [row["subject"] for row in rows],
            [row["object"] for row in rows],
            images=[row.get("image") for row in rows] if use_images else None,
            labels=[row[label_column] for row in rows] if label_column in first else None,
        )

    # -------------------------------------------------------------------------------------------------- images
    def load_image(self, image: Any, example: int = 0):
        """A PIL image from a PIL image, a path, a URL, base64 text or an (H, W[, C]) uint8 numpy array."""
        from PIL import Image

        if isinstance(image, Image.Image):
            return image.convert("RGB")
        if type(image).__module__ == "numpy":
            if image.ndim not in (2, 3) or str(image.dtype) != "uint8":
                raise ValueError(
                    f"example {example}: a numpy image must be uint8 (H, W) or (H, W, C), got {image.dtype} "
                    f"{tuple(image.shape)}"
                )
            return Image.fromarray(image).convert("RGB")
        if not isinstance(image, (str, os.PathLike)):
            raise ValueError(
                f"example {example}: an image must be a PIL image, a path, a URL or a numpy array, got "
                f"{type(image).__name__}"
            )
        from transformers.image_utils import load_image

        text = os.fspath(image)
        if text.startswith(("http://", "https://", "data:")):
            return load_image(text).convert("RGB")
        if os.path.isfile(text):
            try:
                with Image.open(text) as opened:
                    opened.load()  # decoded now: a truncated file fails here, named, not later in a transform
                    return opened.convert("RGB")
            except Exception as err:  # OSError, Pillow's DecompressionBombError, a decoder's ValueError...
                raise ValueError(f"example {example}: cannot read image {text}: {type(err).__name__}: {err}") from err
        if len(text) < 64 or not BASE64_TEXT.fullmatch(text):
            # a path that does not exist (base64 of an image is long, without dots or underscores): say so
            raise FileNotFoundError(f"example {example}: image not found: {os.path.abspath(text)}")
        try:
            return load_image(text).convert("RGB")
        except Exception as err:  # noqa: BLE001 - whatever the base64 decoder or Pillow raises
            raise ValueError(
                f"example {example}: the image string {text[:40]!r}... is neither an existing file, a URL nor "
                f"base64 of an image ({type(err).__name__})"
            ) from err

    def no_image_inputs(self, batch_size: int) -> dict[str, torch.Tensor]:
        """The inputs of `batch_size` examples without an image: zero pixels, masked out by `image_mask` False.

        Batches keep one structure whether or not their examples have images (DDP, compiled graphs and the
        pipeline's batching all want the same keys every step); the fusion layers never attend to these pixels.
        """
        size = tuple(self.image_config["input_size"])
        return {
            "pixel_values": torch.zeros((batch_size, *size)),
            "image_mask": torch.zeros(batch_size, dtype=torch.bool),
        }

    def _pixel_values(
        self, images: Sequence[Any], regions: Sequence[Sequence[float] | None]
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        if all(image is None for image in images):
            return None
        if self.image_config is None:
            raise ValueError("Images were given but this processor has no `image_config` (a text-only model).")
        if self._image_transform is None:
            try:
                from timm.data import create_transform
            except ImportError as err:
                raise ImportError("Reading images needs timm: pip install timm") from err

            config = {k: tuple(v) if isinstance(v, list) else v for k, v in self.image_config.items()}
            self._image_transform = create_transform(**config, is_training=False)
        pixels = []
        for example, (image, region) in enumerate(zip(images, regions)):
            if image is None:
                pixels.append(self.no_image_inputs(1)["pixel_values"][0])
                continue
            image = self.load_image(image, example)
            if region is not None:
                image = crop_box(image, region, example)
            pixels.append(self._image_transform(image))
        mask = torch.tensor([image is not None for image in images])
        return torch.stack(pixels), mask

    # ---------------------------------------------------------------------------------------------------- call
    def __call__(
        self,
        tokens: Sequence[str] | Sequence[Sequence[str]],
        subjects: dict | Sequence[dict],
        objects: dict | Sequence[dict],
        images: Any | Sequence[Any] | None = None,
        labels: int | Sequence[int] | None = None,
        captions: str | Sequence[str | None] | None = None,
        return_tensors: str = "pt",
    ) -> BatchFeature:
        """Encode one example or a batch.

        Args:
            tokens: the words of a sentence, or a list of such lists.
            subjects / objects: `{"start": int, "end": int, "type": str | None}` per example (word offsets, end
                exclusive; `type` from an NER tool). An object may instead be a visual object,
                `{"box": [cx, cy, w, h], "type": "OBJECT"}` (fractions of the image size).
            images: per example a PIL image, a path or `None`; for a visual object the box region is used.
            labels: per example a relation id.
            captions: per example a text describing the image (e.g. an MLLM's caption) or `None`. With
                `caption_mode="text"` it is appended as a second segment after the marked text (`[CLS] text [SEP]
                caption [SEP]`) and shortened first when the budget is short; with `"tokens"` it is encoded on its own.

        Returns:
            `BatchFeature` with `input_ids`, `attention_mask`, `subject_index`, `object_index`, and when given
            `pixel_values` + `image_mask` (False where an example has no image), `caption_input_ids` +
            `caption_attention_mask` + `caption_mask` (`caption_mode="tokens"`; False where an example has no
            caption) and `labels`.
        """
        single = len(tokens) == 0 or isinstance(tokens[0], str)
        if single:
            tokens, subjects, objects = [tokens], [subjects], [objects]
            images = None if images is None else [images]
            labels = None if labels is None else [labels]
            captions = None if captions is None else [captions]
        if not (len(tokens) == len(subjects) == len(objects)):
            raise ValueError(f"Got {len(tokens)} token lists, {len(subjects)} subjects and {len(objects)} objects.")
        for i, words in enumerate(tokens):
            if len(words) == 0:
                raise ValueError(f"example {i}: the token list is empty.")

        if captions is not None and len(captions) != len(tokens):
            raise ValueError(f"Got {len(captions)} captions for {len(tokens)} examples (use None for no caption).")
        captions = captions if captions is not None else [None] * len(tokens)
        for i, caption in enumerate(captions):
            if caption is not None and not isinstance(caption, str):
                raise ValueError(f"example {i}: a caption must be a string or None, got {type(caption).__name__}")
        in_text = captions if self.caption_mode == "text" else [None] * len(tokens)
        encoded = [
            self._encode_text(words, subject, object, i, caption)
            for i, (words, subject, object, caption) in enumerate(zip(tokens, subjects, objects, in_text))
        ]
        width = max(len(ids) for ids, _, _ in encoded)
        pad_id = self.tokenizer.pad_token_id or 0
        data = {
            "input_ids": torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _, _ in encoded]),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _, _ in encoded]),
            "subject_index": torch.tensor([s for _, s, _ in encoded]),
            "object_index": torch.tensor([o for _, _, o in encoded]),
        }
        if images is not None:
            if len(images) != len(tokens):
                raise ValueError(f"Got {len(images)} images for {len(tokens)} examples (use None for no image).")
            regions = [entity.get("box") if is_visual_object(entity) else None for entity in objects]
            pixels = self._pixel_values(images, regions)
            if pixels is not None:
                data["pixel_values"], data["image_mask"] = pixels
        if self.caption_mode == "tokens" and any(caption is not None for caption in captions):
            data.update(self.caption_token_inputs(captions))
        if labels is not None:
            data["labels"] = torch.as_tensor(labels, dtype=torch.long)
        return BatchFeature(data, tensor_type=None if return_tensors == "pt" else return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return [
            "input_ids",
            "attention_mask",
            "subject_index",
            "object_index",
            "pixel_values",
            "image_mask",
            "caption_input_ids",
            "caption_attention_mask",
            "caption_mask",
        ]


__all__ = [
    "CAPTION_MODES",
    "DEFAULT_TYPE_WORDS",
    "ROCProcessor",
    "UNKNOWN_TYPE",
    "crop_box",
    "is_visual_object",
    "keep_positions",
]
