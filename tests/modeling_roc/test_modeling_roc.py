import importlib.util
import json

import pytest
import torch
import torch.nn.functional as F
from helpers.tiny_models import EXAMPLES, TINY_BANK, span, tiny_bert

from modeling_roc import EMBEDDED_TEXT_ENCODER, ROCConfig, ROCModel, bank_contrastive_loss, in_batch_contrastive_loss
from modeling_roc.configuration_roc import resolve_encoder_path


def test_forward_shapes_and_outputs(make_model, batch):
    model = make_model()
    out = model(**batch)
    assert out.logits.shape == (4, len(TINY_BANK))
    assert out.pair_embeds.shape == (4, model.config.pair_embed_dim)
    assert out.relation_embeds.shape == (len(TINY_BANK), model.config.pair_embed_dim)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    # logits are scaled cosines: |logit| <= 1/τ
    assert out.logits.abs().max() <= out.logit_scale + 1e-4


def test_gradients_reach_every_trainable_part(make_model, batch):
    model = make_model()
    model(**batch).loss.backward()
    parts = {
        "text": model.text_model,
        "vision": model.vision_model,
        "vision projection": model.vision_proj,
        "fusion": model.fusion,
        "pair head": model.pair_proj,
        "relation encoder": model.relation_model,
        "relation projection": model.relation_proj,
    }
    for name, module in parts.items():
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), f"no gradient reaches the {name}"
    assert model.logit_scale.grad is not None and model.logit_scale.grad != 0


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"head": "classification"},
        {"loss_mode": "in_batch"},
    ],
    ids=["retrieval-bank", "classification", "retrieval-in-batch"],
)
def test_a_few_steps_drive_the_loss_down(make_model, batch, overrides):
    model = make_model(**overrides)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    # in-batch negatives cannot reach 0 here: labels repeat in the batch (false negatives)
    assert losses[-1] < 0.6 * losses[0], losses


@pytest.mark.parametrize("num_fusion_layers", [1, 2])
def test_inference_matches_the_full_fusion_computation(make_model, batch, tokenizer, num_fusion_layers):
    """Inference computes only the marker outputs of the last fusion layer; training runs it whole. Without dropout the
    two must agree (on a batch with padding and with and without images)."""
    no_dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    model = make_model(
        num_fusion_layers=num_fusion_layers,
        text_config={**tiny_bert(len(tokenizer)), **no_dropout},
        relation_config={**tiny_bert(len(tokenizer), hidden_size=24), **no_dropout},
    )
    assert batch["attention_mask"].min() == 0, "the batch must contain padding"
    full = model.train()(**batch)
    with torch.no_grad():
        inferred = model.eval()(**batch)
    assert torch.allclose(inferred.pair_embeds, full.pair_embeds, atol=1e-5)
    assert torch.equal(inferred.logits.argmax(-1), full.logits.argmax(-1))


def test_bank_loss_is_cross_entropy_over_the_bank():
    logits = torch.randn(5, 4)
    labels = torch.tensor([0, 3, 3, 1, 2])
    naive = torch.stack([-(logits[i].exp()[labels[i]] / logits[i].exp().sum()).log() for i in range(5)]).mean()
    assert torch.allclose(bank_contrastive_loss(logits, labels), naive, atol=1e-6)


def test_in_batch_loss_matches_the_papers_formula():
    torch.manual_seed(0)
    pairs, relations, scale = torch.randn(4, 8), torch.randn(3, 8), torch.tensor(20.0)
    labels = torch.tensor([0, 2, 1, 2])
    naive = 0.0
    for i in range(4):
        sims = torch.stack([F.cosine_similarity(pairs[i], relations[labels[j]], dim=0) for j in range(4)]) * scale
        naive += -(sims[i].exp() / sims.exp().sum()).log()
    assert torch.allclose(in_batch_contrastive_loss(pairs, relations, labels, scale), naive / 4, atol=1e-5)


def test_relation_embeddings_are_encoded_once_in_eval_and_refreshed_after_changes(make_model, batch):
    model = make_model().eval()
    calls = []
    model.relation_model.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        first = model(**batch).logits
        second = model(**batch).logits
    assert len(calls) == 1 and torch.equal(first, second)

    model.train()
    model(**batch)
    assert len(calls) == 2  # training re-encodes every step
    model.eval()
    with torch.no_grad():
        model(**batch)
        model(**batch)
    assert len(calls) == 3

    model.set_relation_bank({**TINY_BANK, "/per/per/couple": "The two people are siblings."})
    with torch.no_grad():
        changed = model(**batch).logits
    assert len(calls) == 4 and not torch.allclose(changed, first)


def test_a_frozen_relation_encoder_is_encoded_once_even_while_training(make_model, batch):
    model = make_model(freeze_relation_encoder=True)  # pair width 16 != relation width 24: the projection trains
    calls = []
    model.relation_model.register_forward_hook(lambda *args: calls.append(1))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    frozen_before = {k: v.clone() for k, v in model.relation_model.state_dict().items()}
    for _ in range(3):
        model(**batch).loss.backward()
        assert model.relation_proj.weight.grad is not None
        optimizer.step()
        optimizer.zero_grad()
    assert len(calls) == 1
    assert all(torch.equal(v, model.relation_model.state_dict()[k]) for k, v in frozen_before.items())
    # the cached descriptions were encoded without dropout: a fresh eval-mode encoding gives the same relations
    trained_relations = model.get_relation_features().detach()
    model.eval()
    assert torch.allclose(model.get_relation_features(), trained_relations)
    model.set_relation_bank({**TINY_BANK, "/per/per/couple": "The two people are siblings."})
    model(**batch)
    assert len(calls) == 2


