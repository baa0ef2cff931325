"""Why a hit matched: each match of a hit, explained from the hit alone (DESIGN 4 and 6).

The analyst who must explain a hit in court, and the dispatcher deciding whether
to stop a car, both ask the same things: which characters of the read were taken
as OCR-equivalent to the entry's (``O`` read for ``0``), which part of the read a
partial plate's ``?`` and ``*`` stood for, whether the countries agreed, and
whether the capture time fell inside the entry's validity window. Every answer
comes from the rules of :mod:`matchers.normalize` (the one OCR table), applied
to the read's plate key and the match's ``entry_plate`` — no index is needed, so
``feblam explain`` works on a hit from a file or a topic, and the gateway puts
the same explanation on the card.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from matchers.normalize import fuzzy_key, is_pattern, pattern_key, plate_key


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def characters(read_key: str, entry_key: str) -> list[dict[str, Any]]:
    """Position by position: the read's character, the entry's, and how they relate (``same``, ``ocr``: the
    same OCR class, ``differ``). Keys of different lengths compare as far as the shorter goes, then ``differ``."""
    out = []
    for i in range(max(len(read_key), len(entry_key))):
        r = read_key[i] if i < len(read_key) else ""
        e = entry_key[i] if i < len(entry_key) else ""
        if r == e:
            how = "same"
        elif r and e and fuzzy_key(r) == fuzzy_key(e):
            how = "ocr"
        else:
            how = "differ"
        out.append({"at": i + 1, "read": r, "entry": e, "how": how})
    return out


def pattern_parts(read_key: str, pattern: str) -> list[dict[str, str]] | None:
    """The parts of a pattern (literal runs, ``?``, ``*``) and the part of the read each stood for; None when
    the read does not match the pattern."""
    tokens = re.findall(r"\*|\?|[^*?]+", pattern)
    regex = "".join("(.*)" if t == "*" else "(.)" if t == "?" else f"({re.escape(t)})" for t in tokens)
    found = re.fullmatch(regex, read_key)
    if found is None:
        return None
    return [{"pattern": t, "read": part} for t, part in zip(tokens, found.groups(), strict=True)]


def explain_match(read: Mapping[str, Any], match: Mapping[str, Any]) -> dict[str, Any]:
    """One match of a hit explained: the plates compared, the country agreement, the validity window."""
    read_key = str(read.get("plate") or plate_key(str(read.get("plate_raw") or "")))
    entry_plate = match.get("entry_plate")
    kind = match.get("match_kind")
    why: dict[str, Any] = {"match_kind": kind, "read_plate": read_key, "entry_plate": entry_plate}
    if isinstance(entry_plate, str) and entry_plate:
        if kind == "pattern" or is_pattern(entry_plate):
            pattern = pattern_key(entry_plate)
            why["entry_key"] = pattern
            why["pattern"] = pattern_parts(read_key, pattern)
        else:
            entry_key = plate_key(entry_plate)
            why["entry_key"] = entry_key
            chars = characters(read_key, entry_key)
            why["characters"] = chars
            why["substituted"] = [c for c in chars if c["how"] == "ocr"]
            if kind == "ocr_format":
                why["format"] = (
                    "the read is no plate of its country's formats; each substituted character makes it one "
                    "(matchers/formats.py)"
                )
    read_cc, entry_cc = read.get("country"), match.get("entry_country")
    why["country"] = {
        "read": read_cc,
        "entry": entry_cc,
        "agree": read_cc is None or entry_cc is None or read_cc == entry_cc,
    }
    ts, start, end = _time(read.get("ts")), _time(match.get("valid_from")), _time(match.get("valid_until"))
    why["validity"] = {
        "from": match.get("valid_from"),
        "until": match.get("valid_until"),
        "capture": read.get("ts"),
        "inside": ts is not None and (start is None or start <= ts) and (end is None or ts < end),
    }
    return why


def explain_hit(hit: Mapping[str, Any]) -> dict[str, Any]:
    """Every match of a hit explained, with the hit's index version."""
    read = hit.get("read") or {}
    return {
        "hit_id": hit.get("hit_id"),
        "index_version": hit.get("index_version"),
        "retro": bool(hit.get("retro", False)),
        "retro_of": hit.get("retro_of"),
        "read": {k: read.get(k) for k in ("plate", "plate_raw", "country", "camera_id", "ts", "confidence")},
        "matches": [
            {
                **{k: m.get(k) for k in ("list_id", "entry_id", "category", "priority", "action")},
                "why": explain_match(read, m),
            }
            for m in hit.get("matches") or ()
        ],
    }


def explanation_text(doc: Mapping[str, Any]) -> str:
    """:func:`explain_hit` as lines for a person: the plates one above the other, substitutions marked ``^``."""
    read = doc["read"]
    live = f"retro-hit of {doc['retro_of']}" if doc["retro"] else "live hit"
    lines = [
        f"hit {doc['hit_id']} ({live}, index version {doc['index_version']})",
        f"read {read['plate']} ({read['country'] or 'country unknown'}) at {read['camera_id']}, {read['ts']}"
        + (f", confidence {read['confidence']}" if read.get("confidence") is not None else ""),
    ]
    for m in doc["matches"]:
        why = m["why"]
        lines.append("")
        lines.append(
            f"match {m['list_id']} / {m['entry_id']}: {why['match_kind']} "
            f"({m['category']}, {m['action']}, priority {m['priority']})"
        )
        if why.get("entry_plate") is None:
            lines.append("  the hit does not carry the entry's plate (emitted before entry_plate was added)")
        elif "characters" in why:
            chars = why["characters"]
            lines.append("  read   " + " ".join(c["read"] or "·" for c in chars))
            lines.append(
                "  entry  " + " ".join(c["entry"] or "·" for c in chars) + f"   (as listed: {why['entry_plate']})"
            )
            marks = " ".join("^" if c["how"] == "ocr" else "x" if c["how"] == "differ" else " " for c in chars)
            if marks.strip():
                lines.append("         " + marks.rstrip())
            for c in why["substituted"]:
                lines.append(f"  position {c['at']}: read {c['read']} taken for {c['entry']} (OCR-equivalent)")
            if not why["substituted"] and all(c["how"] == "same" for c in chars):
                lines.append("  the plates are the same character for character")
        elif "pattern" in why:
            lines.append(f"  partial plate {why['entry_key']} (as listed: {why['entry_plate']})")
            if why["pattern"] is None:
                lines.append(f"  the read {why['read_plate']} does not match it")
            for part in why["pattern"] or ():
                if part["pattern"] in ("?", "*"):
                    lines.append(f"  {part['pattern']} stood for {part['read'] or '(nothing)'!s}")
        c = why["country"]
        agree = "agree" if c["agree"] else "DO NOT agree"
        lines.append(f"  country: read {c['read'] or 'unknown'}, entry {c['entry'] or 'any'}: {agree}")
        v = why["validity"]
        inside = "inside" if v["inside"] else "OUTSIDE"
        lines.append(
            f"  valid from {v['from'] or '(open)'} until {v['until'] or '(open)'}; capture {v['capture']}: {inside}"
        )
    return "\n".join(lines)
