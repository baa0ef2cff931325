from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from feblam.cli import main
from tests.support.hotlists import EXAMPLES, entry, sample_hotlists, write_snapshot

INPUTS = [
    f"vendor-a={EXAMPLES / 'input' / 'vendor-a.jsonl'}",
    f"vendor-b={EXAMPLES / 'input' / 'vendor-b.jsonl'}",
    f"vendor-c={EXAMPLES / 'input' / 'vendor-c.txt'}",
    f"canonical={EXAMPLES / 'input' / 'canonical.jsonl'}",
]

#: What DESIGN sections 4-6 say the sample data must give (see examples/make_samples.py).
EXPECTED_HITS = {
    ("CAM-BXL-0001", "1ABC123", "2026-11-28T12:00:00.000Z"): [
        ("BE-STOLEN", "S-1", "exact", 1),
        ("WANTED", "W-1", "exact", 2),
    ],
    ("CAM-BXL-0001", "1B0BO8O", "2026-11-28T12:00:05.000Z"): [("BE-STOLEN", "S-5", "ocr_equivalent", 2)],
    ("CAM-BXL-0002", "GZ123K", "2026-11-28T12:00:11.000Z"): [("SIS", "SIS-NL-1", "exact", 1)],
    ("CAM-BXL-0003", "1XYZ789", "2026-11-28T12:00:20.000Z"): [("BE-STOLEN", "S-3", "exact", 1)],
    ("E40-KM12-N", "1NEW001", "2026-11-28T12:02:20.000Z"): [("BE-STOLEN", "S-4", "exact", 1)],
    ("E40-KM13-S", "1GOS222", "2026-11-28T12:02:30.000Z"): [("UNINSURED", "U-3", "exact", 4)],
    ("E40-KM13-S", "2KLM987", "2026-11-28T12:02:50.000Z"): [("WANTED", "W-P1", "pattern", 2)],
    ("E40-KM13-S", "BMW1234", "2026-11-28T12:03:00.000Z"): [("SIS", "SIS-DE-1", "exact", 1)],
    ("CAM-LIE-0042", "AB123CD", "2026-11-28T12:00:00.123Z"): [("SIS", "SIS-FR-1", "exact", 2)],
    ("CAM-LIE-0042", "1LIE042", "2026-11-28T12:01:00.000Z"): [("ZONE-LIEGE", "Z-1", "exact", 3)],
    ("CAM-LIE-0043", "1AZZ77", "2026-11-28T12:02:00.000Z"): [("WANTED", "W-P2", "pattern", 3)],
    ("CAM-LIE-0044", "1VAL001", "2026-11-28T12:05:00.000Z"): [("WANTED", "W-2", "exact", 2)],
    ("CAM-ANT-0001", "1ABC123", "2026-11-28T12:10:00.000Z"): [
        ("BE-STOLEN", "S-1", "exact", 1),
        ("WANTED", "W-1", "exact", 2),
    ],
    ("CAM-ANT-0001", "1LEZ404", "2026-11-28T12:11:00.000Z"): [("LEZ-BXL", "L-1", "exact", 5)],
    ("CAM-ANT-0002", "1UNI555", "2026-11-28T12:12:00.000Z"): [("UNINSURED", "U-1", "exact", 4)],
}
EXPECTED_DEAD = {
    ("vendor-a.jsonl", 6),
    ("vendor-a.jsonl", 7),
    ("vendor-b.jsonl", 7),
    ("vendor-b.jsonl", 8),
    ("vendor-c.txt", 4),
    ("vendor-c.txt", 5),
    ("vendor-c.txt", 8),
    ("canonical.jsonl", 4),
    ("canonical.jsonl", 5),
    ("canonical.jsonl", 6),
}


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def replay(tmp_path: Path, *extra: str, hotlists: Path = EXAMPLES / "hotlists") -> tuple[int, list[dict], list[dict]]:
    out, dlq = tmp_path / "hits.jsonl", tmp_path / "dlq.jsonl"
    args = ["replay", "--hotlists", str(hotlists), "--out", str(out), "--dlq", str(dlq), "--quiet", *extra]
    for i in INPUTS:
        args += ["--input", i]
    rc = main(args)
    return rc, (read_jsonl(out) if out.exists() else []), (read_jsonl(dlq) if dlq.exists() else [])


