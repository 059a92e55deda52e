"""One rule for a `--model`-like flag: a local folder, or a Hub id; anything else is a one-line error before loading.

Without it a mistyped folder name reaches `from_pretrained`, which takes it for a Hub id and answers, minutes later
or offline at once, with a connection error that never says the folder does not exist.
"""

from pathlib import Path


def check_model_reference(flag: str, value: str) -> None:
    """Exit with `error: <flag> <value>: no such folder ...` unless `value` is a folder or could be a Hub id."""
    if Path(value).expanduser().exists():
        return
    if value.startswith((".", "/", "~")) or value.count("/") != 1:
        raise SystemExit(f"error: {flag} {value}: no such folder (and not a Hub id of the form namespace/name)")


def load_failure(flag: str, value: str, err: Exception) -> SystemExit:
    """The one-line error for a model that exists but cannot be loaded (not a ROC model, corrupt, offline)."""
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return SystemExit(f"error: {flag} {value} cannot be loaded: {type(err).__name__}: {reason}")
