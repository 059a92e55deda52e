"""Write a built dataset as a Hub-format folder: `data/{split}-NNNNN-of-NNNNN.parquet` + a `README.md` dataset card.

The parquet shards come from `builder.download_and_prepare(file_format="parquet")`, which embeds the image bytes
(plain `Dataset.to_parquet` would only store absolute paths), so the folder loads after the source images are gone.
The card's YAML holds a `configs:` block naming every split (so `load_dataset(folder)` needs no other argument) and
the `dataset_info:` block `push_to_hub` would write (features with the label names, split sizes). The same folder
uploaded to a Hub dataset repo (`push_folder`) loads with `load_dataset("<org>/<name>")`.
"""

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from .builder_base import RelationBuilder
from .locking import OutputLock
from .ner import COARSE_TYPES, OBJECT_TYPE, UNKNOWN_TYPE
from .publishing import commit_files, inside_folder, replace_folder
from .redaction import redact_local_paths


DATA_DIR = "data"
CONFIG_NAME = "default"
# Written into every folder this module builds: the one proof that replacing the folder loses nothing of a user's.
# (A README.md and a data/ folder prove nothing: a project checkout has both.)
BUILD_MARKER = ".roc_dataset_build.json"
BUILD_COMMAND = "python -m datasets_scripts.build"


def written_by_this_tool(folder: Path) -> bool:
    """True for a folder holding this tool's build marker. A build report proves nothing (it is copied around)."""
    try:
        return json.loads((folder / BUILD_MARKER).read_text(encoding="utf-8")).get("writer") == BUILD_COMMAND
    except (OSError, ValueError, AttributeError):
        return False


def foreign_files(folder: Path) -> list[str]:
    """Files of a built folder that the build did not write (a user's notes, a script): `--overwrite` would lose
    them, so it refuses while they are there."""
    ours = {CARD_FILE, REPORT_FILE, BUILD_MARKER}
    try:
        shards = json.loads((Path(folder) / BUILD_MARKER).read_text(encoding="utf-8")).get("shards")
    except (OSError, ValueError, AttributeError):
        shards = None
    found = (path.relative_to(folder).as_posix() for path in sorted(Path(folder).rglob("*")) if not path.is_dir())
    if shards is not None:  # the shards the build wrote, by name
        return [name for name in found if name not in ours and name not in shards]
    return [name for name in found if name not in ours and not SHARD.fullmatch(name)]  # a marker written before


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder unless `overwrite` and this tool wrote it (it is replaced only after a good build)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"--output_dir {output_dir} is a file, not a folder.")
    if not output_dir.exists() or not any(output_dir.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f"{output_dir} is not empty; pass overwrite=True (CLI: --overwrite) to replace it.")
    if not written_by_this_tool(output_dir):
        raise FileExistsError(
            f"{output_dir} is not empty and was not written by this tool (no {BUILD_MARKER}); refusing to delete it. "
            "Choose another --output_dir."
        )
    foreign = foreign_files(output_dir)
    if foreign:
        raise FileExistsError(
            f"{output_dir} was built by this tool but now also holds files it did not write ({', '.join(foreign)}); "
            "--overwrite replaces the whole folder, so move them out first."
        )


def write_hub_folder(
    builder: RelationBuilder,
    output_dir: str | Path,
    *,
    overwrite: bool = False,
    max_shard_size: str | int | None = None,
    hub_id: str | None = None,
) -> Path:
    """Build `builder` into `output_dir` (parquet shards + card); return the folder. `builder.report` is filled."""
    output_dir = Path(output_dir).expanduser().resolve()
    _check_output_dir(output_dir, overwrite)
    with OutputLock(output_dir.parent / f".{output_dir.name}.build.lock", what="build", target=output_dir):
        return _build_into(builder, output_dir, overwrite, max_shard_size, hub_id)


