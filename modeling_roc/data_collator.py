"""Turn rows of the ROC datasets (as built by `datasets_scripts`) into model batches with a `ROCProcessor`.

Encoding happens in the collator, per batch, so no tokenized copy of the dataset is cached and a change of processor
settings (type prompts on/off, max length) needs no re-preprocessing.
"""

from dataclasses import dataclass
from typing import Any

import torch
from transformers import BatchFeature

from .processing_roc import ROCProcessor


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
    """

    processor: ROCProcessor
    use_images: bool = False
    label_column: str = "relation"
    index_column: str | None = "example_index"

    def __call__(self, rows: list[dict[str, Any]]) -> BatchFeature:
        try:
            batch = self.processor(
                [row["tokens"] for row in rows],
                [row["subject"] for row in rows],
                [row["object"] for row in rows],
                images=[row.get("image") for row in rows] if self.use_images else None,
                labels=[row[self.label_column] for row in rows] if self.label_column in rows[0] else None,
            )
        except ValueError as err:  # the processor counts examples within the batch: name the dataset rows
            ids = {i: row.get("id", "?") for i, row in enumerate(rows)}
            raise ValueError(f"{err} (batch example -> row id: {ids})") from err
        if self.use_images and "pixel_values" not in batch:
            # keep the batch structure fixed across steps (DDP and compiled graphs dislike optional inputs)
            size = tuple(self.processor.image_config["input_size"])
            batch["pixel_values"] = torch.zeros((len(rows), *size))
            batch["image_mask"] = torch.zeros(len(rows), dtype=torch.bool)
        if self.index_column is not None and self.index_column in rows[0]:
            batch["example_index"] = torch.tensor([row[self.index_column] for row in rows])
        return batch


def with_row_index(dataset, column: str = "example_index"):
    """Add each row's position as a column (kept through shuffling and sharding)."""
    return dataset.add_column(column, list(range(len(dataset))))


__all__ = ["ROCDataCollator", "with_row_index"]
