"""Loading an index version from a hotlist directory (no Kafka, no Bytewax here)."""

from __future__ import annotations

import time

from feblam.config import HotlistSettings
from feblam.logs import get_logger
from matchers.index import HotlistIndex, Progress, build_index
from matchers.snapshot import load_hotlists

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
