"""A full disk stops every command with one `error:` line, never a chain of tracebacks."""

import errno
import os

import pytest

from roc_mre.full_disk import exits_cleanly_on_full_disk, find_no_space


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_write_to_a_full_device_is_one_error_line_with_the_resume_hint():
    @exits_cleanly_on_full_disk("run it again.")
    def main():
        with open("/dev/full", "w") as out:  # the close re-raises ENOSPC while the first one is handled
            out.write("x" * 100_000)

    with pytest.raises(SystemExit) as stop:
        main()
    message = str(stop.value.code)
    assert message.startswith("error: no space left on the device") and message.endswith("run it again.")
    assert "\n" not in message


def test_the_cause_is_found_behind_a_cleanup_error():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/data/out.jsonl")
        except OSError:
            raise ValueError("I/O operation on closed file.")  # noqa: B904 (the implicit chain is the point)
    except ValueError as err:
        found = find_no_space(err)
    assert found is not None and found.filename == "/data/out.jsonl"

    @exits_cleanly_on_full_disk("again.")
    def main():
        raise found

    with pytest.raises(SystemExit, match=r"\(writing /data/out.jsonl\); free some space, then again."):
        main()


def test_other_errors_pass_through():
    @exits_cleanly_on_full_disk("again.")
    def main():
        raise PermissionError(errno.EACCES, "Permission denied", "/root/x")

    with pytest.raises(PermissionError):
        main()


def test_every_command_is_covered():
    from datasets_scripts.build import main as build
    from roc_mre.extraction.cli import main as extract
    from roc_mre.hub.cli import main as push
    from roc_mre.training.cli import main as train

    for main in (build, extract, push, train):
        assert main.__wrapped__.__name__ == "main", main
