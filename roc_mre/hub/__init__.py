"""Publishing a trained run to the Hub: the model card (`model_card`, prose in `model_card_template.md`) and the
offline check of a staged folder (`python -m roc_mre.hub.verify`). `push_to_hub.py` drives them."""
