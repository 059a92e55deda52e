"""`python -m roc_mre.extraction ...`: see `roc_mre.extraction.cli`."""

from .cli import main


main()