def test_replay_sample_gives_exactly_the_expected_hits(tmp_path: Path) -> None:
    rc, hits, dead = replay(tmp_path)
    assert rc == 0
    got = {
        (h["read"]["camera_id"], h["read"]["plate"], h["read"]["ts"]): [
            (m["list_id"], m["entry_id"], m["match_kind"], m["priority"]) for m in h["matches"]
        ]
        for h in hits
    }
    assert len(got) == len(hits)
    assert got == EXPECTED_HITS
    for h in hits:
        assert h["priority"] == min(m["priority"] for m in h["matches"])
        assert h["routes"] == ["all-hits"]
    assert {(Path(d["source"]).name, d["line"]) for d in dead} == EXPECTED_DEAD
    assert all(d["error"] for d in dead)
    non_utf8 = next(d for d in dead if d["line"] == 8 and d["source"].endswith("vendor-c.txt"))
    assert non_utf8["payload_encoding"] == "base64"


def test_replay_is_deterministic(tmp_path: Path) -> None:
    _, one, _ = replay(tmp_path / "1")
    _, two, _ = replay(tmp_path / "2")
    strip = lambda hits: sorted((h["hit_id"], h["index_version"], orjson.dumps(h["read"])) for h in hits)  # noqa: E731
    assert strip(one) == strip(two)


def test_replay_without_dedup_emits_the_repeats(tmp_path: Path) -> None:
    rc, hits, _ = replay(tmp_path, "--dedup-window", "0")
    assert rc == 0
    assert len(hits) == len(EXPECTED_HITS) + 2  # vendor-b 12:02 and canonical 12:13 reads of 1ABC123


def test_replay_rejects_a_bad_snapshot_naming_file_row_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hot = sample_hotlists(tmp_path)
    bad = write_snapshot(hot, "WANTED", [entry("W-9", "1-AAA-111"), entry("W-10", "1-AAA-112", priority=9)], seq=2)
    rc, _, _ = replay(tmp_path, hotlists=hot)
    assert rc != 0
    err = capsys.readouterr().err
    assert str(bad) in err and "row 2" in err and "'priority'" in err


def test_replay_rejects_a_missing_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hot = tmp_path / "hot"
    write_snapshot(hot, "L", [{"entry_id": "E", "plate": "AB12", "category": "x", "priority": 1}])
    rc, _, _ = replay(tmp_path, hotlists=hot)
    assert rc != 0
    assert "column 'action' is missing" in capsys.readouterr().err


def test_replay_missing_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "replay",
            "--hotlists",
            str(EXAMPLES / "hotlists"),
            "--input",
            f"vendor-a={tmp_path / 'nope.jsonl'}",
            "--out",
            str(tmp_path / "h.jsonl"),
            "--quiet",
        ]
    )
    assert rc != 0
    assert "nope.jsonl: input file not found" in capsys.readouterr().err


def test_replay_unknown_vendor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "replay",
            "--hotlists",
            str(EXAMPLES / "hotlists"),
            "--input",
            "vendor-q=x",
            "--out",
            str(tmp_path / "h"),
            "--quiet",
        ]
    )
    assert rc != 0
    assert "unknown vendor 'vendor-q'" in capsys.readouterr().err


