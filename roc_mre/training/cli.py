"""The training command line, the same whichever way it starts: `python train.py`, `python -m roc_mre.training`,
the `roc-train` console script, or any of them under `accelerate launch`."""

from roc_mre.full_disk import exits_cleanly_on_full_disk
from roc_mre.training.arguments import parse_args


__all__ = ["main"]


@exits_cleanly_on_full_disk("run the same command again with --resume_from_checkpoint latest.")
def main(argv: list[str] | None = None) -> dict:
    """Parse the flags (so `--help` and a bad flag answer before torch is imported), then train or evaluate."""
    args = parse_args(argv)
    from roc_mre.training.loop import run

    return run(args, argv)
