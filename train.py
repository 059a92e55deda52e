"""Train and evaluate ROC on a relation-extraction dataset built by `datasets_scripts` (MNRE).

Runs the same as `python train.py ...`, `python -m roc_mre.training ...`, `roc-train ...` (the installed console
script), `accelerate launch train.py ...` (any Accelerate config: multi-GPU DDP, FSDP,
DeepSpeed) and, for a 2-process CPU run, `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2
train.py ...` (plain `--cpu --num_processes 2` starts only one process in accelerate 1.15).

    python train.py --config mnre_minilm_offline                 # the offline default
    python train.py --config mnre_minilm_offline --num_train_epochs 1 --max_train_samples 512
    python train.py --do_eval --model_name_or_path runs/mnre-minilm --dataset_name_or_path data/mnre --eval_split test

A run folder ends up holding the best epoch's model (selected on validation micro-F1; `save_pretrained` with remote
code and the relation bank), `eval_results.json`, `all_results.json` (learning curve), `training_args.json`,
`log_history.jsonl` (loss and both learning rates every `--logging_steps` optimizer steps), and per evaluated split
`predictions_<split>.jsonl`, `per_relation_<split>.md` and `confusion_matrix_<split>.png`. The recorded settings are
the effective ones (`accelerator.state`: mixed precision, distributed type, processes), whatever set them.
"""

from roc_mre.training.arguments import build_parser, parse_args
from roc_mre.training.cli import main


__all__ = ["build_parser", "main", "parse_args"]


if __name__ == "__main__":
    main()
