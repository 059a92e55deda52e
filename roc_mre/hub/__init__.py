"""Publishing a trained run to the Hub: the command line (`cli`; `roc-push`, `python -m roc_mre.hub`,
`push_to_hub.py`), the work it drives (`push`), the model card (`model_card`, prose in `model_card_template.md`) and
the offline check of a staged folder (`python -m roc_mre.hub.verify`)."""

# The model's own license, chosen on purpose: the project's code and the MiniLM / BERT encoders it starts from are
# Apache-2.0. The training data's terms are a separate question (model_card.DATA_LICENSE_TEXT), stated in every card.
DEFAULT_LICENSE = "apache-2.0"
