"""The job's automatic retro-scans: one child at a time, the swaps that arrive while one runs scanned for
together, each entry at its latest upsert and at its row before the first of them; a scan never holds up
the caller (the change feed)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from feblam.config import RetroSettings, Settings, replace
from flows.retro import (
    NICE_PREFIX,
    SCAN_NICE,
    ScanJob,
    ScanQueue,
    ScanRequest,
    _index_of,
    merged_job,
    scan_in_background,
)

LISTS = [["stolen", "Stolen vehicles", True], ["wanted", "Wanted", False]]
T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def row(list_id: str, entry_id: str, plate: str, priority: int = 1) -> dict[str, Any]:
    return {
        "list_id": list_id,
        "entry_id": entry_id,
        "plate": plate,
        "key": plate.replace("-", ""),
        "country": "BE",
        "category": "stolen_vehicle",
        "priority": priority,
        "action": "intercept",
        "valid_from": None,
        "valid_until": None,
        "owner": None,
        "note": None,
    }


def request(added: list[dict[str, Any]], before: list[dict[str, Any]], minutes: int, version: str) -> ScanRequest:
    settings = replace(Settings(), retro=RetroSettings(window_minutes=60))
    entries = tuple((r["list_id"], r["entry_id"]) for r in added)
    return ScanRequest(
        settings, _index_of(added, LISTS), entries, _index_of(before, LISTS), version, T0 + timedelta(minutes=minutes)
    )


def by_id(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["list_id"], r["entry_id"]): r for r in rows}


def test_one_request_is_its_own_job() -> None:
    old = row("stolen", "E1", "1-ABC-123", priority=3)
    job = merged_job([request([row("stolen", "E1", "1-ABC-124")], [old], 0, "v1")])
    assert job.ids == [("stolen", "E1")]
    assert job.since == T0 - timedelta(minutes=60)
    assert job.until_ms == int(T0.timestamp() * 1000)
    assert job.retro_of == "v1" == job.doc["retro_of"]
    assert [r["plate"] for r in job.doc["added"]] == ["1-ABC-124"]
    assert [r["plate"] for r in job.doc["before"]] == ["1-ABC-123"]


def test_merged_requests_take_each_entry_latest_and_its_row_before_the_first() -> None:
    e1_old = row("stolen", "E1", "1-ABC-123", priority=3)
    first = request([row("stolen", "E1", "1-ABC-124"), row("wanted", "W1", "2-XYZ-999")], [e1_old], 0, "v1")
    # the second swap changes E1 again and adds E2; its "before" holds E1 as the first swap left it
    second = request(
        [row("stolen", "E1", "1-ABC-125"), row("stolen", "E2", "1-DEF-456")],
        [row("stolen", "E1", "1-ABC-124")],
        5,
        "v2",
    )
    job = merged_job([first, second])
    assert job.ids == [("stolen", "E1"), ("stolen", "E2"), ("wanted", "W1")]
    added = by_id(job.doc["added"])
    assert {k: r["plate"] for k, r in added.items()} == {
        ("stolen", "E1"): "1-ABC-125",
        ("stolen", "E2"): "1-DEF-456",
        ("wanted", "W1"): "2-XYZ-999",
    }
    # before the first swap, E1 was the old entry, E2 and W1 did not exist
    assert {k: r["plate"] for k, r in by_id(job.doc["before"]).items()} == {("stolen", "E1"): "1-ABC-123"}
    assert job.since == T0 - timedelta(minutes=60)  # from the earliest swap's window start
    assert job.until_ms == int((T0 + timedelta(minutes=5)).timestamp() * 1000)  # to the latest swap
    assert job.retro_of == "v2"
    assert [lst[0] for lst in job.doc["lists"]] == ["stolen", "wanted"]


def test_swaps_that_arrive_while_a_scan_runs_share_the_next_child() -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[ScanJob] = []

    def run(job: ScanJob) -> None:
        ran.append(job)
        started.set()
        assert release.wait(10)

    queue = ScanQueue(run)
    first = queue.submit(request([row("stolen", "E1", "1-ABC-123")], [], 0, "v1"))
    assert started.wait(10)
    t0 = time.monotonic()
    later = [queue.submit(request([row("stolen", f"E{i}", f"1-ABC-{i:03d}")], [], i, f"v{i}")) for i in (2, 3, 4)]
    assert time.monotonic() - t0 < 1.0  # the caller (the change feed) never waits for a scan
    assert all(t is first for t in later)  # the running worker takes them next
    release.set()
    first.join(10)
    assert not first.is_alive()
    assert [j.ids for j in ran] == [[("stolen", "E1")], [("stolen", "E2"), ("stolen", "E3"), ("stolen", "E4")]]
    assert queue.jobs == 2
    assert ran[1].retro_of == "v4"


def test_a_failed_scan_is_logged_and_the_next_still_runs() -> None:
    ran: list[list[tuple[str, str]]] = []

    def run(job: ScanJob) -> None:
        ran.append(job.ids)
        if len(ran) == 1:
            msg = "broker gone"
            raise RuntimeError(msg)

    queue = ScanQueue(run)
    with capture_logs() as logs:
        queue.submit(request([row("stolen", "E1", "1-ABC-123")], [], 0, "v1")).join(10)
        queue.submit(request([row("stolen", "E2", "1-ABC-222")], [], 1, "v2")).join(10)
    assert ran == [[("stolen", "E1")], [("stolen", "E2")]]
    failed = [e for e in logs if e["event"] == "retro_scan_failed"]
    assert [(e["error"], e["retro_of"]) for e in failed] == [("broker gone", "v1")]


def test_retro_off_or_nothing_added_queues_nothing() -> None:
    queue = ScanQueue(lambda job: pytest.fail("no scan expected"))
    req = request([row("stolen", "E1", "1-ABC-123")], [], 0, "v1")
    off = replace(req.settings, retro=RetroSettings(window_minutes=0))
    assert scan_in_background(off, req.added, list(req.entries), req.before, "v1", queue) is None
    assert scan_in_background(req.settings, req.added, [], req.before, "v1", queue) is None
    assert queue.jobs == 0


def test_the_scan_child_runs_at_the_lowest_cpu_priority() -> None:
    import os
    import subprocess
    import sys

    out = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", NICE_PREFIX + "print(os.nice(0))"], capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == min(19, os.nice(0) + SCAN_NICE) == 19
