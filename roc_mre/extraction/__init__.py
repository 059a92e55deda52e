"""Relation triples from raw posts: `TripleExtractor`, the `relation-triple-extraction` pipeline and the command line
(`roc-extract`, `python -m roc_mre.extraction`; see `cli`).

The names below load on first use (PEP 562), so the command line answers `--help` without importing torch. Importing
any of them (`from roc_mre.extraction import TripleExtractor`) registers the `relation-triple-extraction` task with
transformers' pipeline registry.
"""

import importlib
from typing import Any


_EXPORTS = {
    "DEFAULT_IGNORED_TYPES": "defaults",
    "DEFAULT_MAX_ENTITIES": "defaults",
    "DEFAULT_NER": "defaults",
    "TRIPLE_TASK": "defaults",
    "PostError": "extractor",
    "ROCTripleExtractionPipeline": "extractor",
    "TripleExtractor": "extractor",
    "candidate_pairs": "extractor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name == "TRIPLE_TASK":  # the task name is for pipeline(...): have it registered by then
        importlib.import_module(".extractor", __name__)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
