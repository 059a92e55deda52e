"""The "no relation" label: one lookup for training, evaluation and triple extraction."""

from collections.abc import Sequence

from modeling_roc.configuration_roc import NONE_LABELS


def find_none_label(labels: Sequence[str], none_label: str | None = None) -> str:
    """The "no relation" label among `labels`: `none_label` if given, else the first of `NONE_LABELS` present.

    A bank without one cannot say "these two entities are unrelated": training could not exclude it from the field's
    micro-F1, and extraction would turn every pair into a triple. So its absence is an error, not a default.
    """
    if none_label is not None:
        if none_label not in labels:
            raise ValueError(f"none_label={none_label!r} is not one of the relations {list(labels)}.")
        return none_label
    for candidate in NONE_LABELS:
        if candidate in labels:
            return candidate
    raise ValueError(
        f"The relation bank has no 'no relation' label (looked for {list(NONE_LABELS)}) among {list(labels)}; "
        "pass none_label=... naming it."
    )


__all__ = ["NONE_LABELS", "find_none_label"]