def test_set_relation_bank_adds_a_relation_the_model_can_return(make_model, batch):
    model = make_model().eval()
    new_label = "/per/per/siblings"
    model.set_relation_bank({**TINY_BANK, new_label: "The subject and the object are brother or sister."})
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape[1] == len(TINY_BANK) + 1
    assert model.config.id2label[len(TINY_BANK)] == new_label and model.config.label2id[new_label] == len(TINY_BANK)

    only_new = {new_label: TINY_BANK["None"]}
    model.set_relation_bank(only_new)
    unlabelled = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        prediction = model(**unlabelled).logits.argmax(-1)
    assert {model.config.id2label[i] for i in prediction.tolist()} == {new_label}


def test_score_offsets_shift_only_their_relation_predict_it_and_are_saved(make_model, batch, tmp_path):
    """An offset is added to one relation's cosine (times 1/τ) when predicting, never to the training loss."""
    model = make_model().eval()
    new_label = "/per/per/siblings"
    bank = {**TINY_BANK, new_label: "The subject and the object are brother or sister."}
    model.set_relation_bank(bank)
    with torch.no_grad():
        plain = model(**batch)
    model.set_relation_bank(bank, score_offsets={new_label: 0.25})
    with torch.no_grad():
        shifted = model(**batch)
    column = list(bank).index(new_label)
    expected = plain.logits.clone()
    expected[:, column] += plain.logit_scale * 0.25
    assert torch.allclose(shifted.logits, expected, atol=1e-5)
    assert torch.allclose(shifted.loss, plain.loss), "the loss is computed before the offsets"

    model.set_relation_bank(bank, score_offsets={new_label: 2.5})  # above any cosine gap (cosines lie in [-1, 1])
    with torch.no_grad():
        assert set(model(**batch).logits.argmax(-1).tolist()) == {column}
    model.save_pretrained(tmp_path)
    reloaded = ROCModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.relation_score_offsets == {new_label: 2.5}
    with torch.no_grad():
        assert set(reloaded(**batch).logits.argmax(-1).tolist()) == {column}

    model.set_relation_bank(bank)  # a new bank without offsets clears them
    assert model.config.relation_score_offsets == {}


@pytest.mark.parametrize(
    ("offsets", "message"),
    [
        ({"/not/in/bank": 0.1}, "not in the bank: \\['/not/in/bank'\\]"),
        ({"None": float("nan")}, "relation_score_offsets\\['None'\\]` must be a finite number"),
        ({"None": 1e39}, "outside \\[-10.0, 10.0\\]"),
        ({3: 0.1}, "keys must be relation labels"),
        ([("None", 0.1)], "must be a mapping"),
        ({"None": "0.1"}, "must be a finite number, got '0.1'"),
    ],
)
def test_bad_score_offsets_are_refused_and_leave_the_bank(make_model, offsets, message):
    model = make_model()
    with pytest.raises(ValueError, match=message):
        model.set_relation_bank({**TINY_BANK}, score_offsets=offsets)
    assert model.config.relation_bank == TINY_BANK and model.config.relation_score_offsets == {}


def test_score_offsets_need_the_retrieval_head(make_model):
    with pytest.raises(ValueError, match="only the retrieval head has"):
        make_model(head="classification").set_relation_bank(dict(TINY_BANK), score_offsets={"None": 0.1})
    with pytest.raises(ValueError, match="only the retrieval head has"):
        ROCConfig(
            text_config=tiny_bert(100),
            head="classification",
            relation_bank=TINY_BANK,
            relation_score_offsets={"None": 0.1},
        )


def test_a_fixed_label_head_refuses_new_relations(make_model):
    model = make_model(head="classification")
    with pytest.raises(ValueError, match="fixed label set"):
        model.set_relation_bank({**TINY_BANK, "/new": "a new relation"})


def _module_names(model):
    return {name.split(".")[0] for name, _ in model.named_parameters()}


