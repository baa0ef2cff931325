"""feblam gateway report: the figures per desk and list, from hit events and list-quality flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feblam.errors import FeblamError
from feblam.serde import format_ts
from gateway.report import parse_since, percentile, summarise

T0 = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
ENTRY = [["BE-STOLEN", "S-1"]]


def ev(case: str, state: str, seconds: float, desk: str = "brussels", **kw) -> dict:
    return {
        "hit_id": case,
        "desk": desk,
        "state": state,
        "at": format_ts(T0 + timedelta(seconds=seconds)),
        "entries": ENTRY,
        **kw,
    }


def test_the_figures_per_desk_and_list() -> None:
    events = [
        ev("c1", "new", 0),
        ev("c1", "sighting", 60, sighting_of="h2"),
        ev("c1", "sighting", 120, sighting_of="h3"),
        ev("c1", "acknowledged", 30),
        ev("c1", "closed", 200, outcome="intercepted"),
        ev("c2", "new", 0),
        ev("c2", "acknowledged", 90),
        ev("c2", "closed", 100, outcome="false_read", reason="O for 0"),
        ev("c3", "new", 0, entries=[["LEZ", "L-9"]]),
        ev("c3", "new", 10, desk="national", entries=[["LEZ", "L-9"]]),
        {"hit_id": "x", "desk": "brussels", "state": "security", "at": format_ts(T0)},
    ]
    flags = [{"kind": "entry_flagged", "list_id": "BE-STOLEN", "entry_id": "S-1"}]
    rows = {(r["desk"], r["list_id"]): r for r in summarise(events, flags)}
    assert set(rows) == {("brussels", "BE-STOLEN"), ("brussels", "LEZ"), ("national", "LEZ")}
    r = rows[("brussels", "BE-STOLEN")]
    assert (r["hits"], r["cases"], r["sightings_per_case"]) == (4, 2, 2.0)
    assert (r["ack_p50_seconds"], r["ack_p90_seconds"]) == (30.0, 90.0)
    assert r["outcomes"] == {"intercepted": 1, "not_found": 0, "false_read": 1, "other": 0}
    assert r["false_read_rate"] == 0.5 and r["entries_flagged"] == 1
    assert rows[("national", "LEZ")]["entries_flagged"] == 0 and rows[("national", "LEZ")]["false_read_rate"] is None


def test_spans_and_percentiles() -> None:
    assert parse_since("7d") == timedelta(days=7) and parse_since("30m") == timedelta(minutes=30)
    with pytest.raises(FeblamError, match="--since '7 days'"):
        parse_since("7 days")
    assert percentile([], 0.5) is None and percentile([5.0], 0.9) == 5.0
    assert percentile([float(i) for i in range(1, 11)], 0.9) == 9.0


@pytest.mark.kafka
def test_report_reads_the_trail_and_the_flags_from_the_broker(broker, topic_prefix: str, tmp_path, capsys) -> None:
    import orjson
    import tomli_w

    from feblam.cli import main
    from tests.support.gateway import gateway_doc
    from tests.support.kafka import produce

    doc = gateway_doc(broker.address, topic_prefix)
    g = doc["gateway"] | {"quality_topic": f"{topic_prefix}.list-quality"}
    doc["gateway"] = g
    broker.create_topics([g["events_topic"], g["quality_topic"]], partitions=2)
    now = datetime.now(UTC)
    events = [ev("c1", "new", 0), ev("c1", "closed", 30, outcome="false_read", reason="O for 0")]
    for e in events:
        e["at"] = format_ts(now)
    produce(broker.address, g["events_topic"], [orjson.dumps(e) for e in events])
    flag = {"kind": "entry_flagged", "list_id": "BE-STOLEN", "entry_id": "S-1", "at": format_ts(now)}
    produce(broker.address, g["quality_topic"], [orjson.dumps(flag)])
    cfg = tmp_path / "gateway.toml"
    cfg.write_bytes(tomli_w.dumps(doc).encode())
    assert main(["gateway", "report", "--config", str(cfg), "--since", "1d", "--json"]) == 0
    (row,) = orjson.loads(capsys.readouterr().out)["rows"]
    assert (row["desk"], row["cases"], row["false_read_rate"], row["entries_flagged"]) == ("brussels", 1, 1.0, 1)
    assert main(["gateway", "report", "--config", str(cfg), "--since", "1d"]) == 0
    table = capsys.readouterr().out
    assert "brussels" in table and "BE-STOLEN" in table and "100%" in table
    assert main(["gateway", "report", "--config", str(cfg), "--since", "a week"]) == 2
