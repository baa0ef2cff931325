from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from feblam.config import HotlistSettings
from feblam.errors import IndexFormatError, SnapshotError
from matchers.build import build_index
from matchers.builder import build_shared
from matchers.index import IndexHolder
from matchers.refresh import HotlistWatcher
from matchers.snapshot import load_hotlists
from matchers.store import open_index, save_index
from tests.support.hotlists import EXAMPLES, entry, sample_hotlists, write_snapshot
from tests.support.reference import as_tuples

NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)
PROBES = ["1ABC123", "1B0BO8O", "GZ123K", "1NEW001", "2KLM987", "1AZZ77", "1LIE042", "NOPE", "1GOS222", "1G0S222"]


def test_saved_index_maps_back_to_the_same_answers(tmp_path: Path) -> None:
    built = build_index(load_hotlists(EXAMPLES / "hotlists"))
    save_index(built, tmp_path / "idx")
    mapped = open_index(tmp_path / "idx", pause=lambda: None)
    assert mapped.version == built.version
    assert mapped.stats()["entries"] == built.stats()["entries"]
    for key in PROBES:
        for country in (None, "BE", "NL"):
            assert as_tuples(mapped.probe(key, country, NOON)) == as_tuples(built.probe(key, country, NOON))
    assert [mapped.entry(r) for r in range(len(mapped))] == [built.entry(r) for r in range(len(built))]


def test_incomplete_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "idx").mkdir()
    with pytest.raises(IndexFormatError, match="not a complete index"):
        open_index(tmp_path / "idx")


def test_shared_build_runs_once_per_version(tmp_path: Path) -> None:
    hot = sample_hotlists(tmp_path)
    settings = HotlistSettings(dir=str(hot))
    first = build_shared(settings, tmp_path / "cache")
    stamp = (first / "COMPLETE").stat().st_mtime_ns
    assert build_shared(settings, tmp_path / "cache") == first
    assert (first / "COMPLETE").stat().st_mtime_ns == stamp
    write_snapshot(hot, "WANTED", [entry("W-9", "9-NEW-999")], seq=2)
    second = build_shared(settings, tmp_path / "cache")
    assert second != first
    assert open_index(second).probe("9NEW999", None, NOON)[0].entry_id == "W-9"


