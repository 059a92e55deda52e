"""What every benchmark shares about its results file: a safe name, and no local path of the machine in it.

Results are committed under `benchmarks/results/`; a path of the developer's checkout (`<checkout>/runs/...`) in them
says nothing to a reader and names a home folder. `write_result` writes paths under the repository relative to it and
cuts any other absolute local path (`datasets_scripts.redaction.redact_local_paths`).
"""

import argparse
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

from datasets_scripts.redaction import redact_local_paths
from roc_mre.training.arguments import positive_int  # the one "integer >= 1" argparse type (imports no torch)


REPO_ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def result_name(text: str) -> str:
    """argparse type of `--name`: letters, digits, `_`, `-`, `.`; no `/`, no `..` (it names files and run folders)."""
    if not NAME.fullmatch(text) or ".." in text:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use letters, digits, '_', '-' and '.' only (it names a results file and a run folder)"
        )
    return text


def existing_file(text: str) -> str:
    """An argparse `type`: a file that exists, else one `error:` line naming it (not a traceback later)."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def existing_dir(text: str) -> str:
    """An argparse `type`: a folder that exists (a run, a dataset), else one `error:` line naming it."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    return text


def repo_relative(value: Any, root: Path = REPO_ROOT) -> Any:
    """`value` with paths under `root` made relative to it and other absolute local paths cut."""
    prefix = str(root) + "/"
    if isinstance(value, dict):
        return {key: repo_relative(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [repo_relative(item, root) for item in value]
    if isinstance(value, str):
        return redact_local_paths(value.replace(prefix, ""))
    return value


def write_result(path: Path, record: dict) -> Path:
    """Write `record` as JSON to `path` with `repo_relative` paths."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(repo_relative(record), indent=2) + "\n", encoding="utf-8")
    return path


__all__ = ["positive_int", "repo_relative", "result_name", "write_result"]


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")


def cpu_record() -> dict:
    """Which CPU a speed figure is from: model, vendor, the flags that pick torch's kernels, torch's own capability
    (`ATEN_CPU_CAPABILITY` can lower it) and any ISA caps set in the environment, so a table names its CPU family."""
    import torch

    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    return {
        "model": info.get("model name", platform.processor()),
        "vendor": info.get("vendor_id", ""),
        "flags": {flag: flag in flags for flag in CPU_FLAGS},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "emulation": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ},
        "threads": torch.get_num_threads(),
    }
