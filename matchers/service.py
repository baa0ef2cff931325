"""Loading an index version from a hotlist directory (no Kafka, no Bytewax here)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow.compute as pc

from feblam.config import HotlistSettings
from feblam.errors import SnapshotError
from feblam.logs import get_logger
from matchers.index import HotlistIndex, LayeredIndex, Progress, build_index, build_layer, version_of
from matchers.snapshot import ListSnapshot, list_digest, list_files, load_deltas, load_hotlists, read_list_toml

log = get_logger(__name__)


def load_index(settings: HotlistSettings, progress: Progress | None = None, *, with_blooms: bool = True) -> HotlistIndex:
    """Load and validate every list, then build the index; raises SnapshotError on bad input."""
    started = time.perf_counter()
    lists = load_hotlists(settings.dir)
    index = build_index(
        lists,
        n_shards=settings.shards,
        fp_rate=settings.bloom_fp_rate,
        backend=settings.bloom_backend,
        progress=progress,
        with_blooms=with_blooms,
    )
    log.info(
        "index_built",
        version=index.version,
        lists=len(index.lists),
        entries=len(index),
        seconds=round(time.perf_counter() - started, 3),
    )
    return index


def load_layer(
    base: HotlistIndex, directory: str | Path, new_files: Mapping[str, Sequence[str]], *, with_blooms: bool = True,
) -> LayeredIndex:
    """Apply the delta files that arrived after ``base`` was built, without rebuilding it.

    ``new_files`` maps a list id to the names of its new delta files; they must be
    the last files of the list. Raises :class:`SnapshotError` on a bad delta (file,
    row and column), like a full load.
    """
    started = time.perf_counter()
    root = Path(directory)
    snaps: list[ListSnapshot] = []
    removed: list[npt.NDArray[np.int64]] = []
    for pos, info in enumerate(base.lists):
        list_dir = root / info.list_id
        name, fuzzy = read_list_toml(list_dir)
        if (name, fuzzy) != (info.name, info.fuzzy):
            msg = f"{list_dir}: list.toml changed since version {base.version}; a full rebuild is needed"
            raise SnapshotError(msg)
        files = list_files(list_dir)
        wanted = list(new_files.get(info.list_id, ()))
        extra = files[len(files) - len(wanted) :] if wanted else ()
        if [f.path.name for f in extra] != wanted or any(f.kind != "delta" for f in extra):
            msg = f"{list_dir}: {wanted} are not the newest delta files of the list"
            raise SnapshotError(msg)
        table, ids = load_deltas(extra)
        if len(ids):
            # build_index keeps each list's rows together, in list order
            lo, hi = (int(x) for x in np.searchsorted(base.list_idx, [pos, pos + 1]))
            named = pc.is_in(base.entry_id.slice(lo, hi - lo), value_set=ids)
            removed.append(np.flatnonzero(named.to_numpy(zero_copy_only=False)) + lo)
        snaps.append(ListSnapshot(info.list_id, name, fuzzy, files, table, list_digest(files, name, fuzzy)))
    rows = np.concatenate(removed) if removed else np.zeros(0, np.int64)
    infos, overlay = build_layer(base, snaps, rows, with_blooms=with_blooms)
    layer = LayeredIndex(
        version=version_of(infos), lists=infos, base=base, removed=frozenset(rows.tolist()),
        overlay=overlay, build_seconds=time.perf_counter() - started,
    )
    log.info("layer_built", version=layer.version, base_version=base.version, removed=len(layer.removed),
             added=len(overlay), seconds=round(layer.build_seconds, 3))
    return layer
