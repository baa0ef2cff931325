"""A deliberately naive matcher written straight from DESIGN section 4, to check the index against."""

from __future__ import annotations

import re
from datetime import datetime

from feblam.model import HotlistEntry, Match
from matchers.normalize import fuzzy_key


def reference_matches(
    entries: list[HotlistEntry], fuzzy_lists: set[str], key: str, country: str | None, ts: datetime
) -> list[tuple[str, str, str, int]]:
    out = []
    for e in entries:
        if e.country is not None and country is not None and e.country != country:
            continue
        if e.valid_from is not None and ts < e.valid_from:
            continue
        if e.valid_until is not None and ts >= e.valid_until:
            continue
        if e.is_pattern:
            regex = "".join("." if c == "?" else ".*" if c == "*" else c for c in e.key)
            if re.fullmatch(regex, key):
                out.append((e.list_id, e.entry_id, "pattern", e.priority))
        elif e.key == key:
            out.append((e.list_id, e.entry_id, "exact", e.priority))
        elif e.list_id in fuzzy_lists and fuzzy_key(e.key) == fuzzy_key(key):
            out.append((e.list_id, e.entry_id, "ocr_equivalent", min(e.priority + 1, 5)))
    return sorted(out, key=lambda m: (m[3], m[0], m[1]))


def as_tuples(matches: list[Match]) -> list[tuple[str, str, str, int]]:
    return [(m.list_id, m.entry_id, m.match_kind, m.priority) for m in matches]
