"""What `train.py` runs, one module each, imported where used (so the command line stays free of torch):

- `arguments`: the flags, their help and checks, and `--config` files (no torch: `--help` answers at once);
- `loop`: the Accelerate training and evaluation loop (`run`);
- `data_collator`, `length_grouped_sampler`: batches and their order;
- `reporting`: the per-relation table, confusion matrix and predictions file of an evaluated split.
"""
