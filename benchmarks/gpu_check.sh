#!/usr/bin/env bash
# GPU readiness check (see benchmarks/gpu_check.py): training steps, then pair inference and triple extraction in
# bf16 with and without torch.compile (peak memory of each); one process, then every GPU of the machine through
# `accelerate launch`. Results: benchmarks/results/gpu_check_1gpu.json and gpu_check_<N>gpu.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
gpus=$(python -c "import torch; print(torch.cuda.device_count())")
if [ "$gpus" -lt 1 ]; then
    echo "no CUDA GPU visible (torch.cuda.device_count() == 0); on a CPU run: python benchmarks/gpu_check.py --size tiny" >&2
    exit 1
fi
python benchmarks/gpu_check.py --name 1gpu "$@"
if [ "$gpus" -gt 1 ]; then
    accelerate launch --multi_gpu --num_processes "$gpus" --num_machines 1 --dynamo_backend no \
        benchmarks/gpu_check.py --name "${gpus}gpu" "$@"
fi
