"""Helpers shared by the tests (imported as `helpers.<module>`; `tests/` is on pytest's `pythonpath`).

- `tiny_models`: paths, the tiny relation bank, tiny BERT configs and the example sentences of the fixtures;
- `release_fixtures`: generated MNRE / MORE release folders and a fake NER tagger;
- `train_fixtures`: a tiny dataset folder and a tiny seeded encoder for train.py runs;
- `hub_stub`: a loopback stand-in for the Hub's HTTP API;
- `sharded_worker`: the FSDP2 script that `modeling_roc/test_sharded.py` launches with torchrun.

Fixtures themselves live in `conftest.py`, which pytest loads; nothing imports from it.
"""
