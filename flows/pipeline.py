"""The one place where the dataflow is wired.

```
read_payloads ─► decode_normalize_probe (one Python call per batch) ─► split_deadletter
                   ├─ dead letters ─────────────────────────────────► deadletter_out
                   └─ candidates ─► key_by_plate ─► suppress_duplicates ─► build_hit ─► route_<sink> ─► out_<sink>
```

Items on ``read_payloads`` are :class:`~feblam.model.PayloadBatch` — the one
shape every source emits. The decode, normalise and probe stage runs once per
batch of them (``flat_map_batch``) so its per-read cost is a plain Python loop;
only reads that match something (a fraction of a percent) become objects and
travel further.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bytewax.operators as op
import numpy as np
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import FixedPartitionedSink, Sink

from feblam import metrics
from feblam.config import Settings, replace
from feblam.errors import DecodeError, Skipped
from feblam.logs import get_logger, plate_ref, set_hash_key
from feblam.model import DeadLetter, Hit, Match, PayloadBatch, match_order
from flows.clones import ClonePart, ClonePrep, make_checker
from flows.dedup import Candidate, DedupState, suppress
from matchers.batch import fuzzy_and_exact_codes, needs_probe
from matchers.formats import judged
from matchers.index import Index, IndexHolder, ts_to_us
from matchers.normalize import MAX_KEY_LENGTH, country_code, plate_key
from sinks.routing import Router
from sources.vendors import VENDORS, make_read
from sources.vendors.sightings import Sightings, concat, from_fields

log = get_logger(__name__)


@dataclass
class FlowStats:
    """Counters of one process (read by the demo's live view, the stats event and the benchmark)."""

    reads: int = 0
    deadletters: int = 0
    hits: int = 0
    suppressed: int = 0
    batches: int = 0


def hit_id(read_id: str, matches: Iterable[Match]) -> str:
    """Deterministic id from the read id and the matched entries."""
    h = hashlib.blake2b(digest_size=16)
    h.update(read_id.encode())
    for m in sorted((m.list_id, m.entry_id) for m in matches):
        h.update(b"\x1e" + m[0].encode() + b"\x1f" + m[1].encode())
    return h.hexdigest()


def screened(vendor: str, payloads: Sequence[bytes], index: Index) -> Sequence[int]:
    """The positions of the payloads that need the full path (decode, normalise, probe).

    The 99 % case is done here for a whole batch: a payload its vendor's screen
    vouches for, whose plate no entry can match (:func:`matchers.batch.needs_probe`),
    needs nothing more. Whatever the screen cannot vouch for, and every plate
    the index may match, takes the full path, which words errors and finds matches.
    """
    record = VENDORS.get(vendor)
    if record is None:
        return range(len(payloads))
    try:
        return needs_probe(index, record.screen_batch(payloads))
    except Exception as exc:  # noqa: BLE001 - a bug here must not lose a read: the full path takes them all
        log.error("screen_failed_unexpectedly", vendor=vendor, error=repr(exc))
        return range(len(payloads))


def sighted(vendor: str, payloads: Sequence[bytes], index: Index) -> tuple[Sightings, Sequence[int]]:
    """With the clone check on: the sightings the vendor's batch decoding vouches for, and the positions that
    need the full path (the plates the index may match, and every payload not vouched for, whose sighting
    the full path's ``parse`` gives)."""
    record = VENDORS.get(vendor)
    if record is None or record.sightings is None:
        return Sightings.empty(), range(len(payloads))
    try:
        s = record.sightings(payloads)
        fuzzy, s.codes, s.uncoded = fuzzy_and_exact_codes(s.plates)  # one pass: the probe's and the clones'
        maybe = s.rows[needs_probe(index, s.plates, (fuzzy, s.uncoded))]
    except Exception as exc:  # noqa: BLE001 - a bug here must not lose a read: the full path takes them all
        log.error("sightings_failed_unexpectedly", vendor=vendor, error=repr(exc))
        return Sightings.empty(), range(len(payloads))
    if len(s) == len(payloads):
        return s, maybe.tolist()
    left = np.ones(len(payloads), dtype=bool)
    left[s.rows] = False
    left[maybe] = True
    return s, np.flatnonzero(left).tolist()


def make_processor(
    holder: IndexHolder, stats: FlowStats, ocr_rule: str = "classes", clones: ClonePrep | None = None
) -> Callable[[list[PayloadBatch]], list[Any]]:
    """The hot loop: payload batches -> dead letters and candidates, against one index version per Bytewax batch
    (``ocr_rule`` "format": OCR-equivalent matches judged by the country's plate formats, matchers.formats);
    with ``clones``, also each batch's sightings as :class:`~flows.clones.ClonePart` items, one per shard."""
    by_format = ocr_rule == "format"

    def payloads_of(batch: PayloadBatch, index: Index, out: list[Any]) -> None:
        vendor = batch.vendor
        record = VENDORS.get(vendor)
        parser = record.parse if record is not None else None
        probe = index.probe
        version = index.version
        payloads = batch.payloads
        if clones is not None:
            vouched, todo = sighted(vendor, payloads, index)
            vouched_rows = set(vouched.rows.tolist()) if len(vouched) != len(payloads) else None
            parsed_rows: list[int] = []
            parsed: list[Any] = []
        else:
            todo = screened(vendor, payloads, index)
        for i in todo:
            payload = payloads[i]
            try:
                if parser is None:
                    msg = f"unknown vendor {vendor!r}"
                    raise DecodeError(msg)
                fields = parser(payload)
                key = plate_key(fields.plate_raw)
                if not key:
                    msg = f"plate {fields.plate_raw!r} has no letter or digit"
                    raise DecodeError(msg)
                if len(key) > MAX_KEY_LENGTH:
                    msg = f"plate key of {len(key)} characters: no country issues plates over {MAX_KEY_LENGTH}"
                    raise DecodeError(msg)
                if clones is not None and vouched_rows is not None and i not in vouched_rows:
                    parsed_rows.append(i)
                    parsed.append(fields)
                country = country_code(fields.country_raw)
                matches = probe(key, country, fields.ts)
                if by_format and matches:
                    matches = judged(matches, key, country)
            except Exception as exc:  # noqa: BLE001 - bad input (or a bug) must not stop the flow or lose the read
                if isinstance(exc, Skipped):  # an event the vendor's mapping does not take: no read, no dead letter
                    metrics.SKIPPED.labels(vendor).inc()
                    continue
                if isinstance(exc, DecodeError):
                    error = f"{vendor}: {exc}"
                else:
                    log.error("decode_failed_unexpectedly", vendor=vendor, error=repr(exc))
                    error = f"{vendor}: internal error: {exc!r}"
                out.append(batch.deadletter(i, error))
                continue
            if matches:
                read = make_read(fields)
                appended = batch.appended_ms[i] if batch.appended_ms is not None else None
                out.append(Candidate(read, key, country, tuple(matches), version, ts_to_us(read.ts), appended))
        if clones is not None:
            sightings = concat([vouched, from_fields(parsed_rows, parsed)]) if parsed else vouched
            out.extend(clones.parts(batch, sightings))

    reads_of: dict[str, Any] = {}  # the metric child of each vendor, looked up once

    def process(batches: list[PayloadBatch]) -> list[Any]:
        index: Index = holder.current
        out: list[Any] = []
        n = 0
        for batch in batches:
            payloads_of(batch, index, out)
            k = len(batch.payloads)
            n += k
            counter = reads_of.get(batch.vendor)
            if counter is None:
                counter = reads_of[batch.vendor] = metrics.READS.labels(batch.vendor)
            counter.inc(k)
        stats.reads += n
        stats.batches += 1
        return out

    return process


def routed_to(name: str) -> Callable[[Hit], bool]:
    """Whether a hit's routes name the sink ``name``."""
    return lambda hit: name in hit.routes


def make_hit_builder(router: Router, stats: FlowStats) -> Callable[[tuple[Candidate | None, int]], Hit | None]:
    """The step that turns a kept candidate into a hit (sorted matches, routes, metrics)."""
    by_priority: dict[int, Any] = {}  # the metric children, looked up once each
    by_match: dict[tuple[str, str], Any] = {}

    def build(item: tuple[Candidate | None, int]) -> Hit | None:
        cand, suppressed = item
        if suppressed:
            stats.suppressed += suppressed
            metrics.SUPPRESSED.inc(suppressed)
        if cand is None:
            return None
        matches = tuple(sorted(cand.matches, key=match_order))
        stats.hits += 1
        now = datetime.now(UTC)
        hit = Hit(
            hit_id=hit_id(cand.read.read_id, matches),
            index_version=cand.index_version,
            priority=min(m.priority for m in matches),
            emitted_at=now,
            read=cand.read,
            plate=cand.key,
            country=cand.country,
            matches=matches,
            routes=router.routes(matches, cand.read.camera_id),
            clone=cand.clone,
        )
        counter = by_priority.get(hit.priority)
        if counter is None:
            counter = by_priority[hit.priority] = metrics.HITS.labels(str(hit.priority))
        counter.inc()
        for m in matches:
            # a covert (observe) match is counted under one label: a metric must not show which covert list
            # moved as a car passed
            label = metrics.COVERT_LABEL if m.action == "observe" else m.list_id
            counter = by_match.get((label, m.match_kind))
            if counter is None:
                counter = by_match[(label, m.match_kind)] = metrics.MATCHES.labels(label, m.match_kind)
            counter.inc()
        metrics.READ_TO_HIT.observe(max(0.0, (now - cand.read.ts).total_seconds()))
        if cand.appended_ms is not None:
            metrics.APPEND_TO_HIT.observe(max(0.0, now.timestamp() - cand.appended_ms / 1000))
        return hit

    return build


def build_flow(
    settings: Settings,
    source: Source[Any] | None = None,
    sink: Sink[Any] | None = None,
    *,
    deadletter: Sink[Any] | None = None,
    sinks: Mapping[str, Sink[Any]] | None = None,
    holder: IndexHolder | None = None,
    stats: FlowStats | None = None,
    flow_id: str = "feblam",
    clone_shards: int = 1,
) -> Dataflow:
    """The FEBLAM dataflow.

    ``sink`` receives every hit (tests, replay); ``sinks`` maps sink names of the
    settings to outputs, and a hit goes to each sink named in its routes.
    Dead letters go to ``deadletter``. When ``source`` is None, the Kafka source
    of the settings is used; when ``holder`` is None, the index is built from
    ``settings.hotlists.dir``. With ``[clones] enabled``, every read's sighting
    goes to the clone check, in ``clone_shards`` keyed parts (a cluster: the
    number of workers in all), whose clone hits join the candidates.
    """
    stats = stats if stats is not None else FlowStats()
    set_hash_key(settings.privacy.hash_key)
    if holder is None:
        from matchers.refresh import open_live_index

        holder = open_live_index(replace(settings.hotlists, shared_build=False), watch=False).holder
    if source is None:
        from sources.kafka import KafkaReadSource

        source = KafkaReadSource(settings.kafka, settings.sources)
    if sink is None and sinks is None:
        from sinks.build import build_sinks

        sinks = build_sinks(settings)
    if deadletter is None:
        from sinks.build import build_deadletter_sink

        deadletter = build_deadletter_sink(settings)

    window_us = int(settings.dedup.window_seconds * 1_000_000)
    router = Router(settings.sinks)

    prep = None
    if settings.clones.enabled:
        prep = ClonePrep.of(settings.clones, settings.privacy.hash_key, clone_shards)
        warn_unplaced(prep)
    flow = Dataflow(flow_id)
    raw = op.input("read_payloads", flow, source)
    processor = make_processor(holder, stats, settings.hotlists.ocr_rule, prep)
    out = op.flat_map_batch("decode_normalize_probe", raw, processor)
    split = op.branch("split_deadletter", out, lambda x: isinstance(x, DeadLetter))
    candidates = split.falses
    if prep is not None:
        live = holder

        def version() -> str:
            return live.current.version

        parts = op.branch("split_sightings", split.falses, lambda x: isinstance(x, ClonePart))
        keyed_parts = op.key_on("key_by_clone_shard", parts.trues, lambda p: p.shard)
        checked = op.stateful_flat_map("check_clones", keyed_parts, make_checker(settings.clones, version, prep.places))
        candidates = op.merge("candidates", parts.falses, op.key_rm("drop_clone_shard", checked))

    def count_dead(dl: DeadLetter) -> DeadLetter:
        stats.deadletters += 1
        metrics.DEADLETTERS.labels(dl.vendor or "unknown", metrics.reason_of(dl.error)).inc()
        return dl

    dead = op.map("count_deadletter", split.trues, count_dead)
    write_to("deadletter_out", dead, deadletter)

    if window_us > 0:
        keyed = op.key_on("key_by_plate", candidates, lambda c: plate_ref(c.key))

        def dedup(state: DedupState | None, cand: Candidate) -> tuple[DedupState | None, tuple[Candidate | None, int]]:
            return suppress(state, cand, window_us)

        kept = op.key_rm("drop_plate_key", op.stateful_map("suppress_duplicates", keyed, dedup))
    else:  # duplicate suppression off (dedup.window_seconds = 0): no keyed state to keep
        kept = op.map("no_suppression", candidates, lambda cand: (cand, 0))
    hits = op.filter_map("build_hit", kept, make_hit_builder(router, stats))
    if sink is not None:
        write_to("hits_out", hits, sink)
    for name, target in (sinks or {}).items():
        routed = op.filter(f"route_{name}", hits, routed_to(name))
        write_to(f"out_{name}", routed, target)
    return flow


def warn_unplaced(prep: ClonePrep) -> None:
    """At start: the register's cameras without a position, named (their reads are not checked unless they
    carry a position of their own); no register at all, said once."""
    register = prep.places.register
    if not register.path:
        log.warning(
            "clone_no_camera_register",
            hint="[clones] cameras names no register: only reads that carry their own position are checked",
        )
    elif register.unplaced:
        log.warning(
            "clone_cameras_unplaced",
            register=register.path,
            cameras=list(register.unplaced[:100]),
            count=len(register.unplaced),
            hint="their reads are not checked for clones unless they carry their own position",
        )


def write_to(step_id: str, stream: Any, sink: Sink[Any]) -> None:
    """Write bare items; a fixed-partitioned sink gets them keyed by its step id."""
    if isinstance(sink, FixedPartitionedSink):
        item_key = getattr(sink, "item_key", None) or (lambda _item: "")
        stream = op.key_on(f"key_{step_id}", stream, item_key)
    op.output(step_id, stream, sink)
