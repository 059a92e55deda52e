import json
import shlex

import pytest

from datasets_scripts.mnre import MNRE_LABELS  # the builder's ClassLabel order: the bank must follow it
from datasets_scripts.relation_bank import load_relation_bank, ordered_bank, require_descriptions


MORE_PUBLIC_LABELS = [
    "none",
    "/per/org/member_of",
    "/per/org/leader_of",
    "/per/org/opposed_to",
    "/per/misc/president",
    "/per/misc/party",
    "/per/misc/nationality",
    "/per/misc/present_in",
    "/per/misc/awarded",
    "/org/misc/present_in",
    "/org/loc/locate_at",
    "/per/per/partner",
    "/per/per/relatives",
    "/per/per/opponent",
    "/per/loc/place_of_governance",
    "/per/per/self",
]

# The word a description must use for each typed side of a label; misc is too heterogeneous to name one word.
TYPE_WORDS = {"per": "person", "org": "organization", "loc": "location"}


def _label_types(label: str) -> list[str]:
    parts = label.strip("/").split("/")
    return parts[:2] if len(parts) == 3 else []


def test_mnre_bank_has_exactly_the_dataset_labels_in_order():
    bank = load_relation_bank("mnre")
    assert list(bank) == MNRE_LABELS
    assert all(isinstance(d, str) and d.strip() for d in bank.values())


@pytest.mark.parametrize("name", ["mnre", "more"])
def test_descriptions_are_table7_style_and_distinct(name):
    # Loose but meaningful: the encoder only sees this text, so each description must be a full 1-3 sentence
    # definition (25-60 words), name the entity types of both sides, carry an example, and differ from the others.
    bank = load_relation_bank(name)
    assert len(set(bank.values())) == len(bank)
    for label, description in bank.items():
        words = description.split()
        assert 25 <= len(words) <= 60, (label, len(words))
        assert "e.g." in description, label
        lowered = description.lower()
        for type_code in _label_types(label):
            if type_code in TYPE_WORDS:
                assert TYPE_WORDS[type_code] in lowered, (label, type_code)
    for none_label in ("None", "none"):
        if none_label in bank:
            assert "no relation" in bank[none_label].lower() or "none of the listed" in bank[none_label].lower()


def test_mnre_descriptions_name_subject_and_object():
    bank = load_relation_bank("mnre")
    for label, description in bank.items():
        assert "subject" in description and "object" in description, label


def test_more_bank_covers_public_labels():
    bank = load_relation_bank("more")
    assert set(MORE_PUBLIC_LABELS) <= set(bank)
    assert "image" in bank["/per/per/self"]


def test_builtin_names_are_case_insensitive():
    assert load_relation_bank("MNRE") == load_relation_bank("mnre")


def test_path_bank_loads(tmp_path):
    path = tmp_path / "bank.json"
    path.write_text(json.dumps({"b": "second", "a": "first"}), encoding="utf-8")
    assert list(load_relation_bank(str(path))) == ["b", "a"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "not valid JSON"),
        ('["a", "b"]', "JSON object"),
        ('{"/per/per/peer": ""}', "/per/per/peer"),
        ('{"/per/per/peer": 3}', "/per/per/peer"),
        ('{"  ": "text"}', "empty label"),
        ('{"a": "x", "a": "y"}', "duplicate label 'a'"),
    ],
)
def test_bad_bank_files_name_the_file_and_entry(tmp_path, content, fragment):
    path = tmp_path / "broken_bank.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as excinfo:
        load_relation_bank(str(path))
    assert str(path) in str(excinfo.value)
    assert fragment in str(excinfo.value)


def test_unknown_bank_name_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="neither a built-in bank"):
        load_relation_bank(str(tmp_path / "missing.json"))


def test_require_descriptions_names_missing_labels_and_command_for_builtin():
    labels = ["none", "/per/per/self", "/per/org/founder_of", "/org/org/rival of"]
    with pytest.raises(ValueError) as excinfo:
        require_descriptions(labels, load_relation_bank("more"), "more")
    message = str(excinfo.value)
    assert "/per/org/founder_of" in message and "/org/org/rival of" in message
    command = message.splitlines()[-1].strip()
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "datasets_scripts.describe_relations"]
    # A built-in bank cannot be edited in place: all labels go to a new file seeded with the reviewed entries.
    assert argv[argv.index("--labels") + 1 : argv.index("--seed_bank")] == labels
    assert argv[argv.index("--seed_bank") + 1] == "more"
    assert argv[argv.index("--output") + 1] == "more_relation_bank.json"


def test_require_descriptions_for_a_file_bank_generates_only_missing_into_it(tmp_path):
    path = str(tmp_path / "my bank.json")
    with pytest.raises(ValueError) as excinfo:
        require_descriptions(["a", "b", "c"], {"a": "x"}, path)
    argv = shlex.split(str(excinfo.value).splitlines()[-1])
    assert argv[argv.index("--labels") + 1 : argv.index("--output")] == ["b", "c"]
    assert argv[argv.index("--output") + 1] == path


def test_require_descriptions_passes_when_complete():
    require_descriptions(MNRE_LABELS, load_relation_bank("mnre"), "mnre")


def test_ordered_bank_restricts_and_orders():
    bank = {"a": "A", "b": "B", "c": "C"}
    assert list(ordered_bank(["c", "a"], bank).items()) == [("c", "C"), ("a", "A")]
    with pytest.raises(ValueError, match="'z'"):
        ordered_bank(["a", "z"], bank)
    with pytest.raises(ValueError, match="describe_relations"):
        ordered_bank(["a", "z"], bank, "mnre")
    with pytest.raises(ValueError, match="repeated"):
        ordered_bank(["a", "a"], bank)


def test_the_builtin_banks_mark_their_symmetric_relations_and_files_mark_none(tmp_path):
    from datasets_scripts.relation_bank import SYMMETRIC_RELATIONS, load_relation_bank, symmetric_relations

    for name, marked in SYMMETRIC_RELATIONS.items():
        labels = list(load_relation_bank(name))
        assert set(marked) <= set(labels), f"{name}: a marked relation is not in the bank"
        assert symmetric_relations(name, labels) == [label for label in labels if label in marked]
    assert "/per/per/couple" in symmetric_relations("MNRE", list(load_relation_bank("mnre")))
    assert "/per/per/parent" not in SYMMETRIC_RELATIONS["mnre"]  # a parent is not their child's parent
    bank = tmp_path / "bank.json"
    bank.write_text('{"None": "no relation", "/per/per/couple": "a couple"}', encoding="utf-8")
    assert symmetric_relations(str(bank), ["None", "/per/per/couple"]) == []
