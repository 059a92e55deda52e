"""The installed package is the tool: the wheel, in a fresh virtual environment and a folder far from the checkout,
answers every console script's `--help`, trains, extracts and stages a publication with nothing but itself.

The environment is fresh for the project (only the wheel provides `roc_mre`, `modeling_roc`, `datasets_scripts`);
its third-party dependencies are read from the test's own environment through a `.pth` line, since installing torch
again would take minutes and the network. The checkout is never on the path: the commands run in an empty folder.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers.tiny_models import REPO_ROOT
from helpers.train_fixtures import tiny_recipe


pytestmark = pytest.mark.slow

CONSOLE_SCRIPTS = ("roc-build", "roc-train", "roc-extract", "roc-push")
PACKAGES = ("modeling_roc", "datasets_scripts", "roc_mre")


def _copy_sources(target: Path) -> Path:
    """What a source distribution holds, copied so that building the wheel writes nothing into the checkout."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO_ROOT / name, target / name)
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("installed")
    sources = _copy_sources(root / "sources")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(sources), "-w",
         str(root / "wheel")],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = (root / "wheel").glob("roc_mre-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "roc_test_dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n", encoding="utf-8")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    work = root / "work"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "HF_TOKEN")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", HF_HOME=str(root / "hf-home"))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {"python": python, "bin": venv / "bin", "site": Path(site), "work": work, "env": env, "root": root}


def _run(installed, *command: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(command), capture_output=True, text=True, cwd=installed["work"], env=installed["env"], timeout=timeout
    )


def test_the_packages_come_from_the_wheel_with_their_data(installed):
    probe = (
        "import json, roc_mre, modeling_roc, datasets_scripts\n"
        "from roc_mre.metrics import RE_F1\n"
        "from roc_mre.training.arguments import shipped_configs\n"
        "from datasets_scripts.relation_bank import load_relation_bank\n"
        "print(json.dumps({'files': [m.__file__ for m in (roc_mre, modeling_roc, datasets_scripts)],\n"
        "    'version': roc_mre.__version__, 'metric': RE_F1, 'configs': shipped_configs(),\n"
        "    'bank': len(load_relation_bank('mnre'))}))\n"
    )
    done = _run(installed, str(installed["python"]), "-c", probe)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert all(Path(path).is_relative_to(installed["site"]) for path in found["files"]), found["files"]
    assert Path(found["metric"], "re_f1.py").is_file() and Path(found["metric"]).is_relative_to(installed["site"])
    assert found["configs"] == ["mnre_minilm_offline", "mnre_mpnet_offline", "mnre_paper", "more_paper"]
    assert found["bank"] == 23
    project = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in project and 'version = { attr = "roc_mre.__version__" }' in project
    citation = (REPO_ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert f"version: {found['version']}\n" in citation  # the citation names the version the package reports
    licenses = list(installed["site"].glob("roc_mre-*.dist-info/licenses/LICENSE"))
    assert licenses and "Apache License" in licenses[0].read_text(encoding="utf-8")


@pytest.mark.parametrize("script", CONSOLE_SCRIPTS)
def test_each_console_script_answers_help_and_a_bad_flag_at_once(installed, script):
    helped = _run(installed, str(installed["bin"] / script), "--help")
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "usage:" in helped.stdout
    bad = _run(installed, str(installed["bin"] / script), "--no_such_flag")
    assert bad.returncode == 2
    assert "error: " in bad.stderr and "Traceback" not in bad.stderr
    # Not a timing test: torch alone takes seconds to import, so a --help that imports it (at any depth: importtime
    # indents nested imports) is caught at any load of the machine.
    report = _run(installed, str(installed["python"]), "-X", "importtime", str(installed["bin"] / script), "--help")
    lines = [line for line in report.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[1].strip() for line in lines}
    assert "argparse" in imported, "the import report was read"
    assert not imported & {"torch", "transformers", "datasets", "gradio"}, f"{script} --help imports a heavy library"


def test_a_shipped_config_without_its_dataset_says_how_to_build_it(installed):
    done = _run(installed, str(installed["bin"] / "roc-train"), "--config", "mnre_minilm_offline", timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --dataset_name_or_path data/mnre cannot be loaded"), done.stderr[-2000:]
    assert "roc-build mnre --output_dir data/mnre" in last and "Traceback" not in done.stderr


def test_train_extract_and_publish_with_the_installed_package(installed):
    run = installed["work"] / "run"
    trained = _run(
        installed, str(installed["bin"] / "roc-train"), *tiny_recipe(installed["root"]), "--output_dir", str(run)
    )
    assert trained.returncode == 0, trained.stderr[-4000:]
    assert json.loads((run / "eval_results.json").read_text())["splits"]["validation"]["metrics"]["f1"] >= 0

    posts = installed["work"] / "posts.jsonl"
    post = {"id": "p1", "tokens": ["Alice", "works", "at", "Acme", "in", "Paris"],
            "entities": [{"start": 0, "end": 1, "type": "PER"}, {"start": 3, "end": 4, "type": "ORG"}]}  # fmt: skip
    posts.write_text(json.dumps(post) + "\n", encoding="utf-8")
    output = installed["work"] / "triples.jsonl"
    extracted = _run(
        installed, str(installed["bin"] / "roc-extract"), "--model", str(run), "--input", str(posts),
        "--output", str(output), "--device", "cpu", "--no_progress",
    )  # fmt: skip
    assert extracted.returncode == 0, extracted.stderr[-4000:]
    (record,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert record["id"] == "p1" and isinstance(record["triples"], list) and "error" not in record

    staged = installed["work"] / "staged"
    pushed = _run(
        installed, str(installed["bin"] / "roc-push"), "--model_dir", str(run), "--repo_id", "org/tiny-roc",
        "--dry_run", "--staging_dir", str(staged),
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr[-4000:]
    summary = json.loads(pushed.stdout)
    assert summary["dry_run"] is True and "model.safetensors" in summary["files"]
    assert (staged / "config.json").is_file() and (staged / "README.md").is_file()


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("roc-train", ["--do_eval", "--model_name_or_path", "no-such-run", "--dataset_name_or_path", "x"],
         "error: --model_name_or_path no-such-run: no such folder (and not a Hub id of the form namespace/name)"),
        ("roc-extract", ["--model", "no-such-run", "--input", "posts.jsonl", "--output", "out.jsonl"],
         "error: --model no-such-run: no such folder (and not a Hub id of the form namespace/name)"),
        ("roc-push", ["--model_dir", "no-such-run", "--repo_id", "org/x", "--dry_run"],
         "error: --model_dir no-such-run is not a folder."),
        ("roc-train", ["--config", "nope.yaml"], "error: --config nope.yaml: no such file"),
    ],
)  # fmt: skip
def test_a_missing_model_or_config_is_one_error_line(installed, script, args, message):
    (installed["work"] / "posts.jsonl").write_text('{"id": 1, "text": "x"}\n', encoding="utf-8")
    done = _run(installed, str(installed["bin"] / script), *args, timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert message in done.stderr.strip().splitlines()[-1]
