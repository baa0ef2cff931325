"""The change topic (DESIGN section 5.2): single upserts and deletes, live within a second.

Each message is one JSON object with our columns plus ``list_id``, ``seq`` and
``op``. A :class:`ChangeFeed` reads the topic **from its beginning** at start
(it is meant to be compacted, keyed ``list_id/entry_id``: a restart loses no
change), validates each change on its own like a delta row, and puts the
accepted ones on top of the live version as a :class:`~matchers.layers.ChangedIndex`
(a few milliseconds to build, swapped in between two batches). A change whose
``seq`` is not above the list's latest snapshot file is already in that file
and ignored; when the watcher swaps in a new file version, the changes it
holds are dropped and the rest stay on top. A bad change goes to the
dead-letter output with its reason and holds back no other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from feblam.config import HotlistSettings, Settings
from feblam.errors import FeblamError, SnapshotError
from feblam.kafka import topic_partitions
from feblam.logs import get_logger, plate_ref
from feblam.model import DeadLetter
from matchers.build import Change, build_changes
from matchers.hotdir import list_files
from matchers.index import FilesVersion, Index, IndexHolder
from matchers.layers import ChangedIndex, LayeredIndex
from matchers.normalize import plate_key
from matchers.refresh import AddedHook
from matchers.snapshot import load_rows

if TYPE_CHECKING:
    import pyarrow as pa

log = get_logger(__name__)
VENDOR = "change"
#: The largest ``seq`` taken (JSON's exact integers): a sequence is a count or a time in ms, never 9e18.
MAX_SEQ = 2**53
# the vendor field of a change's dead letter


Checked = tuple[str, int, str, str, "pa.Table | None"]


def check_change(doc: Any, topic: str, hot: HotlistSettings, list_ids: Collection[str], where: str) -> Checked:
    """One change read from ``topic``, checked on its own as the job takes it: ``(list_id, seq, op, entry_id,
    row)`` (the row of an upsert, validated like a delta row), or a :class:`FeblamError` saying what is wrong.
    ``list_ids``: the list folders of ``where``. Used by the feed and by ``feblam change`` before it publishes."""
    if not isinstance(doc, dict):
        msg = "a change is one JSON object"
        raise FeblamError(msg)
    list_id, seq, op, entry_id = doc.get("list_id"), doc.get("seq"), doc.get("op"), doc.get("entry_id")
    if not isinstance(list_id, str) or list_id not in list_ids:
        msg = f"list_id {list_id!r} is not a list folder of {where}"
        raise FeblamError(msg)
    own = hot.change_topic_of(list_id)
    if own != topic:
        bound = ", ".join(hot.lists_of(topic))
        msg = (
            f"list {list_id} takes changes from topic {own!r} only (hotlists.list_changes_topics), not {topic!r}"
            if list_id in hot.list_changes_topics
            else f"topic {topic!r} is the change topic of {bound} only; list {list_id} is not one"
        )
        raise FeblamError(msg)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        msg = f"seq {seq!r} is not a whole number >= 0"
        raise FeblamError(msg)
    if seq > MAX_SEQ:
        msg = f"seq {seq} is beyond {MAX_SEQ} (2^53): a change so far ahead would outlive every later snapshot"
        raise FeblamError(msg)
    if op not in ("upsert", "delete"):
        msg = f"op {op!r} is not upsert or delete"
        raise FeblamError(msg)
    if not isinstance(entry_id, str) or not entry_id.strip():
        msg = f"entry_id {entry_id!r} is missing"
        raise FeblamError(msg)
    entry_id = entry_id.strip()
    table = None
    if op == "upsert":
        row = {k: v for k, v in doc.items() if k not in ("list_id", "seq")}
        try:
            table, _ = load_rows([row], f"{topic}: {list_id}/{entry_id}")
        except SnapshotError as exc:
            raise FeblamError(str(exc).replace(": row 1", "", 1)) from None
    return list_id, seq, op, entry_id, table


def latest_file_seq(hot_dir: Path, list_id: str) -> int:
    """The sequence number of a list's latest snapshot file (-1: none): changes at or below it are in the files."""
    found = list_files(hot_dir / list_id) if (hot_dir / list_id).is_dir() else ()
    return max((f.seq for f in found), default=-1)


