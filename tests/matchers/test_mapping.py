"""A source's own export, mapped by its list.toml (DESIGN section 5.1)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feblam.cli import main
from feblam.errors import SnapshotError
from matchers.build import build_index
from matchers.snapshot import load_hotlists, load_list
from tests.support.hotlists import EXAMPLES, write_snapshot

MAPPING = """
name = "Dutch SIS"
[csv]
delimiter = "{delimiter}"
encoding = "{encoding}"
[columns]
entry_id = "SIS_ID"
plate = "KENTEKEN"
country = "LAND"
priority = "PRIORITEIT"
action = "ACTIE"
note = "OPMERKING"
op = "MUTATIE"
[values.priority]
"HOOG" = 1
"MIDDEL" = 3
"LAAG" = 5
[values.action]
"AANHOUDEN" = "intercept"
"DISCREET" = "observe"
[values.op]
"TOEVOEGEN" = "upsert"
"VERWIJDEREN" = "delete"
[defaults]
category = "sis_alert"
"""
PRIO = {1: "HOOG", 3: "MIDDEL", 5: "LAAG"}
ACTION = {"intercept": "AANHOUDEN", "observe": "DISCREET"}
THEIRS = {
    "entry_id": "SIS_ID",
    "plate": "KENTEKEN",
    "country": "LAND",
    "priority": "PRIORITEIT",
    "action": "ACTIE",
    "note": "OPMERKING",
    "op": "MUTATIE",
}


def write_theirs(
    folder: Path,
    rows: list[dict[str, Any]],
    *,
    delimiter: str = ";",
    encoding: str = "latin-1",
    seq: int = 1,
    kind: str = "full",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "list.toml").write_text(MAPPING.format(delimiter=delimiter.replace("\t", "\\t"), encoding=encoding))
    out = io.StringIO()
    cols = [
        c for c in ("op", "entry_id", "plate", "country", "priority", "action", "note") if c != "op" or kind == "delta"
    ]
    w = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    w.writerow([THEIRS[c] for c in cols])
    for r in rows:
        coded = {
            **r,
            "priority": PRIO.get(r.get("priority"), r.get("priority")),
            "action": ACTION.get(r.get("action"), r.get("action")),
            "op": {"upsert": "TOEVOEGEN", "delete": "VERWIJDEREN"}.get(r.get("op"), r.get("op")),
        }
        w.writerow(["" if coded.get(c) is None else coded[c] for c in cols])
    path = folder / f"{seq}-{kind}.csv"
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def ours(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "category": "sis_alert"} if r.get("op") != "delete" else r for r in rows]


def entries(directory: Path) -> list[tuple]:
    index = build_index(load_hotlists(directory))
    return sorted(
        (e.list_id, e.entry_id, e.key, e.country, e.category, e.priority, e.action, e.note) for e in index.entries()
    )


def test_renames_values_defaults_and_dialect(tmp_path: Path) -> None:
    rows = [
        {
            "entry_id": "N1",
            "plate": "XN-123-K",
            "country": "NL",
            "priority": 1,
            "action": "intercept",
            "note": "Citroën",
        },
        {"entry_id": "N2", "plate": "V-456-BB", "country": "NL", "priority": 3, "action": "observe", "note": None},
    ]
    write_theirs(tmp_path / "hot" / "SIS", rows)
    snap = load_list(tmp_path / "hot" / "SIS")
    assert snap.name == "Dutch SIS"
    got = snap.table.select(["entry_id", "key", "country", "category", "priority", "action", "note"]).to_pylist()
    assert got[0] == {
        "entry_id": "N1",
        "key": "XN123K",
        "country": "NL",
        "category": "sis_alert",
        "priority": 1,
        "action": "intercept",
        "note": "Citroën",
    }
    assert got[1]["priority"] == 3 and got[1]["action"] == "observe"


def test_deltas_are_mapped_too(tmp_path: Path) -> None:
    folder = tmp_path / "hot" / "SIS"
    write_theirs(
        folder, [{"entry_id": "N1", "plate": "XN-123-K", "country": "NL", "priority": 1, "action": "intercept"}]
    )
    write_theirs(
        folder,
        [
            {"op": "delete", "entry_id": "N1"},
            {
                "op": "upsert",
                "entry_id": "N2",
                "plate": "GZ-987-T",
                "country": "NL",
                "priority": 5,
                "action": "observe",
            },
        ],
        seq=2,
        kind="delta",
    )
    assert [e[1:3] for e in entries(tmp_path / "hot")] == [("N2", "GZ987T")]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda text: text.replace("KENTEKEN", "PLAAT", 1), ["'KENTEKEN'", "mapped to 'plate'"]),
        (
            lambda text: text.replace("HOOG", "URGENT"),
            ["row 1", "'PRIORITEIT' (priority)", "'URGENT'", "[values.priority]"],
        ),
        (lambda text: text.replace("AANHOUDEN", "STOPPEN"), ["row 1", "'ACTIE' (action)", "'STOPPEN'"]),
    ],
)
def test_mapping_errors_name_file_row_source_column_and_value(tmp_path: Path, change: Any, named: list[str]) -> None:
    path = write_theirs(
        tmp_path / "hot" / "SIS",
        [{"entry_id": "N1", "plate": "XN-123-K", "country": "NL", "priority": 1, "action": "intercept"}],
    )
    path.write_bytes(change(path.read_bytes().decode("latin-1")).encode("latin-1"))
    with pytest.raises(SnapshotError) as info:
        load_list(tmp_path / "hot" / "SIS")
    assert str(path) in str(info.value)
    for text in named:
        assert text in str(info.value)


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[columns]\nplaat = 'X'\n", "'plaat', not one of our columns"),
        ("[csv]\nencoding = 'klingon'\n", "csv.encoding 'klingon'"),
        ("[csv]\ndelimiter = ';;'\n", "csv.delimiter"),
        ("[kolommen]\n", "kolommen"),
        ("fuzzy = 'ja'\n", "fuzzy"),
    ],
)
def test_a_bad_list_toml_names_the_key(tmp_path: Path, toml: str, named: str) -> None:
    write_snapshot(
        tmp_path / "hot",
        "L",
        [{"entry_id": "E1", "plate": "AB12", "category": "c", "priority": 1, "action": "inform"}],
        toml=toml,
    )
    with pytest.raises(SnapshotError, match="list.toml") as info:
        load_list(tmp_path / "hot" / "L")
    assert named in str(info.value)


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "plate": st.text(alphabet="ABCDEFGHJKLMNPRSTVXZ0123456789- ", min_size=2, max_size=9).filter(
                lambda s: any(c.isalnum() for c in s)
            ),
            "country": st.sampled_from([None, "NL", "B", "DEU"]),
            "priority": st.sampled_from([1, 3, 5]),
            "action": st.sampled_from(["intercept", "observe"]),
            "note": st.sampled_from([None, "blauw", "Citroën", "naïef; met puntkomma", 'met "quotes"']),
        }
    ),
    min_size=1,
    max_size=15,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=rows_strategy,
    delimiter=st.sampled_from([";", ",", "|", "\t"]),
    encoding=st.sampled_from(["latin-1", "utf-8", "cp1252"]),
)
def test_a_mapped_export_gives_the_index_of_the_same_rows_in_our_columns(
    tmp_path: Path,
    rows: list[dict[str, Any]],
    delimiter: str,
    encoding: str,
) -> None:
    rows = [{"entry_id": f"N{i}", **r} for i, r in enumerate(rows)]
    work = tmp_path / f"w{abs(hash((delimiter, encoding, len(rows))))}"
    shutil.rmtree(work, ignore_errors=True)
    write_theirs(work / "theirs" / "SIS", rows, delimiter=delimiter, encoding=encoding)
    write_snapshot(work / "ours", "SIS", ours(rows), toml='name = "Dutch SIS"\n')
    assert entries(work / "theirs") == entries(work / "ours")


def test_replay_over_a_sources_own_export_gives_the_hits_of_the_same_list_in_our_columns(tmp_path: Path) -> None:
    reads = tmp_path / "reads.jsonl"
    reads.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "read_id": f"r{i}",
                    "camera_id": "CAM-1",
                    "ts": "2026-11-28T12:00:00Z",
                    "plate_raw": plate,
                    "country_raw": "NL",
                }
            )
            + b"\n"
            for i, plate in enumerate(["XN-123-K", "V456BB", "GZ-987-T", "79-TZ-RL", "XN-I23-K"])
        )
    )
    theirs = tmp_path / "theirs"
    shutil.copytree(EXAMPLES / "hotlists" / "SIS-NL", theirs / "SIS-NL")
    mine = tmp_path / "ours"
    snap = load_list(theirs / "SIS-NL")
    write_snapshot(
        mine,
        "SIS-NL",
        [{k: v for k, v in r.items() if k != "key"} for r in snap.table.to_pylist()],
        fmt="jsonl",
        toml=f'name = "{snap.name}"\n',
    )
    results = {}
    for name, hot in (("theirs", theirs), ("ours", mine)):
        out = tmp_path / f"{name}.jsonl"
        assert (
            main(
                [
                    "replay",
                    "--hotlists",
                    str(hot),
                    "--input",
                    f"canonical={reads}",
                    "--out",
                    str(out),
                    "--dedup-window",
                    "0",
                    "--quiet",
                ]
            )
            == 0
        )
        results[name] = sorted(
            (h["hit_id"], orjson.dumps(h["matches"]), h["read"]["read_id"])
            for h in (orjson.loads(x) for x in out.read_bytes().splitlines())
        )
    assert results["theirs"] == results["ours"]
    assert {r[2] for r in results["theirs"]} == {"r0", "r1", "r2", "r4"}, (
        "deleted NL-SIS-003 gives no hit; OCR twin r4 does"
    )
