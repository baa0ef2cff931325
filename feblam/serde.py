"""JSON at the edges: reads, hits and dead-letters to and from bytes (orjson)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

from feblam.model import Clone, DeadLetter, Hit, Match, Read

READ_FIELDS = (
    "read_id",
    "camera_id",
    "vendor",
    "ts",
    "plate_raw",
    "country_raw",
    "confidence",
    "lat",
    "lon",
    "lane",
    "direction",
    "image_ref",
)
MATCH_FIELDS = (
    "list_id",
    "entry_id",
    "category",
    "priority",
    "action",
    "match_kind",
    "owner",
    "note",
    "entry_plate",
    "entry_country",
)
#: A match's validity window, as ISO 8601 times (null: open on that side).
MATCH_TIMES = ("valid_from", "valid_until")


def format_ts(ts: datetime) -> str:
    """ISO 8601 in UTC with ``Z``: milliseconds, or microseconds when they are not whole."""
    ts = ts.astimezone(UTC)
    base = ts.strftime("%Y-%m-%dT%H:%M:%S")
    us = ts.microsecond
    frac = f".{us // 1000:03d}" if us % 1000 == 0 else f".{us:06d}"
    return f"{base}{frac}Z"


def parse_ts(text: str) -> datetime:
    """An ISO 8601 time as aware UTC (a naive one is taken as UTC)."""
    ts = datetime.fromisoformat(text)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def read_to_dict(read: Read) -> dict[str, Any]:
    """A read as DESIGN section 2's JSON object."""
    return {
        "read_id": read.read_id,
        "camera_id": read.camera_id,
        "vendor": read.vendor,
        "ts": format_ts(read.ts),
        "plate_raw": read.plate_raw,
        "country_raw": read.country_raw,
        "confidence": read.confidence,
        "lat": read.lat,
        "lon": read.lon,
        "lane": read.lane,
        "direction": read.direction,
        "image_ref": read.image_ref,
    }


def read_from_dict(doc: dict[str, Any]) -> Read:
    """A read from its JSON object."""
    return Read(
        read_id=doc["read_id"],
        camera_id=doc["camera_id"],
        vendor=doc.get("vendor") or "canonical",
        ts=parse_ts(doc["ts"]),
        plate_raw=doc["plate_raw"],
        country_raw=doc.get("country_raw"),
        confidence=doc.get("confidence"),
        lat=doc.get("lat"),
        lon=doc.get("lon"),
        lane=doc.get("lane"),
        direction=doc.get("direction"),
        image_ref=doc.get("image_ref"),
    )


def match_to_dict(m: Match) -> dict[str, Any]:
    """A match as in DESIGN section 6."""
    doc: dict[str, Any] = {f: getattr(m, f) for f in MATCH_FIELDS}
    for f in MATCH_TIMES:
        t = getattr(m, f)
        doc[f] = format_ts(t) if t is not None else None
    return doc


def hit_to_dict(hit: Hit) -> dict[str, Any]:
    """A hit as DESIGN section 6's JSON object."""
    read = read_to_dict(hit.read)
    read["plate"] = hit.plate
    read["country"] = hit.country
    doc = {
        "hit_id": hit.hit_id,
        "index_version": hit.index_version,
        "priority": hit.priority,
        "emitted_at": format_ts(hit.emitted_at),
        "read": read,
        "matches": [match_to_dict(m) for m in hit.matches],
        "routes": list(hit.routes),
        "retro": hit.retro,
        "retro_of": hit.retro_of,
    }
    if hit.clone is not None:
        c = hit.clone
        doc["clone"] = {"earlier": read_to_dict(c.earlier), "km": c.km, "minutes": c.minutes, "kmh": c.kmh}
    return doc


def hit_to_json(hit: Hit) -> bytes:
    """A hit as JSON bytes."""
    return orjson.dumps(hit_to_dict(hit))


def match_from_dict(doc: dict[str, Any]) -> Match:
    """A match from its JSON object (fields it does not name are None)."""
    fields: dict[str, Any] = {f: doc.get(f) for f in MATCH_FIELDS}
    for f in MATCH_TIMES:
        t = doc.get(f)
        fields[f] = parse_ts(t) if isinstance(t, str) else None
    return Match(**fields)


def hit_from_dict(doc: dict[str, Any]) -> Hit:
    """A hit from its JSON object."""
    read = doc["read"]
    return Hit(
        hit_id=doc["hit_id"],
        index_version=doc["index_version"],
        priority=doc["priority"],
        emitted_at=parse_ts(doc["emitted_at"]),
        read=read_from_dict(read),
        plate=read["plate"],
        country=read.get("country"),
        matches=tuple(map(match_from_dict, doc["matches"])),
        routes=tuple(doc.get("routes", ())),
        retro=bool(doc.get("retro", False)),
        retro_of=doc.get("retro_of"),
        clone=_clone_from_dict(doc["clone"]) if doc.get("clone") else None,
    )


def _clone_from_dict(doc: dict[str, Any]) -> Clone:
    return Clone(read_from_dict(doc["earlier"]), doc["km"], doc["minutes"], doc["kmh"])


def payload_text(payload: bytes) -> tuple[str, str]:
    """A payload as text: UTF-8 when it is, base64 otherwise; returns (text, encoding)."""
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "base64"


def deadletter_to_dict(dl: DeadLetter, at: datetime | None = None) -> dict[str, Any]:
    """A dead letter as a JSON object (the payload as text, or base64 when not UTF-8)."""
    text, encoding = payload_text(dl.payload)
    doc: dict[str, Any] = {"source": dl.source}
    if dl.line is not None:
        doc["line"] = dl.line
    if dl.partition is not None:
        doc["partition"] = dl.partition
    if dl.offset is not None:
        doc["offset"] = dl.offset
    doc["vendor"] = dl.vendor
    doc["error"] = dl.error
    doc["payload"] = text
    doc["payload_encoding"] = encoding
    doc["received_at"] = format_ts(at or datetime.now(UTC))
    return doc


def deadletter_to_json(dl: DeadLetter, at: datetime | None = None) -> bytes:
    """A dead letter as JSON bytes."""
    return orjson.dumps(deadletter_to_dict(dl, at))
