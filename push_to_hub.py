"""Publish a trained ROC run to the Hugging Face Hub: stage one folder, prove that it loads offline, then upload it.

    python push_to_hub.py --model_dir runs/mnre-minilm --repo_id org/roc-mnre --dry_run --staging_dir staged/roc-mnre
    python push_to_hub.py --model_dir runs/mnre-minilm --repo_id org/roc-mnre \\
        --dataset_dir data/mnre --dataset_repo_id org/mnre-roc

The staged folder holds what `AutoModel` / `AutoProcessor` / `pipeline(..., trust_remote_code=True)` need (config
with `auto_map`, the model code, safetensors weights, tokenizers with the entity markers, processor config), the
relation bank as `relation_bank.json`, a model card built from the run's own records (`roc_mre.hub.model_card`), and
the run's reports; never `checkpoints/`. Before anything is uploaded, a fresh Python process with `HF_HUB_OFFLINE=1`,
an empty HF cache and this project made unimportable loads the folder with the Auto classes and the pipeline, runs
one example and the card's usage snippet; a folder that fails is refused. The dataset folder written by
`datasets_scripts.build` is checked with `load_dataset` and pushed as a dataset repo (`push_folder`).

The token comes from `HF_TOKEN` or `hf auth login` (huggingface_hub finds it); this script never reads, prints or
writes it. Progress goes to stderr, a JSON summary to stdout.
"""

from roc_mre.hub.cli import build_parser, command_line, main, parse_args


__all__ = ["build_parser", "main", "parse_args"]


if __name__ == "__main__":
    command_line()
