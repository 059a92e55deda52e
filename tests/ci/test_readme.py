"""The README as a newcomer reads it: the quick start's commands, then every Python snippet, run as written."""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from helpers.tiny_models import MNRE_DIR, REPO_ROOT


README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def _quick_start() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = _blocks("bash", section)[:1]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_no_committed_text_names_a_machine_path():
    """What users read or load (docs, results, the packages) never shows the path of the machine it was made on."""
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=REPO_ROOT).stdout.split()
    shown = ("README.md", "docs/", "benchmarks/results/", "modeling_roc/", "roc_mre/", "datasets_scripts/")
    found = []
    for name in (n for n in tracked if n.startswith(shown)):
        path = REPO_ROOT / name
        if path.suffix in {".md", ".py", ".yaml", ".json", ".toml", ".txt", ".cff"} and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [f"{name}: {m}" for m in re.findall(r"/(?:work|root|home/[a-z]+)/[\w.-]+/[\w./-]+", text)]
    assert not found, found[:10]


@pytest.mark.slow
@pytest.mark.skipif(not MNRE_DIR.is_dir(), reason=f"the MNRE text is not at {MNRE_DIR} (MNRE_DIR)")
@pytest.mark.skipif(shutil.which("roc-build") is None, reason="the package's commands are not installed")
def test_the_quick_start_and_every_python_snippet_run_as_written(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for line in _quick_start():
        if line.startswith("roc-build"):  # offline here: the same files, read from a local copy
            line += f" --data_dir {shlex.quote(str(MNRE_DIR))}"
        done = subprocess.run(line, shell=True, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
        assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"
    assert (tmp_path / "runs" / "smoke" / "model.safetensors").is_file()
    snippets = _blocks("python")
    assert len(snippets) >= 2
    for snippet in snippets:
        done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, f"{snippet}\n{done.stderr[-3000:]}"
