"""benchmarks/mnre_text_stats.py: repeated training triples, their conflicting labels, whether their images differ."""

import sys
from pathlib import Path

from datasets_scripts.source_lines import EntitySpan, SourceRecord


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import mnre_text_stats  # noqa: E402


def _record(words: str, relation: str, image_id: str, line: int) -> SourceRecord:
    tokens = tuple(words.split())
    return SourceRecord(
        tokens=tokens,
        subject=EntitySpan(name=tokens[0], start=0, end=1),
        object=EntitySpan(name=tokens[-1], start=len(tokens) - 1, end=len(tokens)),
        image_id=image_id,
        relation=relation,
        source_file="train.txt",
        source_line=line,
    )


def test_conflicting_triples_are_counted_and_split_by_whether_their_images_differ():
    train = [
        _record("Alice met Bob", "/per/per/peer", "a.jpg", 1),
        _record("Alice met Bob", "None", "b.jpg", 2),  # same text, other label, other picture
        _record("Carol joined NASA", "/per/org/member_of", "c.jpg", 3),
        _record("Carol joined NASA", "None", "c.jpg", 4),  # same text, other label, same picture: noise
        _record("Dave and Erin", "None", "d.jpg", 5),
        _record("Dave and Erin", "None", "e.jpg", 6),  # repeated, same label
    ]
    validation = [_record("alice saw BOB", "None", "f.jpg", 1)]

    stats = mnre_text_stats.text_stats({"train": train, "validation": validation})

    assert stats["train_repeated_triples"] == 3
    assert stats["train_repeated_triples_with_different_labels"] == 2
    assert stats["train_conflicting_triples_with_different_images"] == 1
    assert stats["train_conflicting_label_sets"] == {"/per/per/peer vs None": 1, "/per/org/member_of vs None": 1}
    assert stats["validation_name_pairs_seen_in_train"] == 1
