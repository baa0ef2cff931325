"""File outputs that cannot be written: named before the start where it can be known, named when it happens,
and after the disk is freed no hit is written twice."""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from feblam.config import settings_from_dict
from feblam.errors import EXIT_USAGE, OutputError
from sinks.files import Rotation, _JsonlPartition
from sinks.outputs import check_outputs
from tests.sinks.test_files import hit
from tests.support.outputs import read_jsonl


def settings_with(path: str, **outputs: int) -> object:
    return settings_from_dict(
        {"sinks": [{"name": "hits-file", "path": path}], "deadletter": {"path": "dlq.jsonl"}, "outputs": outputs}
    )


def read_only_folder(tmp: Path) -> Path:
    """A folder this process cannot write: a chmod for a user; for root, a read-only filesystem."""
    if os.geteuid() != 0:
        folder = tmp / "ro"
        folder.mkdir(mode=0o555)
        return folder
    for candidate in (Path("/proc/sys/kernel"), Path("/sys/fs")):
        if candidate.is_dir() and not os.access(candidate, os.W_OK):
            return candidate
    pytest.skip("running as root with no read-only filesystem to try")


def test_a_folder_that_cannot_be_written_is_named_before_the_start(tmp_path: Path) -> None:
    folder = read_only_folder(tmp_path)
    with pytest.raises(OutputError, match=rf"sinks 'hits-file' .*: folder {folder} .*is not writable") as err:
        check_outputs(settings_with(str(folder / "out" / "hits.jsonl")))  # type: ignore[arg-type]
    assert err.value.exit_status == EXIT_USAGE  # the supervisor does not restart it in a loop


def test_too_little_free_space_and_a_file_where_a_folder_goes_are_named(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"MB free, under outputs.min_free_mb 10000000"):
        check_outputs(settings_with(str(tmp_path / "hits.jsonl"), min_free_mb=10_000_000))  # type: ignore[arg-type]
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match=r"afile is not a folder"):
        check_outputs(settings_with(str(tmp_path / "afile" / "hits.jsonl")))  # type: ignore[arg-type]
    check_outputs(settings_with(str(tmp_path / "new" / "deeper" / "hits.jsonl")))  # type: ignore[arg-type]


@pytest.fixture
def file_size_limit() -> Iterator[None]:
    """Writes past a size fail as on a full disk (EFBIG instead of ENOSPC), for this process only."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


def test_a_batch_the_disk_cannot_take_is_cut_back_and_written_once_after_the_restart(
    tmp_path: Path, file_size_limit: None
) -> None:
    out = tmp_path / "hits.jsonl"
    part = _JsonlPartition(out, None, Rotation())
    part.write_batch([hit(1), hit(2)])
    state = part.snapshot()
    full = out.stat().st_size
    resource.setrlimit(resource.RLIMIT_FSIZE, (full + 150, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    with pytest.raises(OutputError, match=rf"{out}: cannot write hits to it \(File too large, EFBIG\)"):
        part.write_batch([hit(3), hit(4), hit(5)])  # part of it fits: the file is cut back to whole lines
    assert out.stat().st_size == full
    part.close()
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    resumed = _JsonlPartition(out, state, Rotation())  # the restart, once the disk is freed
    resumed.write_batch([hit(3), hit(4), hit(5)])
    resumed.close()
    assert [d["hit_id"] for d in read_jsonl([out])] == ["h1", "h2", "h3", "h4", "h5"]


def test_an_audit_file_the_disk_cannot_take_is_named_and_its_hits_stay_in_the_state(
    tmp_path: Path, file_size_limit: None
) -> None:
    from datetime import UTC, datetime

    import pyarrow.parquet as pq

    from sinks.audit import _AuditPartition

    now = datetime.now(UTC)
    part = _AuditPartition(tmp_path / "audit", None)
    part.write_batch([hit(1, emitted=now), hit(2, emitted=now)])
    resource.setrlimit(resource.RLIMIT_FSIZE, (200, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    with pytest.raises(OutputError, match=r"audit/day=.*\.parquet: cannot write the audit file \(.*File too large"):
        part.close()
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    assert not list((tmp_path / "audit").rglob("*.tmp")), "no half-written file is left"
    state = part.snapshot()
    assert len(state) == 2  # still buffered: the restart writes them
    _AuditPartition(tmp_path / "audit", state).close()
    assert sorted(pq.read_table(tmp_path / "audit").column("hit_id").to_pylist()) == ["h1", "h2"]
