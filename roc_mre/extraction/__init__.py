"""Relation triples from raw posts: `TripleExtractor`, the `relation-triple-extraction` pipeline (registered with
transformers' pipeline registry on import) and the command line `python -m roc_mre.extraction` (see `cli`)."""

from .extractor import (
    DEFAULT_IGNORED_TYPES,
    DEFAULT_MAX_ENTITIES,
    DEFAULT_NER,
    TRIPLE_TASK,
    PostError,
    ROCTripleExtractionPipeline,
    TripleExtractor,
    candidate_pairs,
)


__all__ = [
    "DEFAULT_IGNORED_TYPES",
    "DEFAULT_MAX_ENTITIES",
    "DEFAULT_NER",
    "PostError",
    "ROCTripleExtractionPipeline",
    "TRIPLE_TASK",
    "TripleExtractor",
    "candidate_pairs",
]
