import pytest
from helpers.release_fixtures import mnre_line

from datasets_scripts.mnre import MNRE_LABELS
from datasets_scripts.source_lines import (
    INVALID_REASONS,
    EntitySpan,
    InvalidLineError,
    VisualObject,
    parse_line,
    read_source_file,
    words_match_name,
)


TOKENS = ["RT", "@quietfan", ":", "Alice", "Moreau", "visits", "Paris"]
GOOD = mnre_line(TOKENS, (3, 5), (6, 7), "/per/misc/present_in", "x.jpg")


def parse(text, **kwargs):
    return parse_line(text, labels=MNRE_LABELS, file="mnre_train.txt", line=7, **kwargs)


def test_parses_a_valid_line():
    record = parse(GOOD)
    assert record.tokens == tuple(TOKENS)
    assert record.subject == EntitySpan("Alice Moreau", 3, 5)
    assert record.object == EntitySpan("Paris", 6, 7)
    assert (record.image_id, record.relation) == ("x.jpg", "/per/misc/present_in")
    assert (record.source_file, record.source_line) == ("mnre_train.txt", 7)


def test_the_string_none_is_a_label():
    assert parse(mnre_line(TOKENS, (3, 5), (6, 7), "None", "x.jpg")).relation == "None"


BAD_LINES = [
    ("{'token': ['a', 'b'], 'h': ", "malformed"),
    ("__import__('os').system('echo pwned')", "malformed"),  # literal_eval refuses code
    ("['not', 'a', 'dict']", "malformed"),
    ("{'token': ['a'], 'h': {'name': 'a', 'pos': [0, 1]}, 'img_id': 'x', 'relation': 'None'}", "missing_field"),
    (mnre_line(TOKENS, (3, 5), (6, 7), "None", "x.jpg").replace("'pos': [3, 5]", "'pos': [3]"), "missing_field"),
    ("{'token': [], 'h': {'name': 'a', 'pos': [0, 1]}, 't': {'name': 'b', 'pos': [1, 2]}, 'img_id': 'x', "
     "'relation': 'None'}", "empty_tokens"),
    (mnre_line(TOKENS, (3, 5), (6, 7), "None", "x.jpg").replace("[6, 7]", "[6, 9]"), "span_out_of_range"),
    (mnre_line(TOKENS, (3, 5), (6, 7), "None", "x.jpg").replace("[6, 7]", "[6, 6]"), "span_out_of_range"),
    (mnre_line(TOKENS, (3, 5), (6, 7), "None", "x.jpg").replace("[3, 5]", "[-1, 5]"), "span_out_of_range"),
    (mnre_line(TOKENS, (3, 5), (6, 7), "None", "x.jpg", object_name="London"), "name_mismatch"),
    (mnre_line(TOKENS, (3, 5), (6, 7), "None", "x.jpg", subject_name="alice moreau"), "name_mismatch"),
    (mnre_line(TOKENS, (3, 5), (6, 7), "/per/per/friend", "x.jpg"), "unknown_relation"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "reason"), BAD_LINES)
def test_each_bad_line_is_an_error_naming_file_line_and_reason(text, reason):
    with pytest.raises(InvalidLineError) as info:
        parse(text)
    assert info.value.reason == reason
    assert (info.value.file, info.value.line) == ("mnre_train.txt", 7)
    assert str(info.value).startswith(f"mnre_train.txt:7: [{reason}]")


def test_name_match_ignores_whitespace_only():
    assert words_match_name(["Cosby", "'s"], "Cosby's")
    assert words_match_name(["Bill", "Cosby"], "Bill  Cosby ")
    assert not words_match_name(["Bill", "Cosby"], "bill cosby")
    assert parse(mnre_line(TOKENS, (3, 5), (6, 7), "None", "x.jpg", subject_name="AliceMoreau")).subject.start == 3


def test_read_source_file_stops_at_first_error_or_skips_and_counts(tmp_path):
    lines = [GOOD, BAD_LINES[0][0], "", GOOD, BAD_LINES[-1][0]]
    path = tmp_path / "mnre_val .txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidLineError, match=r"^mnre_val \.txt:2: \[malformed\]"):
        read_source_file(path, labels=MNRE_LABELS)
    result = read_source_file(path, labels=MNRE_LABELS, skip_invalid=True)
    assert [r.source_line for r in result.records] == [1, 4]
    assert [(e.line, e.reason) for e in result.skipped] == [(2, "malformed"), (5, "unknown_relation")]
    assert result.blank_lines == 1


def test_display_name_replaces_the_file_name(tmp_path):
    path = tmp_path / "3f2a9c-hash"
    path.write_text(GOOD + "\n", encoding="utf-8")
    result = read_source_file(path, labels=MNRE_LABELS, display_name="mnre_test.txt")
    assert result.records[0].source_file == "mnre_test.txt"


def test_visual_object_box_comes_from_the_object_dict():
    line = repr(
        {
            "token": ["Alice", "speaks"],
            "h": {"name": "Alice", "pos": [0, 1]},
            "t": {"name": "man_0"},
            "img_id": "a.jpg",
            "relation": "none",
        }
    )
    boxes = {"a.jpg": {"man_0": [0.5, 0.4, 0.2, 0.3]}}
    record = parse_line(line, labels=["none"], file="train.txt", line=1, object_kind="visual", object_boxes=boxes)
    assert record.object == VisualObject("man_0", (0.5, 0.4, 0.2, 0.3))
    with pytest.raises(InvalidLineError) as info:
        parse_line(line, labels=["none"], file="train.txt", line=1, object_kind="visual", object_boxes={})
    assert info.value.reason == "unknown_object"
    own_box = line.replace("'name': 'man_0'", "'name': 'man_0', 'box': [0.1, 0.1, 0.1, 0.1]")
    record = parse_line(own_box, labels=["none"], file="train.txt", line=1, object_kind="visual", object_boxes={})
    assert record.object.box == (0.1, 0.1, 0.1, 0.1)
    bad_box = {"a.jpg": {"man_0": [0.5, "x", 0.2]}}
    with pytest.raises(InvalidLineError, match="valid"):
        parse_line(line, labels=["none"], file="train.txt", line=1, object_kind="visual", object_boxes=bad_box)


def test_reason_codes_are_closed():
    with pytest.raises(ValueError):
        InvalidLineError("f", 1, "something_else", "x")
    assert len(INVALID_REASONS) == len(set(INVALID_REASONS))


def test_a_malformed_reason_holds_no_memory_address():
    with pytest.raises(InvalidLineError) as info:
        parse("{'token': name_of_a_variable}")
    assert info.value.reason == "malformed" and " at 0x" not in str(info.value), str(info.value)
