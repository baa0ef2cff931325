"""The builder apart (feblam index build --watch --out DIR) and jobs that only map what it publishes."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from feblam.config import HotlistSettings
from matchers.refresh import open_live_index, watch_and_publish
from matchers.store import PUBLISHED, published
from tests.support.hotlists import entry, write_snapshot
from tests.support.processes import wait_for

NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_a_job_with_versions_dir_swaps_when_the_builder_publishes(tmp_path: Path) -> None:
    hot, out = tmp_path / "hot", tmp_path / "versions"
    write_snapshot(hot, "L", [entry(f"E{i}", f"AB{i:03d}") for i in range(10)])
    stop = threading.Event()
    builder = threading.Thread(
        target=watch_and_publish, args=(HotlistSettings(dir=str(hot), poll_seconds=0.1), out, stop), daemon=True
    )
    builder.start()
    try:
        assert wait_for(lambda: (out / PUBLISHED).exists())
        # the job only maps: its hotlist directory is not even readable from here
        job = HotlistSettings(dir=str(tmp_path / "elsewhere"), versions_dir=str(out), poll_seconds=0.05)
        live = open_live_index(job, watch=False)
        first = live.current.version
        assert [m.entry_id for m in live.current.probe("AB003", None, NOON)] == ["E3"]
        from matchers.refresh import HotlistWatcher

        watcher = HotlistWatcher(job, live.holder)
        assert watcher.check() is False  # nothing new published
        write_snapshot(hot, "L", [{"op": "upsert", **entry("E99", "ZZ999")}], seq=2, kind="delta")
        assert wait_for(lambda: published(out).name != Path(live.current.source_dir or "").name)
        assert watcher.check() is True
        assert live.current.version != first
        assert [m.entry_id for m in live.current.probe("ZZ999", None, NOON)] == ["E99"]
        # the builder applies the shrink guard: an emptied list is never published
        (hot / "L" / "000003-full.csv").write_text("entry_id,plate,category,priority,action\n")
        time.sleep(1.0)
        assert watcher.check() is False
        assert len(live.current) == 11
    finally:
        stop.set()
        builder.join(timeout=30)


def test_build_watch_needs_out(capsys: object) -> None:
    from feblam.cli import main

    assert main(["index", "build", "--watch", "--hotlists", "/nonexistent", "--quiet"]) == 2
