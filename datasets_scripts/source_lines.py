"""Parse and validate one line of an MNRE / MORE release file.

Both releases store one Python-literal dict per line (single quotes, so not JSON):

    {'token': [...words...], 'h': {'name': 'Bill Cosby', 'pos': [3, 5]}, 't': {...}, 'img_id': 'x.jpg',
     'relation': '/per/misc/present_in'}

`h` is the subject and `t` the object. In MNRE both are text spans (`pos` = word offsets, end exclusive). In MORE the
object is a visual object: `t = {'name': <object name>}` whose box lives in `ent_{split}_dict.pth` (the line may also
carry its own `box`). Lines are parsed with `ast.literal_eval` (never `eval`): a line is data, not code.

Every problem is an `InvalidLineError` naming the file, the 1-based line and a reason code from `INVALID_REASONS`, so a
caller can either stop on it or, with `skip_invalid`, count it per reason and report it.
"""

import ast
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal


# ` at 0x7f3a...` in an exception text (an object's repr): stripped, so a report is the same on every run
MEMORY_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")


# Reason codes, in the order a line is checked.
INVALID_REASONS = (
    "malformed",  # not a Python literal dict
    "missing_field",  # a required key is absent or has the wrong type
    "unsafe_image_id",  # `img_id` is absolute or climbs out of the image folder (`..`)
    "empty_tokens",  # `token` is an empty list
    "span_out_of_range",  # `pos` is not [start, end) with 0 <= start < end <= len(token)
    "name_mismatch",  # the words at `pos` are not the stated `name`
    "unknown_relation",  # `relation` is not in the dataset's label set
    "unknown_object",  # MORE: the object name has no box for this image
)

ObjectKind = Literal["span", "visual"]


def is_safe_image_id(image_id: str) -> bool:
    """A relative path that stays inside the image folder: an absolute path or a `..` would make the builder read
    (and embed, and `--push_to_hub` upload) any file of the machine."""
    parts = PurePosixPath(image_id.replace("\\", "/")).parts
    return (
        bool(parts)
        and not PurePosixPath(image_id).is_absolute()
        and ".." not in parts
        and "\x00" not in image_id
        and not image_id.startswith(("~", "\\"))
        and not (len(image_id) > 1 and image_id[1] == ":")
    )


class InvalidLineError(ValueError):
    """A source line that cannot become an example. `str(err)` is `file:line: [reason] detail`."""

    def __init__(self, file: str, line: int, reason: str, detail: str):
        if reason not in INVALID_REASONS:
            raise ValueError(f"unknown reason {reason!r}; expected one of {INVALID_REASONS}")
        self.file = file
        self.line = line
        self.reason = reason
        self.detail = detail
        super().__init__(f"{file}:{line}: [{reason}] {detail}")


@dataclass(frozen=True)
class EntitySpan:
    """A text entity: its stated name and word offsets [start, end)."""

    name: str
    start: int
    end: int


@dataclass(frozen=True)
class VisualObject:
    """A MORE visual object: its name and box `(cx, cy, w, h)` (relative to the image size, as in the release)."""

    name: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class SourceRecord:
    """One validated line."""

    tokens: tuple[str, ...]
    subject: EntitySpan
    object: EntitySpan | VisualObject
    image_id: str
    relation: str
    source_file: str
    source_line: int


def words_match_name(words: Sequence[str], name: str) -> bool:
    """Whether the words at a span spell the stated name, ignoring whitespace (but not case).

    Whitespace is ignored so that a name written with different spacing than the tokenisation (`Cosby's` over the
    words `Cosby 's`) still matches; any other difference (other words, other case) means the offsets are wrong.
    In the real MNRE v2 train/val files every name equals `" ".join(words)` exactly.
    """
    return "".join(name.split()) == "".join("".join(words).split())


def _parse_span(value, role: str, tokens: Sequence[str], error) -> EntitySpan:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str) or "pos" not in value:
        raise error("missing_field", f"{role} must be a dict with a string 'name' and a 'pos', got {value!r}")
    pos = value["pos"]
    if (
        not isinstance(pos, (list, tuple))
        or len(pos) != 2
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in pos)
    ):
        raise error("missing_field", f"{role}['pos'] must be two integers [start, end), got {pos!r}")
    start, end = pos
    if not 0 <= start < end <= len(tokens):
        raise error(
            "span_out_of_range",
            f"{role}['pos'] = {list(pos)} is not a span [start, end) of the {len(tokens)} words",
        )
    if not words_match_name(tokens[start:end], value["name"]):
        raise error(
            "name_mismatch",
            f"{role}['name'] = {value['name']!r} but the words at {list(pos)} are {' '.join(tokens[start:end])!r}",
        )
    return EntitySpan(name=value["name"], start=start, end=end)


def _valid_box(box) -> bool:
    return (
        isinstance(box, (list, tuple))
        and len(box) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
    )


def _parse_visual_object(value, image_id: str, object_boxes: Mapping | None, error) -> VisualObject:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise error("missing_field", f"t (the visual object) must be a dict with a string 'name', got {value!r}")
    name = value["name"]
    boxes = object_boxes.get(image_id) if object_boxes is not None else None
    box = boxes.get(name) if isinstance(boxes, Mapping) else None
    if box is None:
        box = value.get("box")  # a line may carry its own box; the ent dict wins when it has one
    if box is None:
        known = sorted(boxes) if isinstance(boxes, Mapping) else []
        raise error(
            "unknown_object",
            f"object {name!r} has no box for image {image_id!r} in the object dict (objects there: {known})",
        )
    if hasattr(box, "tolist"):  # a tensor or numpy array saved in the .pth
        box = box.tolist()
    if not _valid_box(box):
        raise error(
            "unknown_object", f"object {name!r} of image {image_id!r} has no valid [cx, cy, w, h] box: {box!r}"
        )
    return VisualObject(name=name, box=tuple(float(v) for v in box))


