"""What may leave this machine: one redaction for every message printed and every file published.

- `redact_secrets(text)`: the values of the credentials this project reads (`HF_TOKEN` and its aliases, the
  token huggingface_hub has stored, `OPENAI_API_KEY`) and anything shaped like a Hugging Face or OpenAI key become
  `[REDACTED]`. Servers echo request headers in error text; such text is printed only after this.
- `redact_local_paths(value)`: absolute local paths (home folders, caches) inside strings, dicts and lists are cut
  to `.../<last two parts>`, for files published to the Hub (results, training arguments, build reports, cards,
  the encoders' `_name_or_path` in config.json). A path counts as local when its top folder exists on this
  machine, so relation labels written like paths (`/per/org/member_of`) are kept.
"""

import os
import re
from pathlib import Path
from typing import Any


SECRET_ENV_VARS = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_HUB_TOKEN",
    "HF_API_TOKEN",
    "OPENAI_API_KEY",
    "OPENAI_ADMIN_KEY",
)
# Hugging Face user tokens (hf_...) and OpenAI keys (sk-..., sk-proj-...), wherever they come from.
TOKEN_SHAPES = re.compile(r"\bhf_[A-Za-z0-9]{20,}|\bsk-[A-Za-z0-9_-]{16,}")
REDACTED = "[REDACTED]"
# An absolute local path inside a string (not a URL's path, not a relative path such as ../data).
LOCAL_PATH = re.compile(r"(?:^|(?<=[\s'\"(=]))/(?:[^\s'\"(),;]+/)*[^\s'\"(),;]+")


def known_secrets() -> list[str]:
    """The credential values set here now (environment, huggingface_hub's stored token), longest first."""
    values = [os.environ.get(name, "") for name in SECRET_ENV_VARS]
    try:
        from huggingface_hub import get_token

        values.append(get_token() or "")
    except Exception:  # noqa: BLE001 - no hub library or an unreadable token file: nothing more to hide
        pass
    return sorted({v for v in values if len(v) >= 8}, key=len, reverse=True)


def redact_secrets(text: str) -> str:
    """`text` with every known credential and every token-shaped string replaced by `[REDACTED]`."""
    text = str(text)
    for secret in known_secrets():
        text = text.replace(secret, REDACTED)
    return TOKEN_SHAPES.sub(REDACTED, text)


def redact_local_paths(value: Any) -> Any:
    """`value` (str, or dicts / lists of them) with absolute local paths cut to `.../<last two parts>`."""
    if isinstance(value, dict):
        return {key: redact_local_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_local_paths(item) for item in value]
    if isinstance(value, str):
        return LOCAL_PATH.sub(_cut, value)
    return value


def _cut(match: re.Match) -> str:
    path = Path(match.group(0))
    # Only a path whose top folder exists here is local: a label such as `/per/org/member_of` is not a path.
    if len(path.parts) < 2 or not Path(path.anchor, path.parts[1]).exists():
        return match.group(0)
    return ".../" + "/".join(path.parts[-2:])


__all__ = ["REDACTED", "SECRET_ENV_VARS", "known_secrets", "redact_local_paths", "redact_secrets"]
