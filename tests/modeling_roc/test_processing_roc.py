import pytest
import torch
from helpers.tiny_models import span

from modeling_roc import ENTITY_MARKERS, ROCProcessor


def _tokens(processor, encoding, row=0):
    ids = encoding["input_ids"][row][encoding["attention_mask"][row].bool()]
    return processor.tokenizer.convert_ids_to_tokens(ids)


def _assert_all_markers_once(tokens):
    for marker in ENTITY_MARKERS:
        assert tokens.count(marker) == 1, (marker, tokens)


def test_marked_type_prompted_text(processor):
    words = processor.mark_entities(
        "Rafael Nadal gets engaged to Mery Perello".split(), span(0, 2, "PERSON"), span(5, 7, "PERSON")
    )
    assert " ".join(words) == (
        "<subj> Rafael Nadal [ person ] </subj> gets engaged to <obj> Mery Perello [ person ] </obj>"
    )


def test_indices_point_at_the_opening_markers(processor):
    encoding = processor("Bob works at Google".split(), span(0, 1, "PERSON"), span(3, 4, "ORG"), labels=2)
    tokens = _tokens(processor, encoding)
    assert tokens[0] == processor.tokenizer.cls_token and tokens[-1] == processor.tokenizer.sep_token
    assert tokens[encoding["subject_index"][0]] == "<subj>"
    assert tokens[encoding["object_index"][0]] == "<obj>"
    assert encoding["labels"].tolist() == [2]
    assert "organization" in tokens


def test_type_prompts_switch_off_and_unknown_types_get_a_fallback(tokenizer):
    without = ROCProcessor(tokenizer=tokenizer, use_entity_types=False)
    words = without.mark_entities(["@Titans", "win", "in", "Tennessee"], span(0, 1, None), span(3, 4, "GPE"))
    assert words == ["<subj>", "@Titans", "</subj>", "win", "in", "<obj>", "Tennessee", "</obj>"]
    with_types = ROCProcessor(tokenizer=tokenizer)
    words = with_types.mark_entities(["@Titans", "win", "in", "Tennessee"], span(0, 1, None), span(3, 4, "GPE"))
    assert words[:5] == ["<subj>", "@Titans", "[", "entity", "]"]
    assert with_types.type_prompt("WORK_OF_ART") == ["[", "work", "of", "art", "]"]
    assert with_types.type_prompt("SOME_NEW_TYPE") == ["[", "some", "new", "type", "]"]


def test_truncation_keeps_markers_for_an_entity_at_the_end_of_a_long_input(processor):
    words = [f"word{i}" for i in range(300)]
    words[0], words[299] = "Alice", "Paris"
    encoding = processor(words, span(0, 1, "PERSON"), span(299, 300, "GPE"))
    tokens = _tokens(processor, encoding)
    assert len(tokens) == processor.max_length
    _assert_all_markers_once(tokens)
    assert tokens[-2] == "</obj>", "an entity ending at the last word keeps its closing marker"
    assert tokens[encoding["subject_index"][0]] == "<subj>" and tokens[encoding["object_index"][0]] == "<obj>"
    assert "alice" in tokens and "paris" in tokens


def test_truncation_keeps_a_contiguous_window_when_both_entities_fit(processor):
    words = [f"w{i}" for i in range(300)]
    encoding = processor(words, span(250, 251, "PERSON"), span(260, 262, "ORG"))
    tokens = _tokens(processor, encoding)
    assert len(tokens) == processor.max_length
    _assert_all_markers_once(tokens)
    subj, obj = tokens.index("<subj>"), tokens.index("</obj>")
    window = processor.tokenizer.convert_tokens_to_string(tokens[subj : obj + 1]).split()
    assert "w255" in window  # the words between the entities survive


def test_overlapping_spans_get_all_markers(processor):
    words = "The University of Oxford Press".split()
    encoding = processor(words, span(1, 4, "ORG"), span(3, 4, "GPE"))
    tokens = _tokens(processor, encoding)
    _assert_all_markers_once(tokens)
    assert tokens.index("<subj>") < tokens.index("<obj>") < tokens.index("</obj>") < tokens.index("</subj>")


