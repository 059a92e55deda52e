"""The application around the shipped ROC model (`modeling_roc`): everything `save_pretrained` does not ship.

- `roc_mre.training`: what `train.py` needs besides the model: the data collator, the length-grouped sampler, and the
  evaluation reports (per-relation table, confusion matrix, predictions file).
- `roc_mre.extraction`: triple extraction from raw posts (`TripleExtractor`, the `relation-triple-extraction`
  pipeline) and its command line, `python -m roc_mre.extraction`.
- `roc_mre.hub`: publishing a trained run: the model card, the staged folder, and its offline verification
  (`python -m roc_mre.hub.verify`); `push_to_hub.py` drives them.
- `roc_mre.labels`: the "no relation" label lookup shared by training and extraction.

Console scripts (`roc_mre.console`): `roc-build`, `roc-train`, `roc-extract`, `roc-push`; the configs of `--config`
ship in `roc_mre/configs/`.

Dependencies point one way: `roc_mre` imports `modeling_roc` and `datasets_scripts`; neither imports `roc_mre`.
"""

__version__ = "0.1.0"
