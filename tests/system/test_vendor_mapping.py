"""A camera vendor added with a mapping file only (no code, no release): ``feblam vendor check`` shows its
reads, ``feblam config check`` validates it, and ``feblam replay --input NAME=FILE`` gives the same hits as the
same reads in canonical form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.hotlists import EXAMPLES
from tests.support.processes import feblam

ACME = """
# ACME LPR push notifications: the integrator's own mapping (ACME LPR interface guide 2.1, section 5)
name = "acme-lpr"
format = "json"
documentation = "ACME LPR interface guide 2.1, section 5"
[fields]
read_id = { path = "event.id" }
camera_id = { path = "device.serial" }
ts = { path = "event.time_ms", time = "epoch_ms" }
plate_raw = { path = "event.plate.number" }
country_raw = { path = "event.plate.state", table = { BEL = "BE", NLD = "NL", FRA = "FR" } }
confidence = { path = "event.plate.score", max = 100 }
lat = { path = "device.lat" }
lon = { path = "device.lon" }
lane = { path = "event.lane" }
direction = { path = "event.direction" }
image_ref = { path = "event.picture" }
"""


def acme_of(read: dict[str, Any]) -> bytes:
    """A canonical sample read as ACME would send it."""
    from feblam.serde import parse_ts

    country = {"BE": "BEL", "NL": "NLD", "FR": "FRA"}.get(read.get("country_raw") or "", read.get("country_raw"))
    plate = {"number": read["plate_raw"], "state": country}
    if read.get("confidence") is not None:
        plate["score"] = round(read["confidence"] * 100)
    ms = int(parse_ts(read["ts"]).timestamp() * 1000)
    device = {"serial": read["camera_id"], "lat": read.get("lat"), "lon": read.get("lon")}
    event = {"id": read["read_id"], "time_ms": ms, "plate": plate, "lane": read.get("lane")}
    event |= {"direction": read.get("direction"), "picture": read.get("image_ref")}
    return orjson.dumps({"device": device, "event": event})


def decodes(read: Any) -> bool:
    from feblam.errors import DecodeError
    from sources.vendors import VENDORS

    try:
        VENDORS["canonical"].parse(orjson.dumps(read))
        return isinstance(read.get("confidence"), float | int | None) and isinstance(read.get("read_id"), str)
    except DecodeError:
        return False


def comparable(hits: list[dict[str, Any]]) -> list[Any]:
    """What a hit says, beside the vendor's name."""
    out = []
    for h in hits:
        read = {k: v for k, v in h["read"].items() if k != "vendor"}
        out.append((read, [(m["list_id"], m["entry_id"], m["match_kind"]) for m in h["matches"]], h["priority"]))
    return sorted(out, key=lambda x: (x[0]["read_id"], x[0]["ts"]))


