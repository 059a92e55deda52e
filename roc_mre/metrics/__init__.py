"""The project's `evaluate` metric, shipped inside the package so that it loads from any folder:

import evaluate
from roc_mre.metrics import RE_F1

metric = evaluate.load(RE_F1)  # accuracy + micro P/R/F1 without None, and the None-inclusive weighted family
"""

from importlib.resources import files


# A folder path: `evaluate.load` takes a local metric folder (its script and card) by path.
RE_F1 = str(files(__package__) / "re_f1")

__all__ = ["RE_F1"]
