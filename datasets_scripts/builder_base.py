"""What the MNRE and MORE builders share: the config, entity typing, image lookup and the build report.

A builder parses every split in `_split_generators` (so a bad line fails before anything is written, with its own
error rather than `datasets`' generic `DatasetGenerationError`), runs NER once over the split's unique sentences
(cached, see `ner.tag_sentences`), checks the images, and `_generate_examples` then only yields the prepared rows.
`builder.report` holds what happened (examples, skipped lines and why, images found/missing/corrupt, untyped entities).
"""

import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
from PIL import Image, UnidentifiedImageError

from .ner import UNKNOWN_TYPE, NoTagger, Tagger, coarse_type, make_tagger, span_type, tag_sentences
from .source_lines import EntitySpan, InvalidLineError, SourceRecord


# Word-offset text entity: `type` is the fine NER label (OntoNotes: PERSON, GPE, ...), `coarse_type` PER/ORG/LOC/MISC,
# both "UNKNOWN" when no NER entity covers the span.
TEXT_ENTITY = {
    "name": datasets.Value("string"),
    "start": datasets.Value("int32"),
    "end": datasets.Value("int32"),
    "type": datasets.Value("string"),
    "coarse_type": datasets.Value("string"),
}

MAX_REPORTED_LINES = 100  # skipped lines listed one by one in the report (all are counted)


@dataclass
class RelationBuilderConfig(datasets.BuilderConfig):
    """Options shared by the MNRE and MORE builders.

    Args:
        ner (`str`, defaults to `"stanza"`): NER backend spec, `stanza`, `stanza:/model/dir`, `spacy:<pipeline>` or
            `none` (see `datasets_scripts.ner`).
        ner_cache_dir (`str`, *optional*): where NER results are cached (default `$ROC_NER_CACHE` or
            `<HF datasets cache>/roc_ner`).
        use_ner_cache (`bool`, defaults to `True`): read and write that cache.
        ner_batch_size (`int`, defaults to 256): sentences per NER call.
        ner_processes (`int`, defaults to 1): spaCy worker processes for NER (`nlp.pipe(n_process=...)`).
        skip_invalid (`bool`, defaults to `False`): skip (and count) invalid lines instead of failing on the first.
        image_dir (`str`, *optional*): image folder, holding one sub-folder per split or the images directly; default
            `<data_dir>/img_org`.
        progress (`bool`, defaults to `True`): show NER progress bars.
    """

    ner: str = "stanza"
    ner_cache_dir: str | None = None
    use_ner_cache: bool = True
    ner_batch_size: int = 256
    ner_processes: int = 1
    skip_invalid: bool = False
    image_dir: str | None = None
    progress: bool = True


@dataclass
class SplitSource:
    """Where one split comes from: its text file and the folders where its images may be."""

    name: str
    text_file: Path
    image_dirs: list[Path]
    display_name: str | None = None  # the upstream file name, when `text_file` is a download stored under a hash

    @property
    def file_name(self) -> str:
        return self.display_name or self.text_file.name


def find_image(image_id: str, image_dirs: Iterable[Path]) -> Path | None:
    """The first `<dir>/<image_id>` that exists, or None."""
    for folder in image_dirs:
        candidate = Path(folder) / image_id
        if not candidate.resolve().is_relative_to(Path(folder).resolve()):
            continue  # never a file outside the image folder (the parser refuses such ids; this is the second lock)
        if candidate.is_file():
            return candidate
    return None


def links_outside(image_id: str, image_dirs: Iterable[Path]) -> bool:
    """Whether `<dir>/<image_id>` exists in some image folder but is a link leading out of it (never read)."""
    return any(
        (Path(folder) / image_id).exists()
        and not (Path(folder) / image_id).resolve().is_relative_to(Path(folder).resolve())
        for folder in image_dirs
    )


def image_is_readable(path: Path) -> bool:
    """Whether PIL can fully decode the file (a truncated or non-image file is not)."""
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def text_entity(span: EntitySpan, ner_type: str) -> dict:
    return {
        "name": span.name,
        "start": span.start,
        "end": span.end,
        "type": ner_type,
        "coarse_type": coarse_type(ner_type),
    }