def test_each_ablation_switch_changes_what_the_model_computes(make_model, batch):
    reference = make_model()
    assert {"fusion", "relation_model", "vision_model"} <= _module_names(reference)
    with torch.no_grad():
        reference_logits = reference.eval()(**batch).logits

    no_fusion = make_model(use_fusion=False, vision_model_name=None)
    assert no_fusion.fusion is None and "fusion" not in _module_names(no_fusion)

    mean_pooling = make_model(entity_pooling="mean")
    assert mean_pooling.pair_proj.in_features == reference.config.text_config.hidden_size
    # mean pooling ignores where the entities are: moving the marker indices changes nothing
    moved = dict(batch, subject_index=batch["subject_index"] + 1)
    with torch.no_grad():
        mean_pooling.eval()
        assert torch.equal(mean_pooling(**batch).logits, mean_pooling(**moved).logits)
        assert not torch.equal(reference(**batch).logits, reference(**moved).logits)

    learned = make_model(relation_source="learned")
    assert learned.relation_model is None and learned.relation_embeddings.weight.shape[0] == len(TINY_BANK)

    label_names = make_model(relation_source="label_name").eval()
    texts = label_names.relation_tokenizer.batch_decode(
        label_names._tokenized_relations(torch.device("cpu"))["input_ids"], skip_special_tokens=True
    )
    assert texts[2] == "per org member of"

    classification = make_model(head="classification")
    assert classification.relation_model is None and classification.classifier is not None

    without_types = make_model(use_entity_types=False)
    assert without_types.config.use_entity_types is False  # acted on by the processor, see test_processing_roc

    text_only = make_model(vision_model_name=None).eval()
    with torch.no_grad():
        assert text_only(**{k: v for k, v in batch.items() if k not in ("pixel_values", "image_mask")}).logits.shape
    assert not torch.equal(reference_logits, text_only(**batch).logits.detach())


def test_images_change_the_pair_embedding_only_where_present(make_model, batch):
    model = make_model().eval()
    with torch.no_grad():
        with_images = model(**batch).pair_embeds
        other = torch.randn_like(batch["pixel_values"])
        replaced = model(**dict(batch, pixel_values=other)).pair_embeds
    present = batch["image_mask"]
    assert not torch.allclose(with_images[present], replaced[present])
    assert torch.allclose(with_images[~present], replaced[~present], atol=1e-6)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="loss_mode"):
        ROCConfig(loss_mode="triplet", relation_bank=TINY_BANK)
    with pytest.raises(ValueError, match="use_fusion=False"):
        ROCConfig(use_fusion=False, vision_model_name="vit_tiny_patch16_224", relation_bank=TINY_BANK)
    with pytest.raises(ValueError, match="relation_bank"):
        ROCModel(ROCConfig())
    with pytest.raises(ValueError, match="differ from the `relation_bank` labels"):
        ROCConfig(relation_bank=TINY_BANK, id2label={0: "None", 1: "other"})
    with pytest.raises(ValueError, match="`symmetric_relations` must be a list of labels, got the string 'abc'"):
        ROCConfig(relation_bank=TINY_BANK, symmetric_relations="abc")
    with pytest.raises(ValueError, match="`example_decision`"):
        ROCConfig(relation_bank=TINY_BANK, example_decision="nearest")
    with pytest.raises(ValueError, match="`example_shrinkage` must be a number > 0"):
        ROCConfig(relation_bank=TINY_BANK, example_shrinkage=0)


def test_from_encoders_carries_the_pretrained_minilm_weights():
    from transformers import AutoModel

    model = ROCModel.from_encoders(EMBEDDED_TEXT_ENCODER, relation_bank=TINY_BANK, num_fusion_layers=1)
    reference = AutoModel.from_pretrained(resolve_encoder_path(EMBEDDED_TEXT_ENCODER))
    ours = model.relation_model.state_dict()
    for name, weight in reference.state_dict().items():
        if name.startswith("pooler"):
            continue
        assert torch.equal(ours[name], weight), name
    word_embeddings = model.text_model.get_input_embeddings().weight
    assert word_embeddings.shape[0] == reference.get_input_embeddings().weight.shape[0] + 4  # the entity markers
    assert torch.equal(word_embeddings[:-4], reference.get_input_embeddings().weight)


def test_marker_init_words_starts_the_markers_from_distinct_word_embeddings():
    from transformers import AutoTokenizer

    from modeling_roc.configuration_roc import ENTITY_MARKERS, MARKER_INIT_WORDS

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path(EMBEDDED_TEXT_ENCODER))
    model = ROCModel.from_encoders(
        EMBEDDED_TEXT_ENCODER, relation_bank=TINY_BANK, num_fusion_layers=1, marker_init="words"
    )
    embeddings = model.text_model.get_input_embeddings().weight.detach()
    markers = embeddings[-len(ENTITY_MARKERS) :]  # the markers are the last tokens added
    for marker, row in zip(ENTITY_MARKERS, markers):
        word_ids = tokenizer(MARKER_INIT_WORDS[marker], add_special_tokens=False)["input_ids"]
        assert torch.allclose(row, embeddings[word_ids].mean(0)), marker
    similarity = F.normalize(markers, dim=-1) @ F.normalize(markers, dim=-1).t()
    assert similarity[0, 2] < 0.9  # <subj> and <obj> differ from the first step

    # the default, as transformers' resizing leaves them: every marker the same vector
    resized = ROCModel.from_encoders(EMBEDDED_TEXT_ENCODER, relation_bank=TINY_BANK, num_fusion_layers=1)
    same = resized.text_model.get_input_embeddings().weight.detach()[-len(ENTITY_MARKERS) :]
    assert torch.allclose(same[0], same[2], atol=1e-4)
    with pytest.raises(ValueError, match="marker_init"):
        ROCModel.from_encoders(EMBEDDED_TEXT_ENCODER, relation_bank=TINY_BANK, marker_init="random")


