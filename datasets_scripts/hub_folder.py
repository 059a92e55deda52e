"""Write a built dataset as a Hub-format folder: `data/{split}-NNNNN-of-NNNNN.parquet` + a `README.md` dataset card.

The parquet shards come from `builder.download_and_prepare(file_format="parquet")`, which embeds the image bytes
(plain `Dataset.to_parquet` would only store absolute paths), so the folder loads after the source images are gone.
The card's YAML holds a `configs:` block naming every split (so `load_dataset(folder)` needs no other argument) and
the `dataset_info:` block `push_to_hub` would write (features with the label names, split sizes). The same folder
uploaded to a Hub dataset repo (`push_folder`) loads with `load_dataset("<org>/<name>")`.
"""

import shutil
import tempfile
from pathlib import Path

from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from .builder_base import RelationBuilder
from .ner import COARSE_TYPES, OBJECT_TYPE, UNKNOWN_TYPE


DATA_DIR = "data"
CONFIG_NAME = "default"


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder unless `overwrite` and it is one of ours (it is replaced only after a good build)."""
    if not output_dir.exists() or not any(output_dir.iterdir()):
        return
    ours = (output_dir / "README.md").is_file() and (output_dir / DATA_DIR).is_dir()
    if not overwrite:
        raise FileExistsError(f"{output_dir} is not empty; pass overwrite=True (CLI: --overwrite) to replace it.")
    if not ours:
        raise FileExistsError(
            f"{output_dir} is not empty and does not look like a dataset folder written by this tool "
            "(README.md + data/); refusing to delete it. Choose another --output_dir."
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
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.staging-", dir=output_dir.parent))
    try:
        prepared = staging / "prepared"
        builder.download_and_prepare(output_dir=str(prepared), file_format="parquet", max_shard_size=max_shard_size)
        final = staging / "final"
        (final / DATA_DIR).mkdir(parents=True)
        for split in builder.info.splits:
            shards = sorted(prepared.glob(f"{builder.dataset_name}-{split}.parquet")) or sorted(
                prepared.glob(f"{builder.dataset_name}-{split}-*-of-*.parquet")
            )
            if not shards:
                raise RuntimeError(f"download_and_prepare wrote no parquet file for split {split!r} in {prepared}")
            for i, shard in enumerate(shards):
                shutil.move(str(shard), final / DATA_DIR / f"{split}-{i:05d}-of-{len(shards):05d}.parquet")
        write_card(builder, final, hub_id=hub_id)
        if output_dir.exists():
            shutil.rmtree(output_dir)  # empty, or a previous build of this tool with overwrite=True (checked above)
        shutil.move(str(final), output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


def card_data(builder: RelationBuilder, folder: Path) -> DatasetCardData:
    """The YAML header: pretty name, tags, `dataset_info` (features, splits, sizes) and `configs` (one per folder)."""
    data = DatasetCardData(
        pretty_name=builder.PRETTY_NAME,
        language=["en"],
        license="unknown",
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
    if builder.info.citation:
        lines += ["## Citation", "", "```bibtex", builder.info.citation.strip(), "```", ""]
    return "\n".join(lines)


def write_card(builder: RelationBuilder, folder: Path, hub_id: str | None = None) -> Path:
    card = DatasetCard(f"---\n{card_data(builder, folder).to_yaml()}\n---\n\n{card_body(builder, hub_id)}")
    path = Path(folder) / "README.md"
    card.save(path)
    return path


def push_folder(folder: str | Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload a folder written by `write_hub_folder` to a Hub dataset repo; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message="Upload dataset built with datasets_scripts.build",
        delete_patterns=[f"{DATA_DIR}/*.parquet"],  # drop shards of an older build with another shard count
    )
    return commit.commit_url


__all__ = ["card_body", "card_data", "push_folder", "write_card", "write_hub_folder"]