class RelationBuilder(datasets.GeneratorBasedBuilder):
    """Base of the MNRE and MORE builders. Subclasses define `_info`, `_split_sources` and `_row`.

    Pass `tagger=` (any object with `name` and `tag(sentences)`, see `ner.Tagger`) to use a tagger instance instead of
    the `ner` spec, e.g. a fake in tests.
    """

    BUILDER_CONFIG_CLASS = RelationBuilderConfig
    DATASET_PREFIX = "dataset"  # row ids are f"{prefix}-{split}-{0-based line index:06d}"
    OBJECT_IS_TEXT = True
    PRETTY_NAME = ""
    IMAGES_HELP = ""
    # The dataset card's `license` and the sentence saying where it comes from: the releases this project reads state
    # none, so the card says so instead of inventing one.
    LICENSE = "unknown"
    LICENSE_NOTE = ""

    def __init__(self, *args, tagger: Tagger | None = None, **kwargs):
        self._tagger = tagger
        self._rows: dict[str, list[dict]] = {}
        super().__init__(*args, **kwargs)
        self.report: dict = {}

    @property
    def tagger(self) -> Tagger:
        if self._tagger is None:
            self._tagger = make_tagger(
                self.config.ner, batch_size=self.config.ner_batch_size, processes=self.config.ner_processes
            )
        return self._tagger

    # -- subclass hooks -------------------------------------------------------------------------------------------
    def _split_sources(self, dl_manager) -> list[SplitSource]:
        raise NotImplementedError

    def _read_split(self, source: SplitSource):
        """A `source_lines.ReadResult` for the split."""
        raise NotImplementedError

    def _row(self, record: SourceRecord, subject_type: str, object_type: str | None) -> dict:
        """The dataset row for a record, without `id`, `image_id`, `image` and the source columns."""
        raise NotImplementedError

    def card_source(self) -> list[str]:
        """Markdown bullet lines naming where the data comes from (for the dataset card)."""
        return []

    def card_extra_fields(self) -> list[str]:
        """Markdown bullet lines for dataset-specific fields (for the dataset card)."""
        return []

    def _extra_columns(self, source: SplitSource, record: SourceRecord) -> dict:
        """Dataset-specific columns of a row (MNRE: `caption` when captions were asked for)."""
        return {}

    # -- shared pipeline ------------------------------------------------------------------------------------------
    def _start_report(self) -> None:
        self.report = {
            "dataset": self.DATASET_PREFIX,
            "ner_backend": None,
            "skip_invalid": self.config.skip_invalid,
            "splits": {},
            "missing_splits": [],
            "warnings": [],
        }

    def _warn(self, message: str) -> None:
        warnings.warn(message, stacklevel=3)
        self.report["warnings"].append(message)

    def _split_generators(self, dl_manager):
        self._start_report()
        self.report["ner_backend"] = self.tagger.name  # first: a missing NER model fails before any other work
        sources = self._split_sources(dl_manager)
        if not sources:
            raise FileNotFoundError(f"No split file of {self.DATASET_PREFIX} was found; see the warnings above.")
        self._rows = {source.name: self._prepare_split_rows(source) for source in sources}
        return [datasets.SplitGenerator(name=source.name, gen_kwargs={"split": source.name}) for source in sources]

    def _prepare_split_rows(self, source: SplitSource) -> list[dict]:
        result = self._read_split(source)
        records = result.records
        split_report = {
            "source_file": source.file_name,
            "examples": len(records),
            "blank_lines": result.blank_lines,
            "skipped": _skipped_summary(result.skipped),
        }

        start = time.perf_counter()
        entities, ner_stats = tag_sentences(
            self.tagger,
            [list(r.tokens) for r in records],
            cache_dir=self.config.ner_cache_dir,
            use_cache=self.config.use_ner_cache,
            batch_size=self.config.ner_batch_size,
            progress=self.config.progress,
            desc=f"NER {source.name}",
        )
        ner_stats["seconds"] = round(time.perf_counter() - start, 3)

        untyped = Counter()
        types = []
        for record, ents in zip(records, entities):
            subject_type = span_type(record.subject.start, record.subject.end, ents)
            object_type = None
            if self.OBJECT_IS_TEXT:
                object_type = span_type(record.object.start, record.object.end, ents)
            untyped["subject"] += subject_type == UNKNOWN_TYPE
            untyped["object"] += object_type == UNKNOWN_TYPE
            types.append((subject_type, object_type))
        split_report["ner"] = ner_stats
        split_report["untyped_entities"] = {
            "subject": untyped["subject"],
            "object": untyped["object"],
            "total": untyped["subject"] + untyped["object"],
            "of": len(records) * (2 if self.OBJECT_IS_TEXT else 1),
            "ner_ran": not isinstance(self.tagger, NoTagger),
        }

        image_status: dict[str, Path | None] = {}
        corrupt, outside = [], []
        for image_id in dict.fromkeys(r.image_id for r in records):
            path = find_image(image_id, source.image_dirs)
            if path is not None and not image_is_readable(path):
                corrupt.append(image_id)
                path = None
            elif path is None and links_outside(image_id, source.image_dirs):
                outside.append(image_id)
            image_status[image_id] = path
        found = sum(p is not None for p in image_status.values())
        split_report["images"] = {
            "image_dirs": [str(d) for d in source.image_dirs if d.is_dir()],
            "unique_images": len(image_status),
            "found": found,
            "missing": len(image_status) - found - len(corrupt) - len(outside),
            "corrupt": len(corrupt),
            "corrupt_ids": corrupt[:MAX_REPORTED_LINES],
            "linked_outside_the_folder": len(outside),
            "linked_outside_ids": outside[:MAX_REPORTED_LINES],
            "examples_with_image": sum(image_status[r.image_id] is not None for r in records),
            "examples_without_image": sum(image_status[r.image_id] is None for r in records),
        }
        if corrupt:
            self._warn(
                f"{source.name}: {len(corrupt)} image(s) could not be decoded and are stored as None: {corrupt[:5]}"
            )
        if outside:
            self._warn(
                f"{source.name}: {len(outside)} image(s) are symbolic links leading out of the image folder, never "
                f"read, stored as None: {outside[:5]}"
            )
        self.report["splits"][source.name] = split_report

        rows = []
        for record, (subject_type, object_type) in zip(records, types):
            path = image_status[record.image_id]
            row = {
                "id": f"{self.DATASET_PREFIX}-{source.name}-{record.source_line - 1:06d}",
                **self._row(record, subject_type, object_type),
                **self._extra_columns(source, record),
                "image_id": record.image_id,
                "image": str(path) if path is not None else None,
                "source_file": record.source_file,
                "source_line": record.source_line,
            }
            rows.append(row)
        return rows

    def _generate_examples(self, split: str):
        for row in self._rows[split]:
            yield row["id"], row


def _skipped_summary(skipped: Sequence[InvalidLineError]) -> dict:
    return {
        "total": len(skipped),
        "by_reason": dict(Counter(err.reason for err in skipped)),
        "lines": [str(err) for err in skipped[:MAX_REPORTED_LINES]],
    }


__all__ = [
    "TEXT_ENTITY",
    "RelationBuilder",
    "RelationBuilderConfig",
    "SplitSource",
    "find_image",
    "image_is_readable",
    "text_entity",
]
