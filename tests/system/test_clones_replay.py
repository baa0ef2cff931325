"""Cloned plates as an operator meets them: ``feblam replay`` with ``[clones] enabled`` gives one clone hit for
one plate read 200 km apart in 20 minutes, none for 2 hours or 400 m, nothing different with the check off; a
bad camera register is one line naming its file, row and column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.support.hotlists import EXAMPLES
from tests.support.processes import assert_one_clear_line, feblam

pytestmark = pytest.mark.system

KEY = "a-key-of-this-test-0123456789"
BRUSSELS = (50.8467, 4.3525)
FAR = (50.2014, 6.9935)  # 200 km east-south-east
NEAR = (50.8503, 4.3525)  # 400 m north
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def read(read_id: str, minutes: float, where: tuple[float, float] | None, camera: str, plate: str) -> dict:
    doc = {
        "read_id": read_id,
        "camera_id": camera,
        "ts": (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "plate_raw": plate,
        "country_raw": "BE",
        "confidence": 0.9,
        "image_ref": f"s3://anpr/{read_id}.jpg",
    }
    if where is not None:
        doc["lat"], doc["lon"] = where
    return doc


READS = [
    read("a1", 0, BRUSSELS, "CAM-BXL", "1-XYZ-987"),
    read("a2", 20, FAR, "CAM-ARL", "1-XYZ-987"),  # 200 km in 20 minutes: 600 km/h
    read("b1", 0, BRUSSELS, "CAM-BXL", "2-XYZ-987"),
    read("b2", 120, FAR, "CAM-ARL", "2-XYZ-987"),  # 200 km in 2 hours: 100 km/h
    read("c1", 0, BRUSSELS, "CAM-BXL", "3-XYZ-987"),
    read("c2", 0.2, NEAR, "CAM-NORTH", "3-XYZ-987"),  # 400 m in 12 s: a close camera, not a clone
    read("s1", 30, None, "CAM-REG", "1-ABC-123"),  # a stolen car of the sample lists, placed by the register
]


def replay(tmp_path: Path, name: str, clones: str) -> list[dict]:
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(f'[privacy]\nhash_key = "{KEY}"\n{clones}')
    checked = feblam("config", "check", "--config", str(cfg))
    assert checked.returncode == 0, checked.stderr
    out = tmp_path / f"hits-{name}.jsonl"
    run = feblam(
        "replay",
        "--config",
        str(cfg),
        "--hotlists",
        str(EXAMPLES / "hotlists"),
        "--input",
        f"canonical={tmp_path / 'reads.jsonl'}",
        "--out",
        str(out),
        "--quiet",
    )
    assert run.returncode == 0, run.stderr
    return [orjson.loads(x) for x in out.read_bytes().splitlines() if x.strip()]


def without_time(hits: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "emitted_at"} for h in hits]


def test_replay_gives_one_clone_hit_with_both_reads_and_nothing_changes_with_clones_off(tmp_path: Path) -> None:
    (tmp_path / "reads.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in READS) + b"\n")
    register = tmp_path / "cameras.csv"
    register.write_text("camera_id,lat,lon,site\nCAM-REG,51.2194,4.4025,ANTWERP\n")

    on = replay(tmp_path, "on", f'[clones]\nenabled = true\ncameras = "{register}"\n')
    off = replay(tmp_path, "off", "[clones]\nenabled = false\n")

    clones = [h for h in on if any(m["category"] == "cloned_plate" for m in h["matches"])]
    assert len(clones) == 1, [h["read"]["read_id"] for h in clones]
    (hit,) = clones
    assert hit["read"]["read_id"] == "a2" and hit["clone"]["earlier"]["read_id"] == "a1"
    assert hit["clone"]["earlier"]["camera_id"] == "CAM-BXL"
    assert hit["clone"]["km"] == pytest.approx(200, abs=1) and hit["clone"]["minutes"] == pytest.approx(20)
    assert hit["clone"]["kmh"] == pytest.approx(600, abs=5)
    (match,) = hit["matches"]
    assert match["list_id"] == "FEBLAM-CLONES" and match["priority"] == 2 and "km/h" in match["note"]

    assert off, "the sample's stolen car is a hit"
    assert all("clone" not in h for h in off)
    assert without_time([h for h in on if h not in clones]) == without_time(off), "every other hit is the same"


def test_a_bad_camera_register_is_one_line_with_file_row_and_column(tmp_path: Path) -> None:
    register = tmp_path / "cameras.csv"
    register.write_text("camera_id,lat,lon\nCAM-1,50.85,4.35\nCAM-2,north,4.40\n")
    cfg = tmp_path / "feblam.toml"
    cfg.write_text(f'[privacy]\nhash_key = "{KEY}"\n[clones]\nenabled = true\ncameras = "{register}"\n')
    bad = feblam("config", "check", "--config", str(cfg))
    assert bad.returncode == 2
    line = assert_one_clear_line(bad, "cameras.csv", "row 3", "lat", "'north'")
    assert "clones.cameras" in line