def test_shared_build_reports_the_bad_row(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    bad = write_snapshot(hot, "L", [entry("E1", "AB12"), entry("E2", "CD34", action="shoot")])
    with pytest.raises(SnapshotError) as exc:
        build_shared(HotlistSettings(dir=str(hot)), tmp_path / "cache")
    assert str(bad) in str(exc.value) and "row 2" in str(exc.value) and "'action'" in str(exc.value)


def test_watcher_swaps_good_versions_and_keeps_the_live_one_on_a_bad_snapshot(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    write_snapshot(hot, "L", [entry("E1", "AB12")])
    settings = HotlistSettings(dir=str(hot), cache_dir=str(tmp_path / "cache"), poll_seconds=0.05)
    holder = IndexHolder(build_index(load_hotlists(hot)))
    watcher = HotlistWatcher(settings, holder)
    v1 = holder.current.version
    assert watcher.check() is False  # nothing changed
    time.sleep(0.01)
    write_snapshot(hot, "L", [{"op": "upsert", **entry("E2", "CD34", priority="x")}], seq=2, kind="delta")
    assert watcher.check() is False
    assert holder.current.version == v1 and watcher.rejected == 1
    assert "row 1" in (watcher.last_error or "") and "'priority'" in (watcher.last_error or "")
    (hot / "L" / "000002-delta.csv").unlink()
    write_snapshot(hot, "L", [{"op": "upsert", **entry("E2", "CD34")}], seq=3, kind="delta")
    assert watcher.check() is True
    assert holder.current.version != v1
    assert [m.entry_id for m in holder.current.probe("CD34", None, NOON)] == ["E2"]


@pytest.mark.parametrize("backend", ["rbloom", "pybloom"])
def test_builder_saves_rbloom_filters_and_a_job_loads_them_instead_of_rebuilding(
    tmp_path: Path,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import matchers.store

    hot = sample_hotlists(tmp_path)
    settings = HotlistSettings(dir=str(hot), bloom_backend=backend)
    built = build_shared(settings, tmp_path / "cache")
    assert (built / "blooms.bin").exists() == (backend == "rbloom")  # pybloom filters cannot be saved
    rebuilt: list[int] = []
    real = matchers.store._bloom_in_slices
    monkeypatch.setattr(matchers.store, "_bloom_in_slices", lambda *a: rebuilt.append(1) or real(*a))
    mapped = open_index(built, pause=lambda: None)
    assert mapped.backend == backend
    assert len(rebuilt) == (0 if backend == "rbloom" else mapped.n_shards)
    reference = build_index(load_hotlists(hot), backend=backend)
    for e in reference.entries():
        if "?" not in e.key and "*" not in e.key:
            assert as_tuples(mapped.probe(e.key, e.country, NOON)) == as_tuples(reference.probe(e.key, e.country, NOON))
    for key in PROBES:
        assert as_tuples(mapped.probe(key, None, NOON)) == as_tuples(reference.probe(key, None, NOON))


def test_versions_built_with_other_index_settings_are_not_shared(tmp_path: Path) -> None:
    hot = sample_hotlists(tmp_path)
    cache = tmp_path / "cache"
    a = build_shared(HotlistSettings(dir=str(hot), shards=31), cache)
    b = build_shared(HotlistSettings(dir=str(hot), shards=7), cache)
    c = build_shared(HotlistSettings(dir=str(hot), shards=7, bloom_fp_rate=0.01), cache)
    assert len({a, b, c}) == 3
    assert (open_index(a).n_shards, open_index(b).n_shards, open_index(c).fp_rate) == (31, 7, 0.01)


def test_file_hashes_are_remembered_until_the_file_changes(tmp_path: Path) -> None:
    from matchers.hotdir import file_hash

    f = tmp_path / "000001-full.csv"
    f.write_text("entry_id,plate\nE1,AB12\n")
    first = file_hash(f)
    assert file_hash(f) == first
    f.write_text("entry_id,plate\nE1,AB13\n")  # same size, new contents: new mtime/ctime
    assert file_hash(f) != first


def test_default_cache_dir_is_private_and_refuses_a_symlink(tmp_path: Path) -> None:
    import os

    from feblam.errors import FeblamError
    from matchers.refresh import _private_dir

    made = _private_dir(tmp_path / "mine")
    assert made.is_dir() and (made.stat().st_mode & 0o077) == 0
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "link")
    with pytest.raises(FeblamError, match="not a folder of this user"):
        _private_dir(tmp_path / "link")


def test_builder_drops_a_version_whose_files_changed_during_the_build(tmp_path: Path) -> None:
    import subprocess
    import sys

    import orjson

    from matchers.hotdir import source_manifest

    hot = sample_hotlists(tmp_path)
    settings = HotlistSettings(dir=str(hot))
    seen = source_manifest(hot)  # what the parent saw ...
    write_snapshot(hot, "WANTED", [{"op": "delete", "entry_id": "W-1"}], seq=80, kind="delta")  # ... then a new file
    out = tmp_path / "cache" / "index-x"
    job = {
        "settings": msgspec.to_builtins(settings),
        "out": str(out),
        "manifest": seen,
        "base": None,
        "new_files": None,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "matchers.builder", orjson.dumps(job).decode()],  # noqa: S603
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1 and "changed during the build" in proc.stderr
    assert not out.exists()


def test_default_cache_is_in_ram_unless_dev_shm_is_small(monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    import matchers.refresh

    if not Path("/dev/shm").is_dir():  # noqa: S108
        pytest.skip("no /dev/shm here")
    monkeypatch.setattr(matchers.refresh, "SHM_MIN_FREE", 0)
    assert matchers.refresh.cache_dir(HotlistSettings()).parent == Path("/dev/shm")  # noqa: S108
    monkeypatch.setattr(matchers.refresh, "SHM_MIN_FREE", 1 << 60)  # a container's 64 MB /dev/shm
    assert matchers.refresh.cache_dir(HotlistSettings()).parent == Path(tempfile.gettempdir())
    assert matchers.refresh.cache_dir(HotlistSettings(cache_dir="/srv/x")) == Path("/srv/x")