@pytest.mark.parametrize(
    "subject, message",
    [
        (span(3, 9, "PERSON"), r"subject span \[3, 9\) is out of range for 4 words"),
        (span(2, 2, "PERSON"), r"subject span \[2, 2\)"),
        (span(-1, 1, "PERSON"), r"subject span \[-1, 1\)"),
        ({"begin": 0}, "subject must be a dict with integer 'start' and 'end'"),
    ],
)
def test_bad_spans_raise_clear_errors(processor, subject, message):
    with pytest.raises(ValueError, match=message):
        processor("Bob works at Google".split(), subject, span(3, 4, "ORG"))


def test_empty_tokens_and_mismatched_batches_raise(processor):
    with pytest.raises(ValueError, match="example 1: the token list is empty"):
        processor([["a", "b"], []], [span(0, 1, None)] * 2, [span(1, 2, None)] * 2)
    with pytest.raises(ValueError, match="2 token lists, 1 subjects"):
        processor([["a", "b"], ["c", "d"]], [span(0, 1, None)], [span(1, 2, None)] * 2)


def test_images_are_optional_per_example(processor, tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.new("RGB", (20, 60), (10, 200, 30)).save(path)
    encoding = processor(
        [["a", "b"], ["c", "d"]], [span(0, 1, None)] * 2, [span(1, 2, None)] * 2, images=[str(path), None]
    )
    assert encoding["pixel_values"].shape == (2, 3, 32, 32)
    assert encoding["image_mask"].tolist() == [True, False]
    assert torch.count_nonzero(encoding["pixel_values"][1]) == 0
    no_images = processor([["a", "b"]], [span(0, 1, None)], [span(1, 2, None)], images=[None])
    assert "pixel_values" not in no_images


def test_a_text_only_processor_refuses_images(tokenizer):
    from PIL import Image

    text_only = ROCProcessor(tokenizer=tokenizer)
    with pytest.raises(ValueError, match="no `image_config`"):
        text_only(["a", "b"], span(0, 1, None), span(1, 2, None), images=Image.new("RGB", (4, 4)))


def test_a_tokenizer_without_markers_is_refused():
    from transformers import AutoTokenizer

    from modeling_roc import EMBEDDED_TEXT_ENCODER, resolve_encoder_path

    plain = AutoTokenizer.from_pretrained(resolve_encoder_path(EMBEDDED_TEXT_ENCODER))
    with pytest.raises(ValueError, match="lacks the entity markers"):
        ROCProcessor(tokenizer=plain)


def test_save_and_reload_keeps_settings(processor, tmp_path):
    processor.use_entity_types = False
    processor.save_pretrained(tmp_path)
    reloaded = ROCProcessor.from_pretrained(tmp_path)
    assert reloaded.use_entity_types is False and reloaded.max_length == processor.max_length
    assert reloaded.image_config == processor.image_config
    example = (["Bob", "visits", "Rome"], span(0, 1, "PERSON"), span(2, 3, "GPE"))
    assert torch.equal(reloaded(*example)["input_ids"], processor(*example)["input_ids"])


# ---------------------------------------------------------------------------------------- visual objects (MORE)
def _visual_object(box=(0.25, 0.5, 0.5, 1.0)):
    return {"name": "man_1", "box": list(box), "type": "OBJECT", "coarse_type": "OBJECT"}


def test_a_visual_object_gets_a_marked_slot_after_the_sentence(processor):
    tokens = "Rafael Nadal wins in Paris".split()
    words = processor.mark_entities(tokens, span(0, 2, "PERSON"), _visual_object())
    assert " ".join(words) == (
        "<subj> Rafael Nadal [ person ] </subj> wins in Paris <obj> [ object in the image ] </obj>"
    )
    encoding = processor(tokens, span(0, 2, "PERSON"), _visual_object())
    assert _tokens(processor, encoding)[encoding["object_index"][0]] == "<obj>"


def test_a_visual_object_slot_survives_truncation(tokenizer):
    short = ROCProcessor(tokenizer=tokenizer, max_length=16)
    tokens = ["Nadal"] + ["word"] * 40
    encoding = short(tokens, span(0, 1, "PERSON"), _visual_object())
    kept = _tokens(short, encoding)
    assert len(kept) == 16
    _assert_all_markers_once(kept)
    assert kept[encoding["object_index"][0]] == "<obj>"


def test_the_image_input_of_a_visual_object_is_its_region(processor):
    from PIL import Image

    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red, right half blue
    tokens = "Nadal wins".split()
    left, right = _visual_object((0.25, 0.5, 0.5, 1.0)), _visual_object((0.75, 0.5, 0.5, 1.0))
    encoding = processor([tokens] * 3, [span(0, 1, "PERSON")] * 3, [left, right, span(1, 2, None)], images=[image] * 3)
    red, blue = encoding["pixel_values"][0].mean(dim=(1, 2)), encoding["pixel_values"][1].mean(dim=(1, 2))
    assert red[0] > 0.9 and red[2] < -0.9  # normalized with mean/std 0.5: red channel high, blue low
    assert blue[2] > 0.9 and blue[0] < -0.9
    whole = encoding["pixel_values"][2].mean(dim=(1, 2))  # a text object keeps the whole image
    assert abs(whole[0]) < 0.2 and abs(whole[2]) < 0.2


@pytest.mark.parametrize("box", [(0.5, 0.5, 0.0, 1.0), (0.5, 0.5, float("nan"), 1.0), (0.5, 0.5, 1.0)])
def test_bad_object_boxes_raise_clear_errors(processor, box):
    from PIL import Image

    with pytest.raises(ValueError, match="example 0: an object box"):
        processor(["Nadal"], span(0, 1, None), _visual_object(box), images=Image.new("RGB", (8, 8)))


def test_a_box_outside_the_image_still_crops_one_pixel():
    from PIL import Image

    from modeling_roc.processing_roc import crop_box

    assert crop_box(Image.new("RGB", (10, 10)), (1.5, 1.5, 0.1, 0.1)).size == (1, 1)


def test_the_collator_names_the_dataset_row_of_a_bad_entity(processor):
    from roc_mre.training.data_collator import ROCDataCollator

    good = {"id": "mnre-train-000007", "tokens": ["Bob", "works"], "subject": span(0, 1, None)}
    good["object"] = span(1, 2, None)
    bad = {**good, "id": "mnre-train-000008", "object": {"name": "Google", "type": "ORG"}}  # neither span nor box
    with pytest.raises(ValueError, match=r"example 1: object must be .*1: 'mnre-train-000008'"):
        ROCDataCollator(processor, index_column=None)([good, bad])


def _engagement_row(index=0):
    return {
        "tokens": "Rafael Nadal gets engaged to Mery Perello".split(),
        "subject": span(0, 2, "PERSON"),
        "object": span(5, 7, "PERSON"),
        "relation": 1,
        "example_index": index,
    }


def test_mention_masking_hides_names_but_keeps_markers_and_types(processor):
    from roc_mre.training.data_collator import ROCDataCollator

    masked = ROCDataCollator(processor, mention_mask_prob=1.0)([_engagement_row()])
    tokens = _tokens(processor, masked)
    assert " ".join(tokens[1:-1]) == (
        "<subj> [MASK] [MASK] [ person ] </subj> gets engaged to <obj> [MASK] [MASK] [ person ] </obj>"
    )
    assert tokens[masked["subject_index"][0]] == "<subj>" and tokens[masked["object_index"][0]] == "<obj>"

    plain = ROCDataCollator(processor)([_engagement_row()])
    assert "[MASK]" not in _tokens(processor, plain) and "rafael" in _tokens(processor, plain)
    written = ROCDataCollator(processor)(
        [{**_engagement_row(), "tokens": "[MASK] Nadal gets engaged to Mery Perello".split()}]
    )
    assert "[MASK]" not in _tokens(processor, written)  # a mask token in the post itself stays text


def test_mention_masking_is_fixed_by_seed_epoch_and_row(processor):
    from roc_mre.training.data_collator import ROCDataCollator

    rows = [_engagement_row(i) for i in range(400)]

    def masks(seed=0, epoch=0):
        collator = ROCDataCollator(processor, mention_mask_prob=0.3, seed=seed, epoch=epoch)
        return [tuple(bool(entity.get("masked")) for entity in collator.mask_mentions(row)) for row in rows]

    first = masks()
    assert first == masks()  # a new collator (a resumed run, another process) draws the same masks
    masked_entities = sum(mask[0] + mask[1] for mask in first)
    assert 0.2 < masked_entities / (2 * len(rows)) < 0.4
    assert first != masks(epoch=1) and first != masks(seed=1)  # each epoch and seed draws anew


def test_mention_masking_rejects_bad_probabilities(processor):
    from roc_mre.training.data_collator import ROCDataCollator
    from train import parse_args

    with pytest.raises(ValueError, match="mention_mask_prob"):
        ROCDataCollator(processor, mention_mask_prob=1.5)
    with pytest.raises(SystemExit):
        parse_args(["--dataset_name_or_path", "x", "--mention_mask_prob", "-0.1"])


@pytest.mark.parametrize("literal", ["<obj>", "</subj>", "<SUBJ>", "x<obj>y"])
def test_user_text_and_types_can_never_create_a_marker(processor, literal):
    """A literal marker in a post's words or in an NER type must not move where the model reads an entity from."""
    words = f"Bob {literal} works at Google".split()
    encoding = processor(words, span(0, 1, literal), span(4, 5, "ORG"))
    tokens = _tokens(processor, encoding)
    _assert_all_markers_once(tokens)
    assert tokens[encoding["subject_index"][0]] == "<subj>" and tokens[encoding["subject_index"][0] + 1] == "bob"
    assert tokens[encoding["object_index"][0]] == "<obj>" and tokens[encoding["object_index"][0] + 1] == "google"


@pytest.mark.parametrize("literal", ["[SEP]", "[PAD]", "[MASK]", "[CLS]", "x[SEP]y"])
def test_special_tokens_written_in_a_post_or_caption_stay_ordinary_text(tokenizer, literal):
    """A post saying `[SEP]` must not end the text segment early (nor `[PAD]` / `[MASK]` become those tokens): it is
    read as the ordinary tokens `[`, `sep`, `]`, the same ids as the spaced spelling."""
    processor = ROCProcessor(tokenizer=tokenizer)
    words = f"Bob {literal} works at Google".split()
    encoding = processor(words, span(0, 1, "PERSON"), span(4, 5, "ORG"), captions=f"a {literal} logo")
    ids = encoding["input_ids"][0][encoding["attention_mask"][0].bool()].tolist()
    specials = {tokenizer.pad_token_id, tokenizer.mask_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id}
    assert [i for i in ids if i in specials] == [
        tokenizer.cls_token_id,
        tokenizer.sep_token_id,
        tokenizer.sep_token_id,
    ]
    spaced = literal.replace("[", "[ ").replace("]", " ]")
    words_spaced = ["Bob", spaced, "works", "at", "Google"]  # one word still: the spans stay where they were
    expected = processor(words_spaced, span(0, 1, "PERSON"), span(4, 5, "ORG"), captions=f"a {spaced} logo")
    assert encoding["input_ids"].tolist() == expected["input_ids"].tolist()
    tokens = processor.caption_token_inputs([f"a {literal} logo"])["caption_input_ids"][0].tolist()
    assert [i for i in tokens if i in specials] == [tokenizer.cls_token_id, tokenizer.sep_token_id]


@pytest.mark.parametrize("bad", [1.7, True, "1", None])
def test_offsets_must_be_integers_not_anything_int_accepts(processor, bad):
    with pytest.raises(ValueError, match="example 0: subject must be a dict with integer 'start' and 'end'"):
        processor("Bob works at Google".split(), {"start": bad, "end": 1, "type": "PERSON"}, span(3, 4, "ORG"))


def test_numpy_images_are_read_and_bad_ones_refused(processor):
    import numpy as np

    image = np.zeros((20, 30, 3), dtype=np.uint8)
    image[..., 0] = 255
    encoding = processor("Bob works at Google".split(), span(0, 1, "PERSON"), span(3, 4, "ORG"), images=image)
    assert encoding["pixel_values"].shape[-2:] == (32, 32) and encoding["image_mask"].tolist() == [True]
    with pytest.raises(ValueError, match="example 0: a numpy image must be uint8"):
        processor("Bob works at Google".split(), span(0, 1, "PERSON"), span(3, 4, "ORG"), images=image / 255.0)
    with pytest.raises(ValueError, match="example 0: an image must be a PIL image, a path, a URL or a numpy array"):
        processor("Bob works at Google".split(), span(0, 1, "PERSON"), span(3, 4, "ORG"), images=42)


def test_an_image_path_that_is_missing_or_truncated_is_named(processor, tmp_path):
    import base64
    import io

    from PIL import Image

    post = ("Bob works at Google".split(), span(0, 1, "PERSON"), span(3, 4, "ORG"))
    missing = tmp_path / "posts" / "img_1.jpg"
    with pytest.raises(FileNotFoundError, match=f"example 0: image not found: {missing}"):  # was "Invalid base64"
        processor(*post, images=str(missing))
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, "JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ValueError, match=f"example 0: cannot read image {truncated}: OSError"):
        processor(*post, images=str(truncated))
    encoded = base64.b64encode(buffer.getvalue()).decode()  # base64 text still reads
    assert processor(*post, images=encoded)["image_mask"].tolist() == [True]
    with pytest.raises(ValueError, match="neither an existing file, a URL nor base64 of an image"):
        processor(*post, images="A" * 100)


def test_a_caption_is_a_second_segment_shortened_before_any_marker(tokenizer):
    processor = ROCProcessor(tokenizer=tokenizer, max_length=24)
    words = "Bob works at Google".split()
    caption = "A man in a suit stands in front of a large glass building with a colorful logo on it"
    encoding = processor(words, span(0, 1, "PERSON"), span(3, 4, "ORG"), captions=caption)
    tokens = _tokens(processor, encoding)
    _assert_all_markers_once(tokens)
    assert len(tokens) == 24, "the caption fills the budget, no more"
    first_sep = tokens.index(tokenizer.sep_token)
    assert tokens[first_sep + 1 : first_sep + 4] == ["a", "man", "in"] and tokens[-1] == tokenizer.sep_token
    plain = processor(words, span(0, 1, "PERSON"), span(3, 4, "ORG"))
    assert encoding["subject_index"].tolist() == plain["subject_index"].tolist(), "the text part is unchanged"
    assert encoding["input_ids"][0, : plain["input_ids"].shape[1]].tolist() == plain["input_ids"][0].tolist()


def test_a_long_text_keeps_its_markers_and_drops_the_caption(tokenizer):
    processor = ROCProcessor(tokenizer=tokenizer, max_length=16)
    words = ("word " * 30).split() + ["Google"]
    encoding = processor(words, span(0, 1, "PERSON"), span(30, 31, "ORG"), captions="a <obj> logo")
    tokens = _tokens(processor, encoding)
    _assert_all_markers_once(tokens)  # neither truncation nor a literal marker in the caption moves a marker
    assert tokens.count(tokenizer.sep_token) == 1, "no room left: the caption is left out"


def test_captions_in_a_batch_may_be_missing_and_must_be_text(processor):
    batch = processor(
        ["Bob works at Google".split(), "Alice joined NASA".split()],
        [span(0, 1, "PERSON"), span(0, 1, "PERSON")],
        [span(3, 4, "ORG"), span(2, 3, "ORG")],
        captions=["A man at a desk.", None],
    )
    tokens = [_tokens(processor, batch, row) for row in (0, 1)]
    assert tokens[0].count(processor.tokenizer.sep_token) == 2 and tokens[1].count(processor.tokenizer.sep_token) == 1
    with pytest.raises(ValueError, match="example 0: a caption must be a string or None"):
        processor("Bob works at Google".split(), span(0, 1, "PERSON"), span(3, 4, "ORG"), captions=[3])
    with pytest.raises(ValueError, match="1 captions for 2 examples"):
        processor([["a", "b"], ["c", "d"]], [span(0, 1, None)] * 2, [span(1, 2, None)] * 2, captions=["x"])


def test_caption_dropout_is_fixed_by_seed_epoch_and_row(processor):
    from roc_mre.training.data_collator import ROCDataCollator

    rows = [
        {"tokens": ["Bob", "works", "at", "Google"], "subject": span(0, 1, "PERSON"), "object": span(3, 4, "ORG"),
         "relation": 0, "caption": f"caption {i}", "example_index": i}
        for i in range(200)
    ]  # fmt: skip
    collator = ROCDataCollator(processor, use_captions=True, caption_dropout=0.5, seed=3)
    kept = [collator.caption(row) is not None for row in rows]
    assert 70 < sum(kept) < 130
    again = ROCDataCollator(processor, use_captions=True, caption_dropout=0.5, seed=3)
    assert [again.caption(row) is not None for row in rows] == kept
    again.epoch = 1
    assert [again.caption(row) is not None for row in rows] != kept
    no_dropout = ROCDataCollator(processor, use_captions=True)
    assert all(no_dropout.caption(row) == row["caption"] for row in rows)
    with pytest.raises(ValueError, match="needs a `caption` column"):
        no_dropout([{k: v for k, v in rows[0].items() if k != "caption"}])
    with pytest.raises(ValueError, match="caption_dropout"):
        ROCDataCollator(processor, use_captions=True, caption_dropout=1.5)


def test_caption_tokens_mode_encodes_the_caption_on_its_own(tokenizer):
    processor = ROCProcessor(tokenizer=tokenizer, caption_mode="tokens", max_caption_length=8)
    words = "Bob works at Google".split()
    plain = processor(words, span(0, 1, "PERSON"), span(3, 4, "ORG"))
    batch = processor(
        [words, words],
        [span(0, 1, "PERSON")] * 2,
        [span(3, 4, "ORG")] * 2,
        captions=["A man in a suit stands in front of a glass building", None],
    )
    assert batch["input_ids"][0].tolist() == plain["input_ids"][0].tolist(), "the text segment has no caption"
    caption = tokenizer.convert_ids_to_tokens(batch["caption_input_ids"][0])
    assert caption[0] == tokenizer.cls_token and caption[-1] == tokenizer.sep_token and len(caption) == 8
    assert batch["caption_mask"].tolist() == [True, False]
    assert batch["caption_attention_mask"][1].sum() == 2, (
        "a row without caption is [CLS] [SEP], masked by caption_mask"
    )
    assert "caption_input_ids" not in processor([words], [span(0, 1, "PERSON")], [span(3, 4, "ORG")], captions=[None])
    with pytest.raises(ValueError, match="caption_mode"):
        ROCProcessor(tokenizer=tokenizer, caption_mode="image")


def test_the_caption_mode_is_saved_with_the_processor(tokenizer, tmp_path):
    ROCProcessor(tokenizer=tokenizer, caption_mode="tokens", max_caption_length=40).save_pretrained(tmp_path)
    loaded = ROCProcessor.from_pretrained(tmp_path)
    assert (loaded.caption_mode, loaded.max_caption_length) == ("tokens", 40)


def test_the_collator_keeps_caption_inputs_when_every_caption_is_dropped(tokenizer):
    from roc_mre.training.data_collator import ROCDataCollator

    processor = ROCProcessor(tokenizer=tokenizer, caption_mode="tokens")
    rows = [
        {"tokens": ["Bob", "works", "at", "Google"], "subject": span(0, 1, "PERSON"), "object": span(3, 4, "ORG"),
         "relation": 0, "caption": "a man", "example_index": i}
        for i in range(3)
    ]  # fmt: skip
    batch = ROCDataCollator(processor, use_captions=True, caption_dropout=1.0)(rows)
    assert batch["caption_mask"].tolist() == [False] * 3, "same inputs every step (DDP needs a fixed structure)"


def test_a_corrupt_dataset_image_is_named_by_its_image_id_not_a_memory_buffer(processor):
    """Training reads the image column undecoded; a corrupt image stops with its image_id and row id."""
    import io

    from PIL import Image

    from roc_mre.training.data_collator import ROCDataCollator

    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 255, 0)).save(buffer, format="PNG")
    good = {**_engagement_row(0), "id": "row-0", "image": {"bytes": buffer.getvalue(), "path": None}}
    batch = ROCDataCollator(processor, use_images=True)([good])
    assert batch["image_mask"].tolist() == [True]

    bad = {**_engagement_row(1), "id": "row-1", "image_id": "post_17.jpg", "image": {"bytes": b"junk", "path": None}}
    with pytest.raises(ValueError) as err:
        ROCDataCollator(processor, use_images=True)([good, bad])
    message = str(err.value)
    assert "image post_17.jpg cannot be decoded: UnidentifiedImageError" in message and "'row-1'" in message
    assert "BytesIO" not in message and "0x" not in message
