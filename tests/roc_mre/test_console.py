"""The console scripts name themselves as typed: `roc-build: error: ...`, not `python -m datasets_scripts.build`."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from roc_mre.console import command_name


def test_the_command_is_named_as_typed(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/roc-build", "mnre"])
    assert command_name("python -m datasets_scripts.build") == "roc-build"
    monkeypatch.setattr(sys, "argv", ["/repo/datasets_scripts/build.py", "mnre"])  # python -m sets argv[0] so
    assert command_name("python -m datasets_scripts.build") == "python -m datasets_scripts.build"


@pytest.mark.parametrize("command", ["roc-build", "roc-extract"])
def test_an_installed_command_names_itself_in_its_errors(command):
    path = shutil.which(command) or shutil.which(command, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.skip(f"{command} is not installed in this environment")
    done = subprocess.run([path, "--no-such-flag"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"{command}: error:" in done.stderr, done.stderr
