"""CI's constraints pin every dependency the project names, so a clean-clone run installs what last passed."""

import re

import pytest
from helpers.tiny_models import REPO_ROOT


tomllib = pytest.importorskip("tomllib")  # Python 3.11+, as CI runs


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_dependency_of_the_project_is_pinned_for_ci():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    named = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        named |= {_name(r) for r in extra if not r.startswith("roc-mre")}
    pins = {}
    for line in (REPO_ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line!r}"
            pins[name.lower().replace("_", "-")] = version
    assert sorted(named - set(pins)) == [], "pin them: pip freeze --exclude-editable > .ci/constraints.txt"
    assert len(pins) > len(named), "the transitive dependencies are pinned too"