@pytest.mark.parametrize("description", ["", "   ", None, 3, ["a list"]])
def test_set_relation_bank_refuses_a_description_that_is_not_text(make_model, description):
    model = make_model()
    with pytest.raises(ValueError, match="relation '/per/per/couple': the description must be a non-empty string"):
        model.set_relation_bank({**TINY_BANK, "/per/per/couple": description})
    assert model.config.relation_bank == TINY_BANK, "a refused bank leaves the model's bank as it was"


@pytest.mark.parametrize("label", [7, "", None])
def test_set_relation_bank_refuses_a_label_that_is_not_text(make_model, label):
    model = make_model()
    with pytest.raises(ValueError, match="relation labels must be non-empty strings"):
        model.set_relation_bank({**TINY_BANK, label: "seven"})
    assert model.config.relation_bank == TINY_BANK


def test_a_checkpoint_saved_with_a_scalar_logit_scale_still_loads(make_model, tmp_path):
    """logit_scale became shape (1,) for FSDP2; folders saved before keep loading, with their temperature."""
    from safetensors.torch import load_file, save_file

    model = make_model()
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights["logit_scale"] = weights["logit_scale"].reshape(()) + 0.5  # as saved by an earlier version
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    reloaded = ROCModel.from_pretrained(tmp_path)
    assert reloaded.logit_scale.shape == (1,)
    assert torch.allclose(reloaded.logit_scale, model.logit_scale + 0.5)


def test_caption_tokens_reach_the_pair_only_where_a_caption_is_present(make_model, batch, tokenizer):
    from modeling_roc import ROCProcessor

    model = make_model(caption_tokens=True, vision_model_name=None).eval()
    captions = ROCProcessor(tokenizer=tokenizer, caption_mode="tokens").caption_token_inputs(
        ["a man on a red carpet", None, "a logo", None]
    )
    text = {k: v for k, v in batch.items() if k not in ("pixel_values", "image_mask")}
    with torch.no_grad():
        with_captions = model(**text, **captions).pair_embeds
        other = model(
            **text, **dict(captions, caption_input_ids=torch.randint_like(captions["caption_input_ids"], 1000, 2000))
        ).pair_embeds
        without = model(**text).pair_embeds
    present = captions["caption_mask"]
    assert not torch.allclose(with_captions[present], other[present])
    assert torch.allclose(with_captions[~present], without[~present], atol=1e-6), "a masked caption changes nothing"
    model.train()
    model(**text, **captions).loss.backward()
    assert model.caption_type_embedding.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="caption_tokens=False"):
        make_model(vision_model_name=None)(**text, **captions)
    with pytest.raises(ValueError, match="caption_tokens=True"):
        ROCConfig(caption_tokens=True, use_fusion=False, relation_bank=TINY_BANK)


def test_input_embeddings_are_the_text_encoders_and_can_be_resized(make_model, tokenizer):
    model = make_model()
    assert model.get_input_embeddings() is model.text_model.get_input_embeddings()
    replacement = torch.nn.Embedding(len(tokenizer), model.config.text_config.hidden_size)
    model.set_input_embeddings(replacement)
    assert model.text_model.get_input_embeddings() is replacement
    model.resize_token_embeddings(len(tokenizer) + 8)
    assert model.text_model.get_input_embeddings().weight.shape[0] == len(tokenizer) + 8


def test_activation_checkpointing_reaches_the_sub_encoders_and_keeps_the_gradients(make_model, batch, tokenizer):
    no_dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    configs = {
        "text_config": {**tiny_bert(len(tokenizer)), **no_dropout},
        "relation_config": {**tiny_bert(len(tokenizer), hidden_size=24), **no_dropout},
        "vision_model_name": None,
    }
    text = {k: v for k, v in batch.items() if k not in ("pixel_values", "image_mask")}
    reference, checkpointed = make_model(**configs).train(), make_model(**configs).train()
    checkpointed.activation_checkpointing_enable()  # transformers 5's name of gradient_checkpointing_enable
    assert checkpointed.is_activation_checkpointing
    for encoder in (checkpointed.text_model, checkpointed.relation_model):
        assert all(layer.gradient_checkpointing for layer in encoder.encoder.layer)
    reference(**text).loss.backward()
    checkpointed(**text).loss.backward()  # training mode: the encoders recompute their layers in the backward
    for (name, a), b in zip(reference.named_parameters(), checkpointed.parameters()):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-6), name


# ------------------------------------------------------------------------------------------ call-time relations
FOUNDED = "The subject person founded the object organisation."


def test_a_relation_passed_at_call_time_is_scored_and_the_model_is_unchanged(make_model, batch):
    model = make_model().eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        before = model(**inputs).logits
        given = model(**inputs, relations={"founded_by": FOUNDED, "/per/per/couple": TINY_BANK["/per/per/couple"]})
        after = model(**inputs).logits
    assert given.logits.shape == (len(EXAMPLES), 3)  # "None", then the given relations in order
    torch.testing.assert_close(after, before)
    assert model.config.relation_bank == TINY_BANK and model.config.relation_labels == list(TINY_BANK)

    reference = make_model().eval()  # the same weights, bank swapped the old way
    reference.set_relation_bank(
        {"None": TINY_BANK["None"], "founded_by": FOUNDED, "/per/per/couple": TINY_BANK["/per/per/couple"]}
    )
    with torch.no_grad():
        torch.testing.assert_close(given.logits, reference(**inputs).logits)
        # the couple column is the bank's couple column: the same description scores the same
        torch.testing.assert_close(given.logits[:, 2], before[:, 1])