def test_normalize_command_in_a_subprocess() -> None:
    exe = Path(sys.executable).with_name("feblam")
    out = subprocess.run(
        [str(exe), "normalize", " 1-аbc-123 ", "--country", "B"], capture_output=True, text=True, check=True
    )
    assert "1ABC123" in out.stdout
    assert "BE" in out.stdout
    doc = orjson.loads(
        subprocess.run(
            [str(exe), "normalize", "1-аbc-123", "--country", "B", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert doc == {"key": "1ABC123", "fuzzy": "1A8C123", "country": "BE"}


def test_index_probe_and_stats(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "index",
                "probe",
                "1-B0B-O8O",
                "--country",
                "B",
                "--at",
                "2026-11-28T12:00:00Z",
                "--hotlists",
                str(EXAMPLES / "hotlists"),
                "--quiet",
            ]
        )
        == 0
    )
    doc = orjson.loads(capsys.readouterr().out)
    assert [(m["entry_id"], m["match_kind"], m["priority"]) for m in doc["matches"]] == [("S-5", "ocr_equivalent", 2)]
    assert main(["index", "stats", "--hotlists", str(EXAMPLES / "hotlists"), "--quiet"]) == 0
    stats = orjson.loads(capsys.readouterr().out)
    assert stats["entries"] == 16 + 3  # SIS-NL, mapped from its own export: 3 in the full, +1 -1 by its delta
    assert {li["list_id"]: li["entries"] for li in stats["lists"]}["BE-STOLEN"] == 4
    assert {li["list_id"]: li["entries"] for li in stats["lists"]}["SIS-NL"] == 3


def test_index_stats_and_probe_read_a_layer_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from feblam.config import HotlistSettings
    from matchers.builder import build_shared

    hot = sample_hotlists(tmp_path)
    settings = HotlistSettings(dir=str(hot))
    build_shared(settings, tmp_path / "cache")
    write_snapshot(hot, "WANTED", [{"op": "upsert", **entry("W-9", "9-NEW-999")}], seq=90, kind="delta")
    layer = build_shared(settings, tmp_path / "cache")
    capsys.readouterr()
    assert main(["index", "stats", "--index", str(layer)]) == 0
    stats = orjson.loads(capsys.readouterr().out)
    assert stats["layer"]["overlay_entries"] == 1 and stats["layer"]["base_rows_removed"] == 0
    assert main(["index", "probe", "9-NEW-999", "--index", str(layer), "--at", "2026-11-28T12:00:00Z"]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert [m["entry_id"] for m in doc["matches"]] == ["W-9"] and doc["index_version"] == stats["version"]


def test_every_flag_has_help_and_only_lists_the_rows() -> None:
    import argparse

    from bench.suite import ALL_ROWS
    from feblam.cli import build_parser

    missing: list[str] = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    walk(sub, f"{path} {name}")
            elif not a.help:
                missing.append(f"{path} {a.dest}")

    parser = build_parser()
    walk(parser, "feblam")
    assert missing == []
    bench = parser._subparsers._group_actions[0].choices["bench"]  # type: ignore[union-attr]
    only = next(a for a in bench._actions if a.dest == "only")
    assert all(row in (only.help or "") for row in ALL_ROWS)


def canonical_replay(out: Path) -> list[str]:
    """``feblam replay`` of the sample canonical reads into ``out``."""
    canonical = f"canonical={EXAMPLES / 'input' / 'canonical.jsonl'}"
    return ["replay", "--hotlists", str(EXAMPLES / "hotlists"), "--input", canonical, "--out", str(out), "--quiet"]


def test_replay_never_overwrites_an_earlier_output(tmp_path: Path) -> None:
    out = tmp_path / "hits.jsonl"
    out.write_text('{"hit_id": "earlier"}\n')
    assert main(canonical_replay(out)) == 2
    assert out.read_text() == '{"hit_id": "earlier"}\n'


def test_every_package_names_its_public_api() -> None:
    import importlib

    for name in ("feblam", "matchers", "sources", "sinks", "flows", "gateway", "bench"):
        package = importlib.import_module(name)
        assert package.__all__, name
        for attr in package.__all__:
            assert getattr(package, attr) is not None, f"{name}.{attr}"


def test_the_files_a_command_writes_are_not_world_readable(tmp_path: Path) -> None:
    import stat

    out = tmp_path / "hits.jsonl"
    assert main(canonical_replay(out)) == 0
    for written in (out, out.with_name("hits.deadletter.jsonl")):
        assert stat.S_IMODE(written.stat().st_mode) & 0o007 == 0, written
