"""Training helpers used by `train.py`: batches (`data_collator`), batch order (`length_grouped_sampler`) and
evaluation reports (`reporting`)."""

from .data_collator import ROCDataCollator, with_row_index
from .length_grouped_sampler import LengthGroupedSampler


__all__ = ["LengthGroupedSampler", "ROCDataCollator", "with_row_index"]
