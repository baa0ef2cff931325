"""The job's metrics (DESIGN section 11), in the job's prometheus-client registry.

Each process exports only its own metrics: :data:`REGISTRY` is the job's
(``feblam run``, ``demo``); :data:`GATEWAY_REGISTRY` is the Hit Gateway's, with
the gateway's own ``feblam_gateway_*`` metrics (:mod:`gateway.metrics`) and the
few both kinds of process have (:data:`SHARED`: readiness, build, consumer lag,
dead letters, sink errors, process and platform). A gateway never shows an index
age that rises for ever, nor a job a desk's board.

Counters are bumped per batch or per hit, never per read on the hot path:
``feblam_reads_total`` once per payload batch, the rest only for dead letters
and hits (a fraction of a percent of the reads).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

#: 1 ms to 30 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

disable_created_metrics()  # the *_created series double every counter for no reader's benefit
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

READS = Counter(
    "feblam_reads", "Payloads taken from the sources (decoded or dead-lettered)", ["vendor"], registry=REGISTRY
)
SKIPPED = Counter(
    "feblam_reads_skipped",
    "Payloads that are events their vendor's mapping skips (not reads, not dead letters)",
    ["vendor"],
    registry=REGISTRY,
)
DEADLETTERS = Counter(
    "feblam_deadletter",
    "Payloads sent to the dead-letter output, by vendor and reason class",
    ["vendor", "reason"],
    registry=REGISTRY,
)
HITS = Counter("feblam_hits", "Hits emitted, by priority", ["priority"], registry=REGISTRY)
#: The ``list_id`` label of every covert (observe) match: per-list figures never name a covert list.
COVERT_LABEL = "covert"
MATCHES = Counter(
    "feblam_matches", "Matches in emitted hits, by list and match kind", ["list_id", "match_kind"], registry=REGISTRY
)
SUPPRESSED = Counter("feblam_suppressed", "Matches suppressed as duplicates within the dedup window", registry=REGISTRY)
READ_TO_HIT = Histogram("feblam_read_to_hit_seconds", "Capture time to hit emitted", buckets=BUCKETS, registry=REGISTRY)
APPEND_TO_HIT = Histogram(
    "feblam_append_to_hit_seconds", "Broker append time of the read to hit emitted", buckets=BUCKETS, registry=REGISTRY
)
INDEX_ENTRIES = Gauge(
    "feblam_index_entries", "Entries of the live index version, by list", ["list_id"], registry=REGISTRY
)
INDEX_VERSION = Gauge("feblam_index_version_info", "The live index version (value 1)", ["version"], registry=REGISTRY)
INDEX_AGE = Gauge("feblam_index_age_seconds", "Seconds since the live index version went live", registry=REGISTRY)
INDEX_SWAPS = Counter("feblam_index_swaps", "Index versions swapped in while running", registry=REGISTRY)
SNAPSHOT_REJECTED = Counter(
    "feblam_snapshot_rejected",
    "Hotlist snapshots rejected (bad file or shrink guard), by list",
    ["list_id"],
    registry=REGISTRY,
)
LISTS_HELD_BACK = Gauge(
    "feblam_list_held_back",
    "1 for a list whose new files were refused: it stays as it was while every other list goes live",
    ["list_id"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "feblam_consumer_lag",
    "Messages on a source partition not yet read (high watermark - position)",
    ["topic", "partition"],
    registry=REGISTRY,
)
SINK_ERRORS = Counter("feblam_sink_errors", "Messages a sink could not deliver", ["sink"], registry=REGISTRY)
RETRO_SCANS = Counter(
    "feblam_retro_scans", "Retro-scans run, by trigger (swap or command)", ["trigger"], registry=REGISTRY
)
RETRO_HITS = Counter("feblam_retro_hits", "Retro-hits emitted", registry=REGISTRY)
RETRO_SECONDS = Histogram("feblam_retro_scan_seconds", "Duration of a retro-scan", buckets=BUCKETS, registry=REGISTRY)
CLONE_HITS = Counter("feblam_clone_hits", "Clone hits: a plate read too far from its last sighting", registry=REGISTRY)
CLONE_UNPLACED = Counter(
    "feblam_clone_reads_unplaced",
    "Reads the clone check passed over: no position of their own and their camera not placed in the register",
    ["vendor"],
    registry=REGISTRY,
)
CLONE_PLATES = Gauge(
    "feblam_clone_window_plates",
    "Plates the clone check's window holds (their last sighting)",
    ["shard"],
    registry=REGISTRY,
)
READY = Gauge(
    "feblam_ready",
    "1 while /ready answers 200 (index loaded, partitions assigned, broker answering)",
    registry=REGISTRY,
)
BUILD_INFO = Gauge("feblam_build_info", "FEBLAM's version (value 1)", ["version"], registry=REGISTRY)

#: The metrics every FEBLAM process has.
SHARED = (READY, BUILD_INFO, CONSUMER_LAG, DEADLETTERS, SINK_ERRORS)
GATEWAY_REGISTRY = CollectorRegistry()
ProcessCollector(registry=GATEWAY_REGISTRY)
PlatformCollector(registry=GATEWAY_REGISTRY)
for _shared in SHARED:
    GATEWAY_REGISTRY.register(_shared)

_live_since = {"t": time.time()}


def index_age_seconds() -> float:
    """Seconds since the live version (its files and the changes on top) went live: the metric and the stats
    event say the same."""
    return time.time() - _live_since["t"]


INDEX_AGE.set_function(index_age_seconds)


def index_live(version: str, lists: Iterable[tuple[str, int]], *, swapped: bool) -> None:
    """A version went live (at start, or swapped in): version, entries by list, age 0."""
    INDEX_VERSION.clear()
    INDEX_VERSION.labels(version).set(1)
    INDEX_ENTRIES.clear()
    for list_id, entries in lists:
        INDEX_ENTRIES.labels(list_id).set(entries)
    _live_since["t"] = time.time()
    if swapped:
        INDEX_SWAPS.inc()


_REASONS = (
    ("unknown vendor", "unknown_vendor"),
    ("internal error", "internal"),
    ("-byte limit", "too_large"),
    ("JSON", "bad_json"),
    ("UTF-8", "bad_encoding"),
    ("not an object", "bad_shape"),
    ("fields separated", "bad_shape"),
    ("no letter or digit", "empty_plate"),
    ("is missing", "missing_field"),
    ("time", "bad_time"),
    ("millisecond", "bad_time"),
)


def reason_of(error: str) -> str:
    """A short class of a dead letter's error, for a metric label (never the payload or the value)."""
    for needle, reason in _REASONS:
        if needle in error:
            return reason
    return "bad_value"
