"""Retro-hits (DESIGN section 10): when entries are added, find where those vehicles passed before.

The vendor topics are the store: a scan seeks each source partition to the
window's start (``offsets_for_times``), reads up to an end (the swap's time, or
the topics' ends for ``feblam retro``), and matches every read against **only
the added entries** — a small index. Each matching read gives a hit like a live
one (same ``hit_id`` rule, so a repeated scan gives the same ids) marked
``retro = true`` and ``retro_of`` the version that added the entries; duplicate
suppression applies among the retro hits of one entry. A read that the version
before already matched for that entry was reported live and is left out. The
hits go through the normal sinks and routing (a bounded dataflow). Every scan
writes one ``retro_scan`` audit event: trigger, window, list and entry ids
(never plates), reads scanned, hits. No read is kept anywhere.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from feblam import metrics
from feblam.config import Settings
from feblam.errors import FeblamError
from feblam.kafka import read_to_end, topic_partitions
from feblam.logs import get_logger
from feblam.model import Hit, match_order
from flows.dedup import Candidate, suppress
from flows.pipeline import hit_id
from matchers.formats import judged
from matchers.index import Index, ts_to_us
from matchers.normalize import country_code, plate_key
from sinks.routing import Router
from sources.vendors import VENDORS, make_read

log = get_logger(__name__)
SCAN_SWITCH_INTERVAL = 0.0005  # seconds (Python's default is 0.005)


@dataclass
class ScanResult:
    hits: list[Hit] = field(default_factory=list)
    reads: int = 0
    seconds: float = 0.0
    complete: bool = True


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1d``, ``30s`` (DESIGN section 10); anything else is one clear error."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:].lower()
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in units or value <= 0:
        msg = f"--since {text!r}: expected a number with s, m, h or d (e.g. 90m, 2h)"
        raise FeblamError(msg)
    return timedelta(seconds=value * units[unit])


def scan(
    settings: Settings,
    added: Index,
    *,
    since: datetime,
    until_ms: int | None,
    retro_of: str,
    before: Index | None = None,
    timeout: float | None = None,
) -> ScanResult:
    """Every read on the vendor topics from ``since`` (broker time) up to ``until_ms`` (or the topics'
    ends) that matches ``added``, as retro hits, duplicate-suppressed per entry."""
    started = time.perf_counter()
    k = settings.kafka
    consumer = Consumer(
        {
            **k.client_config(),
            "group.id": f"{k.group_id}-retro",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": max(1, k.fetch_wait_ms),
            # a scan reads history as fast as it can: large fetches, a deep local queue
            "max.partition.fetch.bytes": 16 << 20,
            "queued.min.messages": 500_000,
            "queued.max.messages.kbytes": 1 << 20,
        }
    )
    result = ScanResult()
    deadline = time.monotonic() + (timeout or settings.retro.timeout_seconds)
    router = Router(settings.sinks)
    window_us = int(settings.dedup.window_seconds * 1_000_000)
    from sources.mapping import register

    register(settings.vendors.dir)  # a scan in a child process knows the mapped vendors as the job does
    by_format = settings.hotlists.ocr_rule == "format"
    states: dict[str, Any] = {}
    vendor_of = {s.topic: s.vendor for s in settings.sources}
    # Beside the flow, in the same process: hand the GIL over ten times as often while the scan runs,
    # so the flow's worker, which takes it back many times a batch, never waits long for it.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(min(switch, SCAN_SWITCH_INTERVAL))
    try:
        since_ms = int(since.timestamp() * 1000)
        wanted = [TopicPartition(t, p, since_ms) for t in vendor_of for p in topic_partitions(consumer, t, k.brokers)]
        starts = consumer.offsets_for_times(wanted, timeout=k.start_timeout_seconds)
        active = [tp for tp in starts if tp.offset >= 0]  # the others hold nothing at or after the start time
        if active:
            consumer.assign(active)
        open_parts = {(str(tp.topic), int(tp.partition)) for tp in active}
        idle_since = time.monotonic()
        while open_parts:
            if time.monotonic() > deadline:
                result.complete = False
                break
            msgs = consumer.consume(500, 0.2)  # small bites: a scan beside the flow must not hold the GIL long
            for m in msgs:
                where = (str(m.topic()), int(m.partition() or 0))
                if m.error() is not None or where not in open_parts:
                    continue
                if until_ms is not None and m.timestamp()[1] > until_ms:
                    open_parts.discard(
                        where
                    )  # appended after the swap: the live flow matched it against the new version
                    continue
                result.reads += 1
                _match(
                    m.value() or b"",
                    vendor_of[where[0]],
                    added,
                    before,
                    router,
                    window_us,
                    states,
                    retro_of,
                    result,
                    since,
                    by_format,
                )
            # the end of a partition: its position at the high watermark of the last fetch
            for where in list(open_parts):
                _low, high = consumer.get_watermark_offsets(TopicPartition(*where), cached=True)
                (pos,) = consumer.position([TopicPartition(*where)])
                if high >= 0 and pos.offset >= high:
                    open_parts.discard(where)
            if msgs:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > 2.0:  # nothing fetched for a while: at the end
                break
    except KafkaException as exc:
        msg = f"retro-scan: the broker {k.brokers} did not answer: {exc}"
        raise FeblamError(msg) from None
    finally:
        sys.setswitchinterval(switch)
        consumer.close()
    result.seconds = time.perf_counter() - started
    return result


def quick_plate(payload: bytes, vendor: str) -> str | None:
    """The plate of a payload without decoding it (its vendor's ``plate_at``), or None when that is not
    certain (then the scan decodes)."""
    record = VENDORS.get(vendor)
    return record.plate_at(payload) if record is not None else None


def _match(
    payload: bytes,
    vendor: str,
    added: Index,
    before: Index | None,
    router: Router,
    window_us: int,
    states: dict[str, Any],
    retro_of: str,
    result: ScanResult,
    since: datetime,
    by_format: bool = False,
) -> None:
    # Most reads match none of a handful of added entries: the plate alone tells, without decoding.
    candidates = getattr(added, "candidates", None)
    if candidates is not None:
        plate = quick_plate(payload, vendor)
        if plate is not None:
            key = plate_key(plate)
            if key and not candidates(key):
                return
    try:
        fields = VENDORS[vendor].parse(payload)
    except (ValueError, KeyError):
        return  # a dead letter of the live flow already
    if fields.ts < since:
        return  # captured before the window (the seek is by broker time, the window by capture time)
    key = plate_key(fields.plate_raw)
    if not key:
        return
    country = country_code(fields.country_raw)
    matches = added.probe(key, country, fields.ts)
    if matches and by_format:  # the live flow's rule (matchers.formats), the same for retro-hits
        matches = judged(matches, key, country)
    if not matches:
        return
    if before is not None:  # reported live by the version before: not again
        live = {(m.list_id, m.entry_id) for m in before.probe(key, country, fields.ts)}
        matches = [m for m in matches if (m.list_id, m.entry_id) not in live]
        if not matches:
            return
    read = make_read(fields)
    cand = Candidate(read, key, country, tuple(matches), retro_of, ts_to_us(read.ts))
    state, (kept, _suppressed) = suppress(states.get(key), cand, window_us)
    states[key] = state
    if kept is None:
        return
    ordered = tuple(sorted(kept.matches, key=match_order))
    result.hits.append(
        Hit(
            hit_id=hit_id(read.read_id, ordered),
            index_version=retro_of,
            priority=min(m.priority for m in ordered),
            emitted_at=datetime.now(UTC),
            read=read,
            plate=key,
            country=country,
            matches=ordered,
            routes=router.routes(ordered, read.camera_id, retro=True),
            retro=True,
            retro_of=retro_of,
        )
    )


def emit(settings: Settings, hits: list[Hit]) -> None:
    """Write retro hits to the configured sinks by their routes (a bounded dataflow over the list)."""
    if not hits:
        return
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSource, run_main

    from flows.pipeline import routed_to, write_to
    from sinks.build import build_sinks

    flow = Dataflow("feblam_retro")
    stream = op.input("retro_hits", flow, TestingSource(hits))
    for name, sink in build_sinks(settings).items():
        write_to(f"out_{name}", op.filter(f"route_{name}", stream, routed_to(name)), sink)
    run_main(flow)


def _audit(
    trigger: str,
    since: datetime,
    until_ms: int | None,
    ids: list[tuple[str, str]],
    reads: int,
    hits: int,
    seconds: float,
    complete: bool,
    retro_of: str,
) -> None:
    """Count the scan and write its one audit event (ids, never plates)."""
    metrics.RETRO_SCANS.labels(trigger).inc()
    metrics.RETRO_HITS.inc(hits)
    metrics.RETRO_SECONDS.observe(seconds)
    log.info(
        "retro_scan",
        trigger=trigger,
        window_start=since.isoformat(),
        window_end=datetime.fromtimestamp(until_ms / 1000, UTC).isoformat() if until_ms else "topic end",
        lists=sorted({lid for lid, _ in ids}),
        entries=[f"{lid}/{eid}" for lid, eid in ids],
        reads_scanned=reads,
        hits=hits,
        seconds=round(seconds, 3),
        complete=complete,
        retro_of=retro_of,
    )


def run_scan(
    settings: Settings,
    added: Index,
    entries: Iterable[tuple[str, str]],
    *,
    trigger: str,
    since: datetime,
    until_ms: int | None,
    retro_of: str,
    before: Index | None = None,
    live: set[str] | frozenset[str] = frozenset(),
) -> ScanResult:
    """Scan, emit, count and audit: one retro-scan from start to end, in this process. ``live``: ids of hits
    already emitted live (:func:`emitted_live`), left out."""
    ids = sorted(set(entries))
    result = scan(settings, added, since=since, until_ms=until_ms, retro_of=retro_of, before=before)
    if live:
        kept = [h for h in result.hits if h.hit_id not in live]
        if len(kept) != len(result.hits):
            log.info("retro_live_hits_left_out", hits=len(result.hits) - len(kept), trigger=trigger)
        result.hits = kept
    emit(settings, result.hits)
    _audit(trigger, since, until_ms, ids, result.reads, len(result.hits), result.seconds, result.complete, retro_of)
    return result


ROW_FIELDS = (
    "entry_id",
    "plate",
    "key",
    "country",
    "category",
    "priority",
    "action",
    "valid_from",
    "valid_until",
    "owner",
    "note",
)


def _rows(entries: Iterable[Any]) -> list[dict[str, Any]]:
    return [{"list_id": e.list_id, **{f: getattr(e, f) for f in ROW_FIELDS}} for e in entries]


def _index_of(rows: list[dict[str, Any]], lists: list[list[Any]]) -> Any:
    """A small index of entry rows over the version's lists (same order, same fuzzy flags)."""
    import pyarrow as pa

    from matchers.build import build_index
    from matchers.snapshot import SCHEMA, ListSnapshot

    by_list: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        row = dict(row)
        for f in ("valid_from", "valid_until"):
            if isinstance(row[f], str):
                row[f] = datetime.fromisoformat(row[f])
        by_list.setdefault(row.pop("list_id"), []).append(row)
    snaps = [
        ListSnapshot(lid, name, fuzzy, (), pa.Table.from_pylist(by_list.get(lid, []), schema=SCHEMA), "")
        for lid, name, fuzzy in lists
    ]
    return build_index(snaps, n_shards=1)


#: The automatic scan's child process runs at the lowest CPU priority (nice 19): on a busy machine it
#: takes only the CPU the flow and the change feed leave, so a scan never delays the next change or the
#: next hit. The trade-off: a scan on a machine the flow keeps at 100 % takes longer (its window and
#: ``[retro] timeout_seconds`` still bound it; an incomplete scan says so in its audit event).
SCAN_NICE = 19
#: What the child runs before anything else (its imports included): lowering its own priority.
NICE_PREFIX = f"import os; os.nice({SCAN_NICE}); "
_CHILD = NICE_PREFIX + "import runpy; runpy.run_module('flows.retro', run_name='__main__', alter_sys=True)"


@dataclass(frozen=True)
class ScanRequest:
    """One swap's entries to scan for: the overlay that added them, their ids, the version before, when."""

    settings: Settings
    added: Index
    entries: tuple[tuple[str, str], ...]
    before: Index
    retro_of: str
    at: datetime


@dataclass(frozen=True)
class ScanJob:
    """What one child process scans for: one request, or the requests that arrived while a scan ran, merged
    (``retro_of``: the latest version, which holds every entry of them)."""

    settings: Settings
    doc: dict[str, Any]  # the child's input (settings, window, lists, added and before rows)
    ids: list[tuple[str, str]]
    since: datetime
    until_ms: int
    retro_of: str


def merged_job(requests: list[ScanRequest]) -> ScanJob:
    """One scan for ``requests`` (in arrival order): the window from the earliest's start to the latest's
    swap, every entry at its latest upsert, and each entry's row before the first of them (the oldest
    version before: an entry first changed by a later request was unchanged until then)."""
    import msgspec

    last = requests[-1]
    window = timedelta(minutes=last.settings.retro.window_minutes)
    since = min(r.at for r in requests) - window
    until_ms = int(max(r.at for r in requests).timestamp() * 1000)
    lists: dict[str, list[Any]] = {}
    added: dict[tuple[str, str], dict[str, Any]] = {}
    for r in requests:
        for info in r.added.files_version().lists:
            lists.setdefault(info.list_id, [info.list_id, info.name, info.fuzzy])
        for row in _rows(r.added.entries()):
            added[(row["list_id"], row["entry_id"])] = row  # a later upsert of an entry replaces an earlier
    ids = sorted({e for r in requests for e in r.entries})
    before = _rows(requests[0].before.entries_named(set(ids)))
    doc = {
        "settings": msgspec.to_builtins(last.settings),
        "since": since.isoformat(),
        "until_ms": until_ms,
        "retro_of": last.retro_of,
        "lists": list(lists.values()),
        "added": list(added.values()),
        "before": before,
    }
    return ScanJob(last.settings, doc, ids, since, until_ms, last.retro_of)


class ScanQueue:
    """The job's automatic retro-scans: one child process at a time, at the lowest CPU priority
    (:data:`SCAN_NICE`); the swaps that add entries while a scan runs are scanned for together by the next.

    :meth:`submit` only queues: the change feed hands a swap's entries over and goes on at once, so a
    change goes live without waiting for any scan, and a burst of changes costs one child, not one each.
    """

    def __init__(self, run: Callable[[ScanJob], None] | None = None) -> None:
        self._run = run or run_child
        self._lock = threading.Lock()
        self._pending: list[ScanRequest] = []
        self._worker: threading.Thread | None = None
        self.jobs = 0  # scans started (a merged one counts once)

    def submit(self, request: ScanRequest) -> threading.Thread:
        """Queue ``request``; the thread that will scan for it (join it to wait for its scan)."""
        with self._lock:
            self._pending.append(request)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="retro-scan", daemon=True)
                self._worker.start()
            return self._worker

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._worker = None
                    return
                requests, self._pending = self._pending, []
            self.jobs += 1
            if len(requests) > 1:
                log.info("retro_scans_coalesced", swaps=len(requests), retro_of=requests[-1].retro_of)
            try:
                self._run(merged_job(requests))
            except Exception as exc:  # noqa: BLE001 - a failed scan is reported, the job goes on
                log.error("retro_scan_failed", error=str(exc), retro_of=requests[-1].retro_of)