def test_a_call_time_relation_set_is_encoded_once_in_eval_mode(make_model, batch, monkeypatch):
    model = make_model().eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    calls = []
    encode = model.encode_relation_texts
    monkeypatch.setattr(model, "encode_relation_texts", lambda texts: calls.append(list(texts)) or encode(texts))
    with torch.no_grad():
        model(**inputs, relations={"founded_by": FOUNDED})
        model(**inputs, relations={"founded_by": {"description": FOUNDED, "threshold": 0.2}})
        assert len(calls) == 1, "a threshold does not change the encoded set"
        model(**inputs, relations={"founded_by": FOUNDED + " (again)"})
    assert len(calls) == 2 and calls[0] == [TINY_BANK["None"], FOUNDED]


def test_a_threshold_takes_the_place_of_the_competition_with_none():
    from modeling_roc.modeling_roc import CallTimeRelations

    relations = CallTimeRelations.parse({"a": {"description": "a", "threshold": 0.3}, "b": "b"}, "None", "no relation")
    scale = 10.0
    cosines = torch.tensor(
        [
            [0.9, 0.35, 0.1],  # a passes its 0.3 (margin 0.05), b loses to None: a, although None's cosine is higher
            [0.1, 0.25, 0.2],  # a is below its threshold, b beats None (margin 0.1): b, the one past its bar
            [0.5, 0.0, 0.4],  # b (no threshold) loses to None, a is below 0.3: None
            [0.2, 0.0, 0.4],  # b beats None: b
        ]
    )
    assert relations.decide(scale * cosines, scale).tolist() == [1, 2, 0, 2]
    # the scores are the softmax of the margins: the decided relation always has the best one
    scores = relations.decision_logits(scale * cosines, scale).softmax(-1)
    assert scores.argmax(-1).tolist() == [1, 2, 0, 2]
    assert relations.labels == ("None", "a", "b") and relations.thresholds == (None, 0.3, None)


def test_a_relation_given_with_examples_is_decided_by_a_detector_fit_against_the_pool(make_model):
    from modeling_roc.modeling_roc import CallTimeRelations

    model = make_model(pair_pool_size=400, new_relation_false_positive_rate=0.05).eval()
    generator = torch.Generator().manual_seed(0)
    dim = model.config.pair_embed_dim
    pool = torch.randn(400, dim, generator=generator)
    pool[:, 0] += 3.0  # the pool's pairs share a direction, as a model's training pairs do
    model.pair_pool.copy_(pool)
    # a new relation's examples: like the pool along that shared direction, apart from it along another
    direction = torch.zeros(dim)
    direction[1] = 1.0
    examples = pool[:5] + 4.0 * direction
    example = {"tokens": ["x"], "subject": {"start": 0, "end": 1}, "object": {"start": 0, "end": 1}}
    relations = CallTimeRelations(
        labels=("None", "new", "fixed"), descriptions=("no relation", "a new relation", "another"),
        thresholds=(None, None, 0.2), symmetric=(False,) * 3, examples=((), (example,) * 5, (example,)),
        example_embeds=(None, examples, pool[:1]),
    )  # fmt: skip

    detectors = model.example_detectors(relations)
    assert set(detectors) == {1}, "a relation with a threshold keeps its threshold, not a detector"
    assert model.example_detectors(relations) is detectors, "fit once per relation set, not once per batch"
    with torch.no_grad():
        embeds = model.get_call_time_relation_features(relations)
        bars = model.relation_bars(relations, embeds)
        scale = model.get_logit_scale()
        pairs = torch.cat([pool[5:] + 4.0 * direction, pool])  # new pairs like the examples, then the pool itself
        logits = scale * F.normalize(pairs, dim=-1) @ F.normalize(embeds, dim=-1).t()
        decision = model.call_time_decision_logits(pairs, relations, logits, scale, bars)
    assert bars[1].isnan() and bars[2] == pytest.approx(0.2), "the detector's relation shows no cosine bar"
    fires_on_new, fires_on_pool = (decision[:395, 1] > 0).float().mean(), (decision[395:, 1] > 0).float().mean()
    assert fires_on_pool <= 0.05 + 1e-6, "the bar lets through the configured share of the pool"
    assert fires_on_new > 0.9, "pairs like the examples pass it"
    # the cosine to the prototype cannot tell them apart as well: the shared direction dominates both
    model.config.example_decision = "cosine_bar"
    assert model.example_detectors(relations) == {}
    with torch.no_grad():
        cosine_bars = model.relation_bars(relations, embeds)
        cosine = model.call_time_decision_logits(pairs, relations, logits, scale, cosine_bars)
    assert (cosine[:395, 1] > 0).float().mean() < 0.2  # measured: 0.07 against the detector's 0.93
    assert not cosine_bars[1].isnan()


