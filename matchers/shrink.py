"""The shrink guard of DESIGN section 5.

A new full snapshot that would shrink a live list by more than
``hotlists.max_shrink`` (a share of its entries) is rejected like a bad one —
an empty file with a valid header, or a list folder emptied or removed,
included — until an operator allows it: ``feblam index allow-shrink LIST``
leaves a one-time permit (``<list>/.allow-shrink``) that the watcher takes when
the shrunk version goes live. ``max_shrink = 1.0`` turns the guard off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from feblam.errors import SnapshotError
from matchers.snapshot import SNAPSHOT_NAME

PERMIT = ".allow-shrink"


@dataclass(frozen=True, slots=True)
class Shrink:
    """A list that a new version would shrink: its live and new entry counts."""

    list_id: str
    live_entries: int
    new_entries: int

    @property
    def share(self) -> float:
        return 1.0 - self.new_entries / self.live_entries


def allow_shrink(directory: str | Path, list_id: str) -> Path:
    """Leave a one-time permit for ``list_id`` to shrink; returns its path."""
    folder = Path(directory) / list_id
    if not folder.is_dir():
        msg = f"{folder}: no such list folder"
        raise SnapshotError(msg)
    permit = folder / PERMIT
    permit.write_text("the next full snapshot of this list may shrink it (feblam index allow-shrink)\n")
    return permit


def permits(directory: str | Path) -> frozenset[str]:
    """The lists that hold a permit now."""
    root = Path(directory)
    if not root.is_dir():
        return frozenset()
    return frozenset(p.parent.name for p in root.glob(f"*/{PERMIT}"))


def take_permits(directory: str | Path, list_ids: Iterable[str]) -> None:
    """Remove the permits that a version going live has used."""
    for list_id in list_ids:
        with contextlib.suppress(FileNotFoundError):
            (Path(directory) / list_id / PERMIT).unlink()


def latest_fulls(fingerprint: Iterable[tuple[str, str, int, int]]) -> dict[str, tuple[str, int, int]]:
    """Per list, the (name, size, mtime) of its latest full snapshot, from a directory fingerprint."""
    out: dict[str, tuple[int, tuple[str, int, int]]] = {}
    for list_id, name, size, mtime in fingerprint:
        m = SNAPSHOT_NAME.match(name)
        if m and m["kind"] == "full" and (list_id not in out or int(m["seq"]) > out[list_id][0]):
            out[list_id] = (int(m["seq"]), (name, size, mtime))
    return {k: v for k, (_, v) in out.items()}


def shrinks(
    live: dict[str, int],
    new: dict[str, int],
    new_fulls: Iterable[str],
    max_shrink: float,
) -> list[Shrink]:
    """The lists whose new full snapshot (or removal) drops more than ``max_shrink`` of their live entries.

    ``live``/``new``: entries per list id; ``new_fulls``: the lists whose full snapshot changed
    or disappeared since the live version (deltas may delete as they like).
    """
    if max_shrink >= 1.0:
        return []
    out = []
    for list_id in sorted(set(new_fulls) | (set(live) - set(new))):
        before, after = live.get(list_id, 0), new.get(list_id, 0)
        if before and (before - after) / before > max_shrink:
            out.append(Shrink(list_id, before, after))
    return out