def run_child(job: ScanJob) -> None:
    """Scan for ``job`` in a child process (``python -m flows.retro`` at nice 19), then count and audit it."""
    import subprocess

    import orjson

    settings = job.settings
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", _CHILD],
        input=orjson.dumps(job.doc),
        stdout=subprocess.PIPE,
        timeout=settings.retro.timeout_seconds + 60,
        check=False,
    )
    if proc.returncode != 0:
        log.error("retro_scan_failed", error=f"the scan process exited with {proc.returncode}", retro_of=job.retro_of)
        return
    doc = orjson.loads(proc.stdout.splitlines()[-1])
    _audit(
        "swap",
        job.since,
        job.until_ms,
        job.ids,
        doc["reads"],
        doc["hits"],
        doc["seconds"],
        doc["complete"],
        job.retro_of,
    )


_SCANS = ScanQueue()


def scan_in_background(
    settings: Settings,
    added: Index,
    entries: list[tuple[str, str]],
    before: Index,
    retro_of: str,
    queue: ScanQueue | None = None,
) -> threading.Thread | None:
    """After a swap that added entries: a scan of the window before it, in a child process, queued on the
    job's :class:`ScanQueue` (the thread that will run it is returned; None: retro is off or nothing was added).

    The child (``python -m flows.retro``) gets the added entries and the old rows of
    those that existed — all the scan needs — so it runs off the job's GIL (the flow
    does not wait for it) and without the job's index. The thread prepares the child's
    input (the version before's rows are looked up there, not in the change feed), waits
    for it and then counts and audits the scan.
    """
    if settings.retro.window_minutes <= 0 or not entries:
        return None
    request = ScanRequest(settings, added, tuple(entries), before, retro_of, datetime.now(UTC))
    return (queue or _SCANS).submit(request)