def test_a_vendor_added_with_a_mapping_file_only_gives_the_hits_of_the_same_reads_in_canonical_form(
    tmp_path: Path,
) -> None:
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    (vendors / "acme-lpr.toml").write_text(ACME)
    canonical = EXAMPLES / "input" / "canonical.jsonl"
    reads = [orjson.loads(x) for x in canonical.read_bytes().splitlines() if x.strip()]
    usable = [r for r in reads if decodes(r)]  # the sample's bad reads (its dead letters) stay out
    (tmp_path / "acme.jsonl").write_bytes(b"\n".join(acme_of(r) for r in usable) + b"\n")
    (tmp_path / "canonical.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in usable) + b"\n")
    cfg = tmp_path / "feblam.toml"
    cfg.write_text(f'[vendors]\ndir = "{vendors}"\n[privacy]\nhash_key = "a-key-of-this-test-0123456789"\n')

    checked = feblam("config", "check", "--config", str(cfg))
    assert checked.returncode == 0, checked.stderr
    shown = feblam("vendor", "check", "--vendor", str(vendors / "acme-lpr.toml"), str(tmp_path / "acme.jsonl"))
    assert shown.returncode == 0, shown.stderr
    lines = [orjson.loads(x) for x in shown.stdout.splitlines()]
    assert len(lines) == len(usable) and all(x["read"]["vendor"] == "acme-lpr" for x in lines)
    assert [x["read"]["plate_raw"] for x in lines] == [r["plate_raw"] for r in usable]

    hits = {}
    for name, path in (("acme-lpr", tmp_path / "acme.jsonl"), ("canonical", tmp_path / "canonical.jsonl")):
        out = tmp_path / f"hits-{name}.jsonl"
        run = feblam(
            "replay",
            "--config",
            str(cfg),
            "--hotlists",
            str(EXAMPLES / "hotlists"),
            "--input",
            f"{name}={path}",
            "--out",
            str(out),
            "--quiet",
        )
        assert run.returncode == 0, run.stderr
        hits[name] = [orjson.loads(x) for x in out.read_bytes().splitlines() if x.strip()]
    assert hits["canonical"], "the sample reads give hits"
    assert comparable(hits["acme-lpr"]) == comparable(hits["canonical"])
    assert {h["read"]["vendor"] for h in hits["acme-lpr"]} == {"acme-lpr"}


def test_a_bad_mapping_or_an_unknown_vendor_is_one_line_and_exit_2(tmp_path: Path) -> None:
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    (vendors / "acme-lpr.toml").write_text(ACME.replace('time = "epoch_ms"', 'time = "whenever"'))
    cfg = tmp_path / "feblam.toml"
    cfg.write_text(f'[vendors]\ndir = "{vendors}"\n[[sources]]\ntopic = "reads.acme"\nvendor = "acme-lpr"\n')
    bad = feblam("config", "check", "--config", str(cfg))
    assert bad.returncode == 2 and "acme-lpr.toml" in bad.stderr and "time" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    (vendors / "acme-lpr.toml").write_text(ACME)
    cfg.write_text(f'[vendors]\ndir = "{vendors}"\n[[sources]]\ntopic = "reads.x"\nvendor = "acme-lrp"\n')
    unknown = feblam("config", "check", "--config", str(cfg))
    assert unknown.returncode == 2 and "sources[0].vendor = 'acme-lrp': not a built-in vendor" in unknown.stderr
    refused = feblam(
        "vendor", "check", "--vendor", str(vendors / "acme-lpr.toml"), str(EXAMPLES / "input" / "vendor-b.jsonl")
    )
    assert refused.returncode == 1 and '"refused":"device is missing"' in refused.stdout


def test_the_shipped_xml_vendors_replay_by_name_and_a_skipped_event_is_no_dead_letter(tmp_path: Path) -> None:
    out, dlq = tmp_path / "hits.jsonl", tmp_path / "dlq.jsonl"
    run = feblam(
        "replay",
        "--hotlists",
        str(EXAMPLES / "hotlists"),
        "--input",
        f"axis-lpv={EXAMPLES / 'input' / 'axis-lpv.txt'}",
        "--input",
        f"hikvision-isapi={EXAMPLES / 'input' / 'hikvision-isapi.txt'}",
        "--out",
        str(out),
        "--dlq",
        str(dlq),
    )
    assert run.returncode == 0, run.stderr
    dead = [orjson.loads(x) for x in dlq.read_bytes().splitlines()] if dlq.exists() else []
    # 4 + 3 payloads: the ISAPI line without a plate is the one dead letter; the heartbeat and the LOST are skipped
    assert [d["error"] for d in dead] == ["hikvision-isapi: hik:ANPR/hik:licensePlate is missing"]
    assert "reads=7" in run.stdout and "deadletter=1" in run.stdout
    hits = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert {h["read"]["plate"] for h in hits} <= {"1ABC123", "1ABC128", "1XYZ987"}
    # 1ABC123 read by both cameras at 12:00:00: one hit, the other suppressed as its duplicate
    assert [h["read"]["plate"] for h in hits].count("1ABC123") == 1 and "suppressed=0" not in run.stdout


@pytest.mark.kafka
def test_run_with_a_mapped_vendor_gives_the_hits_of_the_same_reads_in_canonical_form(
    broker: Any, topic_prefix: str, tmp_path: Path
) -> None:
    """``feblam run`` on the broker: the ACME topic, decoded by its mapping file, gives the hits the same reads
    give in canonical form (replayed)."""
    import subprocess

    from tests.support.kafka import hits_of, produce, read_topic
    from tests.support.processes import FEBLAM, clean_env, stop

    vendors = tmp_path / "vendors"
    vendors.mkdir()
    (vendors / "acme-lpr.toml").write_text(ACME)
    reads = [orjson.loads(x) for x in (EXAMPLES / "input" / "canonical.jsonl").read_bytes().splitlines() if x.strip()]
    usable = [r for r in reads if decodes(r)]
    canonical = tmp_path / "canonical.jsonl"
    canonical.write_bytes(b"\n".join(orjson.dumps(r) for r in usable) + b"\n")
    p = topic_prefix
    broker.create_topics([f"{p}.acme", f"{p}.hits", f"{p}.deadletter"])
    cfg = tmp_path / "feblam.toml"
    cfg.write_text(
        f"""
[kafka]
brokers = "{broker.address}"
poll_timeout_ms = 20
[vendors]
dir = "{vendors}"
[[sources]]
topic = "{p}.acme"
vendor = "acme-lpr"
[hotlists]
dir = "{EXAMPLES / "hotlists"}"
[dedup]
window_seconds = 0
[deadletter]
topic = "{p}.deadletter"
[[sinks]]
name = "all-hits"
topic = "{p}.hits"
[http]
port = 0
[logging]
format = "json"
[privacy]
hash_key = "a-key-of-this-test-0123456789"
"""
    )
    out = tmp_path / "expected.jsonl"
    replayed = feblam(
        "replay",
        "--config",
        str(cfg),
        "--hotlists",
        str(EXAMPLES / "hotlists"),
        "--dedup-window",
        "0",
        "--input",
        f"canonical={canonical}",
        "--out",
        str(out),
        "--quiet",
    )
    assert replayed.returncode == 0, replayed.stderr
    expected = [orjson.loads(x) for x in out.read_bytes().splitlines() if x.strip()]
    assert expected
    produce(broker.address, f"{p}.acme", [acme_of(r) for r in usable])
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        [FEBLAM, "run", "--config", str(cfg)], stdout=log.open("ab"), stderr=subprocess.STDOUT, env=clean_env()
    )
    try:
        hits = hits_of(read_topic(broker.address, f"{p}.hits", expect=len(expected), timeout=60))
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    assert comparable(hits) == comparable(expected)
    assert {h["read"]["vendor"] for h in hits} == {"acme-lpr"}
