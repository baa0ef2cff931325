"""The sharded hotlist index: Bloom pre-check, exact structure, patterns; match semantics.

Querying a version: probe a plate, list entries, report figures. Layout
(built by :func:`matchers.build.build_index`, never mutated afterwards):

* every plain (non-pattern) entry is filed under the 64-bit code of its
  **fuzzy** key (:mod:`matchers.keycode`), in shard ``fcode % n_shards``;
  per shard, a Bloom filter of those codes and two flat numpy arrays: the codes
  sorted, and the entry row of each. One probe of the read's fuzzy code finds
  exact and OCR-equivalent candidates at once; the entry's own key code then
  tells ``exact`` from ``ocr_equivalent`` (the latter only on fuzzy lists).
* entry attributes live in columns (numpy arrays, Arrow strings for ids and
  notes), not in Python objects: about 70 bytes an entry in all.
* pattern entries (``?``, ``*``) are filed under a 3-character literal run
  they must contain, so a read only tries the patterns whose anchor occurs in
  its key.

A read is always matched against one :class:`HotlistIndex` object; a new
version is a new object, swapped in by :class:`IndexHolder`.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from feblam.model import EPOCH, HotlistEntry, Match, MatchKind, match_order
from matchers.bloom import BloomFilter, bloom_bytes, build_word_filter, word_filter_has
from matchers.keycode import PACKED_MAX_LEN, decode_code, key_code
from matchers.normalize import OCR_FROM, OCR_TO, fuzzy_key

_US = timedelta(microseconds=1)
TS_MIN = np.iinfo(np.int64).min
TS_MAX = np.iinfo(np.int64).max
DEFAULT_SHARDS = 31  # coprime with 36, so fcode % n spreads well
DEFAULT_FP_RATE = 0.001
KIND_EXACT: MatchKind = "exact"
KIND_OCR: MatchKind = "ocr_equivalent"
KIND_PATTERN: MatchKind = "pattern"

_FUZZY_BYTES = bytes.maketrans(OCR_FROM.encode(), OCR_TO.encode())


def ts_to_us(ts: datetime) -> int:
    """Microseconds since the epoch of an aware time."""
    return (ts - EPOCH) // _US


@dataclass(frozen=True, slots=True)
class ListInfo:
    """One list of a version: id, name, fuzzy flag, counts, digest."""

    list_id: str
    name: str
    fuzzy: bool
    entries: int
    patterns: int
    digest: str


class PatternIndex:
    """Pattern entries, filed by a 3-character literal anchor each must contain."""

    __slots__ = ("anchored", "grams", "short", "count", "sources")

    def __init__(self, patterns: Sequence[tuple[int, str]]) -> None:
        self.anchored: dict[str, list[tuple[re.Pattern[str], int]]] = {}
        self.short: list[tuple[re.Pattern[str], int]] = []
        #: Each pattern as a regular expression (``?``: one character, ``*``: any run), for a batch at once.
        self.sources: list[str] = []
        for row, pattern in patterns:
            source = "".join("." if c == "?" else ".*" if c == "*" else c for c in pattern)
            self.sources.append(source)
            regex = re.compile(source)
            runs = [r for r in re.split(r"[?*]", pattern) if r]
            longest = max(runs, key=len, default="")
            if len(longest) >= 3:
                self.anchored.setdefault(longest[:3], []).append((regex, row))
            else:
                self.short.append((regex, row))
        self.grams = frozenset(self.anchored)
        self.count = len(patterns)

    def rows(self, key: str) -> list[int]:
        """Rows of the pattern entries that ``key`` matches."""
        found: list[int] = []
        if self.anchored:
            grams = self.grams
            seen: set[str] = set()
            for i in range(len(key) - 2):
                gram = key[i : i + 3]
                if gram in grams and gram not in seen:
                    seen.add(gram)
                    found.extend(row for regex, row in self.anchored[gram] if regex.fullmatch(key))
        for regex, row in self.short:
            if regex.fullmatch(key):
                found.append(row)
        return found


class HotlistIndex:
    """One immutable version of the index over all lists."""

    def __init__(
        self,
        *,
        version: str,
        lists: tuple[ListInfo, ...],
        n_shards: int,
        backend: str,
        fp_rate: float,
        blooms: list[BloomFilter],
        shard_codes: list[npt.NDArray[np.int64]],
        shard_rows: list[npt.NDArray[np.int32]],
        columns: dict[str, Any],
        patterns: PatternIndex,
        build_seconds: float,
        word_filter: npt.NDArray[np.uint64] | None = None,
    ) -> None:
        self.version = version
        self.lists = lists
        self.n_shards = n_shards
        self.backend = backend
        self.fp_rate = fp_rate
        self.blooms = blooms
        self.shard_codes = shard_codes
        self.shard_rows = shard_rows
        #: Every plain entry's fuzzy code in one numpy Bloom filter: a batch of reads is checked at once.
        self.word_filter = word_filter if word_filter is not None else build_word_filter(
            np.concatenate(shard_codes) if shard_codes else np.zeros(0, np.int64))
        self.patterns = patterns
        self.build_seconds = build_seconds
        c = columns
        self.list_idx: npt.NDArray[np.int16] = c["list_idx"]
        self.key_code: npt.NDArray[np.int64] = c["key_code"]
        self.country: npt.NDArray[np.int16] = c["country"]
        self.priority: npt.NDArray[np.int8] = c["priority"]
        self.category: npt.NDArray[np.int16] = c["category"]
        self.action: npt.NDArray[np.int8] = c["action"]
        self.owner: npt.NDArray[np.int32] = c["owner"]
        self.valid_from: npt.NDArray[np.int64] = c["valid_from"]
        self.valid_until: npt.NDArray[np.int64] = c["valid_until"]
        self.entry_id: pa.StringArray = c["entry_id"]
        self.note: pa.StringArray = c["note"]
        self.plate: pa.StringArray = c["plate"]
        self.long_keys: dict[int, str] = c["long_keys"]
        self.pattern_keys: dict[int, str] = c["pattern_keys"]
        self.countries: list[str | None] = c["countries"]
        self.country_idx: dict[str, int] = {cc: i for i, cc in enumerate(self.countries) if cc}
        self.categories: list[str] = c["categories"]
        self.actions: list[str] = c["actions"]
        self.owners: list[str] = c["owners"]
        self.list_fuzzy: list[bool] = [info.fuzzy for info in lists]
        self.list_ids: list[str] = [info.list_id for info in lists]
        #: Whether any entry is a pattern (then a read's fuzzy code alone cannot rule a match out).
        self.has_pattern_entries = patterns.count > 0
        #: The directory this version is mapped from (set by :func:`matchers.store.open_index`).
        self.source_dir: str | None = None

    # ------------------------------------------------------------ probing

    def __len__(self) -> int:
        return int(self.list_idx.shape[0])

    def maybe(self, fcode: int) -> bool:
        """Bloom pre-check for a fuzzy code (no false negatives)."""
        return fcode in self.blooms[fcode % self.n_shards]

    def probe(self, key: str, country: str | None, ts: datetime) -> list[Match]:
        """Every entry that a read with plate key ``key`` matches (DESIGN section 4)."""
        rows = self.candidates(key)
        if not rows:
            return []
        return self._matches(rows, country, ts)

    def pattern_sources(self) -> list[str]:
        """Every pattern entry as a regular expression over plate keys (a key matches when one matches whole)."""
        return self.patterns.sources

    def has_fuzzy_codes(self, codes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """For each fuzzy key code, whether a plain entry may have it (False: certainly none has)."""
        return word_filter_has(self.word_filter, codes)

    def candidates(self, key: str) -> list[tuple[int, MatchKind]]:
        """Rows whose key matches ``key`` and how (before country and validity are checked)."""
        if len(key) <= PACKED_MAX_LEN:
            fcode = int(b"1" + key.encode().translate(_FUZZY_BYTES), 36)  # == key_code(fuzzy_key(key)), 4x faster
        else:
            fcode = key_code(fuzzy_key(key))
        rows: list[tuple[int, MatchKind]] = []
        if fcode in self.blooms[fcode % self.n_shards]:
            rows = self._plain_rows(key, fcode)
        if self.has_pattern_entries:
            rows.extend((row, KIND_PATTERN) for row in self.patterns.rows(key))
        return rows

    def _plain_rows(self, key: str, fcode: int) -> list[tuple[int, MatchKind]]:
        shard = fcode % self.n_shards
        codes = self.shard_codes[shard]
        lo = int(np.searchsorted(codes, fcode, side="left"))
        if lo >= codes.shape[0] or int(codes[lo]) != fcode:
            return []
        hi = int(np.searchsorted(codes, fcode, side="right"))
        code = key_code(key)
        out: list[tuple[int, MatchKind]] = []
        for row in self.shard_rows[shard][lo:hi].tolist():
            same = int(self.key_code[row]) == code
            if same and len(key) > PACKED_MAX_LEN:
                same = self.long_keys.get(row) == key
            if same:
                out.append((row, KIND_EXACT))
            elif self.list_fuzzy[self.list_idx[row]] and self._fuzzy_confirmed(row, key):
                out.append((row, KIND_OCR))
        return out

    def _fuzzy_confirmed(self, row: int, key: str) -> bool:
        if len(key) <= PACKED_MAX_LEN:
            return True  # packed fuzzy codes are exact
        entry_key = self.long_keys.get(row)
        return entry_key is not None and fuzzy_key(entry_key) == fuzzy_key(key)

    def _matches(self, rows: list[tuple[int, MatchKind]], country: str | None, ts: datetime) -> list[Match]:
        ts_us = ts_to_us(ts)
        read_cc = self.country_idx.get(country, 0) if country else 0
        if country and read_cc == 0:
            read_cc = -1  # a country no entry names: agrees only with "any country" entries
        out: list[Match] = []
        for row, kind in rows:
            cc = int(self.country[row])
            if cc and read_cc and cc != read_cc:
                continue
            if not (int(self.valid_from[row]) <= ts_us < int(self.valid_until[row])):
                continue
            prio = int(self.priority[row])
            if kind == KIND_OCR:
                prio = min(prio + 1, 5)
            owner = int(self.owner[row])
            out.append(
                Match(
                    list_id=self.list_ids[self.list_idx[row]],
                    entry_id=self.entry_id[row].as_py(),
                    category=self.categories[self.category[row]],
                    priority=prio,
                    action=self.actions[self.action[row]],
                    match_kind=kind,
                    owner=self.owners[owner] if owner >= 0 else None,
                    note=self.note[row].as_py(),
                )
            )
        out.sort(key=match_order)
        return out

    # ------------------------------------------------------------ inspection

    def entry(self, row: int) -> HotlistEntry:
        """One entry as a :class:`HotlistEntry` (for reports and tests, not the hot path)."""
        code = int(self.key_code[row])
        key = self.pattern_keys.get(row) or self.long_keys.get(row) or decode_code(code) or ""
        vf, vu = int(self.valid_from[row]), int(self.valid_until[row])
        owner = int(self.owner[row])
        return HotlistEntry(
            list_id=self.list_ids[self.list_idx[row]],
            entry_id=self.entry_id[row].as_py(),
            plate=self.plate[row].as_py(),
            key=key,
            country=self.countries[self.country[row]],
            category=self.categories[self.category[row]],
            priority=int(self.priority[row]),
            action=self.actions[self.action[row]],
            valid_from=None if vf == TS_MIN else EPOCH + vf * _US,
            valid_until=None if vu == TS_MAX else EPOCH + vu * _US,
            owner=self.owners[owner] if owner >= 0 else None,
            note=self.note[row].as_py(),
        )

    def entries(self) -> Iterator[HotlistEntry]:
        """Every entry, in row order."""
        for row in range(len(self)):
            yield self.entry(row)

    def nbytes(self) -> int:
        """Bytes held by the index structures (arrays, Arrow buffers, Bloom bits)."""
        total = sum(a.nbytes for a in self.shard_codes) + sum(a.nbytes for a in self.shard_rows) + self.word_filter.nbytes
        for arr in (self.list_idx, self.key_code, self.country, self.priority, self.category,
                    self.action, self.owner, self.valid_from, self.valid_until):
            total += arr.nbytes
        total += self.entry_id.nbytes + self.note.nbytes + self.plate.nbytes
        total += sum(bloom_bytes(b) for b in self.blooms)
        return total

    def stats(self) -> dict[str, Any]:
        sizes = [int(a.shape[0]) for a in self.shard_codes]
        bits = [bloom_bytes(b) * 8 for b in self.blooms]
        k = max(1, round(np.log(2) * (sum(bits) / max(sum(sizes), 1))))
        fills = [1 - np.exp(-k * n / b) if b else 0.0 for n, b in zip(sizes, bits, strict=True)]
        est_fp = float(np.mean([f**k for f in fills])) if fills else 0.0
        return {
            "version": self.version,
            "entries": len(self),
            "lists": [
                {"list_id": i.list_id, "name": i.name, "fuzzy": i.fuzzy, "entries": i.entries, "patterns": i.patterns}
                for i in self.lists
            ],
            "shards": {"count": self.n_shards, "entries": sizes, "min": min(sizes, default=0), "max": max(sizes, default=0)},
            "bloom": {
                "backend": self.backend,
                "target_fp_rate": self.fp_rate,
                "bytes": sum(bits) // 8,
                "bits_per_entry": (sum(bits) / max(sum(sizes), 1)),
                "fill_ratio": float(np.mean(fills)) if fills else 0.0,
                "estimated_fp_rate": est_fp,
            },
            "patterns": self.patterns.count,
            "memory_bytes": self.nbytes(),
            "bytes_per_entry": self.nbytes() / max(len(self), 1),
            "build_seconds": round(self.build_seconds, 3),
        }








class LayeredIndex:
    """A version made of a base version and the delta files that came after it.

    ``removed`` are the base rows that the deltas replaced or deleted; ``overlay``
    is a small index of the deltas' surviving upserts, over the same lists in the
    same order. A probe gives exactly what a full rebuild from the same files gives
    (the tests compare them). The base is the version the process already maps,
    so a delta costs neither a rebuild of millions of entries nor a new mapping.
    """

    def __init__(
        self, *, version: str, lists: tuple[ListInfo, ...], base: HotlistIndex,
        removed: frozenset[int], overlay: HotlistIndex, build_seconds: float,
    ) -> None:
        self.version = version
        self.lists = lists
        self.base = base
        self.removed = removed
        self.overlay = overlay
        self.build_seconds = build_seconds
        #: The directory this layer is mapped from (set by :func:`matchers.store.open_version`).
        self.source_dir: str | None = None

    def __len__(self) -> int:
        return len(self.base) - len(self.removed) + len(self.overlay)

    @property
    def has_pattern_entries(self) -> bool:
        return self.base.has_pattern_entries or self.overlay.has_pattern_entries

    def pattern_sources(self) -> list[str]:
        """The base's and the deltas' patterns (removed rows' too: never a miss)."""
        return self.base.pattern_sources() + self.overlay.pattern_sources()

    def has_fuzzy_codes(self, codes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether the base or the deltas have each fuzzy code (removed rows still count: never a miss)."""
        return self.base.has_fuzzy_codes(codes) | self.overlay.has_fuzzy_codes(codes)

    def probe(self, key: str, country: str | None, ts: datetime) -> list[Match]:
        """Every entry that a read with plate key ``key`` matches (DESIGN section 4)."""
        base = self.base
        rows = base.candidates(key)
        out: list[Match] = []
        if rows:
            removed = self.removed
            rows = [r for r in rows if r[0] not in removed]
            if rows:
                out = base._matches(rows, country, ts)
        extra = self.overlay.probe(key, country, ts)
        if extra:
            out = sorted(out + extra, key=match_order)
        return out

    def entries(self) -> Iterator[HotlistEntry]:
        """Every live entry: the base's that no delta touched, then the deltas' upserts."""
        for row in range(len(self.base)):
            if row not in self.removed:
                yield self.base.entry(row)
        yield from self.overlay.entries()

    def nbytes(self) -> int:
        """The base's and the overlay's structures, and the set of removed rows."""
        return self.base.nbytes() + self.overlay.nbytes() + sys.getsizeof(self.removed) + 32 * len(self.removed)

    def stats(self) -> dict[str, Any]:
        doc = self.base.stats()
        doc.update(
            version=self.version,
            entries=len(self),
            lists=[
                {"list_id": i.list_id, "name": i.name, "fuzzy": i.fuzzy, "entries": i.entries, "patterns": i.patterns}
                for i in self.lists
            ],
            patterns=sum(i.patterns for i in self.lists),
            memory_bytes=self.nbytes(),
            bytes_per_entry=self.nbytes() / max(len(self), 1),
            build_seconds=round(self.build_seconds, 3),
            layer={
                "base_version": self.base.version,
                "base_rows_removed": len(self.removed),
                "overlay_entries": len(self.overlay),
                "overlay_bloom": self.overlay.stats()["bloom"],
            },
        )
        return doc


class ChangedIndex:
    """A version from the files with the live changes of the change topic on top (DESIGN section 5.2).

    ``touched`` are the (list, entry) pairs the changes name: the inner version's
    matches for them are dropped; ``overlay`` holds the changes' upserts. Rebuilt
    (a few milliseconds) whenever a change arrives or the files give a new version.
    """

    def __init__(
        self, *, version: str, lists: tuple[ListInfo, ...], inner: HotlistIndex | LayeredIndex,
        touched: frozenset[tuple[str, str]], overlay: HotlistIndex, changes: int,
    ) -> None:
        self.version = version
        self.lists = lists
        self.inner = inner
        self.touched = touched
        self.overlay = overlay
        self.changes = changes

    def __len__(self) -> int:
        return sum(i.entries for i in self.lists)

    @property
    def has_pattern_entries(self) -> bool:
        return self.inner.has_pattern_entries or self.overlay.has_pattern_entries

    def pattern_sources(self) -> list[str]:
        """The inner version's and the changes' patterns."""
        return self.inner.pattern_sources() + self.overlay.pattern_sources()

    def has_fuzzy_codes(self, codes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether the inner version or the changes have each fuzzy code."""
        return self.inner.has_fuzzy_codes(codes) | self.overlay.has_fuzzy_codes(codes)

    def probe(self, key: str, country: str | None, ts: datetime) -> list[Match]:
        """Every entry that a read with plate key ``key`` matches, the changes included."""
        out = self.inner.probe(key, country, ts)
        if out and self.touched:
            touched = self.touched
            out = [m for m in out if (m.list_id, m.entry_id) not in touched]
        extra = self.overlay.probe(key, country, ts)
        if extra:
            out = sorted(out + extra, key=match_order)
        return out

    def entries(self) -> Iterator[HotlistEntry]:
        """Every live entry: the inner version's that no change names, then the changes' upserts."""
        for e in self.inner.entries():
            if (e.list_id, e.entry_id) not in self.touched:
                yield e
        yield from self.overlay.entries()

    def nbytes(self) -> int:
        return self.inner.nbytes() + self.overlay.nbytes() + 100 * len(self.touched)

    def stats(self) -> dict[str, Any]:
        doc = self.inner.stats()
        doc.update(version=self.version, entries=len(self),
                   changes={"inner_version": self.inner.version, "changes": self.changes, "entries_touched": len(self.touched)})
        return doc


#: What a reader probes: a version built whole, a base plus deltas, or either with live changes on top.
Index = HotlistIndex | LayeredIndex | ChangedIndex


def files_version(index: Index) -> HotlistIndex | LayeredIndex:
    """The version built from the hotlist files, without the live changes on top."""
    return index.inner if isinstance(index, ChangedIndex) else index




class IndexHolder:
    """Holds the live index version; a swap is one reference assignment.

    Readers take :attr:`current` once per batch, so every read of a batch is
    matched against exactly one version.
    """

    def __init__(self, index: Index) -> None:
        self._lock = threading.Lock()
        self.current = index
        self.swaps = 0
        #: Applied to every version swapped in from the files (the change feed puts its changes on top).
        self.wrap: Callable[[Index], Index] | None = None

    def swap(self, index: Index) -> Index:
        if self.wrap is not None:
            index = self.wrap(files_version(index))
        with self._lock:
            old, self.current = self.current, index
            self.swaps += 1
        return old



def entries_named(index: Index, ids: set[tuple[str, str]]) -> list[HotlistEntry]:
    """The live entries of ``index`` with these (list, entry) ids (a retro-scan's "before" rows)."""
    if not ids:
        return []
    if isinstance(index, ChangedIndex):
        kept = [e for e in entries_named(index.inner, ids) if (e.list_id, e.entry_id) not in index.touched]
        return kept + entries_named(index.overlay, ids)
    if isinstance(index, LayeredIndex):
        base = [e for e in _named_rows(index.base, ids, index.removed)]
        return base + entries_named(index.overlay, ids)
    return _named_rows(index, ids, frozenset())


def _named_rows(index: HotlistIndex, ids: set[tuple[str, str]], skip: frozenset[int]) -> list[HotlistEntry]:
    import pyarrow.compute as pc

    hit = pc.is_in(index.entry_id, value_set=pa.array(sorted({e for _, e in ids}), pa.string()))
    rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
    out = [index.entry(int(r)) for r in rows if int(r) not in skip]
    return [e for e in out if (e.list_id, e.entry_id) in ids]
