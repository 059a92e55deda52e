"""Relation-description banks: the natural-language side of ROC's retrieval.

ROC (Hei et al., EMNLP 2025, https://arxiv.org/abs/2509.21151) does not classify an entity pair into label ids; it
retrieves the closest *relation description* embedded by a sentence encoder. A bank is therefore a JSON object
`{label: description}` in label order, and its wording matters as much as a model hyper-parameter.

Two reviewed, project-written banks ship with the package (`datasets_scripts/relation_banks/`):

- `"mnre"`: the 23 MNRE labels, in the dataset's order (including its `alumi` spelling).
- `"more"`: the MORE labels seen in public material: `none`, `/per/org/member_of`, `/per/org/leader_of`,
  `/per/org/opposed_to`, `/per/misc/president`, `/per/misc/party`, `/per/misc/nationality`, `/per/misc/present_in`,
  `/per/misc/awarded`, `/org/misc/present_in`, `/org/loc/locate_at`, `/per/per/partner`, `/per/per/relatives`,
  `/per/per/opponent`, `/per/loc/place_of_governance`, `/per/per/self`. MORE's `rel2id.json` was not available when
  it was written, so a copy of MORE with other labels must have descriptions generated for them with
  `python -m datasets_scripts.describe_relations` (and reviewed) before building; `require_descriptions` prints the
  exact command.

Each description names what the relation means, the entity type of the subject (head entity) and of the object
(tail entity; in MORE, one side is an object region of the image), and a short invented example.
"""

from __future__ import annotations

import json
import shlex
from importlib import resources
from pathlib import Path


__all__ = [
    "BUILTIN_BANKS",
    "SYMMETRIC_RELATIONS",
    "load_relation_bank",
    "ordered_bank",
    "require_descriptions",
    "symmetric_relations",
]

BUILTIN_BANKS = ("mnre", "more")


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads keeps the last duplicate silently; in a reviewed bank that hides an edit, so refuse it.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate label {key!r}")
        result[key] = value
    return result


def _parse_bank(text: str, source: str) -> dict[str, str]:
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as err:
        raise ValueError(f"Relation bank {source} is not valid JSON: {err}") from err
    except ValueError as err:
        raise ValueError(f"Relation bank {source}: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(
            f"Relation bank {source} must be a JSON object {{label: description}}, got {type(data).__name__}"
        )
    for label, description in data.items():
        if not label.strip():
            raise ValueError(f"Relation bank {source} has an empty label (description {description!r})")
        if not isinstance(description, str) or not description.strip():
            raise ValueError(
                f"Relation bank {source}: label {label!r} needs a non-empty string description, got {description!r}"
            )
    return data


# Relations of the built-in banks that hold both ways (A couple B is B couple A). A model trained on a built-in bank
# records them in `ROCConfig.symmetric_relations`; triple extraction then reports each such pair once.
SYMMETRIC_RELATIONS = {
    "mnre": (
        "/per/per/siblings",
        "/per/per/couple",
        "/per/per/neighbor",
        "/per/per/peer",
        "/per/per/alumi",
        "/per/per/alternate_names",
        "/org/org/alternate_names",
    ),
    "more": ("/per/per/partner", "/per/per/relatives", "/per/per/opponent"),
}


def symmetric_relations(name_or_path: str, labels: list[str]) -> list[str]:
    """The symmetric relations a built-in bank marks, among `labels`; none for a bank file (say them with
    `train.py --symmetric_relations`)."""
    marked = SYMMETRIC_RELATIONS.get(str(name_or_path).lower(), ())
    return [label for label in labels if label in marked]


def load_relation_bank(name_or_path: str) -> dict[str, str]:
    """Load a bank by built-in name (`"mnre"`, `"more"`) or from a JSON file path, validating every entry.

    Raises a `ValueError` naming the file and the offending entry, because a silently broken description would only
    show up later as a quietly worse retrieval score.
    """
    name = str(name_or_path)
    if name.lower() in BUILTIN_BANKS:
        # importlib.resources works from wheels and zip installs, not only from a source checkout.
        resource = resources.files("datasets_scripts").joinpath("relation_banks", f"{name.lower()}.json")
        return _parse_bank(resource.read_text(encoding="utf-8"), f"'{name.lower()}' ({resource})")
    path = Path(name).expanduser()
    if not path.is_file():
        raise ValueError(
            f"Relation bank {name!r} is neither a built-in bank {list(BUILTIN_BANKS)} nor an existing JSON file"
        )
    return _parse_bank(path.read_text(encoding="utf-8"), str(path))


def describe_command(labels: list[str], bank_name: str) -> str:
    """The shell command that generates descriptions for `labels` so that `bank_name` can be completed."""
    if bank_name.lower() in BUILTIN_BANKS:
        # A built-in bank cannot be edited in place: write a full copy, seeded with the reviewed built-in entries.
        output = f"{bank_name.lower()}_relation_bank.json"
        extra = ["--seed_bank", bank_name.lower()]
    else:
        output, extra = bank_name, []
    args = ["python", "-m", "datasets_scripts.describe_relations", "--labels", *labels, *extra, "--output", output]
    return shlex.join(args)


def require_descriptions(labels: list[str], bank: dict[str, str], bank_name: str) -> None:
    """Fail early, before any data is written, if `bank` lacks a description for one of `labels`.

    The error names every missing label and the exact `describe_relations` command that generates them.
    """
    missing = [label for label in labels if label not in bank]
    if not missing:
        return
    if bank_name.lower() in BUILTIN_BANKS:
        command = describe_command(list(labels), bank_name)
        output = f"{bank_name.lower()}_relation_bank.json"
    else:
        command = describe_command(missing, bank_name)
        output = bank_name
    raise ValueError(
        f"Relation bank {bank_name!r} has no description for {len(missing)} label(s): {missing}.\n"
        f"Generate them with an LLM (needs OPENAI_API_KEY), review them, then use {output!r} as the relation bank:\n"
        f"  {command}"
    )


def ordered_bank(labels: list[str], bank: dict[str, str], bank_name: str | None = None) -> dict[str, str]:
    """Restrict `bank` to `labels`, in the order of `labels`, so that description index == label id.

    Pass `bank_name` to get `require_descriptions`' error (with the generating command) for missing labels.
    """
    duplicates = sorted({label for label in labels if list(labels).count(label) > 1})
    if duplicates:
        raise ValueError(f"Labels must be unique to map description index to label id; repeated: {duplicates}")
    if bank_name is not None:
        require_descriptions(labels, bank, bank_name)
    missing = [label for label in labels if label not in bank]
    if missing:
        raise ValueError(f"The relation bank has no description for {len(missing)} label(s): {missing}")
    return {label: bank[label] for label in labels}