def _child(job_json: bytes) -> int:
    """``python -m flows.retro`` (the job on stdin): scan, emit, and one JSON summary line on stdout."""
    import msgspec
    import orjson

    from feblam.logs import configure, set_hash_key

    job = orjson.loads(job_json)
    settings = msgspec.convert(job["settings"], Settings)
    configure(settings.logging.level, settings.logging.format)
    set_hash_key(settings.privacy.hash_key)
    added = _index_of(job["added"], job["lists"])
    before = _index_of(job["before"], job["lists"]) if job["before"] else None
    result = scan(
        settings,
        added,
        since=datetime.fromisoformat(job["since"]),
        until_ms=job["until_ms"],
        retro_of=job["retro_of"],
        before=before,
    )
    emit(settings, result.hits)
    sys.stdout.write(
        orjson.dumps(
            {"reads": result.reads, "hits": len(result.hits), "seconds": result.seconds, "complete": result.complete}
        ).decode()
        + "\n"
    )
    return 0


def emitted_live(settings: Settings, since: datetime, timeout: float = 30.0) -> set[str]:
    """The ids of the live hits the job emitted since ``since``: on the sinks' topics (from that time on) and in
    the active files of its file sinks. A hit id is a digest of the read and its matches, so a retro hit with one
    of these ids is a hit the dispatchers already had."""
    import orjson

    ids: set[str] = set()

    def take(value: bytes) -> None:
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict) and not doc.get("retro") and isinstance(doc.get("hit_id"), str):
            ids.add(doc["hit_id"])

    for sink in settings.sinks:
        if sink.path and Path(sink.path).is_file():
            with Path(sink.path).open("rb") as fh:
                for line in fh:
                    take(line)
    topics = sorted({s.topic for s in settings.sinks if s.topic})
    if topics:
        k = settings.kafka
        for value in read_to_end(
            k,
            topics,
            since_ms=int(since.timestamp() * 1000),
            timeout=timeout,
            group=f"{k.group_id}-retro-live",
            what="retro: the live hits of the window",
        ):
            take(value)
    return ids