@pytest.mark.parametrize(
    "relations, message",
    [
        ({}, "non-empty dict"),
        ({"x": ""}, "non-empty string"),
        ({"x": {"description": "d", "threshold": 2}}, r"in \[-1, 1\]"),
        ({"x": {"description": "d", "treshold": 0.2}}, "unknown keys"),
        ({"None": "nothing"}, "always included"),
        ({"none": "nothing"}, "names 'no relation'"),
        ({"x": {"description": "d", "symmetric": "yes"}}, "must be a bool"),
    ],
)
def test_bad_call_time_relations_are_one_line_errors(make_model, relations, message):
    with pytest.raises(ValueError, match=message):
        make_model().call_time_relations(relations)


def test_call_time_relations_need_a_description_encoder(make_model):
    with pytest.raises(ValueError, match="fixed label set"):
        make_model(head="classification").call_time_relations({"founded_by": FOUNDED})


def test_the_remote_code_does_not_require_timm_of_a_text_only_model():
    from helpers.tiny_models import REPO_ROOT
    from transformers.dynamic_module_utils import get_imports

    for name in ("modeling_roc.py", "processing_roc.py", "configuration_roc.py", "pipeline_roc.py"):
        assert "timm" not in get_imports(REPO_ROOT / "modeling_roc" / name), name


# ------------------------------------------------------------------------------------------------ HF conventions
def test_sdpa_and_eager_give_the_same_logits_and_hidden_states_are_returned(make_model, batch, tmp_path):
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    make_model().save_pretrained(tmp_path)
    eager = ROCModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    sdpa = ROCModel.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    assert sdpa.text_model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        torch.testing.assert_close(sdpa(**inputs).logits, eager(**inputs).logits, rtol=1e-4, atol=1e-5)
        out = eager(**inputs, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == eager.config.text_config.num_hidden_layers + 1
    assert len(out.attentions) == eager.config.text_config.num_hidden_layers
    assert out.hidden_states[-1].shape[:2] == inputs["input_ids"].shape
    with torch.no_grad():
        assert eager(**inputs).hidden_states is None
        with pytest.raises(TypeError, match="unexpected arguments \\['output_hidden_state'\\]"):
            eager(**inputs, output_hidden_state=True)


def test_trainer_predict_returns_the_logits_of_every_example_once(make_model, processor, tmp_path):
    import datasets
    from transformers import Trainer, TrainingArguments

    from roc_mre.training.data_collator import ROCDataCollator

    rows = [{"tokens": e[0], "subject": span(*e[1]), "object": span(*e[2]), "relation": e[3]} for e in EXAMPLES] * 3
    dataset = datasets.Dataset.from_list(rows)
    trainer = Trainer(
        model=make_model(vision_model_name=None),
        args=TrainingArguments(
            output_dir=str(tmp_path), per_device_eval_batch_size=4, report_to="none", remove_unused_columns=False
        ),
        data_collator=ROCDataCollator(processor, index_column=None),
    )
    predictions = trainer.predict(dataset)
    assert predictions.predictions.shape == (len(rows), len(TINY_BANK)), "logits only, no bank stacked per batch"
    assert predictions.label_ids.tolist() == [row["relation"] for row in rows]


def test_numpy_offsets_are_numbers_and_a_list_in_config_json_is_a_clear_error(make_model, tmp_path):
    import numpy as np

    model = make_model()
    model.set_relation_bank(dict(TINY_BANK), score_offsets={"None": np.float32(0.25)})
    assert model.config.relation_score_offsets == {"None": 0.25}
    model.save_pretrained(tmp_path)  # JSON-serializable: stored as a float
    config = json.loads((tmp_path / "config.json").read_text())
    config["relation_score_offsets"] = [["None", 0.25]]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="`relation_score_offsets` must be a mapping"):
        ROCModel.from_pretrained(tmp_path)


def test_the_processor_is_a_collator_for_trainer_users(make_model, processor, tmp_path):
    """`Trainer(..., data_collator=processor.collate)` with the shipped processor alone: no project code needed."""
    import datasets
    from transformers import Trainer, TrainingArguments

    rows = [{"tokens": e[0], "subject": span(*e[1]), "object": span(*e[2]), "relation": e[3]} for e in EXAMPLES] * 3
    trainer = Trainer(
        model=make_model(vision_model_name=None),
        args=TrainingArguments(
            output_dir=str(tmp_path), per_device_eval_batch_size=4, report_to="none", remove_unused_columns=False
        ),
        data_collator=processor.collate,
    )
    predictions = trainer.predict(datasets.Dataset.from_list(rows))
    assert predictions.predictions.shape == (len(rows), len(TINY_BANK))
    assert predictions.label_ids.tolist() == [row["relation"] for row in rows]
    unlabelled = processor.collate([{k: v for k, v in row.items() if k != "relation"} for row in rows[:2]])
    assert "labels" not in unlabelled and unlabelled["input_ids"].shape[0] == 2
    with pytest.raises(ValueError, match="got no rows"):
        processor.collate([])


