"""Publish a trained ROC run to the Hugging Face Hub: stage one folder, prove that it loads offline, then upload it.

    python push_to_hub.py --model_dir runs/mnre-minilm --repo_id org/roc-mnre --dry_run --staging_dir staged/roc-mnre
    python push_to_hub.py --model_dir runs/mnre-minilm --repo_id org/roc-mnre \\
        --dataset_dir data/mnre --dataset_repo_id org/mnre-roc [--space org/roc-mnre-demo]

The same command as `roc-push` and `python -m roc_mre.hub`: the flags are in `roc_mre.hub.cli`, what they do in
`roc_mre.hub.push` (what is staged, the fresh-process check, what is uploaded).
"""

from roc_mre.hub.cli import build_parser, command_line, main, parse_args


__all__ = ["build_parser", "main", "parse_args"]


if __name__ == "__main__":
    command_line()