def _build_into(builder, output_dir: Path, overwrite: bool, max_shard_size, hub_id) -> Path:
    try:
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.staging-", dir=output_dir.parent))
    except OSError as err:
        raise PermissionError(
            f"--output_dir {output_dir}: cannot write in {output_dir.parent} ({err.strerror})"
        ) from err
    try:
        prepared = staging / "prepared"
        builder.download_and_prepare(output_dir=str(prepared), file_format="parquet", max_shard_size=max_shard_size)
        final = staging / "final"
        (final / DATA_DIR).mkdir(parents=True)
        empty = [split for split, info in builder.info.splits.items() if not info.num_examples]
        if empty:
            skipped = {
                split: builder.report["splits"].get(split, {}).get("skipped", {}).get("total") for split in empty
            }
            raise ValueError(
                f"split(s) {', '.join(empty)} ended with 0 examples (invalid lines skipped: {skipped}); a dataset "
                "folder with an empty split cannot be loaded, so nothing was written. Fix or remove the source file."
            )
        for split in builder.info.splits:
            shards = sorted(prepared.glob(f"{builder.dataset_name}-{split}.parquet")) or sorted(
                prepared.glob(f"{builder.dataset_name}-{split}-*-of-*.parquet")
            )
            if not shards:
                raise RuntimeError(f"download_and_prepare wrote no parquet file for split {split!r} in {prepared}")
            for i, shard in enumerate(shards):
                shutil.move(str(shard), final / DATA_DIR / f"{split}-{i:05d}-of-{len(shards):05d}.parquet")
        write_card(builder, final, hub_id=hub_id)
        shards = sorted(path.relative_to(final).as_posix() for path in (final / DATA_DIR).glob("*.parquet"))
        marker = {"writer": BUILD_COMMAND, "shards": shards}  # by name: a user's shard-like file is not ours
        (final / BUILD_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        _check_output_dir(output_dir, overwrite)  # again: files may have appeared in it during the build
        replace_folder(final, output_dir)  # an empty folder, or a build of this tool (checked above)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


def card_data(builder: RelationBuilder, folder: Path) -> DatasetCardData:
    """The YAML header: pretty name, tags, `dataset_info` (features, splits, sizes) and `configs` (one per folder)."""
    data = DatasetCardData(
        pretty_name=builder.PRETTY_NAME,
        language=["en"],
        license=builder.LICENSE,
        task_categories=["text-classification", "image-text-to-text"],
        task_ids=["multi-class-classification"],
        size_categories=[size_category(sum(builder.info.splits[split].num_examples for split in builder.info.splits))],
        source_datasets=["extended"],  # the release's words and labels, plus NER types (and captions) added here
        tags=["relation-extraction", "multimodal", "named-entity-types"],
    )
    info = builder.info.copy()
    info.config_name = CONFIG_NAME
    info.download_size = sum(f.stat().st_size for f in (folder / DATA_DIR).glob("*.parquet"))
    info.size_in_bytes = info.download_size + (info.dataset_size or 0)
    DatasetInfosDict({CONFIG_NAME: info}).to_dataset_card_data(data)
    split_files = [{"split": split, "path": f"{DATA_DIR}/{split}-*"} for split in builder.info.splits]
    MetadataConfigs({CONFIG_NAME: {"data_files": split_files}}).to_dataset_card_data(data)
    return data


def size_category(num_examples: int) -> str:
    """The Hub's `size_categories` bucket for a dataset of `num_examples` rows (all splits)."""
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if num_examples < bound:
            return name
    return "n>1M"


def _split_table(report: dict) -> list[str]:
    lines = [
        "| split | examples | skipped lines | images found / missing / corrupt (unique) | untyped entities |",
        "|---|---|---|---|---|",
    ]
    for split, info in report["splits"].items():
        images, untyped = info["images"], info["untyped_entities"]
        lines.append(
            f"| {split} | {info['examples']:,} | {info['skipped']['total']} | "
            f"{images['found']:,} / {images['missing']:,} / {images['corrupt']:,} | "
            f"{untyped['total']:,} of {untyped['of']:,} |"
        )
    return lines


def _source_label(source: str | None) -> str:
    # A local path says nothing to a Hub reader (and may reveal a home folder): keep its last two components.
    if not source or "://" in source:
        return str(source)
    return "local copy: .../" + "/".join(Path(source).parts[-2:])


def card_body(builder: RelationBuilder, hub_id: str | None = None) -> str:
    """The Markdown part of the card: provenance, loading, fields, labels, NER typing and the build report."""
    report = builder.report
    features = builder.info.features
    labels = features["relation"].names
    load_target = hub_id or "path/to/this/folder"
    lines = [
        f"# {builder.PRETTY_NAME}",
        "",
        builder.info.description,
        "",
        "## Provenance",
        "",
        *builder.card_source(),
        f"- Built by `datasets_scripts.{builder.DATASET_PREFIX}.{type(builder).__name__}` (project ROC, Retrieval "
        "over Classification for multimodal relation extraction) with `python -m datasets_scripts.build`.",
        f"- Source read from: `{_source_label(report.get('data_source'))}`.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'dataset = load_dataset("{load_target}")  # splits: {", ".join(builder.info.splits)}',
        "```",
        "",
        "## Fields",
        "",
        "- `id`: `<dataset>-<split>-<0-based line index in the source file>`.",
        "- `tokens`: the words of the sentence, as released.",
        "- `subject`, `object`: `name`, word offsets `start`/`end` (end exclusive), `type` (fine NER label, e.g. "
        "`PERSON`, `GPE`) and `coarse_type` (`PER`/`ORG`/`LOC`/`MISC`).",
        *builder.card_extra_fields(),
        f"- `relation`: class label over the {len(labels)} relation names below.",
        "- `image`: the image (bytes embedded in the parquet files), or `None` when it was missing or unreadable at "
        "build time; `image_id`: the release's image file name.",
        "- `source_file`, `source_line`: the release file and 1-based line each example comes from.",
        "",
        "## Relation labels",
        "",
        *[f"{i}. `{name}`" for i, name in enumerate(labels)],
        "",
        "## Entity types",
        "",
        f"Entity types come from the NER backend **`{report.get('ner_backend')}`**, run over the released words "
        "(never from the relation label). A span takes the label of the NER entity that matches it exactly, else of "
        "the entity sharing the most words with it if that covers at least half of the span; otherwise its type is "
        "`UNKNOWN` (tweet handles such as `@Titans` often get no entity), with coarse type `UNKNOWN`. Coarse types: "
        + ", ".join(f"`{k}`→`{v}`" for k, v in COARSE_TYPES.items() if k not in (UNKNOWN_TYPE, OBJECT_TYPE))
        + ", every other label (NORP, PRODUCT, EVENT, WORK_OF_ART, DATE, ...) → `MISC`.",
        "",
        "## Build report",
        "",
        *_split_table(report),
        "",
    ]
    if report.get("missing_splits"):
        lines += [f"Splits with no source file (not produced): {', '.join(report['missing_splits'])}.", ""]
    if any(info["skipped"]["total"] for info in report["splits"].values()):
        lines += ["Skipped lines by reason (`--skip_invalid`):", ""]
        for split, info in report["splits"].items():
            if info["skipped"]["total"]:
                lines.append(f"- {split}: {info['skipped']['by_reason']}")
        lines.append("")
    if any(info["images"]["missing"] or info["images"]["corrupt"] for info in report["splits"].values()):
        lines += ["## Images", "", builder.IMAGES_HELP, ""]
    if builder.LICENSE_NOTE:
        lines += ["## License", "", builder.LICENSE_NOTE, ""]
    if builder.info.citation:
        lines += ["## Citation", "", "```bibtex", builder.info.citation.strip(), "```", ""]
    return "\n".join(lines)


def write_card(builder: RelationBuilder, folder: Path, hub_id: str | None = None) -> Path:
    card = DatasetCard(f"---\n{card_data(builder, folder).to_yaml()}\n---\n\n{card_body(builder, hub_id)}")
    path = Path(folder) / "README.md"
    card.save(path)
    return path


# The files a published dataset consists of, and nothing else: a `.env`, a key or an archive a user keeps in the
# folder never leaves the machine.
CARD_FILE = "README.md"
REPORT_FILE = "build_report.json"
SHARD = re.compile(rf"{DATA_DIR}/[A-Za-z0-9_.-]+-\d{{5}}-of-\d{{5}}\.parquet")


def publishable_files(folder: Path) -> list[str]:
    """The card, the build report and the parquet shards of `folder` (relative paths), in upload order.

    A shard or card that is a symbolic link leading out of `folder` is refused (ValueError)."""
    folder = Path(folder)
    files = [CARD_FILE] if (folder / CARD_FILE).is_file() else []
    files += [REPORT_FILE] if (folder / REPORT_FILE).is_file() else []
    data = folder / DATA_DIR
    if data.is_dir():
        names = (f"{DATA_DIR}/{path.name}" for path in data.iterdir())
        files += sorted(name for name in names if SHARD.fullmatch(name) and (folder / name).is_file())
    for name in files:
        inside_folder(folder, name)
    return files


def left_out_files(folder: Path, published: list[str]) -> list[str]:
    """Files of `folder` that are not published (this tool's marker aside): named in the log so a user knows."""
    keep = {*published, BUILD_MARKER}
    found = (str(path.relative_to(folder)) for path in sorted(Path(folder).rglob("*")) if not path.is_dir())
    return [name for name in found if name not in keep]


def stage_for_upload(folder: Path, staged: Path) -> list[str]:
    """Copy the publishable files of `folder` (`publishable_files`) into `staged`: shards hard-linked (copied
    across file systems), the JSON report with local paths cut (`redact_local_paths`). Returns the staged files."""
    files = publishable_files(folder)
    for name in files:
        source, target = Path(folder) / name, Path(staged) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".json":
            try:
                report = redact_local_paths(json.loads(source.read_text(encoding="utf-8")))
            except (UnicodeDecodeError, ValueError) as err:
                raise ValueError(f"{source}: not valid JSON ({err})") from None
            target.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            continue
        try:
            os.link(source.resolve(), target)
        except OSError:
            shutil.copy2(source, target)
    return files


def stage_for_repo(folder: Path, staged: Path, repo_id: str) -> list[str]:
    """`folder` staged for upload (`stage_for_upload`) with its card telling readers to `load_dataset(repo_id)`;
    returns the staged files."""
    folder = Path(folder)
    if not ((folder / CARD_FILE).is_file() and (folder / DATA_DIR).is_dir()):
        raise ValueError(
            f"{folder} is not a dataset folder written by `python -m datasets_scripts.build` "
            f"({CARD_FILE} + {DATA_DIR}/)."
        )
    files = stage_for_upload(folder, staged)
    if not any(SHARD.fullmatch(name) for name in files):
        raise ValueError(f"{folder}/{DATA_DIR} holds no parquet shard named <split>-NNNNN-of-NNNNN.parquet.")
    readme = Path(staged) / CARD_FILE
    text = readme.read_text(encoding="utf-8")
    readme.unlink()  # a hard link to the source card: write a new file, never through the link
    readme.write_text(text.replace('load_dataset("path/to/this/folder")', f'load_dataset("{repo_id}")'), "utf-8")
    return files


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    log: Callable[[str], None] | None = None,
) -> str:
    """Upload a folder written by `write_hub_folder` to a Hub dataset repo in one commit: exactly its card, build
    report and shards (redacted, see `stage_for_upload`), listed through `log` first. Returns the commit URL."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix=f".{folder.name}.upload-", dir=folder.parent) as staging:
        files = stage_for_upload(folder, Path(staging))
        if not files:
            raise ValueError(f"{folder} has no card, report or parquet shard to upload.")
        left_out = left_out_files(folder, files)
        log(f"uploading {len(files)} files to the dataset {repo_id}: {', '.join(files)}")
        if left_out:
            log(f"not uploaded (not part of a built dataset): {', '.join(left_out)}")
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        return commit_files(
            api,
            repo_id=repo_id,
            repo_type="dataset",
            folder=Path(staging),
            files=files,
            owned_patterns=[f"{DATA_DIR}/*.parquet"],  # shards of an older build with another shard count go
            commit_message="Upload dataset built with datasets_scripts.build",
        )


__all__ = [
    "card_body",
    "card_data",
    "left_out_files",
    "publishable_files",
    "push_folder",
    "stage_for_repo",
    "stage_for_upload",
    "write_card",
    "write_hub_folder",
]
