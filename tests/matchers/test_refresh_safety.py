"""The hotlist watcher under operator mistakes: the shrink guard and files that are not regular files."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from feblam.config import HotlistSettings, replace
from matchers.build import build_index
from matchers.index import IndexHolder
from matchers.refresh import HotlistWatcher, Loader, build_and_map, build_in_process
from matchers.shrink import PERMIT
from matchers.snapshot import load_hotlists
from tests.support.hotlists import entry, write_snapshot


def setup(
    tmp: Path, n: int = 10, max_shrink: float = 0.5, loader: Loader = build_in_process
) -> tuple[Path, IndexHolder, HotlistWatcher]:
    hot = tmp / "hot"
    write_snapshot(hot, "STOLEN", [entry(f"S{i}", f"AB{i:03d}") for i in range(n)])
    write_snapshot(hot, "OTHER", [entry("O1", "ZZ999")])
    settings = HotlistSettings(dir=str(hot), shared_build=False, poll_seconds=0.05, max_shrink=max_shrink)
    holder = IndexHolder(build_index(load_hotlists(hot)))
    settings = replace(settings, cache_dir=str(tmp / "cache"))
    return hot, holder, HotlistWatcher(settings, holder, loader=loader)


def entries_of(holder: IndexHolder, list_id: str) -> int:
    return next(i.entries for i in holder.current.lists if i.list_id == list_id)


def test_a_header_only_full_snapshot_does_not_replace_the_live_list(tmp_path: Path) -> None:
    hot, holder, watcher = setup(tmp_path)
    path = hot / "STOLEN" / "000002-full.csv"
    path.write_text("entry_id,plate,country,category,priority,action\n")
    with capture_logs() as logs:
        assert watcher.check() is False
    assert entries_of(holder, "STOLEN") == 10
    rejected = [e for e in logs if e["event"] == "snapshot_rejected"]
    assert len(rejected) == 1 and rejected[0]["list_id"] == "STOLEN" and rejected[0]["reason"] == "shrink"
    assert "from 10 to 0 entries" in rejected[0]["error"] and "allow-shrink STOLEN" in rejected[0]["error"]


def test_an_emptied_or_removed_list_folder_is_held_back_too(tmp_path: Path) -> None:
    hot, holder, watcher = setup(tmp_path)
    (hot / "STOLEN" / "000001-full.csv").unlink()
    assert watcher.check() is False
    assert entries_of(holder, "STOLEN") == 10
    (hot / "STOLEN").rmdir()
    time.sleep(0.01)
    assert watcher.check() is False
    assert entries_of(holder, "STOLEN") == 10


def test_allow_shrink_lets_the_next_full_snapshot_through_once(tmp_path: Path) -> None:
    from feblam.cli import main

    hot, holder, watcher = setup(tmp_path)
    write_snapshot(hot, "STOLEN", [entry("S1", "AB001")], seq=2)
    assert watcher.check() is False and entries_of(holder, "STOLEN") == 10
    assert main(["index", "allow-shrink", "STOLEN", "--hotlists", str(hot), "--quiet"]) == 0
    assert watcher.check() is True
    assert entries_of(holder, "STOLEN") == 1
    assert not (hot / "STOLEN" / PERMIT).exists(), "the permit is used once"
    write_snapshot(hot, "STOLEN", [entry(f"S{i}", f"AB{i:03d}") for i in range(10)], seq=3)  # growing needs no permit
    assert watcher.check() is True and entries_of(holder, "STOLEN") == 10


def test_a_small_shrink_and_deletes_by_delta_pass(tmp_path: Path) -> None:
    hot, holder, watcher = setup(tmp_path)
    write_snapshot(hot, "STOLEN", [entry(f"S{i}", f"AB{i:03d}") for i in range(6)], seq=2)  # 40 % fewer
    assert watcher.check() is True and entries_of(holder, "STOLEN") == 6
    write_snapshot(hot, "STOLEN", [{"op": "delete", "entry_id": f"S{i}"} for i in range(6)], seq=3, kind="delta")
    assert watcher.check() is True and entries_of(holder, "STOLEN") == 0


def test_max_shrink_one_turns_the_guard_off(tmp_path: Path) -> None:
    hot, holder, watcher = setup(tmp_path, max_shrink=1.0)
    (hot / "STOLEN" / "000002-full.csv").write_text("entry_id,plate,country,category,priority,action\n")
    assert watcher.check() is True and entries_of(holder, "STOLEN") == 0


def test_a_dangling_symlink_is_skipped_with_one_warning_naming_it(tmp_path: Path) -> None:
    hot, holder, watcher = setup(tmp_path)
    link = hot / "STOLEN" / "000005-delta.csv"
    link.symlink_to(tmp_path / "gone.csv")
    with capture_logs() as logs:
        for _ in range(3):
            watcher.check()
            time.sleep(0.01)
    skipped = [e for e in logs if e["event"] == "snapshot_file_skipped"]
    assert len(skipped) == 1 and skipped[0]["path"] == str(link)
    assert not [e for e in logs if e["event"] in ("snapshot_rejected", "hotlist_watch_failed")]
    write_snapshot(hot, "OTHER", [{"op": "upsert", **entry("O2", "YY111")}], seq=2, kind="delta")
    assert watcher.check() is True, "the watcher still takes good changes"


def test_a_fifo_named_like_a_snapshot_never_blocks_the_watcher(tmp_path: Path) -> None:
    hot, holder, watcher = setup(tmp_path)
    fifo = hot / "STOLEN" / "000007-full.csv"
    os.mkfifo(fifo)
    write_snapshot(hot, "OTHER", [{"op": "upsert", **entry("O2", "YY111")}], seq=2, kind="delta")
    done: list[bool] = []
    with capture_logs() as logs:
        t = threading.Thread(target=lambda: done.append(watcher.check()), daemon=True)
        t.start()
        t.join(timeout=20)
    assert done == [True], "the check ended and the good change went live"
    assert [e["path"] for e in logs if e["event"] == "snapshot_file_skipped"] == [str(fifo)]
    assert entries_of(holder, "STOLEN") == 10


def test_every_place_names_the_version_the_hits_carry_also_with_changes_on_top(tmp_path: Path) -> None:
    """The files' version with the change topic's changes on top is the live one: the metric, the swap's event
    and the hits all name it (not the files' version beneath)."""
    from feblam import logs
    from feblam.metrics import REGISTRY, index_age_seconds
    from matchers.build import build_changes

    logs.configure("info", "json")  # an earlier test's CLI call may have left the level at warning
    hot, holder, watcher = setup(tmp_path)
    holder.wrap = lambda inner: build_changes(inner.files_version(), {"OTHER": {"O1": (10**6, None)}})
    write_snapshot(hot, "STOLEN", [entry(f"S{i}", f"AB{i:03d}") for i in range(12)], seq=2)
    with capture_logs() as logs:
        assert watcher.check() is True
    live = holder.current.version
    assert live != holder.current.files_version().version
    assert REGISTRY.get_sample_value("feblam_index_version_info", {"version": live}) == 1
    (swapped,) = [e for e in logs if e["event"] == "index_swapped"]
    assert swapped["version"] == live and swapped["files_version"] == holder.current.files_version().version
    assert index_age_seconds() < 5


@pytest.mark.parametrize("loader", [build_in_process, build_and_map], ids=["in-process", "child-builder"])
def test_a_bad_file_holds_back_its_list_only_and_every_problem_is_reported_at_once(
    tmp_path: Path, loader: Loader
) -> None:
    """One zone's bad export never holds back the stolen-vehicle updates: the valid delta of STOLEN is live on
    the same poll, OTHER and THIRD stay as they were, and both bad files are reported on that poll."""
    from feblam import logs
    from feblam.metrics import REGISTRY

    logs.configure("info", "json")
    NOW = datetime.now(UTC)  # noqa: N806
    hot, holder, watcher = setup(tmp_path, loader=loader)
    write_snapshot(hot, "THIRD", [entry("T1", "TT111")])
    assert watcher.check() is True
    write_snapshot(hot, "STOLEN", [{**entry("S-NEW", "NEW001"), "op": "upsert"}], seq=2, kind="delta")
    (hot / "OTHER" / "000002-full.csv").write_text("entry_id,plate,category,priority,action\nO2,ZZ888,x,9,intercept\n")
    (hot / "THIRD" / "000002-delta.csv").write_text("entry_id,plate\nT2,TT222\n")
    with capture_logs() as seen:
        assert watcher.check() is True
    assert [m.entry_id for m in holder.current.probe("NEW001", None, NOW)] == ["S-NEW"]  # live on this poll
    assert entries_of(holder, "OTHER") == 1 and [m.entry_id for m in holder.current.probe("ZZ999", None, NOW)] == ["O1"]
    assert entries_of(holder, "THIRD") == 1
    rejected = {e["list_id"]: e for e in seen if e["event"] == "snapshot_rejected"}
    assert set(rejected) == {"OTHER", "THIRD"} and all(e["reason"] == "held_back" for e in rejected.values())
    assert "000002-full.csv" in rejected["OTHER"]["error"] and "priority" in rejected["OTHER"]["error"]
    assert "000002-delta.csv" in rejected["THIRD"]["error"]
    assert set(holder.held_back) == {"OTHER", "THIRD"}
    assert REGISTRY.get_sample_value("feblam_list_held_back", {"list_id": "OTHER"}) == 1

    (hot / "OTHER" / "000002-full.csv").unlink()  # the operator moves the bad export away
    assert watcher.check() is False  # the version is the live one; only what is held back changed
    assert set(holder.held_back) == {"THIRD"}
    assert REGISTRY.get_sample_value("feblam_list_held_back", {"list_id": "OTHER"}) is None
