"""Publish a trained ROC run to the Hugging Face Hub: stage one folder, prove that it loads offline, then upload it.

    roc-push --model_dir runs/mnre-minilm --repo_id org/roc-mnre --dry_run --staging_dir staged/roc-mnre
    python push_to_hub.py --model_dir runs/mnre-minilm --repo_id org/roc-mnre \\
        --dataset_dir data/mnre --dataset_repo_id org/mnre-roc

`roc-push`, `python -m roc_mre.hub` and `python push_to_hub.py` are the same command. This module holds only the
command line (it imports no torch, so `--help` and a bad flag answer at once); `roc_mre.hub.push` does the work.

The token comes from `HF_TOKEN` or `hf auth login` (huggingface_hub finds it); this command never reads, prints or
writes it. Progress goes to stderr, a JSON summary to stdout.
"""

import argparse
import json
import re

from datasets_scripts.redaction import redact_secrets
from roc_mre.full_disk import exits_cleanly_on_full_disk
from roc_mre.hub import DEFAULT_LICENSE


# The Hub's rule: namespace/name of letters, digits, '_', '-' and '.', neither starting nor ending with '.' or '-',
# with no '..' or '--' (so '../evil' is no repository id).
REPO_ID = re.compile(r"(?!.*(?:\.\.|--))(?:[A-Za-z0-9_](?:[\w.-]*[A-Za-z0-9_])?)/[A-Za-z0-9_](?:[\w.-]*[A-Za-z0-9_])?")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Stage a trained ROC run as a Hub model folder, verify that it loads offline in a fresh "
        "process, and upload it (and optionally its dataset folder). The token comes from HF_TOKEN or "
        "`hf auth login`.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model_dir", required=True, help="Run folder written by train.py (its --output_dir).")
    parser.add_argument("--repo_id", required=True, help="Model repository to create or update, as namespace/name.")
    parser.add_argument(
        "--private", action="store_true", help="Create the repositories as private (an existing repo keeps its own)."
    )
    parser.add_argument(
        "--revision",
        "--branch",
        dest="revision",
        help="Branch to commit to; created from main if missing. Default: main.",
    )
    parser.add_argument("--commit_message", help="Message of the model commit. Default: names the primary metric.")
    parser.add_argument(
        "--dataset_dir",
        help="Dataset folder written by `python -m datasets_scripts.build` (README.md + data/ + build_report.json): "
        "the card takes the NER backend and split sizes from it; with --dataset_repo_id it is pushed too.",
    )
    parser.add_argument(
        "--dataset_repo_id",
        help="Dataset repository (namespace/name) named in the card; with --dataset_dir the folder is pushed there.",
    )
    parser.add_argument(
        "--license",
        default=DEFAULT_LICENSE,
        help="License id of the model card (the Hub's list). The default is the project's and its encoders' license; "
        "the card also states the training data's terms.",
    )
    parser.add_argument(
        "--space",
        metavar="SPACE_ID",
        help="Also stage the Gradio demo (app.py, requirements.txt, a Space card, copies of this project's packages) "
        "as a Space (namespace/name) showing --repo_id, check that it starts, and upload it after the model. Staged "
        "in <staging_dir>-space.",
    )
    parser.add_argument("--dry_run", action="store_true", help="Stage and verify everything, upload nothing.")
    parser.add_argument(
        "--staging_dir",
        help="Folder to stage the model in (kept). Only an empty folder or an earlier staging of this script (it "
        "holds .roc_push_staging.json) is used, and it is replaced whole once the new staging is complete; any other "
        "folder is refused. The dataset copy goes to <staging_dir>-dataset under the same rule. Default: a "
        "temporary folder, kept after --dry_run, removed after an upload.",
    )
    parser.add_argument(
        "--verify_timeout", type=int, default=900, help="Seconds allowed to the fresh-process load check."
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not REPO_ID.fullmatch(args.repo_id):
        parser.error(f"--repo_id must look like namespace/name, got {args.repo_id!r}")
    if args.space and not REPO_ID.fullmatch(args.space):
        parser.error(f"--space must look like namespace/name, got {args.space!r}")
    if args.dataset_repo_id and not REPO_ID.fullmatch(args.dataset_repo_id):
        parser.error(f"--dataset_repo_id must look like namespace/name, got {args.dataset_repo_id!r}")
    if args.verify_timeout < 1:
        parser.error(f"--verify_timeout must be at least 1 second, got {args.verify_timeout}")
    if args.revision in ("", "main"):
        args.revision = None
    return args


@exits_cleanly_on_full_disk("run the same command again.")
def main(argv: list[str] | None = None) -> dict:
    """Parse the flags, then stage, verify and upload (`roc_mre.hub.push.push`); returns the JSON summary."""
    args = parse_args(argv)
    from roc_mre.hub.push import push

    return push(args)


def command_line(argv: list[str] | None = None) -> None:
    """The command as a user runs it: the summary printed as JSON; a refusal is one `error: ...` line, redacted (a
    server may echo a credential back)."""
    try:
        print(json.dumps(main(argv), indent=2))
    except SystemExit as stop:
        if isinstance(stop.code, str):
            message = redact_secrets(stop.code)
            raise SystemExit(message if message.startswith("error:") else f"error: {message}") from None
        raise
