"""Turn rows of the ROC datasets (as built by `datasets_scripts`) into model batches with a `ROCProcessor`.

Encoding happens in the collator, per batch, so no tokenized copy of the dataset is cached and a change of processor
settings (type prompts on/off, max length) needs no re-preprocessing.
"""

import io
import random
import re
from dataclasses import dataclass
from typing import Any

import torch
from transformers import BatchFeature

from modeling_roc.processing_roc import ROCProcessor, is_visual_object


@dataclass
class ROCDataCollator:
    """Collates rows `{tokens, subject, object, relation, image?}` into `ROCProcessor` outputs.

    Entities are word spans (MNRE) or, for the object, a visual object with a `box` (MORE); see `ROCProcessor`.

    Args:
        processor: the processor matching the model.
        use_images: read the `image` column (set it only for models with a vision encoder).
        label_column: the column holding the relation id.
        index_column: a column with each row's position in the split (added by `with_row_index`), returned as
            `example_index` so predictions can be traced back to rows after `gather_for_metrics`.
        mention_mask_prob: training augmentation: the probability that an entity's words are all replaced by the
            tokenizer's mask token (each entity drawn on its own; markers and type prompts stay). The model then has
            to read the context and the type instead of memorising names, which rarely recur between MNRE's splits.
        seed: with `epoch` and the row's `index_column` value, fixes each masking draw, so a resumed or multi-process
            run masks exactly what an uninterrupted single-process run does.
        use_captions: read the `caption` column (a text of the image, `None` where there is none) into the input,
            where the processor's `caption_mode` puts it (a second text segment, or tokens of their own).
        caption_dropout: training: the probability that a row's caption is left out (seeded like the masking), so
            the model also learns to predict from the text alone.
    """

    processor: ROCProcessor
    use_images: bool = False
    label_column: str = "relation"
    index_column: str | None = "example_index"
    mention_mask_prob: float = 0.0
    seed: int = 0
    epoch: int = 0
    use_captions: bool = False
    caption_dropout: float = 0.0

    def __post_init__(self):
        if not 0.0 <= self.mention_mask_prob <= 1.0:
            raise ValueError(f"`mention_mask_prob` must be in [0, 1], got {self.mention_mask_prob}.")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"`caption_dropout` must be in [0, 1], got {self.caption_dropout}.")
        if self.mention_mask_prob > 0 and self.processor.tokenizer.mask_token is None:
            raise ValueError("`mention_mask_prob` needs a tokenizer with a mask token; this one has none.")

    def mask_mentions(self, row: dict[str, Any]) -> tuple[dict, dict]:
        """The row's subject and object, each text entity marked `masked` (the processor then writes the mask token
        for its words) with probability `mention_mask_prob`, seeded per row."""
        if self.index_column not in row:
            raise ValueError(f"Masking mentions needs the row index column {self.index_column!r} (with_row_index).")
        draws = random.Random(f"{self.seed}:{self.epoch}:{row[self.index_column]}")
        return tuple(
            {**entity, "masked": True}
            if draws.random() < self.mention_mask_prob and not is_visual_object(entity)
            else entity
            for entity in (row["subject"], row["object"])
        )

    def image(self, row: dict[str, Any]) -> Any:
        """The row's image as the processor takes it. The training loop reads the `image` column undecoded
        (`datasets.Image(decode=False)`: `{"bytes", "path"}`), so a corrupt image is named here by its file or
        `image_id`, where the datasets library would name only an in-memory buffer."""
        image = row.get("image")
        if not isinstance(image, dict):
            return image  # None, a PIL image, a path...
        if image.get("bytes") is None and not image.get("path"):
            return None
        name = image.get("path") or row.get("image_id") or "(embedded, no name)"
        from PIL import Image

        try:
            decoded = Image.open(io.BytesIO(image["bytes"]) if image.get("bytes") is not None else image["path"])
            decoded.load()
        except Exception as err:  # UnidentifiedImageError, truncated data, a decompression bomb...
            reason = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "the image", str(err))
            raise ValueError(f"image {name} cannot be decoded: {type(err).__name__}: {reason}") from err
        return decoded

    def caption(self, row: dict[str, Any]) -> str | None:
        """The row's caption, or None when it has none or `caption_dropout` drops it (seeded per row and epoch)."""
        if "caption" not in row:
            raise ValueError("`use_captions` needs a `caption` column (build the dataset with --captions).")
        draw = random.Random(f"caption:{self.seed}:{self.epoch}:{row.get(self.index_column)}").random()
        if self.caption_dropout and draw < self.caption_dropout:
            return None
        return row["caption"]

    def __call__(self, rows: list[dict[str, Any]]) -> BatchFeature:
        masking = self.mention_mask_prob > 0
        try:
            entities = [self.mask_mentions(row) if masking else (row["subject"], row["object"]) for row in rows]
            batch = self.processor(
                [row["tokens"] for row in rows],
                [subject for subject, _ in entities],
                [object for _, object in entities],
                images=[self.image(row) for row in rows] if self.use_images else None,
                labels=[row[self.label_column] for row in rows] if self.label_column in rows[0] else None,
                captions=[self.caption(row) for row in rows] if self.use_captions else None,
            )
        except ValueError as err:  # the processor counts examples within the batch: name the dataset rows
            ids = {i: row.get("id", "?") for i, row in enumerate(rows)}
            raise ValueError(f"{err} (batch example -> row id: {ids})") from err
        if self.use_images and "pixel_values" not in batch:
            # keep the batch structure fixed across steps (DDP and compiled graphs dislike optional inputs)
            batch.update(self.processor.no_image_inputs(len(rows)))
        if self.use_captions and self.processor.caption_mode == "tokens" and "caption_input_ids" not in batch:
            batch.update(self.processor.caption_token_inputs([None] * len(rows)))  # same structure, all masked
        if self.index_column is not None and self.index_column in rows[0]:
            batch["example_index"] = torch.tensor([row[self.index_column] for row in rows])
        return batch


def with_row_index(dataset, column: str = "example_index"):
    """Add each row's position as a column (kept through shuffling and sharding)."""
    return dataset.add_column(column, list(range(len(dataset))))


__all__ = ["ROCDataCollator", "with_row_index"]
