"""MORE (He et al., ACM MM 2023): relations between a text entity and an image object, as a Hugging Face dataset.

The MORE release cannot be downloaded automatically; `data_dir` must hold its layout:

    <data_dir>/txt/{train,valid,test}.txt         one Python-literal dict per line, as in MNRE; `t` names an object
    <data_dir>/ent_{train,valid,test}_dict.pth    {image id: {object name: [cx, cy, w, h]}} (relative to image size)
    <data_dir>/img_org/{train,valid,test}/        images (optional)
    <data_dir>/rel2id.json                        {label: id}; the ClassLabel names, ordered by id

Splits `train`, `validation` (from `valid`) and `test`; a missing split file means no such split (with a warning).
The subject is a text span typed by NER like MNRE's; the object is `{name, box, type, coarse_type}` where the box is
the release's `[cx, cy, w, h]` and `type`/`coarse_type` are always `OBJECT_TYPE` ("OBJECT"): a region of the image
has no NER type, and nothing about it may come from the relation label.

ROC retrieves relation descriptions, so before anything is built the relation bank (`relation_bank`, default the
built-in "more" bank) must describe every label of the user's `rel2id.json`; otherwise the build fails naming the
missing labels and the `describe_relations` command that generates them.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch

from .builder_base import TEXT_ENTITY, RelationBuilder, RelationBuilderConfig, SplitSource, text_entity
from .ner import OBJECT_TYPE
from .source_lines import SourceRecord, read_source_file


# Output split -> the release's split name (txt/<name>.txt, ent_<name>_dict.pth, img_org/<name>/).
SPLIT_NAMES = {"train": "train", "validation": "valid", "test": "test"}

VISUAL_OBJECT = {
    "name": datasets.Value("string"),
    "box": datasets.List(datasets.Value("float32"), length=4),
    "type": datasets.Value("string"),
    "coarse_type": datasets.Value("string"),
}

MORE_REPO = "https://github.com/NJUNLP/MORE"

CITATION = """@inproceedings{he2023more,
  title     = {MORE: A Multimodal Object-Entity Relation Extraction Dataset with a Benchmark Evaluation},
  author    = {He, Liang and Wang, Hongke and Cao, Yongchang and Wu, Zhen and Zhang, Jianbing and Dai, Xinyu},
  booktitle = {Proceedings of the 31st ACM International Conference on Multimedia},
  year      = {2023}
}"""

DATA_HELP = (
    f"MORE cannot be downloaded automatically: get the release from {MORE_REPO} and pass its folder as data_dir "
    "(CLI: --data_dir); it must hold txt/{train,valid,test}.txt, ent_{train,valid,test}_dict.pth and rel2id.json "
    "(images in img_org/{train,valid,test}/ are optional)."
)


def resolve_root(data_dir: str | Path) -> Path:
    """The MORE release root for a `data_dir` given as the root or as its `txt/` folder."""
    folder = Path(data_dir).expanduser().resolve()
    if (folder / "txt").is_dir() or (folder / "rel2id.json").is_file():
        return folder
    if folder.name == "txt" and (folder.parent / "rel2id.json").is_file():
        return folder.parent
    raise FileNotFoundError(f"MORE data_dir {folder} holds neither txt/ nor rel2id.json. {DATA_HELP}")


def load_rel2id(path: str | Path) -> list[str]:
    """Label names ordered by id from `rel2id.json` (`{label: id}`, ids 0..n-1, each once)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path} must be a non-empty JSON object {{label: id}}")
    ids = sorted(data.values()) if all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()) else None
    if ids != list(range(len(data))):
        raise ValueError(f"{path}: ids must be the integers 0..{len(data) - 1}, each once; got {sorted(data.items())}")
    return sorted(data, key=data.__getitem__)


