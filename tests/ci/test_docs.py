"""The documentation: every generated table is current with its results file, and the site builds strict."""

import subprocess
import sys

from helpers.tiny_models import REPO_ROOT


def test_every_generated_table_matches_its_results_file():
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "docs_tables.py"), "--check"],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_table_block_is_filled_from_its_results_file(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import docs_tables

    page = "intro\n<!-- table: headline -->\nstale numbers\n<!-- /table -->\nafter\n"
    rendered = docs_tables.render(page, "page.md")
    assert "stale numbers" not in rendered
    assert "| offline default, seed 42 | 74.20 | 61.42 | 58.17 | 59.75 |" in rendered
    assert rendered.startswith("intro\n<!-- table: headline -->\n") and rendered.endswith("<!-- /table -->\nafter\n")


def test_the_site_builds_strict(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for page in ("index.html", "demo/index.html", "new-relations/index.html", "speed/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
