"""Reading back what FEBLAM wrote: the inverses of its encoders, which production never needs."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from feblam.model import DeadLetter, Hit
from feblam.serde import hit_from_dict


def hit_from_json(data: bytes | str) -> Hit:
    """A hit from JSON bytes."""
    return hit_from_dict(orjson.loads(data))


def deadletter_from_dict(doc: dict[str, Any]) -> DeadLetter:
    """A dead letter from its JSON object."""
    payload = doc["payload"]
    raw = base64.b64decode(payload) if doc.get("payload_encoding") == "base64" else payload.encode("utf-8")
    return DeadLetter(
        source=doc["source"],
        error=doc["error"],
        payload=raw,
        vendor=doc.get("vendor"),
        line=doc.get("line"),
        partition=doc.get("partition"),
        offset=doc.get("offset"),
    )


def read_jsonl(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every JSON line of the given files, in order ."""
    return [orjson.loads(line) for p in paths for line in p.read_bytes().splitlines() if line.strip()]
