"""``feblam change``: one hotlist change, checked exactly as the job will take it, then published.

The change goes to its list's change topic (``[hotlists] list_changes_topics``
or ``changes_topic``), keyed ``list_id/entry_id`` as the compacted topic wants.
Without ``--seq`` its sequence number is one above both the list's latest
snapshot file and every change of the list already on the topic, so the job
takes it (a lower one would be ignored as already in the files, or as older
than a change already live): the operator never has to know the sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from feblam.config import Settings
from feblam.errors import FeblamError
from feblam.kafka import Deliveries, producer_config, read_to_end
from matchers.hotdir import list_dirs
from sources.changes import check_change, latest_file_seq


def _on_topic(settings: Settings, topic: str, list_id: str) -> dict[str, int]:
    """The highest ``seq`` of each entry of ``list_id`` on ``topic`` (read from its beginning to its end)."""
    k = settings.kafka
    seqs: dict[str, int] = {}
    for value in read_to_end(
        k,
        [topic],
        since_ms=None,
        timeout=max(10.0, k.start_timeout_seconds),
        group=f"{k.group_id}-change-tool",
        what=f"--list {list_id}: finding the list's last seq",
    ):
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and doc.get("list_id") == list_id and isinstance(doc.get("seq"), int):
            entry = str(doc.get("entry_id", "")).strip()
            seqs[entry] = max(seqs.get(entry, -1), doc["seq"])
    return seqs


def publish_change(settings: Settings, doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Check ``doc`` (``seq`` None: the next one) as the job will, publish it; the topic and the change sent."""
    from confluent_kafka import Producer

    hot = settings.hotlists
    list_id, entry_id = str(doc["list_id"]), str(doc["entry_id"]).strip()
    lists = {d.name for d in list_dirs(hot.dir)}
    if list_id not in lists:
        msg = (
            f"--list {list_id}: not a list folder of {hot.dir} (hotlists.dir has {', '.join(sorted(lists)) or 'none'})"
        )
        raise FeblamError(msg)
    topic = hot.change_topic_of(list_id)
    if not topic:
        msg = (
            f"--list {list_id}: no change topic; set hotlists.changes_topic (or hotlists.list_changes_topics.{list_id})"
        )
        raise FeblamError(msg)
    in_files = latest_file_seq(Path(hot.dir), list_id)
    on_topic = _on_topic(settings, topic, list_id)
    if doc.get("seq") is None:
        doc = {**doc, "seq": max(in_files, *on_topic.values(), -1) + 1}
    _, seq, _, _, _ = check_change(doc, topic, hot, lists, hot.dir)
    if seq <= in_files:
        msg = f"--seq {seq}: not above the list's latest snapshot file ({in_files}); the job would ignore it"
        raise FeblamError(msg)
    if seq <= on_topic.get(entry_id, -1):
        msg = f"--seq {seq}: entry {entry_id} already has seq {on_topic[entry_id]} on {topic}; the job would ignore it"
        raise FeblamError(msg)
    producer = Producer(producer_config(settings.kafka))
    deliveries = Deliveries(settings.kafka, topic, "change")
    producer.produce(topic, orjson.dumps(doc), key=f"{list_id}/{entry_id}".encode(), on_delivery=deliveries)
    deliveries.settle(producer, 1)
    return topic, doc