def test_symmetric_relations_are_labels_of_the_bank_and_follow_it(make_model, tmp_path):
    with pytest.raises(ValueError, match=r"`symmetric_relations` \['/per/per/spouse'\] are not labels"):
        make_model(symmetric_relations=["/per/per/spouse"])
    model = make_model(symmetric_relations=["/per/per/couple"])
    model.save_pretrained(tmp_path)
    assert ROCModel.from_pretrained(tmp_path).config.symmetric_relations == ["/per/per/couple"]
    model.set_relation_bank({"None": TINY_BANK["None"], "/per/org/member_of": TINY_BANK["/per/org/member_of"]})
    assert model.config.symmetric_relations == []  # the relation left with the bank


def test_an_int8_copy_refuses_to_be_saved_and_writes_nothing(make_model, tmp_path):
    from modeling_roc import quantize_int8

    quantized = quantize_int8(make_model(vision_model_name=None).eval())
    with pytest.raises(ValueError, match="int8 copy made by `quantize_int8`.*call `quantize_int8` after loading"):
        quantized.save_pretrained(tmp_path / "int8")
    assert not (tmp_path / "int8").exists()


def test_int8_per_channel_keeps_the_named_layers_float_and_scores_like_float32(make_model, batch):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    from modeling_roc import quantize_int8

    model = make_model(vision_model_name=None).eval()
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "pixel_values", "image_mask")}
    kept = "text_model.encoder.layer.0.*"
    int8 = quantize_int8(model, keep_float=[kept])
    modules = dict(int8.named_modules())
    assert type(modules["text_model.encoder.layer.0.intermediate.dense"]) is torch.nn.Linear  # kept float32
    quantized = modules["text_model.encoder.layer.1.intermediate.dense"]
    assert isinstance(quantized, DynamicQuantizedLinear)
    assert quantized.weight().qscheme() == torch.per_channel_affine  # one scale per output row
    assert quantize_int8(model, per_channel=False, keep_float=()).text_model.encoder.layer[
        1
    ].intermediate.dense.weight().qscheme() == (torch.per_tensor_affine)
    with torch.no_grad():
        reference = model(**inputs).logits
        scores = int8(**inputs).logits
    assert torch.allclose(scores, reference, atol=0.05 * float(model.get_logit_scale()))  # within 0.05 cosine
    assert (scores.argmax(-1) == reference.argmax(-1)).float().mean() >= 0.75  # 3 of the 4 fixture examples at least
    assert all(type(m) is not DynamicQuantizedLinear for m in model.modules()), "the float32 model is untouched"
    default = dict(quantize_int8(model).named_modules())  # INT8_KEEP_FLOAT: the first two layers' feed-forward
    for layer in (0, 1):
        for part in ("intermediate.dense", "output.dense"):
            assert type(default[f"text_model.encoder.layer.{layer}.{part}"]) is torch.nn.Linear
        assert isinstance(default[f"text_model.encoder.layer.{layer}.attention.self.query"], DynamicQuantizedLinear)
    everything = dict(quantize_int8(model, keep_float=()).named_modules())
    assert isinstance(everything["text_model.encoder.layer.0.output.dense"], DynamicQuantizedLinear)


def test_a_bfloat16_encoders_copy_scores_like_float32_and_leaves_the_model_alone(make_model, batch):
    from modeling_roc import bfloat16_encoders

    model = make_model().eval()  # with a vision encoder
    bfloat16 = bfloat16_encoders(model)
    for name in ("text_model", "vision_model", "vision_proj", "fusion"):
        assert {p.dtype for p in getattr(bfloat16, name).parameters()} == {torch.bfloat16}, name
    head = {"pair_proj", "relation_model", "relation_proj", "logit_scale"}
    assert {p.dtype for n, p in bfloat16.named_parameters() if n.split(".")[0] in head} == {torch.float32}
    assert {p.dtype for p in model.parameters()} == {torch.float32}, "the float32 model is untouched"
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        reference = model(**inputs).logits
        scores = bfloat16(**inputs).logits
    assert scores.dtype == torch.float32
    assert torch.allclose(scores, reference, atol=0.03 * float(model.get_logit_scale()))  # within 0.03 cosine
    assert torch.equal(scores.argmax(-1), reference.argmax(-1))


def test_precision_names_resolve_per_device_and_bad_ones_are_one_line_errors(make_model, monkeypatch):
    import modeling_roc.precision_roc as precision_roc
    from modeling_roc import for_inference

    model = make_model(vision_model_name=None)
    assert for_inference(model, "float32") is model and not model.training
    monkeypatch.setattr(precision_roc, "cpu_has_native_bfloat16", lambda: True)
    assert precision_roc.resolve_precision("auto", "cpu") == "bfloat16"
    assert precision_roc.resolve_precision("auto", "cuda") == "float32"  # not measured on a GPU: the model as trained
    assert for_inference(model).text_model.dtype == torch.bfloat16
    monkeypatch.setattr(precision_roc, "cpu_has_native_bfloat16", lambda: False)
    assert precision_roc.resolve_precision("auto", "cpu") == "float32"
    with pytest.warns(UserWarning, match="without hardware bfloat16"):  # asked for: honoured, with the reason
        assert for_inference(model, "bfloat16").text_model.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="must be one of auto, float32, bfloat16, int8, onnxruntime; got 'float16'"):
        precision_roc.resolve_precision("float16", "cpu")
    with pytest.raises(ValueError, match="runs on CPU only; the model is on cuda"):
        precision_roc.resolve_precision("int8", "cuda")
    with pytest.raises(ValueError, match="runs on CPU only"):
        precision_roc.resolve_precision("onnxruntime", "cuda")


