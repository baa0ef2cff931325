"""The ``mapped-<vendor>`` rows: each shipped mapping of a built-in vendor decodes that vendor's generated
payloads, in the same process and rounds as its hand-written decoder (``hand-<vendor>``): the ratio is the
cost of a vendor defined by a mapping file instead of code (#23: at least 0.9 for JSON)."""

from __future__ import annotations

from functools import partial
from typing import Any

from bench.data import BenchData, _figures, _timed
from feblam.errors import DecodeError

Figures = dict[str, Any]
#: The built-in vendors that have a shipped mapping (a row pair each).
MAPPED = ("canonical", "vendor-a", "vendor-b", "vendor-c")
ROUNDS = 3


def _decode_all(parse: Any, payloads: list[bytes]) -> int:
    n = 0
    for p in payloads:
        try:
            parse(p)
            n += 1
        except DecodeError:  # refused or skipped: its cost counts, as in the flow
            pass
    return n


def mapping_rows(data: BenchData) -> list[Figures]:
    """Per vendor: the best of ``ROUNDS`` alternating rounds of the hand-written decoder and of its mapping."""
    from sources.mapping import shipped
    from sources.vendors import VENDORS

    rows: list[Figures] = []
    for vendor in MAPPED:
        payloads = data.payloads.get(vendor, [])
        if not payloads:
            continue
        mapped = shipped(vendor)
        best: dict[str, tuple[float, float, int]] = {}
        for _ in range(ROUNDS):
            for kind, parse in (("hand", VENDORS[vendor].parse), ("mapped", mapped.parse)):
                wall, cpu, ok = _timed(partial(_decode_all, parse, payloads))
                if kind not in best or wall < best[kind][0]:
                    best[kind] = (wall, cpu, ok)
        for kind in ("hand", "mapped"):
            wall, cpu, ok = best[kind]
            rows.append(_figures(f"{kind}-{vendor}", len(payloads), wall, cpu, decoded=ok, rounds=ROUNDS))
    rows += _xml_rows()
    return rows


#: The shipped XML vendors (no hand-written decoder): reads/s of their samples, each repeated.
XML = ("hikvision-isapi", "axis-lpv")


def _xml_rows(repeat: int = 5_000) -> list[Figures]:
    from pathlib import Path

    from sources.mapping import shipped

    samples = Path(__file__).resolve().parents[1] / "examples" / "input"
    rows = []
    for vendor in XML:
        lines = [x for x in (samples / f"{vendor}.txt").read_bytes().splitlines() if x.strip()] * repeat
        parse = shipped(vendor).parse
        best = min((_timed(partial(_decode_all, parse, lines)) for _ in range(ROUNDS)), key=lambda t: t[0])
        wall, cpu, ok = best
        rows.append(_figures(f"mapped-{vendor}", len(lines), wall, cpu, decoded=ok, rounds=ROUNDS))
    return rows