def parse_line(
    text: str,
    *,
    labels: Sequence[str] | Mapping[str, int],
    file: str,
    line: int,
    object_kind: ObjectKind = "span",
    object_boxes: Mapping | None = None,
) -> SourceRecord:
    """Parse and validate one source line.

    Args:
        text: the line (a Python-literal dict).
        labels: the dataset's relation names; any other `relation` is an error.
        file, line: where the line comes from (file name, 1-based line number), used in errors and kept in the record.
        object_kind: `"span"` (MNRE: `t` is a text span) or `"visual"` (MORE: `t` is an object of the image).
        object_boxes: MORE only, `{image_id: {object name: [cx, cy, w, h]}}` from `ent_{split}_dict.pth`.

    Raises:
        InvalidLineError: with one of the `INVALID_REASONS`.
    """

    def error(reason: str, detail: str) -> InvalidLineError:
        return InvalidLineError(file, line, reason, detail)

    try:
        data = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        reason = MEMORY_ADDRESS.sub("", str(err))  # `<ast.Name object at 0x7f...>`: a different text every run
        raise error(
            "malformed", f"not a Python literal ({type(err).__name__}: {reason}): {text.strip()[:120]!r}"
        ) from None
    if not isinstance(data, dict):
        raise error("malformed", f"expected a dict, got {type(data).__name__}: {text.strip()[:120]!r}")

    missing = [key for key in ("token", "h", "t", "img_id", "relation") if key not in data]
    if missing:
        raise error("missing_field", f"missing key(s) {missing}; keys present: {sorted(map(str, data))}")
    tokens = data["token"]
    if not isinstance(tokens, list) or not all(isinstance(w, str) for w in tokens):
        raise error("missing_field", f"'token' must be a list of strings, got {tokens!r:.120}")
    if not tokens:
        raise error("empty_tokens", "'token' is an empty list")
    if not isinstance(data["img_id"], str):
        raise error("missing_field", f"'img_id' must be a string, got {data['img_id']!r}")
    if not is_safe_image_id(data["img_id"]):
        raise error(
            "unsafe_image_id",
            f"'img_id' {data['img_id']!r} must be a file name inside the image folder (no absolute path, no '..')",
        )
    if not isinstance(data["relation"], str):
        raise error("missing_field", f"'relation' must be a string, got {data['relation']!r}")

    subject = _parse_span(data["h"], "h", tokens, error)
    if object_kind == "span":
        obj = _parse_span(data["t"], "t", tokens, error)
    elif object_kind == "visual":
        obj = _parse_visual_object(data["t"], data["img_id"], object_boxes, error)
    else:
        raise ValueError(f"object_kind must be 'span' or 'visual', got {object_kind!r}")

    if data["relation"] not in labels:
        raise error("unknown_relation", f"relation {data['relation']!r} is not one of the {len(labels)} known labels")
    return SourceRecord(
        tokens=tuple(tokens),
        subject=subject,
        object=obj,
        image_id=data["img_id"],
        relation=data["relation"],
        source_file=file,
        source_line=line,
    )


@dataclass
class ReadResult:
    """The valid records of a file, the lines skipped (only with `skip_invalid`) and the blank lines seen."""

    records: list[SourceRecord]
    skipped: list[InvalidLineError]
    blank_lines: int


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) for each line of a UTF-8 file (a BOM on the first line is dropped)."""
    with open(path, encoding="utf-8-sig") as f:
        yield from enumerate(f, start=1)


def read_source_file(
    path: str | Path,
    *,
    labels: Sequence[str] | Mapping[str, int],
    skip_invalid: bool = False,
    object_kind: ObjectKind = "span",
    object_boxes: Mapping | None = None,
    display_name: str | None = None,
) -> ReadResult:
    """Parse every line of a release file.

    `display_name` is the file name used in errors and records (default: the file's own name; a downloaded file is
    stored under a hash, so the builder passes the upstream name).

    Without `skip_invalid` the first invalid line raises its `InvalidLineError`; with it, invalid lines are collected
    in `skipped` (the caller reports them). Blank lines are not examples; they are counted, not errors.
    """
    path = Path(path)
    name = display_name or path.name
    label_set = set(labels)
    records, skipped, blank = [], [], 0
    for number, text in iter_lines(path):
        if not text.strip():
            blank += 1
            continue
        try:
            records.append(
                parse_line(
                    text,
                    labels=label_set,
                    file=name,
                    line=number,
                    object_kind=object_kind,
                    object_boxes=object_boxes,
                )
            )
        except InvalidLineError as err:
            if not skip_invalid:
                raise
            skipped.append(err)
    return ReadResult(records=records, skipped=skipped, blank_lines=blank)


__all__ = [
    "INVALID_REASONS",
    "EntitySpan",
    "InvalidLineError",
    "ReadResult",
    "SourceRecord",
    "VisualObject",
    "iter_lines",
    "parse_line",
    "read_source_file",
    "words_match_name",
]
