"""Generated MNRE / MORE release folders (written into a test's tmp_path) and a fake NER tagger.

The sentences are invented; nothing here is copied from the real datasets.
"""

import io
import json
import os
from pathlib import Path

import torch
from PIL import Image


REPO_ROOT = Path(__file__).resolve().parents[2]
MNRE_DIR = Path(os.environ.get("MNRE_DIR", REPO_ROOT.parent / "shared" / "data" / "mnre"))

# Word sequences the fake tagger recognises, with their OntoNotes label.
LEXICON = {
    ("Alice", "Moreau"): "PERSON",
    ("Bruno", "Keller"): "PERSON",
    ("Paris",): "GPE",
    ("Lyon",): "GPE",
    ("Acme", "Labs"): "ORG",
    ("Nobel", "Prize"): "WORK_OF_ART",
    ("Rhone",): "LOC",
}

# (tokens, subject span, object span, relation). Subjects/objects not in LEXICON (the @handle) get UNKNOWN.
MNRE_SENTENCES = [
    (["Alice", "Moreau", "moved", "to", "Paris", "last", "year"], (0, 2), (4, 5), "/per/loc/place_of_residence"),
    (["Bruno", "Keller", "joins", "Acme", "Labs", "today"], (0, 2), (3, 5), "/per/org/member_of"),
    (
        ["RT", "@quietfan", ":", "Alice", "Moreau", "wins", "the", "Nobel", "Prize"],
        (3, 5),
        (7, 9),
        "/per/misc/awarded",
    ),
    (["Lyon", "sits", "on", "the", "Rhone"], (0, 1), (4, 5), "None"),
    (["@quietfan", "met", "Bruno", "Keller", "in", "Lyon"], (0, 1), (2, 4), "/per/per/peer"),
]


class FakeTagger:
    """Tags LEXICON entries; counts calls and sentences so tests can see whether NER ran."""

    def __init__(self, name: str = "fake-ner==1"):
        self.name = name
        self.calls = 0
        self.sentences = 0

    def tag(self, sentences):
        self.calls += 1
        self.sentences += len(sentences)
        results = []
        for words in sentences:
            entities = []
            for phrase, label in LEXICON.items():
                for i in range(len(words) - len(phrase) + 1):
                    if tuple(words[i : i + len(phrase)]) == phrase:
                        entities.append((i, i + len(phrase), label))
            results.append(sorted(entities))
        return results


def mnre_line(tokens, subject, obj, relation, image_id, subject_name=None, object_name=None) -> str:
    record = {
        "token": list(tokens),
        "h": {"name": subject_name or " ".join(tokens[subject[0] : subject[1]]), "pos": list(subject)},
        "t": {"name": object_name or " ".join(tokens[obj[0] : obj[1]]), "pos": list(obj)},
        "img_id": image_id,
        "relation": relation,
    }
    return repr(record)


def write_image(path: Path, color=(200, 30, 30), size=(12, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())


def write_mnre_fixture(
    root: Path,
    *,
    splits=("train", "val", "test"),
    val_name: str = "mnre_val .txt",
    images: str | None = "per_split",
    missing_images=("mnre_train_2.jpg",),
    corrupt_images=("mnre_train_3.jpg",),
    extra_lines: dict | None = None,
) -> dict:
    """An MNRE release folder: `mnre_txt/` (5 lines per split) and `img_org/` with some images missing, one corrupt.

    `images`: "per_split" (img_org/{train,val,test}/), "flat" (all in img_org/) or None. `extra_lines`:
    {upstream split name: [raw lines appended to that file]}. Returns {split: number of lines written} and paths.
    """
    text_dir = root / "mnre_txt"
    text_dir.mkdir(parents=True, exist_ok=True)
    file_names = {"train": "mnre_train.txt", "val": val_name, "test": "mnre_test.txt"}
    counts = {}
    for split in splits:
        lines = []
        for i, (tokens, subject, obj, relation) in enumerate(MNRE_SENTENCES):
            image_id = f"mnre_{split}_{i}.jpg"
            lines.append(mnre_line(tokens, subject, obj, relation, image_id))
            if images and image_id not in missing_images:
                folder = root / "img_org" / (split if images == "per_split" else "")
                if image_id in corrupt_images:
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / image_id).write_bytes(b"this is not a JPEG")
                else:
                    write_image(folder / image_id, color=(40 * i, 100, 200))
        lines += (extra_lines or {}).get(split, [])
        (text_dir / file_names[split]).write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[split] = len(lines)
    return {"root": root, "text_dir": text_dir, "counts": counts}


# MORE fixture: labels from the built-in "more" relation bank, ids deliberately not in alphabetical order.
MORE_REL2ID = {"none": 0, "/per/org/member_of": 1, "/per/misc/present_in": 2, "/per/loc/place_of_governance": 3}

MORE_SENTENCES = [
    (["Alice", "Moreau", "speaks", "in", "Paris"], (0, 2), "man_0", "/per/misc/present_in"),
    (["Bruno", "Keller", "and", "Acme", "Labs", "staff"], (0, 2), "man_1", "/per/org/member_of"),
    (["Crowds", "gather", "in", "Lyon"], (3, 4), "flag_0", "none"),
]


def write_more_fixture(root: Path, *, splits=("train", "valid", "test"), rel2id=None, extra_lines=None) -> dict:
    """A MORE release folder: txt/{split}.txt, ent_{split}_dict.pth, img_org/{split}/ (one image missing), rel2id.json.

    Boxes are `[cx, cy, w, h]` relative to the image; every image has two objects. Returns the boxes written.
    """
    (root / "txt").mkdir(parents=True, exist_ok=True)
    (root / "rel2id.json").write_text(json.dumps(rel2id or MORE_REL2ID), encoding="utf-8")
    boxes = {}
    for split in splits:
        lines, ent_dict = [], {}
        for i, (tokens, subject, object_name, relation) in enumerate(MORE_SENTENCES):
            image_id = f"more_{split}_{i}.jpg"
            objects = {object_name: [0.5, 0.5, 0.25 + 0.1 * i, 0.5], "tree_9": [0.1, 0.2, 0.1, 0.1]}
            ent_dict[image_id] = objects
            record = {
                "token": tokens,
                "h": {"name": " ".join(tokens[subject[0] : subject[1]]), "pos": list(subject)},
                "t": {"name": object_name},
                "img_id": image_id,
                "relation": relation,
            }
            lines.append(repr(record))
            if i != 2:  # the last image of every split is missing
                write_image(root / "img_org" / split / image_id, color=(0, 60 * i, 90))
        lines += (extra_lines or {}).get(split, [])
        (root / "txt" / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        torch.save(ent_dict, root / f"ent_{split}_dict.pth")
        boxes[split] = ent_dict
    return {"root": root, "boxes": boxes}
