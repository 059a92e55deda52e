"""`python -m roc_mre.hub ...`: publish a trained run (see `roc_mre.hub.cli`)."""

from roc_mre.hub.cli import command_line


command_line()
