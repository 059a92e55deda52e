"""Run by `torchrun --nproc_per_node 2` from test_sharded.py: a ROC model sharded with FSDP2 (`fully_shard`, gloo,
CPU) must give the unsharded model's inference logits, and its gathered full state dict must save a folder that
reloads to the same logits. Prints one JSON line per rank."""

import json
import sys
import tempfile

import torch
import torch.distributed as dist
from tiny_models import TINY_BANK, tiny_bert  # a script: its own folder (tests/helpers/) is first on sys.path
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import fully_shard
from transformers import AutoTokenizer

from modeling_roc import EMBEDDED_TEXT_ENCODER, ENTITY_MARKERS, ROCConfig, ROCModel, ROCProcessor, resolve_encoder_path


def tiny_bert_without_dropout(vocab_size: int, hidden_size: int) -> dict:
    return {**tiny_bert(vocab_size, hidden_size), "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def main(output_dir: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path(EMBEDDED_TEXT_ENCODER))
    tokenizer.add_special_tokens({"additional_special_tokens": list(ENTITY_MARKERS)})
    torch.manual_seed(0)
    config = ROCConfig(
        text_config=tiny_bert_without_dropout(len(tokenizer), 32),
        relation_config=tiny_bert_without_dropout(len(tokenizer), 24),
        num_fusion_layers=2,
        relation_bank=TINY_BANK,
        fusion_dropout=0.0,
        pair_embed_dim=16,
    )
    model = ROCModel(config)
    model.set_relation_tokenizer(tokenizer)
    processor = ROCProcessor(tokenizer=tokenizer, max_length=64)
    inputs = processor(
        ["Rafael Nadal gets engaged to Mery Perello".split(), "Bob Smith works for Google in London".split()],
        [{"start": 0, "end": 2, "type": "PERSON"}, {"start": 0, "end": 2, "type": "PERSON"}],
        [{"start": 5, "end": 7, "type": "PERSON"}, {"start": 4, "end": 5, "type": "ORG"}],
    )
    model.eval()
    with torch.no_grad():
        reference = model(**inputs).logits

    for layer in model.fusion.layers:  # the per-layer wrapping of a transformer auto-wrap policy
        fully_shard(layer)
    fully_shard(model)
    with torch.no_grad():
        sharded = model(**inputs).logits

    full_state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    full_state_keys = len(full_state)  # save_pretrained consumes the dict
    reloaded_max_diff = None
    if rank == 0:
        # what train.py's save does with `accelerator.get_state_dict(model)` under FSDP
        unsharded = ROCModel(config)
        unsharded.set_relation_tokenizer(tokenizer)
        unsharded.save_pretrained(output_dir, state_dict=full_state)
        reloaded = ROCModel.from_pretrained(output_dir).eval()
        with torch.no_grad():
            reloaded_max_diff = (reloaded(**inputs).logits - reference).abs().max().item()
    print(
        json.dumps(
            {
                "rank": rank,
                "sharded_max_diff": (sharded - reference).abs().max().item(),
                "reloaded_max_diff": reloaded_max_diff,
                "full_state_keys": full_state_keys,
            }
        ),
        flush=True,
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