class ChangeFeed(threading.Thread):
    """Reads the change topic and keeps the live index's changes current."""

    def __init__(
        self,
        settings: Settings,
        holder: IndexHolder,
        stop: threading.Event,
        deadletters: Callable[[DeadLetter], None],
        on_added: AddedHook | None = None,
    ) -> None:
        """``deadletters``: writes a bad change's dead letter (the flow's dead-letter output:
        :class:`sinks.deadletters.DeadletterWriter`); ``on_added(added, entries, before, version)``: called after a
        swap that added entries (retro-scans)."""
        super().__init__(name="change-feed", daemon=True)
        self.on_added = on_added
        self._new: dict[str, dict[str, Change]] = {}
        self.settings = settings
        self.hot = settings.hotlists
        self.topics = self.hot.change_topics()
        self.topic = ", ".join(self.topics)  # how the feed is named in its events
        self.dir = Path(settings.hotlists.dir)
        self.holder = holder
        self.stop_event = stop
        self.changes: dict[str, dict[str, Change]] = {}
        self.accepted = self.ignored = self.rejected = 0
        self._lock = threading.RLock()
        self._seqs: dict[str, int] = {}
        self._seqs_of = ""  # the files version the sequence numbers were read for
        k = settings.kafka
        self.consumer = Consumer(
            {
                **k.client_config(),
                "group.id": f"{k.group_id}-changes",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "fetch.wait.max.ms": max(1, k.fetch_wait_ms),
            }
        )
        self.consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_BEGINNING)
                for topic in self.topics
                for p in topic_partitions(self.consumer, topic, k.brokers, timeout=k.start_timeout_seconds)
            ]
        )
        self.deadletters = deadletters
        holder.wrap = self.wrap

    # ------------------------------------------------------------ the live index

    def wrap(self, inner: Index) -> Index:
        """``inner`` (a version from the files) with the changes it does not hold yet on top."""
        files = inner.files_version()
        base = files.base if isinstance(files, LayeredIndex) else files
        base.warm_entry_order()  # the changes look their entries up by id in it: sorted once, off the feed's way
        with self._lock:
            self._prune(files)
            return build_changes(files, self.changes)

    def _snapshot_seq(self, files: FilesVersion, list_id: str) -> int:
        if self._seqs_of != files.version:
            self._seqs, self._seqs_of = {}, files.version
        if list_id not in self._seqs:
            self._seqs[list_id] = latest_file_seq(self.dir, list_id)
        return self._seqs[list_id]

    def _prune(self, files: FilesVersion) -> None:
        """Drop the changes that the files now hold (their ``seq`` is not above the list's latest file)."""
        for list_id, per in self.changes.items():
            seq = self._snapshot_seq(files, list_id)
            for entry_id in [e for e, (s, _) in per.items() if s <= seq]:
                del per[entry_id]

    # ------------------------------------------------------------ reading

    def accept(self, payload: bytes, partition: int, offset: int, topic: str | None = None) -> bool:
        """Validate one change read from ``topic`` (the shared change topic when None) and keep it; True when
        the live index must change. A bad one is dead-lettered."""
        topic = topic or self.hot.changes_topic
        try:
            return self._accept(payload, topic)
        except (FeblamError, ValueError, orjson.JSONDecodeError) as exc:
            self.rejected += 1
            error = f"change: {exc}"
            self.deadletters(DeadLetter(topic, error, payload, VENDOR, None, partition, offset))
            log.warning("change_rejected", topic=topic, partition=partition, offset=offset, error=error)
            return False

    def _accept(self, payload: bytes, topic: str) -> bool:
        files = self.holder.current.files_version()
        doc = orjson.loads(payload)
        list_id, seq, op, entry_id, table = check_change(
            doc, topic, self.hot, {i.list_id for i in files.lists}, str(self.dir)
        )
        with self._lock:
            if seq <= self._snapshot_seq(files, list_id):
                self.ignored += 1  # the list's snapshot file already holds it
                return False
            per = self.changes.setdefault(list_id, {})
            if entry_id in per and per[entry_id][0] >= seq:
                self.ignored += 1  # a later change of this entry is already live
                return False
            per[entry_id] = (seq, table)
            if table is not None:
                self._new.setdefault(list_id, {})[entry_id] = (seq, table)
            self.accepted += 1
        log.info(
            "change_accepted",
            list_id=list_id,
            entry_id=entry_id,
            seq=seq,
            op=op,
            plate=plate_ref(plate_key(str(doc.get("plate") or ""))) if op == "upsert" else None,
        )
        return True

    def poll_once(self, timeout: float) -> int:
        """Read what has arrived; put the accepted changes live at once. Returns the messages read."""
        msgs = self.consumer.consume(500, timeout)
        changed = False
        for m in msgs:
            if m.error() is None:
                changed |= self.accept(m.value() or b"", m.partition() or 0, m.offset() or 0, m.topic())
        if changed:
            started = time.perf_counter()
            before = self.holder.current
            self.holder.swap(self.holder.current.files_version())  # wrap() puts every change on top
            with self._lock:
                new, self._new = self._new, {}
            if new and self.on_added is not None:
                added = build_changes(before.files_version(), new)
                if isinstance(added, ChangedIndex):
                    self.on_added(
                        added.overlay,
                        [(lid, eid) for lid, per in new.items() for eid in per],
                        before,
                        self.holder.current.version,
                    )
            from feblam import metrics

            current = self.holder.current
            metrics.index_live(current.version, ((i.list_id, i.entries) for i in current.lists), swapped=True)
            log.info(
                "changes_live",
                version=current.version,
                changes=sum(len(v) for v in self.changes.values()),
                seconds=round(time.perf_counter() - started, 4),
            )
        return len(msgs)

    def catch_up(self, timeout: float = 30.0) -> None:
        """Read the topic up to its end before the flow starts (a restart loses no change)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline and quiet < 3:
            quiet = quiet + 1 if self.poll_once(0.2) == 0 else 0
        log.info(
            "changes_caught_up", topic=self.topic, accepted=self.accepted, ignored=self.ignored, rejected=self.rejected
        )

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once(0.05)
            except KafkaException as exc:
                log.warning("change_feed_error", topic=self.topic, error=str(exc))
                time.sleep(1.0)
        self.consumer.close()


def start_change_feed(
    settings: Settings,
    holder: IndexHolder,
    stop: threading.Event,
    deadletters: Callable[[DeadLetter], None],
    on_added: AddedHook | None = None,
) -> ChangeFeed | None:
    """With ``[hotlists] changes_topic`` or ``list_changes_topics``: the feed, caught up and running."""
    if not settings.hotlists.change_topics():
        return None
    feed = ChangeFeed(settings, holder, stop, deadletters, on_added)
    feed.catch_up()
    feed.start()
    return feed
