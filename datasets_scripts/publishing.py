"""What a publishing command may touch: the folders it stages and the files it uploads.

Three rules, shared by `push_to_hub.py` and `python -m datasets_scripts.build --push_to_hub`:

- A staging folder is replaced only when this project wrote it: it holds `STAGING_MARKER`. A `README.md` plus a
  `data/`, or a `config.json` plus a `relation_bank.json`, prove nothing (a user's project or a local clone of the
  Hub repository has them too). The new staging is written beside the target and moved in before the old one is
  removed (`replace_folder`), so a failure leaves the old one whole.
- Only files named by an explicit list leave the machine. A file of that list that is a symbolic link leading out of
  its folder is refused (`inside_folder`): publishing `data/train.parquet -> ~/.ssh/id_rsa` would upload the key.
- One upload is one commit (`commit_files`): `create_commit` with the listed files, plus deletions of the remote
  files this tool owns (by pattern) that the new list no longer has. `upload_folder` may split a large folder into
  several commits and uploads whatever lies in the folder.
"""

import fnmatch
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


STAGING_MARKER = ".roc_push_staging.json"
STAGING_WRITER = "roc-mre publishing"


def staged_by_this_project(folder: Path) -> bool:
    """True for a folder holding this project's staging marker (and nothing else counts as proof)."""
    try:
        marker = json.loads((folder / STAGING_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("writer") == STAGING_WRITER


def replace_folder(new: Path, target: Path) -> None:
    """Move `new` to `target`; an existing `target` is moved aside first and removed only once `new` is in place."""
    if not target.exists():
        os.replace(new, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent)) / target.name
    try:
        os.replace(target, aside)
    except BaseException:
        aside.parent.rmdir()  # nothing was moved: leave no empty parking folder behind
        raise
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(aside, target)  # put the old folder back: never neither
        raise
    finally:
        shutil.rmtree(aside.parent, ignore_errors=True)  # the old folder, or the empty folder it was parked in


def check_staging_target(target: Path, protected: Iterable[Path] = ()) -> None:
    """Refuse (ValueError) a staging folder that is not ours, or that is, holds or lies inside a `protected` folder
    (the model or dataset being published)."""
    target = target.resolve()
    if target.exists() and not target.is_dir():
        raise ValueError(f"staging folder {target} is a file, not a folder; choose another --staging_dir.")
    for folder in protected:
        folder = folder.resolve()
        if target == folder or folder.is_relative_to(target) or target.is_relative_to(folder):
            raise ValueError(
                f"staging folder {target} would overlap {folder}, which is being published; choose another "
                "--staging_dir."
            )
    if target.exists() and any(target.iterdir()) and not staged_by_this_project(target):
        raise ValueError(
            f"{target} is not empty and was not staged by this script (no {STAGING_MARKER}); refusing to replace "
            "it. Choose another --staging_dir."
        )


def stage_atomically(target: Path, fill: Callable[[Path], object], protected: Iterable[Path] = ()) -> None:
    """Fill a fresh folder beside `target` with `fill(folder)`, mark it, and move it into place.

    `target` must be absent, empty or an earlier staging of this project (`check_staging_target`); a failing `fill`
    leaves `target` as it was.
    """
    target = target.resolve()
    check_staging_target(target, protected)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        fresh = work / target.name
        fresh.mkdir()
        fill(fresh)
        (fresh / STAGING_MARKER).write_text(json.dumps({"writer": STAGING_WRITER}) + "\n", encoding="utf-8")
        replace_folder(fresh, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def inside_folder(folder: Path, relative: str) -> Path:
    """`folder / relative`, refusing (ValueError) a path that is, or passes through, a link leading out of `folder`."""
    root = folder.resolve()
    path = folder / relative
    if not path.resolve().is_relative_to(root):
        raise ValueError(
            f"{path} is a symbolic link to {path.resolve()}, outside {root}; refusing to publish a file from "
            "outside the folder."
        )
    return path


def remote_files(api, repo_id: str, repo_type: str, revision: str | None) -> list[str]:
    """The files of the repository at `revision` ([] for a repository or branch that has none yet)."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return list(api.list_repo_files(repo_id, repo_type=repo_type, revision=revision))
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return []


def commit_files(
    api,
    *,
    repo_id: str,
    repo_type: str,
    folder: Path,
    files: list[str],
    owned_patterns: Iterable[str],
    commit_message: str,
    revision: str | None = None,
) -> str:
    """Upload exactly `files` (relative to `folder`) in ONE commit; returns the commit URL.

    The same commit deletes the remote files matching `owned_patterns` that `files` no longer has (an old shard, a
    report of a split no longer evaluated); every other remote file is left alone.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    operations = [  # every file checked before the first request
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(inside_folder(folder, name))) for name in files
    ]
    owned_patterns, keep = list(owned_patterns), set(files)
    stale = [
        path
        for path in remote_files(api, repo_id, repo_type, revision)
        if path not in keep and any(fnmatch.fnmatch(path, pattern) for pattern in owned_patterns)
    ]
    operations += [CommitOperationDelete(path_in_repo=path) for path in stale]
    commit = api.create_commit(
        repo_id=repo_id,
        repo_type=repo_type,
        operations=operations,
        commit_message=commit_message,
        revision=revision,
    )
    return commit.commit_url


__all__ = [
    "STAGING_MARKER",
    "check_staging_target",
    "commit_files",
    "inside_folder",
    "remote_files",
    "replace_folder",
    "stage_atomically",
    "staged_by_this_project",
]
