"""`python -m roc_mre.training ...` (also `accelerate launch -m roc_mre.training ...`): see `train.py`."""

from roc_mre.training.cli import main


main()
