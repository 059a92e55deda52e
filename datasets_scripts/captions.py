"""Captions of the MNRE images written by multimodal LLMs (CAMIM, Zhang et al., ACM MM 2024), read or downloaded.

CAMIM's repository (`zefanZhang-cn/CAMIM`, folder `CAMIM/data/caption/`) holds, per captioner and split,
`<captioner>_{train,val,test}.txt` (one Python-literal dict per line, `{'img_id': 'x.jpg', 'text': '...'}`) or
`<captioner>_{train,val,test}.json` (`{image id without extension: text}`). Each caption was written from the real
image of the post, so it carries the picture's content in words: the one visual signal available where the
images are not.

Captions are keyed here by the image's file stem (`x.jpg` -> `x`), which both formats share. An empty caption (a few
BLIP ones) counts as no caption. Downloads come from a pinned commit and every file's sha256 is checked.
"""

import ast
import json
import logging
from pathlib import Path

from .downloads import verify_sha256


logger = logging.getLogger(__name__)

CAMIM_REPO = "https://github.com/zefanZhang-cn/CAMIM"
CAMIM_COMMIT = "df328a3948426007cfc93b0ece7f7a14212b0988"
# captioner (file prefix) -> (file extension, the model that wrote the captions, per CAMIM's README)
CAPTIONERS = {
    "caption": (".txt", "Qwen-VL"),
    "cogvlm": (".txt", "CogVLM"),
    "BLIP": (".txt", "BLIP"),
    "instruct": (".txt", "InstructBLIP"),
    "llavanext": (".json", "LLaVA-NeXT"),
    "minicpm": (".json", "MiniCPM-V"),
}
DEFAULT_CAPTIONER = "caption"
# MNRE split -> the split name in CAMIM's file names
SPLIT_SUFFIX = {"train": "train", "validation": "val", "test": "test"}
# sha256 of every caption file at CAMIM_COMMIT (listed in ../shared/data/mnre/captions/README.md)
CAPTION_SHA256 = {
    "caption_train.txt": "e0c46e6fdb3e179fd3db6d645c211a277e3d217b872f59162413783a9b489fe2",
    "caption_val.txt": "cba87fc4ad456e41eee395e8315f23ccf1e7eecddc0c296db7f8cfa2218c8abb",
    "caption_test.txt": "f32aaebc140dc5a77ff7ab6cf75afa38a53587901c5b19d61920540db4e17a17",
    "cogvlm_train.txt": "b6109e57265e7fccc80be203822404ad1cbd073dff26f49b3b77bc9923d0fa8c",
    "cogvlm_val.txt": "90fd7457ba27e443a18b51e18149e742b0929eb78c1b677b30886472ce76ff34",
    "cogvlm_test.txt": "b048dba303caeee2c0eff679ea3fab75bab366f0906050ead53fccbb2f012d4a",
    "BLIP_train.txt": "206c180afb9d4cfc830c204343c5d4a42b0ff434cc19250323bf1ae3e7aa366f",
    "BLIP_val.txt": "d19339d77be30dcd9103a6153ea0cdf17256d2db47c7d77495b311d6a6aaf5bc",
    "BLIP_test.txt": "7eaa35a2a435b5d39089ae1711e8923bfa13081816dbef54d7d0f363c3bd7813",
    "instruct_train.txt": "a1b59c04606bbdbfbabe749fb2b92950fa114e2a9decd55aa263cba4fd3b2275",
    "instruct_val.txt": "faeaa5aea6483576152d363c076a4ebfd737895347f5afc837299cc6f2289ffc",
    "instruct_test.txt": "5e64950598063c0bea50385a6a9785219869d8c26d71db29766deca205111a30",
    "llavanext_train.json": "58246f7048e80c4afb8d32e4f9b6411279909e535ba7091db0e0abe63d0e384d",
    "llavanext_val.json": "db49b3514b53729aa99048ebccbde932c2a7b2f41f8791f84d5f0edb5b551ca1",
    "llavanext_test.json": "0ae255effc015adfa0865d012ea7d9ad7cc0d6ab3443aba7a8a0895a789f09a9",
    "minicpm_train.json": "05be8f376b5001be03cae9bcbd0fe6387514c815aa10149069491ceda91f8b83",
    "minicpm_val.json": "90e30e933cbdcce74541445a0b1a9953c94d7f4404ff45e596843e4e7c317d7b",
    "minicpm_test.json": "d5fc4e65ecf857a892e373ec474ff6a08d13a7d88534ad47af85b6175a4a37a7",
}
CITATION = """\
@inproceedings{zhang2024camim,
  title={Caption-Aware Multimodal Relation Extraction with Mutual Information Maximization},
  author={Zhang, Zefan and Zhang, Weiqi and Li, Yanhui and Bai, Tian},
  booktitle={Proceedings of the 32nd ACM International Conference on Multimedia},
  year={2024},
  doi={10.1145/3664647.3681219}
}"""


