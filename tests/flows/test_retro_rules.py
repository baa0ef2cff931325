"""The retro-scan applies the live flow's rules: the format-aware OCR rule when it is on, and the mapped
vendors (a scan in a child process registers them as the job does)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from feblam.config import Settings
from flows.retro import ScanResult, _match
from matchers.build import build_index
from matchers.snapshot import load_hotlists
from sinks.routing import Router
from tests.support.hotlists import EXAMPLES

INDEX = build_index(load_hotlists(EXAMPLES / "hotlists"))
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def scanned(payload: bytes, vendor: str = "canonical", by_format: bool = False) -> ScanResult:
    result = ScanResult()
    router = Router(Settings().sinks)
    _match(payload, vendor, INDEX, None, router, 0, {}, "v-test", result, SINCE, by_format)
    return result


def read(plate: str) -> bytes:
    ts = (SINCE + timedelta(days=300)).isoformat()
    return orjson.dumps(
        {"read_id": f"r-{plate}", "camera_id": "CAM-BXL-1", "ts": ts, "plate_raw": plate, "country_raw": "BE"}
    )


def test_a_retro_hit_is_judged_by_the_format_rule_when_it_is_on() -> None:
    kinds = {m.match_kind for h in scanned(read("1A8C123")).hits for m in h.matches}
    assert kinds == {"ocr_equivalent"}
    kinds = {m.match_kind for h in scanned(read("1A8C123"), by_format=True).hits for m in h.matches}
    assert kinds == {"ocr_format"}
    assert {m.match_kind for h in scanned(read("1ABC123"), by_format=True).hits for m in h.matches} == {"exact"}


def test_a_scan_knows_the_shipped_mapped_vendors() -> None:
    from sources.mapping import register

    register("")
    axis = (EXAMPLES / "input" / "axis-lpv.txt").read_bytes().splitlines()[0]
    hits = scanned(axis, vendor="axis-lpv").hits
    assert [h.read.plate_raw for h in hits] == ["1ABC123"] and hits[0].read.vendor == "axis-lpv"
