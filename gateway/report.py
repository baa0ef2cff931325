"""``feblam gateway report --since 7d``: what the desks did with their hits, per desk and list.

From the audit trail (``[gateway] events_topic``) since a broker time, and the
list-quality flags (``quality_topic``) of the same span: per desk and list, the
hits, the cases, the sightings per case, the time to acknowledge (p50, p90),
the outcomes, the false-read rate and the entries flagged — a table for people
(rich) or ``--json`` for a dashboard. A case for entries of two lists counts
under each. Nothing here reads a plate: the trail has none.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from feblam.config import OUTCOMES, Settings
from feblam.errors import FeblamError
from feblam.kafka import read_to_end
from feblam.serde import parse_ts

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d`` -> a span; anything else one clear error."""
    found = _SPAN.match(text.strip())
    if not found or float(found.group(1)) <= 0:
        msg = f"--since {text!r}: not a span (a number and m, h or d: 30m, 12h, 7d)"
        raise FeblamError(msg)
    return timedelta(**{_UNIT[found.group(2)]: float(found.group(1))})


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ``values``, or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]


@dataclass
class Row:
    """One desk and list."""

    desk: str
    list_id: str
    hits: set[str] = field(default_factory=set)
    cases: set[str] = field(default_factory=set)
    to_ack: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    flagged: set[str] = field(default_factory=set)

    def figures(self) -> dict[str, Any]:
        closed = sum(self.outcomes.values())
        p50, p90 = percentile(self.to_ack, 0.5), percentile(self.to_ack, 0.9)
        return {
            "desk": self.desk,
            "list_id": self.list_id,
            "hits": len(self.hits),
            "cases": len(self.cases),
            "sightings_per_case": round(len(self.hits) / len(self.cases), 2) if self.cases else None,
            "ack_p50_seconds": round(p50, 1) if p50 is not None else None,
            "ack_p90_seconds": round(p90, 1) if p90 is not None else None,
            "outcomes": {o: self.outcomes.get(o, 0) for o in OUTCOMES},
            "false_read_rate": round(self.outcomes["false_read"] / closed, 3) if closed else None,
            "entries_flagged": len(self.flagged),
        }


def summarise(events: Iterable[dict[str, Any]], flags: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's rows (sorted by desk and list) from hit events and list-quality flags."""
    rows: dict[tuple[str, str], Row] = {}
    opened: dict[tuple[str, str], datetime] = {}
    desks_of_list: defaultdict[str, set[str]] = defaultdict(set)

    def rows_of(ev: dict[str, Any]) -> list[Row]:
        lists = sorted({str(e[0]) for e in ev.get("entries") or () if isinstance(e, list | tuple) and e})
        out = []
        for list_id in lists or ["(unknown)"]:
            desks_of_list[list_id].add(ev["desk"])
            out.append(rows.setdefault((ev["desk"], list_id), Row(ev["desk"], list_id)))
        return out

    for ev in sorted(events, key=lambda e: str(e.get("at"))):
        state, desk, case = ev.get("state"), ev.get("desk"), ev.get("hit_id")
        if not isinstance(desk, str) or not isinstance(case, str) or state == "security":
            continue
        try:
            at = parse_ts(str(ev.get("at")))
        except ValueError:
            continue
        for row in rows_of(ev):
            if state in ("new", "reopened"):
                row.cases.add(case)
                row.hits.add(str(ev.get("sighting_of") or case))
                opened[(desk, case)] = at
            elif state == "sighting":
                row.hits.add(str(ev.get("sighting_of")))
            elif state == "acknowledged" and (desk, case) in opened:
                row.to_ack.append((at - opened[(desk, case)]).total_seconds())
            elif state == "closed" and ev.get("outcome") in OUTCOMES:
                row.outcomes[str(ev["outcome"])] += 1
    for flag in flags:
        list_id = flag.get("list_id")
        for desk in desks_of_list.get(str(list_id), ()):
            rows[(desk, str(list_id))].flagged.add(str(flag.get("entry_id")))
    return [rows[k].figures() for k in sorted(rows)]


def _read(settings: Settings, topic: str, since_ms: int) -> list[dict[str, Any]]:
    out = []
    for value in read_to_end(
        settings.kafka, [topic], since_ms=since_ms, timeout=120.0, group="feblam-report", what=topic
    ):
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue  # not the gateway's: the trail is written by the gateway only
        if isinstance(doc, dict):
            out.append(doc)
    return out


def table(rows: list[dict[str, Any]], since: str) -> None:
    """The rows as a table on stdout (rich)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"FEBLAM Hit Gateway — the last {since}", title_justify="left")
    for name in ("desk", "list", "hits", "cases", "sightings/case", "ack p50", "ack p90"):
        t.add_column(name, justify="left" if name in ("desk", "list") else "right")
    for o in OUTCOMES:
        t.add_column(o.replace("_", " "), justify="right")
    t.add_column("false-read rate", justify="right")
    t.add_column("flagged", justify="right")

    def secs(v: float | None) -> str:
        return "—" if v is None else f"{v:.0f} s" if v < 120 else f"{v / 60:.1f} min"

    for r in rows:
        rate = r["false_read_rate"]
        t.add_row(
            r["desk"],
            r["list_id"],
            str(r["hits"]),
            str(r["cases"]),
            "—" if r["sightings_per_case"] is None else f"{r['sightings_per_case']:.2f}",
            secs(r["ack_p50_seconds"]),
            secs(r["ack_p90_seconds"]),
            *(str(r["outcomes"][o]) for o in OUTCOMES),
            "—" if rate is None else f"{rate:.0%}",
            str(r["entries_flagged"]),
        )
    Console(width=200).print(t)


def report(settings: Settings, *, since: str, as_json: bool) -> int:
    """Print the report of the last ``since`` (``7d``) from the events and quality topics."""
    span = parse_since(since)
    since_ms = int((time.time() - span.total_seconds()) * 1000)
    g = settings.gateway
    events = _read(settings, g.events_topic, since_ms)
    flags = [f for f in _read(settings, g.quality_topic, since_ms) if f.get("kind") == "entry_flagged"]
    rows = summarise(events, flags)
    if as_json:
        print(orjson.dumps({"since": since, "rows": rows}).decode())
    else:
        table(rows, since)
    print(f"events={len(events)} flags={len(flags)} rows={len(rows)} since={since}", file=sys.stderr)
    return 0