def caption_file_name(captioner: str, split: str) -> str:
    """`caption`, `validation` -> `caption_val.txt` (CAMIM's naming)."""
    if captioner not in CAPTIONERS:
        raise ValueError(f"unknown captioner {captioner!r}; CAMIM has {', '.join(CAPTIONERS)}")
    return f"{captioner}_{SPLIT_SUFFIX[split]}{CAPTIONERS[captioner][0]}"


def caption_url(file_name: str) -> str:
    return f"{CAMIM_REPO}/raw/{CAMIM_COMMIT}/CAMIM/data/caption/{file_name}"


def image_key(image_id: str) -> str:
    """The key both caption formats share: the image file's stem (`twitter_19_31_16_6.jpg` -> `twitter_19_31_16_6`)."""
    return Path(image_id).stem


def read_caption_file(path: str | Path) -> dict[str, str | None]:
    """`{image key: caption or None (empty)}` from a CAMIM `.txt` or `.json` file; `ValueError` names file:line.

    UTF-8 with or without a byte-order mark. An image captioned twice with different texts is an error (which one
    is meant cannot be told); an empty file is a warning (every caption of its split is None).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not text.strip():
        logger.warning(f"{path}: empty caption file; every caption of its split is None.")
        return {}
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as err:
            raise ValueError(f"{path}: not a JSON caption file ({err})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{path}: expected one JSON object {{image id: caption text}}")
        return {image_key(str(k)): (v.strip() or None) for k, v in data.items()}
    captions: dict[str, str | None] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = ast.literal_eval(line.strip())  # Python literals (single quotes), never code
        except (ValueError, SyntaxError) as err:
            raise ValueError(f"{path}:{number}: not a Python-literal dict ({type(err).__name__})") from None
        if not isinstance(record, dict) or not isinstance(record.get("img_id"), str):
            found = line.strip()[:80]
            raise ValueError(f"{path}:{number}: expected {{'img_id': ..., 'text': ...}}, got {found!r}")
        caption = record.get("text")
        if caption is not None and not isinstance(caption, str):
            raise ValueError(f"{path}:{number}: 'text' must be a string, got {type(caption).__name__}")
        key, caption = image_key(record["img_id"]), (caption or "").strip() or None
        if key in captions and captions[key] != caption:
            raise ValueError(
                f"{path}:{number}: a second, different caption of {record['img_id']!r} (the first is on line "
                f"{first_line[key]}); keep one"
            )
        captions[key] = caption
        first_line.setdefault(key, number)
    return captions


def verify_download(file_name: str, path: str | Path) -> None:
    """Refuse a downloaded caption file whose sha256 is not the pinned one (every file has one)."""
    verify_sha256(path, CAPTION_SHA256[file_name], caption_url(file_name), "pass --captions with a local copy")


__all__ = [
    "CAMIM_COMMIT",
    "CAMIM_REPO",
    "CAPTIONERS",
    "CAPTION_SHA256",
    "CITATION",
    "DEFAULT_CAPTIONER",
    "caption_file_name",
    "caption_url",
    "image_key",
    "read_caption_file",
    "verify_download",
]