@pytest.mark.parametrize(
    "vendor, bfloat16_units, onnxruntime, chosen",
    [
        ("AuthenticAMD", False, True, "onnxruntime"),  # measured 2.03x torch's float32 there (issue 39)
        ("AuthenticAMD", False, False, "float32"),  # not installed: torch, never an import error
        ("AuthenticAMD", True, True, "bfloat16"),  # hardware bfloat16 first
        ("GenuineIntel", False, True, "float32"),  # not measured faster there: never slower than torch float32
        ("", False, True, "float32"),  # an unknown CPU
    ],
)
def test_auto_chooses_by_the_cpus_family(monkeypatch, vendor, bfloat16_units, onnxruntime, chosen):
    import modeling_roc.precision_roc as precision_roc

    monkeypatch.setattr(precision_roc, "cpu_vendor", lambda: vendor)
    monkeypatch.setattr(precision_roc, "cpu_has_native_bfloat16", lambda: bfloat16_units)
    monkeypatch.setattr(precision_roc, "onnxruntime_available", lambda: onnxruntime)
    assert precision_roc.resolve_precision("auto", "cpu") == chosen
    assert precision_roc.resolve_precision("auto", "cuda") == "float32"


def _score(model, processor, relations=None):
    from helpers.tiny_models import span

    inputs = processor(
        ["Bob Smith works for Google".split(), "Alice met Carol in Paris last June".split()],
        [span(0, 2, "PERSON"), span(0, 1, "PERSON")],
        [span(4, 5, "ORG"), span(2, 3, "PERSON")],
    )
    inputs.pop("labels", None)
    with torch.no_grad():
        return model(**inputs, **({} if relations is None else {"relations": relations}))


def test_onnxruntime_scores_as_float32_torch_and_leaves_the_model_alone(make_model, processor):
    pytest.importorskip("onnxruntime")
    from modeling_roc import for_inference
    from modeling_roc.precision_roc import OnnxRuntimeEncoder

    model = make_model(vision_model_name=None).eval()
    converted = for_inference(model, "onnxruntime")
    assert isinstance(converted.text_model, OnnxRuntimeEncoder) and not isinstance(
        model.text_model, OnnxRuntimeEncoder
    )
    expected, got = _score(model, processor), _score(converted, processor)
    assert torch.allclose(got.logits, expected.logits, atol=1e-4)
    relations = {"founded_by": "The subject founded the object."}
    assert torch.allclose(
        _score(converted, processor, relations).decision_logits,
        _score(model, processor, relations).decision_logits,
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="last hidden state only; use precision='float32'"):
        inputs = processor(["a b".split()], [{"start": 0, "end": 1}], [{"start": 1, "end": 2}])
        inputs.pop("labels", None)
        converted(**inputs, output_hidden_states=True)


def test_onnxruntime_runs_an_mpnet_text_encoder_without_token_type_ids(tmp_path):
    pytest.importorskip("onnxruntime")
    from helpers.train_fixtures import write_tiny_mpnet

    from modeling_roc import ROCModel, ROCProcessor, for_inference

    mpnet = write_tiny_mpnet(tmp_path / "mpnet")
    bank = {"None": "no relation", "/per/org/member_of": "the person is a member of the organisation"}
    model = ROCModel.from_encoders(str(mpnet), relation_bank=bank, num_fusion_layers=1, pair_embed_dim=16).eval()
    processor = ROCProcessor.from_encoders(str(mpnet), max_length=64)
    converted = for_inference(model, "onnxruntime")
    assert converted.text_model.input_names == ["input_ids", "attention_mask"]
    assert torch.allclose(_score(converted, processor).logits, _score(model, processor).logits, atol=1e-4)


def test_an_int8_or_onnxruntime_copy_refuses_to_train_and_the_model_it_came_from_still_trains(make_model):
    from modeling_roc import for_inference, quantize_int8

    model = make_model(vision_model_name=None)
    with pytest.raises(RuntimeError, match="int8 copy for inference .* cannot be trained"):
        quantize_int8(model).train()
    if importlib.util.find_spec("onnxruntime") is not None:
        with pytest.raises(RuntimeError, match="ONNX Runtime copy for inference"):
            for_inference(model, "onnxruntime").train()
    assert model.train().training and not quantize_int8(model).eval().training


def test_int8_refuses_a_model_off_the_cpu_and_a_bare_string_of_layers(make_model):
    from modeling_roc import quantize_int8

    model = make_model(vision_model_name=None)
    with pytest.raises(TypeError, match="sequence of module-name patterns"):
        quantize_int8(model, keep_float="text_model.encoder.layer.0.*")
    with pytest.raises(ValueError, match="runs on CPU only; the model is on meta"):
        quantize_int8(model.to("meta"))
