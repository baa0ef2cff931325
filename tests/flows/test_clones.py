"""Cloned plates caught live: the flow's clone hits, and the window's rule against a plain reference."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from bytewax.testing import TestingSink, TestingSource, run_main
from hypothesis import given, settings
from hypothesis import strategies as st

from feblam.config import CloneSettings, Settings, replace
from feblam.model import DeadLetter, Hit, PayloadBatch
from feblam.serde import hit_from_dict, hit_to_dict
from flows.clones import ClonePart, CloneWindow, great_circle_km
from flows.pipeline import FlowStats, build_flow
from matchers.build import build_index
from matchers.index import IndexHolder
from matchers.snapshot import load_hotlists
from sources.vendors._fields import ReadFields
from sources.vendors.sightings import from_fields
from tests.support.hotlists import EXAMPLES

KEY = "a-key-of-this-test-0123456789"
BRUSSELS = (50.8467, 4.3525)
#: 200 km east-south-east of Brussels (by the haversine of flows.clones)
FAR = (50.2014, 6.9935)
NEAR = (50.8503, 4.3525)  # 400 m north


def read(read_id: str, at: datetime, where: tuple[float, float], camera: str, plate: str = "1-XYZ-987", conf=0.9):
    doc = {
        "read_id": read_id,
        "camera_id": camera,
        "ts": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "plate_raw": plate,
        "country_raw": "BE",
        "confidence": conf,
        "lat": where[0],
        "lon": where[1],
        "image_ref": f"s3://anpr/{read_id}.jpg",
    }
    return orjson.dumps(doc)


def batch(*payloads: bytes) -> PayloadBatch:
    return PayloadBatch("canonical", "test", None, list(payloads), list(range(1, len(payloads) + 1)), by_line=True)


@pytest.fixture(scope="module")
def holder() -> IndexHolder:
    return IndexHolder(build_index(load_hotlists(EXAMPLES / "hotlists")))


def on(**clones) -> Settings:
    base = Settings()
    return replace(base, clones=CloneSettings(enabled=True, **clones), privacy=replace(base.privacy, hash_key=KEY))


def run(items: list, holder: IndexHolder, s: Settings, batch_size: int = 10) -> tuple[list[Hit], list[DeadLetter]]:
    hits: list[Hit] = []
    dead: list[DeadLetter] = []
    flow = build_flow(
        s,
        TestingSource(items, batch_size=batch_size),
        TestingSink(hits),
        deadletter=TestingSink(dead),
        holder=holder,
        stats=FlowStats(),
    )
    run_main(flow)
    return hits, dead


T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_the_positions_of_the_test_are_what_they_say() -> None:
    km = great_circle_km(*(np.array([v]) for v in (*BRUSSELS, *FAR)))[0]
    assert 199.5 < km < 200.5
    assert 0.35 < great_circle_km(*(np.array([v]) for v in (*BRUSSELS, *NEAR)))[0] < 0.45


def test_200_km_in_20_minutes_is_one_clone_hit_with_both_reads(holder: IndexHolder) -> None:
    items = [
        batch(read("r1", T0, BRUSSELS, "CAM-BXL-1")),
        batch(read("r2", T0 + timedelta(minutes=20), FAR, "CAM-LUX-9")),
    ]
    hits, dead = run(items, holder, on())
    assert dead == []
    (hit,) = hits
    (m,) = hit.matches
    assert (m.category, m.list_id, m.entry_id, m.match_kind, m.priority) == (
        "cloned_plate",
        "FEBLAM-CLONES",
        "clone",
        "exact",
        2,
    )
    assert hit.read.read_id == "r2" and hit.plate == "1XYZ987"
    assert hit.clone is not None
    e = hit.clone.earlier
    assert (e.read_id, e.camera_id, e.ts, e.lat, e.lon, e.image_ref) == (
        "r1",
        "CAM-BXL-1",
        T0,
        *BRUSSELS,
        "s3://anpr/r1.jpg",
    )
    assert e.plate_raw == "1XYZ987" and e.confidence == 0.9
    assert 199.5 < hit.clone.km < 200.5 and hit.clone.minutes == 20.0 and hit.clone.kmh == 600
    assert "600 km/h" in (m.note or "")
    doc = hit_to_dict(hit)
    assert doc["clone"]["earlier"]["read_id"] == "r1" and doc["clone"]["kmh"] == 600
    assert hit_from_dict(orjson.loads(orjson.dumps(doc))) == hit


def test_the_same_reads_in_one_batch_and_out_of_order_give_the_same_clone_hit(holder: IndexHolder) -> None:
    a, b = read("r1", T0, BRUSSELS, "CAM-BXL-1"), read("r2", T0 + timedelta(minutes=20), FAR, "CAM-LUX-9")
    for items in ([batch(a, b)], [batch(b, a)], [batch(b), batch(a)]):
        hits, _ = run(items, holder, on())
        assert len(hits) == 1 and hits[0].clone is not None
        assert 199.5 < hits[0].clone.km < 200.5


@pytest.mark.parametrize(
    ("later", "where", "why"),
    [
        (timedelta(hours=2, minutes=1), FAR, "out of the window"),
        (timedelta(minutes=20), NEAR, "400 m: one site"),
        (timedelta(minutes=50), FAR, "240 km/h: a car can"),
    ],
)
def test_no_clone_hit(holder: IndexHolder, later: timedelta, where: tuple[float, float], why: str) -> None:
    items = [batch(read("r1", T0, BRUSSELS, "CAM-BXL-1")), batch(read("r2", T0 + later, where, "CAM-OTHER"))]
    hits, dead = run(items, holder, on())
    assert hits == [] and dead == [], why


def test_two_hours_apart_gives_none_and_400_m_in_seconds_gives_none(holder: IndexHolder) -> None:
    items = [
        batch(read("r1", T0, BRUSSELS, "CAM-BXL-1")),
        batch(read("r2", T0 + timedelta(hours=2, seconds=1), FAR, "CAM-LUX-9")),
    ]
    assert run(items, holder, on())[0] == []
    items = [
        batch(read("r1", T0, BRUSSELS, "CAM-BXL-1")),
        batch(read("r2", T0 + timedelta(seconds=2), NEAR, "CAM-BXL-2")),
    ]
    assert run(items, holder, on())[0] == []


def test_low_confidence_reads_and_cameras_of_one_site_are_not_compared(holder: IndexHolder, tmp_path: Path) -> None:
    items = [
        batch(read("r1", T0, BRUSSELS, "CAM-BXL-1", conf=0.5)),
        batch(read("r2", T0 + timedelta(minutes=20), FAR, "CAM-LUX-9")),
    ]
    assert run(items, holder, on())[0] == []
    # a site spanning two far-apart positions is one site by the register's word (e.g. a mobile unit's two ends)
    register = tmp_path / "cameras.csv"
    register.write_text("camera_id,lat,lon,site\nCAM-BXL-1,50.8467,4.3525,unit-7\nCAM-LUX-9,50.2014,6.9935,unit-7\n")
    items = [
        batch(read("r1", T0, BRUSSELS, "CAM-BXL-1")),
        batch(read("r2", T0 + timedelta(minutes=20), FAR, "CAM-LUX-9")),
    ]
    assert run(items, holder, on(cameras=str(register)))[0] == []


def test_a_camera_without_position_takes_the_registers(holder: IndexHolder, tmp_path: Path) -> None:
    register = tmp_path / "cameras.csv"
    register.write_text("camera_id,lat,lon\nCAM-LUX-9,50.2014,6.9935\nCAM-NOWHERE,,\n")
    first = orjson.loads(read("r1", T0, BRUSSELS, "CAM-BXL-1"))
    second = orjson.loads(read("r2", T0 + timedelta(minutes=20), FAR, "CAM-LUX-9"))
    del second["lat"], second["lon"]
    hits, _ = run([batch(orjson.dumps(first)), batch(orjson.dumps(second))], holder, on(cameras=str(register)))
    assert len(hits) == 1 and hits[0].clone is not None
    assert hits[0].clone.earlier.camera_id == "CAM-BXL-1"


def test_with_clones_off_nothing_changes(holder: IndexHolder) -> None:
    items = [
        batch(read("r1", T0, BRUSSELS, "CAM-BXL-1", "1-abc-123")),
        batch(read("r2", T0 + timedelta(minutes=20), FAR, "CAM-LUX-9", "1-abc-123")),
    ]
    base = Settings().without_dedup()
    off, _ = run(items, holder, base)
    on_, _ = run(items, holder, replace(on(), dedup=base.dedup))
    assert off and all(h.clone is None for h in off)
    assert [same_time(h) for h in on_ if h.clone is None] == [same_time(h) for h in off]
    assert len([h for h in on_ if h.clone is not None]) == 1


def same_time(hit: Hit) -> Hit:
    """The hit with emitted_at set aside (the wall clock of each run)."""
    return dataclasses.replace(hit, emitted_at=T0)


CAMERAS = [(50.85, 4.35), (50.86, 4.36), (51.22, 4.40), (50.63, 5.57), (49.61, 6.13), (51.05, 3.72)]
WINDOW_MIN = 30.0


def part_of(reads: list[tuple[int, int, int]], base: int) -> ClonePart:
    """(plate, camera, minute) reads as one shard's part; read k of the stream has read id r<base + k>."""
    fields = [
        ReadFields(
            f"r{base + k}",
            f"CAM-{c}",
            "canonical",
            T0 + timedelta(minutes=t),
            f"P{p}",
            None,
            0.9,
            CAMERAS[c][0],
            CAMERAS[c][1],
            None,
            None,
            None,
        )
        for k, (p, c, t) in enumerate(reads)
    ]
    s = from_fields(list(range(len(reads))), fields)
    n = len(reads)
    return ClonePart(
        "0",
        batch(),
        s,
        np.arange(n),
        np.array([p + 2 for p, _, _ in reads], dtype=np.uint64),
        s.ts_us,
        s.lat,
        s.lon,
        np.array([c for _, c, _ in reads], dtype=np.int64),
        np.zeros(n, dtype=np.int64),
    )