def load_object_boxes(path: str | Path) -> dict:
    """`ent_{split}_dict.pth` -> {image id: {object name: box}}, loaded with `weights_only=True` (no pickled code).

    A file that holds anything but tensors, dicts, lists and numbers is refused, naming it; torch's advice to load
    it with `weights_only=False` is not repeated, since that would run whatever code the file carries.
    """
    import pickle

    try:
        boxes = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).split("\n")[0].split(". ")[0]
        raise ValueError(
            f"{path}: refused, it holds more than tensors and plain containers ({first}); this file is never "
            "unpickled. Use the release's ent_*_dict.pth."
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a readable torch file ({type(err).__name__}: {err}); re-download it.") from None
    if not isinstance(boxes, Mapping) or not all(isinstance(v, Mapping) for v in boxes.values()):
        raise ValueError(f"{path} must map image ids to {{object name: [cx, cy, w, h]}} dicts")
    return dict(boxes)


@dataclass
class MOREConfig(RelationBuilderConfig):
    """MORE options, plus `relation_bank` (`str`, defaults to `"more"`): a built-in bank name or a JSON path."""

    relation_bank: str = "more"


class MOREBuilder(RelationBuilder):
    """MORE with word `tokens`, an NER-typed `subject` span, a visual `object` (name + box) and `relation`."""

    BUILDER_CONFIG_CLASS = MOREConfig
    DATASET_PREFIX = "more"
    OBJECT_IS_TEXT = False
    VERSION = datasets.Version("1.0.0")
    PRETTY_NAME = "MORE with NER entity types"
    IMAGES_HELP = DATA_HELP
    LICENSE_NOTE = (
        "This card's license is `unknown`: the project has not found terms stated with the MORE release; check them "
        "with its authors before reuse beyond research."
    )

    def card_source(self) -> list[str]:
        return [
            f"- MORE, from the release of {MORE_REPO} (`txt/`, `ent_*_dict.pth`, `img_org/`, `rel2id.json`).",
            "- He et al., *MORE: A Multimodal Object-Entity Relation Extraction Dataset with a Benchmark "
            "Evaluation*, ACM MM 2023.",
            f"- Relation descriptions (ROC's retrieval targets): relation bank `{self.config.relation_bank}`, which "
            "covers every label of this build's `rel2id.json`.",
        ]

    def card_extra_fields(self) -> list[str]:
        return [
            f"- `object` here is a visual object: `name` (key in `ent_{{split}}_dict.pth`), `box` = `[cx, cy, w, h]` "
            f"relative to the image size, `type` = `coarse_type` = `{OBJECT_TYPE}` for every object.",
        ]

    @property
    def labels(self) -> list[str]:
        if not self.config.data_dir:
            raise ValueError(DATA_HELP)
        return load_rel2id(resolve_root(self.config.data_dir) / "rel2id.json")

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=(
                "MORE: multimodal object-entity relation extraction, between a text entity of a news caption and an "
                "object in its image. Subject types come from an NER tool; objects have the type OBJECT."
            ),
            features=datasets.Features(
                {
                    "id": datasets.Value("string"),
                    "tokens": datasets.List(datasets.Value("string")),
                    "subject": TEXT_ENTITY,
                    "object": VISUAL_OBJECT,
                    "relation": datasets.ClassLabel(names=self.labels),
                    "image_id": datasets.Value("string"),
                    "image": datasets.Image(),
                    "source_file": datasets.Value("string"),
                    "source_line": datasets.Value("int32"),
                }
            ),
            homepage=MORE_REPO,
            citation=CITATION,
        )

    def _split_sources(self, dl_manager) -> list[SplitSource]:
        from .relation_bank import load_relation_bank, require_descriptions

        root = resolve_root(self.config.data_dir)
        labels = self.labels
        require_descriptions(labels, load_relation_bank(self.config.relation_bank), self.config.relation_bank)
        self.report["relation_bank"] = self.config.relation_bank
        self.report["data_source"] = str(root)

        image_root = Path(self.config.image_dir).expanduser().resolve() if self.config.image_dir else root / "img_org"
        if not image_root.is_dir():
            self._warn(f"No MORE image folder found ({image_root}); every image will be None.")
        self._object_boxes = {}
        sources = []
        for split, name in SPLIT_NAMES.items():
            text_file = root / "txt" / f"{name}.txt"
            if not text_file.is_file():
                self.report["missing_splits"].append(split)
                self._warn(f"MORE: no {text_file}: no {split!r} split.")
                continue
            boxes_file = root / f"ent_{name}_dict.pth"
            if boxes_file.is_file():
                self._object_boxes[split] = load_object_boxes(boxes_file)
            else:
                self._object_boxes[split] = None
                self._warn(f"MORE: no {boxes_file}; objects need a 'box' in their own line.")
            sources.append(SplitSource(split, text_file, [image_root / name, image_root]))
        return sources

    def _read_split(self, source: SplitSource):
        return read_source_file(
            source.text_file,
            labels=self.labels,
            skip_invalid=self.config.skip_invalid,
            object_kind="visual",
            object_boxes=self._object_boxes[source.name],
            display_name=source.display_name,
        )

    def _row(self, record: SourceRecord, subject_type: str, object_type: str | None) -> dict:
        return {
            "tokens": list(record.tokens),
            "subject": text_entity(record.subject, subject_type),
            "object": {
                "name": record.object.name,
                "box": list(record.object.box),
                "type": OBJECT_TYPE,
                "coarse_type": OBJECT_TYPE,
            },
            "relation": record.relation,
        }


__all__ = ["CITATION", "DATA_HELP", "MOREBuilder", "SPLIT_NAMES", "load_object_boxes", "load_rel2id"]