def retro_command(settings: Settings, since: timedelta, lists: list[str], entries: list[str]) -> ScanResult:
    """``feblam retro``: the scan on demand, over the live index's entries (or those of ``lists``/``entries``)."""
    import pyarrow.compute as pc

    from matchers.build import build_index
    from matchers.snapshot import load_hotlists

    snaps = load_hotlists(settings.hotlists.dir)
    known = {s.list_id for s in snaps}
    for lid in lists:
        if lid not in known:
            msg = f"--list {lid!r}: no such list in {settings.hotlists.dir} (lists: {', '.join(sorted(known))})"
            raise FeblamError(msg)
    chosen = []
    for s in snaps:
        table = s.table
        if lists and s.list_id not in lists:
            table = table.slice(0, 0)
        if entries:
            table = table.filter(pc.is_in(table.column("entry_id"), value_set=__import__("pyarrow").array(entries)))
        chosen.append(type(s)(s.list_id, s.name, s.fuzzy, s.files, table, s.digest))
    ids = [(s.list_id, e) for s in chosen for e in s.table.column("entry_id").to_pylist()]
    if not ids:
        msg = f"no entry to scan for (--list {lists or 'any'}, --entry {entries or 'any'})"
        raise FeblamError(msg)
    added = build_index(chosen, n_shards=max(1, min(31, len(ids) // 10_000 + 1)))
    start = datetime.now(UTC) - since
    live = emitted_live(settings, start)
    return run_scan(
        settings, added, ids, trigger="command", since=start, until_ms=None, retro_of=added.version, live=live
    )


if __name__ == "__main__":
    sys.exit(_child(sys.stdin.buffer.read()))
