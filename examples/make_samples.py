"""Writes the shipped sample data (hotlists and inputs). Run: python examples/make_samples.py

The files it writes are committed; this script documents how they were made and
what each line is there to show.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
HOT = HERE / "hotlists"
INP = HERE / "input"

COLS = ["entry_id", "plate", "country", "category", "priority", "action", "valid_from", "valid_until", "owner", "note"]


def write_csv(path: Path, rows: list[dict[str, object]], cols: list[str] = COLS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_parquet(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = {c: [r.get(c) for r in rows] for c in COLS}
    table = pa.table(
        {
            "entry_id": pa.array(cols["entry_id"], pa.string()),
            "plate": pa.array(cols["plate"], pa.string()),
            "country": pa.array(cols["country"], pa.string()),
            "category": pa.array(cols["category"], pa.string()),
            "priority": pa.array(cols["priority"], pa.int8()),
            "action": pa.array(cols["action"], pa.string()),
            "valid_from": pa.array(cols["valid_from"], pa.string()),
            "valid_until": pa.array(cols["valid_until"], pa.string()),
            "owner": pa.array(cols["owner"], pa.string()),
            "note": pa.array(cols["note"], pa.string()),
        }
    )
    pq.write_table(table, path)


def hotlists() -> None:
    stolen = HOT / "BE-STOLEN"
    stolen.mkdir(parents=True, exist_ok=True)
    (stolen / "list.toml").write_text('name = "Belgian stolen vehicles"\nfuzzy = true\n', encoding="utf-8")
    # An older full snapshot: superseded by 000002-full, so S-OLD must never hit.
    write_csv(
        stolen / "000001-full.csv",
        [
            {
                "entry_id": "S-OLD",
                "plate": "9-OLD-999",
                "country": "B",
                "category": "stolen_vehicle",
                "priority": 1,
                "action": "intercept",
            },
        ],
    )
    write_parquet(
        stolen / "000002-full.parquet",
        [
            {
                "entry_id": "S-1",
                "plate": "1-ABC-123",
                "country": "B",
                "category": "stolen_vehicle",
                "priority": 1,
                "action": "intercept",
                "owner": "DJSOC",
                "note": "stolen 2026-11-20 in Brussels",
            },
            {
                "entry_id": "S-2",
                "plate": "2-DEF-456",
                "country": "BE",
                "category": "stolen_vehicle",
                "priority": 1,
                "action": "intercept",
            },
            {
                "entry_id": "S-3",
                "plate": "1 xyz 789",
                "country": None,
                "category": "stolen_vehicle",
                "priority": 2,
                "action": "intercept",
            },
            {
                "entry_id": "S-5",
                "plate": "1-BOB-080",
                "country": "BEL",
                "category": "stolen_vehicle",
                "priority": 1,
                "action": "intercept",
                "owner": "DJSOC",
            },
        ],
    )
    # Delta: S-2 recovered (deleted), S-3 raised to priority 1, S-4 added.
    write_csv(
        stolen / "000003-delta.csv",
        [
            {"op": "delete", "entry_id": "S-2"},
            {
                "op": "upsert",
                "entry_id": "S-3",
                "plate": "1-XYZ-789",
                "category": "stolen_vehicle",
                "priority": 1,
                "action": "intercept",
            },
            {
                "op": "upsert",
                "entry_id": "S-4",
                "plate": "1-NEW-001",
                "country": "B",
                "category": "stolen_vehicle",
                "priority": 1,
                "action": "intercept",
            },
        ],
        cols=["op", *COLS],
    )

    write_jsonl(
        HOT / "SIS" / "10-full.jsonl",
        [
            {
                "entry_id": "SIS-NL-1",
                "plate": "GZ-123-K",
                "country": "NL",
                "category": "sis_alert",
                "priority": 1,
                "action": "intercept",
                "owner": "SIRENE",
            },
            {
                "entry_id": "SIS-DE-1",
                "plate": "B-MW 1234",
                "country": "D",
                "category": "sis_alert",
                "priority": 1,
                "action": "intercept",
                "owner": "SIRENE",
            },
            {
                "entry_id": "SIS-FR-1",
                "plate": "AB-123-CD",
                "country": "FRA",
                "category": "sis_alert",
                "priority": 2,
                "action": "observe",
                "owner": "SIRENE",
                "note": "discreet check, do not stop",
            },
        ],
    )
    (HOT / "SIS" / "list.toml").write_text('name = "Schengen SIS alerts"\n', encoding="utf-8")

    write_csv(
        HOT / "WANTED" / "1-full.csv",
        [
            {
                "entry_id": "W-1",
                "plate": "1-ABC-123",
                "country": "BE",
                "category": "wanted",
                "priority": 2,
                "action": "intercept",
                "owner": "PJF Bruxelles",
            },
            {
                "entry_id": "W-P1",
                "plate": "2-K??-9*",
                "country": "BE",
                "category": "wanted",
                "priority": 2,
                "action": "observe",
                "note": "witness: grey van, partial plate",
            },
            {"entry_id": "W-P2", "plate": "*ZZ77", "category": "wanted", "priority": 3, "action": "inform"},
            {
                "entry_id": "W-2",
                "plate": "1-VAL-001",
                "country": "BE",
                "category": "wanted",
                "priority": 2,
                "action": "intercept",
                "valid_from": "2026-11-28T00:00:00Z",
                "valid_until": "2026-11-29T00:00:00Z",
            },
            {
                "entry_id": "W-3",
                "plate": "1-EXP-002",
                "country": "BE",
                "category": "wanted",
                "priority": 2,
                "action": "intercept",
                "valid_until": "2026-11-01T00:00:00+01:00",
            },
        ],
    )

    uninsured = HOT / "UNINSURED"
    uninsured.mkdir(parents=True, exist_ok=True)
    (uninsured / "list.toml").write_text('name = "Uninsured vehicles"\nfuzzy = false\n', encoding="utf-8")
    write_parquet(
        uninsured / "5-full.parquet",
        [
            {
                "entry_id": "U-1",
                "plate": "1-UNI-555",
                "country": "BE",
                "category": "uninsured",
                "priority": 4,
                "action": "inform",
                "owner": "DIV",
            },
            {
                "entry_id": "U-3",
                "plate": "1-GOS-222",
                "country": "BE",
                "category": "uninsured",
                "priority": 4,
                "action": "inform",
                "owner": "DIV",
            },
        ],
    )

    write_jsonl(
        HOT / "LEZ-BXL" / "1-full.jsonl",
        [
            {
                "entry_id": "L-1",
                "plate": "1-LEZ-404",
                "country": "BE",
                "category": "lez",
                "priority": 5,
                "action": "inform",
                "valid_from": "2026-01-01T00:00:00Z",
                "owner": "Bruxelles Environnement",
            },
        ],
    )
    write_csv(
        HOT / "ZONE-LIEGE" / "1-full.csv",
        [
            {
                "entry_id": "Z-1",
                "plate": "1-LIE-042",
                "country": "",
                "category": "observation",
                "priority": 3,
                "action": "observe",
                "owner": "ZP Liège",
                "note": "suspected burglary scouting",
            },
        ],
    )


def a(read_id: str, cam: str, plate: str, country: str | None, when: str, conf: int = 90) -> str:
    return json.dumps(
        {
            "id": read_id,
            "camera": {"id": cam, "lat": 50.85, "lon": 4.35, "lane": 1},
            "plate": {"text": plate, "country": country, "confidence": conf},
            "captured_at": when,
            "image": f"s3://anpr/a/{read_id}.jpg",
        },
        ensure_ascii=False,
    )


def b(read_id: str, cam: str, plate: str, country: str | None, ms: int) -> str:
    return json.dumps(
        {
            "ReadId": read_id,
            "CameraId": cam,
            "Plate": plate,
            "Country": country,
            "Conf": 0.93,
            "TimestampMs": ms,
            "Lat": 50.9,
            "Lon": 4.1,
            "Direction": "N",
        },
        ensure_ascii=False,
    )


T12 = 1795867200000  # 2026-11-28T12:00:00Z in epoch ms


def inputs() -> None:
    INP.mkdir(parents=True, exist_ok=True)
    lines_a = [
        a("a-1", "CAM-BXL-0001", "1-abc-123", "B", "2026-11-28T13:00:00.000+01:00"),  # S-1 + W-1 (12:00Z)
        a("a-2", "CAM-BXL-0001", "1-B0B-O8O", "B", "2026-11-28T13:00:05.000+01:00"),  # S-5 ocr_equivalent
        a("a-3", "CAM-BXL-0002", "GZ-123-K", "BEL", "2026-11-28T13:00:10.000+01:00"),  # SIS-NL-1 but country BE: none
        a("a-4", "CAM-BXL-0002", "GZ-123-K", None, "2026-11-28T13:00:11.000+01:00"),  # SIS-NL-1 (country unknown)
        a("a-5", "CAM-BXL-0003", "1-ХYZ-789", "B", "2026-11-28T13:00:20.000+01:00"),  # Cyrillic Х: S-3 via delta
        '{"id": "a-bad-1", "camera": {"id": "CAM-BXL-0003"}, "plate": ',  # bad JSON
        json.dumps(
            {
                "id": "a-bad-2",
                "camera": {"id": "CAM-BXL-0003"},
                "plate": {"country": "B"},
                "captured_at": "2026-11-28T13:00:00+01:00",
            }
        ),  # missing plate text
        a("a-6", "CAM-BXL-0004", "1-NOHIT-1", "B", "2026-11-28T13:01:00.000+01:00"),  # no hit
        a("a-7", "CAM-BXL-0004", "9-OLD-999", "B", "2026-11-28T13:01:10.000+01:00"),  # only in superseded full
    ]
    (INP / "vendor-a.jsonl").write_text("\n".join(lines_a) + "\n", encoding="utf-8")

    lines_b = [
        b("b-1", "E40-KM12-N", "1ABC123", "BEL", T12 + 120_000),  # 12:02: S-1, W-1 suppressed (dedup 300 s)
        b("b-2", "E40-KM12-N", "2DEF456", "BEL", T12 + 130_000),  # S-2 deleted by delta: no hit
        b("b-3", "E40-KM12-N", "1NEW001", "BEL", T12 + 140_000),  # S-4 added by delta
        b("b-4", "E40-KM13-S", "1GOS222", "BEL", T12 + 150_000),  # U-3 exact
        b("b-5", "E40-KM13-S", "1G0S222", "BEL", T12 + 160_000),  # U-3 list not fuzzy: no hit
        b("b-6", "E40-KM13-S", "2KLM987", "BEL", T12 + 170_000),  # W-P1 pattern
        json.dumps(
            {
                "ReadId": "b-bad-1",
                "CameraId": "E40-KM12-N",
                "Plate": "1ABC999",
                "Country": "BEL",
                "Conf": "high",
                "TimestampMs": T12,
            }
        ),  # non-numeric confidence
        json.dumps({"ReadId": "b-bad-2", "CameraId": "E40-KM12-N", "Plate": "1ABC999"}),  # missing time
        b("b-7", "E40-KM13-S", "BMW1234", "DEU", T12 + 180_000),  # SIS-DE-1
    ]
    (INP / "vendor-b.jsonl").write_text("\n".join(lines_b) + "\n", encoding="utf-8")

    lines_c = [
        "CAM-LIE-0042;20261128130000123;AB-123-CD;FR;0.71",  # SIS-FR-1 (12:00:00.123Z)
        "CAM-LIE-0042;20261128130100000;1-LIE-042;;0.80",  # Z-1 (any country)
        "CAM-LIE-0043;20261128130200000;1-AZZ-77;BE;0.66",  # W-P2 pattern (*ZZ77)
        "CAM-LIE-0043;20260329023000000;1-ABC-123;BE;0.90",  # inside the spring-forward gap: dead letter
        "CAM-LIE-0043;20261128130300000",  # two fields: dead letter
        "CAM-LIE-0044;20261128130400000;1-EXP-002;BE;0.90",  # W-3 expired: no hit
        "CAM-LIE-0044;20261128130500000;1-VAL-001;BE;0.90",  # W-2 within validity
    ]
    data = "\n".join(lines_c).encode("utf-8") + b"\n" + b"CAM-LIE-0044;2026112813\xff\xfe;1-X;BE;0.5\n"
    (INP / "vendor-c.txt").write_bytes(data)

    lines_canon = [
        json.dumps(
            {
                "read_id": "k-1",
                "camera_id": "CAM-ANT-0001",
                "ts": "2026-11-28T12:10:00Z",
                "plate_raw": "1-ABC-123",
                "country_raw": "BE",
                "confidence": 0.9,
            }
        ),  # 12:10: S-1, W-1 again
        json.dumps(
            {
                "read_id": "k-2",
                "camera_id": "CAM-ANT-0001",
                "ts": "2026-11-28T12:11:00Z",
                "plate_raw": "1-lez-404",
                "country_raw": "BE",
            }
        ),  # L-1
        json.dumps(
            {
                "read_id": "k-3",
                "camera_id": "CAM-ANT-0002",
                "ts": "2026-11-28T12:12:00Z",
                "plate_raw": "1-UNI-555",
                "country_raw": None,
                "lat": 51.2,
                "lon": 4.4,
            }
        ),  # U-1
        json.dumps(
            {"read_id": "k-bad-1", "camera_id": "CAM-ANT-0002", "ts": "2026-11-28T12:12:00Z", "plate_raw": "--- ---"}
        ),  # empty key
        json.dumps(
            {"read_id": "k-bad-2", "camera_id": "CAM-ANT-0002", "ts": "2026-13-45T12:12:00Z", "plate_raw": "1ABC123"}
        ),  # impossible time
        json.dumps(
            {
                "read_id": "k-bad-3",
                "camera_id": "CAM-ANT-0002",
                "ts": "2026-11-28T12:12:00Z",
                "plate_raw": "1ABC123",
                "image_ref": "x" * 17000,
            }
        ),  # oversized
        json.dumps(
            {
                "read_id": "k-4",
                "camera_id": "CAM-ANT-0003",
                "ts": "2026-11-28T12:13:00Z",
                "plate_raw": "1-ÄBC-123",
                "country_raw": "XX",
            }
        ),  # unknown country kept
    ]
    (INP / "canonical.jsonl").write_text("\n".join(lines_canon) + "\n", encoding="utf-8")


if __name__ == "__main__":
    hotlists()
    inputs()
