"""Checked downloads: a file is used only when its sha256 is the one pinned beside its URL."""

import hashlib
from pathlib import Path


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str, url: str, remedy: str) -> None:
    """Raise `ValueError` naming the URL, the file and both sums unless `path` hashes to `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(
            f"Checksum mismatch for {url} (downloaded to {path}): sha256 {actual}, expected {expected}. "
            f"Delete the cached file and retry, or {remedy}."
        )


__all__ = ["sha256_of", "verify_sha256"]
