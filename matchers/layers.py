"""The index versions made of others (they implement :class:`~matchers.index.IndexVersion` too).

- :class:`LayeredIndex`: a full version (the base) and the delta files that came
  after it, so a delta costs neither a rebuild of millions of entries nor a new mapping;
- :class:`ChangedIndex`: a version from the files with the live changes of the
  change topic on top (DESIGN section 5.2).

Both probe their parts and merge in match order; a probe gives exactly what a
full rebuild from the same files and changes gives (the tests compare them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from feblam.model import HotlistEntry, Match, match_order
from matchers.index import FilesVersion, HotlistIndex, ListInfo


class _Overlaid:
    """What both kinds share: a version underneath (``under``) and a small index on top (``overlay``), whose
    patterns and fuzzy codes count with the ones underneath (rows hidden underneath still count: never a miss)."""

    under: HotlistIndex | LayeredIndex
    overlay: HotlistIndex

    @property
    def has_pattern_entries(self) -> bool:
        return self.under.has_pattern_entries or self.overlay.has_pattern_entries

    def pattern_sources(self) -> list[str]:
        """The patterns underneath and on top."""
        return self.under.pattern_sources() + self.overlay.pattern_sources()

    def has_fuzzy_codes(self, codes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether the version underneath or the overlay has each fuzzy code."""
        return self.under.has_fuzzy_codes(codes) | self.overlay.has_fuzzy_codes(codes)

    def _with_overlay(self, out: list[Match], key: str, country: str | None, ts: datetime) -> list[Match]:
        """``out`` (the matches underneath) with the overlay's, in match order."""
        extra = self.overlay.probe(key, country, ts)
        return sorted(out + extra, key=match_order) if extra else out


class LayeredIndex(_Overlaid):
    """A version made of a base version and the delta files that came after it.

    ``removed`` are the base rows that the deltas replaced or deleted; ``overlay``
    is a small index of the deltas' surviving upserts, over the same lists in the
    same order. A probe gives exactly what a full rebuild from the same files gives
    (the tests compare them). The base is the version the process already maps,
    so a delta costs neither a rebuild of millions of entries nor a new mapping.
    """

    def __init__(
        self,
        *,
        version: str,
        lists: tuple[ListInfo, ...],
        base: HotlistIndex,
        removed: frozenset[int],
        overlay: HotlistIndex,
        build_seconds: float,
    ) -> None:
        self.version = version
        self.lists = lists
        self.base = self.under = base
        self.removed = removed
        self.overlay = overlay
        self.build_seconds = build_seconds
        #: The directory this layer is mapped from (set by :func:`matchers.store.open_version`).
        self.source_dir: str | None = None

    def __len__(self) -> int:
        return len(self.base) - len(self.removed) + len(self.overlay)

    def probe(self, key: str, country: str | None, ts: datetime) -> list[Match]:
        """Every entry that a read with plate key ``key`` matches (DESIGN section 4)."""
        return self._with_overlay(self.base.probe(key, country, ts, self.removed), key, country, ts)

    def files_version(self) -> LayeredIndex:
        return self

    def entries_named(self, ids: set[tuple[str, str]]) -> list[HotlistEntry]:
        """The base's entries with these ids that no delta touched, then the deltas'."""
        return self.base.entries_named(ids, self.removed) + self.overlay.entries_named(ids)

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


class ChangedIndex(_Overlaid):
    """A version from the files with the live changes of the change topic on top (DESIGN section 5.2).

    ``touched`` are the (list, entry) pairs the changes name: the inner version's
    matches for them are dropped; ``overlay`` holds the changes' upserts. Rebuilt
    (a few milliseconds) whenever a change arrives or the files give a new version.
    """

    def __init__(
        self,
        *,
        version: str,
        lists: tuple[ListInfo, ...],
        inner: FilesVersion,
        touched: frozenset[tuple[str, str]],
        overlay: HotlistIndex,
        changes: int,
    ) -> None:
        self.version = version
        self.lists = lists
        self.inner = self.under = inner
        self.touched = touched
        self.overlay = overlay
        self.changes = changes

    def __len__(self) -> int:
        return sum(i.entries for i in self.lists)

    def probe(self, key: str, country: str | None, ts: datetime) -> list[Match]:
        """Every entry that a read with plate key ``key`` matches, the changes included."""
        out = self.inner.probe(key, country, ts)
        if out and self.touched:
            touched = self.touched
            out = [m for m in out if (m.list_id, m.entry_id) not in touched]
        return self._with_overlay(out, key, country, ts)

    def files_version(self) -> FilesVersion:
        return self.inner

    def entries_named(self, ids: set[tuple[str, str]]) -> list[HotlistEntry]:
        """The inner version's entries with these ids that no change names, then the changes'."""
        kept = [e for e in self.inner.entries_named(ids) if (e.list_id, e.entry_id) not in self.touched]
        return kept + self.overlay.entries_named(ids)

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
        doc.update(
            version=self.version,
            entries=len(self),
            changes={
                "inner_version": self.inner.version,
                "changes": self.changes,
                "entries_touched": len(self.touched),
            },
        )
        return doc
