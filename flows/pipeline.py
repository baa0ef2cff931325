"""The one place where the dataflow is wired.

```
read_payloads ─► decode_normalize_probe (one Python call per batch) ─► split_deadletter
                   ├─ dead letters ─────────────────────────────────► deadletter_out
                   └─ candidates ─► key_by_plate ─► suppress_duplicates ─► build_hit ─► route_<sink> ─► out_<sink>
```

Items on ``read_payloads`` are :data:`RawRead` tuples. The decode, normalise
and probe stage runs once per batch (``flat_map_batch``) so its per-read cost is
a plain Python loop; only reads that match something (a fraction of a percent)
become objects and travel further.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import FixedPartitionedSink, Sink

from feblam.config import Settings
from feblam.errors import DecodeError
from feblam.logs import get_logger, plate_ref
from feblam.model import DeadLetter, Hit, Match
from flows.dedup import Candidate, DedupState, suppress
from matchers.index import HotlistIndex, IndexHolder, ts_to_us
from matchers.normalize import country_code, plate_key
from sinks.routing import Router
from sources.vendors import PARSERS, make_read

log = get_logger(__name__)

#: (vendor, payload, source, line, partition, offset): a payload and where it came from.
RawRead = tuple[str, bytes, str, int | None, int | None, int | None]


@dataclass
class FlowStats:
    """Counters of one process (read by the demo and the benchmark)."""

    reads: int = 0
    candidates: int = 0
    deadletters: int = 0
    hits: int = 0
    suppressed: int = 0


def hit_id(read_id: str, matches: Iterable[Match]) -> str:
    """Deterministic id from the read id and the matched entries."""
    h = hashlib.blake2b(digest_size=16)
    h.update(read_id.encode())
    for m in sorted((m.list_id, m.entry_id) for m in matches):
        h.update(b"\x1e" + m[0].encode() + b"\x1f" + m[1].encode())
    return h.hexdigest()


def make_processor(holder: IndexHolder, stats: FlowStats) -> Callable[[list[RawRead]], list[Any]]:
    """The hot loop: payloads -> dead letters and candidates, against one index version per batch."""
    parsers = PARSERS

    def process(batch: list[RawRead]) -> list[Any]:
        index: HotlistIndex = holder.current
        probe = index.probe
        version = index.version
        out: list[Any] = []
        for raw in batch:
            vendor, payload = raw[0], raw[1]
            try:
                t = parsers[vendor](payload)
                key = plate_key(t[4])
                if not key:
                    msg = f"plate {t[4]!r} has no letter or digit"
                    raise DecodeError(msg)
                country = country_code(t[5])
                matches = probe(key, country, t[3])
            except (DecodeError, KeyError) as exc:
                error = str(exc) if isinstance(exc, DecodeError) else f"unknown vendor {vendor!r}"
                out.append(DeadLetter(raw[2], f"{vendor}: {error}", payload, vendor, raw[3], raw[4], raw[5]))
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the flow or lose the read
                log.error("decode_failed_unexpectedly", vendor=vendor, error=repr(exc))
                out.append(DeadLetter(raw[2], f"{vendor}: internal error: {exc!r}", payload, vendor, raw[3], raw[4], raw[5]))
                continue
            if matches:
                read = make_read(t)
                out.append(Candidate(read, key, country, tuple(matches), version, ts_to_us(read.ts)))
        stats.reads += len(batch)
        return out

    return process


def make_hit_builder(router: Router, stats: FlowStats) -> Callable[[tuple[Candidate | None, int]], Hit | None]:
    def build(item: tuple[Candidate | None, int]) -> Hit | None:
        cand, suppressed = item
        stats.suppressed += suppressed
        if cand is None:
            return None
        matches = tuple(sorted(cand.matches, key=lambda m: (m.priority, m.list_id, m.entry_id)))
        stats.hits += 1
        return Hit(
            hit_id=hit_id(cand.read.read_id, matches),
            index_version=cand.index_version,
            priority=min(m.priority for m in matches),
            emitted_at=datetime.now(UTC),
            read=cand.read,
            plate=cand.key,
            country=cand.country,
            matches=matches,
            routes=router.routes(matches, cand.read.camera_id),
        )

    return build


def build_flow(
    settings: Settings,
    source: Source[RawRead] | None = None,
    sink: Sink[Any] | None = None,
    *,
    deadletter: Sink[Any] | None = None,
    sinks: Mapping[str, Sink[Any]] | None = None,
    holder: IndexHolder | None = None,
    stats: FlowStats | None = None,
    flow_id: str = "feblam",
) -> Dataflow:
    """The FEBLAM dataflow.

    ``sink`` receives every hit (tests, replay); ``sinks`` maps sink names of the
    settings to outputs, and a hit goes to each sink named in its routes.
    Dead letters go to ``deadletter``. When ``source`` is None, the Kafka source
    of the settings is used; when ``holder`` is None, the index is built from
    ``settings.hotlists.dir``.
    """
    stats = stats if stats is not None else FlowStats()
    if holder is None:
        from matchers.service import load_index

        holder = IndexHolder(load_index(settings.hotlists))
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

    flow = Dataflow(flow_id)
    raw = op.input("read_payloads", flow, source)
    out = op.flat_map_batch("decode_normalize_probe", raw, make_processor(holder, stats))
    split = op.branch("split_deadletter", out, lambda x: isinstance(x, DeadLetter))

    def count_dead(dl: DeadLetter) -> DeadLetter:
        stats.deadletters += 1
        return dl

    dead = op.map("count_deadletter", split.trues, count_dead)
    _output("deadletter_out", dead, deadletter)

    keyed = op.key_on("key_by_plate", split.falses, lambda c: plate_ref(c.key))

    def dedup(state: DedupState | None, cand: Candidate) -> tuple[DedupState | None, tuple[Candidate | None, int]]:
        return suppress(state, cand, window_us)

    kept = op.stateful_map("suppress_duplicates", keyed, dedup)
    hits = op.filter_map("build_hit", op.key_rm("drop_plate_key", kept), make_hit_builder(router, stats))
    if sink is not None:
        _output("hits_out", hits, sink)
    for name, target in (sinks or {}).items():
        routed = op.filter(f"route_{name}", hits, lambda h, name=name: name in h.routes)
        _output(f"out_{name}", routed, target)
    return flow


def _output(step_id: str, stream: Any, sink: Sink[Any]) -> None:
    """Write bare items; a fixed-partitioned sink gets them keyed by its step id."""
    if isinstance(sink, FixedPartitionedSink):
        stream = op.key_on(f"key_{step_id}", stream, lambda _item: step_id)
    op.output(step_id, stream, sink)
