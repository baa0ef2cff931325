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

A read is always matched against one version (:class:`IndexVersion`: this
module's :class:`HotlistIndex`, or a kind of :mod:`matchers.layers`); a new
version is a new object, swapped in by :class:`IndexHolder`, the one entry
point to the live index.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from feblam.model import EPOCH, HotlistEntry, Match, MatchKind, match_order
from matchers.bloom import BloomFilter, bloom_bytes
from matchers.columns import Plates, Times
from matchers.keycode import PACKED_MAX_LEN, decode_code, key_code
from matchers.normalize import OCR_FROM, OCR_TO, fuzzy_key
from matchers.wordfilter import build_word_filter, word_filter_has

if TYPE_CHECKING:  # for annotations only: the layered kinds build on this module
    from matchers.layers import LayeredIndex

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


class IndexVersion(Protocol):
    """What every index version offers (:class:`HotlistIndex`, built whole; the kinds of
    :mod:`matchers.layers`: a base plus deltas, or either with live changes on top). Readers only use this."""

    version: str
    lists: tuple[ListInfo, ...]

    def __len__(self) -> int: ...

    @property
    def has_pattern_entries(self) -> bool:
        """Whether any entry is a pattern (then a read's fuzzy code alone cannot rule a match out)."""
        ...

    def probe(self, key: str, country: str | None, ts: datetime) -> list[Match]:
        """Every entry that a read with plate key ``key`` matches (DESIGN section 4), in match order."""
        ...

    def pattern_sources(self) -> list[str]:
        """Every pattern entry as a regular expression over plate keys (for the batch pre-check)."""
        ...

    def has_fuzzy_codes(self, codes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """For each fuzzy key code, whether an entry may have it (False: certainly none has)."""
        ...

    def entries(self) -> Iterator[HotlistEntry]:
        """Every live entry."""
        ...

    def entries_named(self, ids: set[tuple[str, str]]) -> list[HotlistEntry]:
        """The live entries with these (list, entry) ids."""
        ...

    def files_version(self) -> FilesVersion:
        """The version built from the hotlist files, without the live changes on top."""
        ...

    def nbytes(self) -> int: ...

    def stats(self) -> dict[str, Any]: ...


#: What a reader probes: any :class:`IndexVersion`.
Index = IndexVersion
#: A version from the hotlist files, without live changes on top (it may be mapped from a directory).
FilesVersion: TypeAlias = "HotlistIndex | LayeredIndex"


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
        self.word_filter = (
            word_filter
            if word_filter is not None
            else build_word_filter(np.concatenate(shard_codes) if shard_codes else np.zeros(0, np.int64))
        )
        self.patterns = patterns
        self.build_seconds = build_seconds
        c = columns
        # small codes in the narrowest integer type their values allow, times and notes compacted
        # (matchers.columns): every column reads back with [row]
        self.list_idx: npt.NDArray[np.signedinteger[Any]] = c["list_idx"]
        self.key_code: npt.NDArray[np.int64] = c["key_code"]
        self.country: npt.NDArray[np.signedinteger[Any]] = c["country"]
        self.priority: npt.NDArray[np.int8] = c["priority"]
        self.category: npt.NDArray[np.signedinteger[Any]] = c["category"]
        self.action: npt.NDArray[np.signedinteger[Any]] = c["action"]
        self.owner: npt.NDArray[np.signedinteger[Any]] = c["owner"]
        self.valid_from: Times = c["valid_from"]
        self.valid_until: Times = c["valid_until"]
        self.entry_id: pa.StringArray = c["entry_id"]
        self.note: pa.Array = c["note"]  # strings, a dictionary of them, or nulls only
        self.plate: Plates = c["plate"]  # a shape a row with the key (matchers.columns.Plates)
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
        self._entry_order: npt.NDArray[np.uint32] | None = None  # see entry_order
        self._order_lock = threading.Lock()

    # ------------------------------------------------------------ probing

    def __len__(self) -> int:
        return int(self.list_idx.shape[0])

    def probe(self, key: str, country: str | None, ts: datetime, removed: frozenset[int] = frozenset()) -> list[Match]:
        """Every entry that a read with plate key ``key`` matches (DESIGN section 4), leaving out the rows
        ``removed`` (a layer's base rows that its deltas replaced or deleted)."""
        rows = self.candidates(key)
        if rows and removed:
            rows = [r for r in rows if r[0] not in removed]
        if not rows:
            return []
        return self._matches(rows, country, ts)

    def files_version(self) -> HotlistIndex:
        return self

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
        n = codes.shape[0]
        lo = int(codes.searchsorted(fcode))  # the method: a third of np.searchsorted's call cost
        if lo >= n or int(codes[lo]) != fcode:
            return []
        hi = lo + 1  # a fuzzy code is shared by a handful of entries at most: step over them
        while hi < n and int(codes[hi]) == fcode:
            hi += 1
        code = key_code(key)
        key_codes = self.key_code
        out: list[tuple[int, MatchKind]] = []
        for row in self.shard_rows[shard][lo:hi].tolist():
            same = int(key_codes[row]) == code
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
            vf, vu = self.valid_from.at(row), self.valid_until.at(row)
            if not (vf <= ts_us < vu):
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
                    entry_plate=self.plate.at(row, self.key_of),
                    entry_country=self.countries[cc] if cc else None,
                    valid_from=None if vf == TS_MIN else EPOCH + vf * _US,
                    valid_until=None if vu == TS_MAX else EPOCH + vu * _US,
                )
            )
        out.sort(key=match_order)
        return out

    # ------------------------------------------------------------ inspection

    def entry(self, row: int) -> HotlistEntry:
        """One entry as a :class:`HotlistEntry` (for reports and tests, not the hot path)."""
        key = self.key_of(row)
        vf, vu = self.valid_from.at(row), self.valid_until.at(row)
        owner = int(self.owner[row])
        return HotlistEntry(
            list_id=self.list_ids[self.list_idx[row]],
            entry_id=self.entry_id[row].as_py(),
            plate=self.plate.at(row, self.key_of),
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

    def key_of(self, row: int) -> str:
        """The key of the entry at ``row`` (a pattern's, with ``?`` and ``*``)."""
        return self.pattern_keys.get(row) or self.long_keys.get(row) or decode_code(int(self.key_code[row])) or ""

    def entries(self) -> Iterator[HotlistEntry]:
        """Every entry, in row order."""
        for row in range(len(self)):
            yield self.entry(row)

    def entries_named(self, ids: set[tuple[str, str]], removed: frozenset[int] = frozenset()) -> list[HotlistEntry]:
        """The entries with these (list, entry) ids, leaving out the rows ``removed``."""
        if not ids:
            return []
        out = [self.entry(r) for r in self.rows_named({e for _, e in ids}) if r not in removed]
        return [e for e in out if (e.list_id, e.entry_id) in ids]

    def rows_named(self, entry_ids: set[str]) -> list[int]:
        """The rows whose entry id (in any list) is one of ``entry_ids``, in order.

        A binary search a name in the rows sorted by entry id (:meth:`entry_order`), not a scan of every
        row: a live change at 10M entries costs microseconds here instead of a 10M-string scan.
        """
        if not entry_ids:
            return []
        order = self.entry_order()
        if order is None:  # an entry id is null (a version built without the snapshot checks): scan
            import pyarrow.compute as pc

            hit = pc.is_in(self.entry_id, value_set=pa.array(sorted(entry_ids), pa.string()))
            return np.flatnonzero(hit.to_numpy(zero_copy_only=False)).tolist()
        ids, n = self.entry_id, int(order.shape[0])

        def at(i: int) -> str:
            return ids[int(order[i])].as_py()  # type: ignore[no-any-return]

        rows: list[int] = []
        for name in entry_ids:
            lo, hi = 0, n
            while lo < hi:  # the first position whose entry id is not below name
                mid = (lo + hi) // 2
                if at(mid) < name:
                    lo = mid + 1
                else:
                    hi = mid
            while lo < n and at(lo) == name:
                rows.append(int(order[lo]))
                lo += 1
        return sorted(rows)

    def entry_order(self) -> npt.NDArray[np.uint32] | None:
        """The rows in the order of their entry ids (4 bytes a row), sorted by Arrow on first use and kept
        with the version; None when an entry id is null. A job taking live changes warms it when a version
        goes live (:meth:`warm_entry_order`), so no change waits for the sort."""
        with self._order_lock:
            if self._entry_order is None and self.entry_id.null_count == 0:
                import pyarrow.compute as pc

                self._entry_order = pc.sort_indices(self.entry_id).to_numpy().astype(np.uint32)
            return self._entry_order

    def warm_entry_order(self) -> None:
        """Sort the rows by entry id in a thread of their own (Arrow sorts without the GIL)."""
        if self._entry_order is None:
            threading.Thread(target=self.entry_order, name="entry-order", daemon=True).start()

    def nbytes(self) -> int:
        """Bytes held by the index structures (arrays, Arrow buffers, Bloom bits)."""
        total = (
            sum(a.nbytes for a in self.shard_codes) + sum(a.nbytes for a in self.shard_rows) + self.word_filter.nbytes
        )
        for arr in (
            self.list_idx,
            self.key_code,
            self.country,
            self.priority,
            self.category,
            self.action,
            self.owner,
        ):
            total += arr.nbytes
        total += self.valid_from.nbytes + self.valid_until.nbytes
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
            "shards": {
                "count": self.n_shards,
                "entries": sizes,
                "min": min(sizes, default=0),
                "max": max(sizes, default=0),
            },
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
        #: Lists whose new files were refused: list id -> why (they stay as they were; the others go live).
        self.held_back: dict[str, str] = {}

    def swap(self, index: Index) -> Index:
        if self.wrap is not None:
            index = self.wrap(index.files_version())
        with self._lock:
            old, self.current = self.current, index
            self.swaps += 1
        return old