def naive(stream: list[tuple[int, int, int]], max_kmh: float, min_km: float) -> set[tuple[int, int]]:
    """Each read against its plate's previous read, in time order: (read, earlier read) of the impossible pairs."""
    last: dict[int, int] = {}
    out = set()
    for k, (p, c, t) in enumerate(stream):
        j = last.get(p)
        if j is not None:
            _, c0, t0 = stream[j]
            dt_min = t - t0
            km = great_circle_km(*(np.array([v]) for v in (*CAMERAS[c], *CAMERAS[c0])))[0]
            if c != c0 and dt_min <= WINDOW_MIN and km >= min_km and km / (max(dt_min * 60, 1) / 3600) > max_kmh:
                out.add((k, j))
        last[p] = k
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5), st.integers(0, 8)), max_size=80),
    st.lists(st.integers(1, 7), min_size=1, max_size=20),
    st.sampled_from([2, 4, 1 << 12]),
)
def test_the_window_flags_exactly_the_impossible_steps_of_each_plate(
    steps: list[tuple[int, int, int]], cuts: list[int], capacity: int
) -> None:
    stream, minute = [], 0
    for p, c, gap in steps:  # in time order; a gap of 0 is the same minute
        minute += gap
        stream.append((p, c, minute))
    w = CloneWindow(
        CloneSettings(enabled=True, window_minutes=WINDOW_MIN, max_kmh=250.0, min_km=2.0), capacity=capacity
    )
    got = set()
    k = 0
    i = 0
    while k < len(stream):
        n = cuts[i % len(cuts)]
        i += 1
        chunk = stream[k : k + n]
        part = part_of(chunk, k)
        for f in w.check(part):
            got.add((k + f.j, int(f.earlier.read_id[1:])))
            assert f.kmh > 250.0 and f.km >= 2.0
        k += n
    assert got == naive(stream, 250.0, 2.0)
    # memory follows the window: after a sweep it holds only the plates read within it
    recent = {p for p, _, t in stream if stream and t >= stream[-1][2] - WINDOW_MIN}
    w.sweep()
    assert len(w) == len(recent) and 2 * (w.live + w.tombs) <= w.cap
