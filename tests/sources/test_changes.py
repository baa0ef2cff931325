"""The change feed against the bundled broker: a good change is live, a bad one is a dead letter, neither
holds the other back."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from feblam.config import settings_from_dict
from feblam.model import DeadLetter
from feblam.serde import parse_ts
from matchers.build import load_index
from matchers.index import IndexHolder
from sinks.deadletters import DeadletterWriter
from sources.broker import EmbeddedBroker
from sources.changes import ChangeFeed
from tests.support.hotlists import sample_hotlists
from tests.support.kafka import produce

pytestmark = pytest.mark.kafka
AT = parse_ts("2026-11-28T12:00:00Z")


def change(**kw: object) -> bytes:
    doc = {
        "list_id": "BE-STOLEN",
        "seq": 1_000_000,
        "op": "upsert",
        "entry_id": "LIVE-1",
        "plate": "9-LIV-999",
        "category": "stolen_vehicle",
        "priority": 1,
        "action": "intercept",
    }
    return orjson.dumps({**doc, **kw})


def test_a_good_change_goes_live_and_a_bad_one_is_a_dead_letter(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}.changes"
    broker.create_topics([topic], partitions=1)
    hot = sample_hotlists(tmp_path)
    settings = settings_from_dict(
        {
            "kafka": {"brokers": broker.address, "group_id": topic_prefix},
            "hotlists": {"dir": str(hot), "changes_topic": topic, "shared_build": False},
            "deadletter": {"path": str(tmp_path / "dlq.jsonl")},
        }
    )
    produce(
        broker.address,
        topic,
        [
            change(list_id="NO-SUCH-LIST"),
            change(),
            change(entry_id="LIVE-2", priority=9),
            change(entry_id="LIVE-3", seq=9 * 10**18),
        ],
    )
    holder = IndexHolder(load_index(settings.hotlists))
    before = holder.current.version
    dead: list[DeadLetter] = []
    feed = ChangeFeed(settings, holder, threading.Event(), dead.append)
    feed.catch_up(timeout=20)
    assert [m.entry_id for m in holder.current.probe("9LIV999", None, AT)] == ["LIVE-1"]
    assert holder.current.version != before and holder.current.files_version().version == before
    assert (feed.accepted, feed.rejected) == (1, 3)
    assert [(d.vendor, d.offset) for d in dead] == [("change", 0), ("change", 2), ("change", 3)]
    assert "NO-SUCH-LIST" in dead[0].error and "priority" in dead[1].error and "beyond" in dead[2].error
    feed.consumer.close()


def test_the_feeds_dead_letters_go_where_the_flows_go(tmp_path: Path) -> None:
    settings = settings_from_dict({"deadletter": {"path": str(tmp_path / "dlq.jsonl")}})
    DeadletterWriter(settings).write(DeadLetter("hotlist.changes", "change: bad", b"{", "change", None, 0, 3))
    (doc,) = [orjson.loads(line) for line in (tmp_path / "dlq.jsonl").read_bytes().splitlines()]
    assert (doc["source"], doc["error"], doc["offset"], doc["vendor"]) == (
        "hotlist.changes",
        "change: bad",
        3,
        "change",
    )


def test_a_list_bound_to_its_own_topic_takes_changes_from_that_topic_only(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """So that the broker's ACLs work per source: the SIS feed may write to its topic, and only SIS changes
    count there; the shared topic cannot change SIS."""
    shared, sis = f"{topic_prefix}.changes", f"{topic_prefix}.changes-sis"
    broker.create_topics([shared, sis], partitions=1)
    settings = settings_from_dict(
        {
            "kafka": {"brokers": broker.address, "group_id": topic_prefix},
            "hotlists": {
                "dir": str(sample_hotlists(tmp_path)),
                "changes_topic": shared,
                "list_changes_topics": {"SIS": sis},
                "shared_build": False,
            },
            "deadletter": {"path": str(tmp_path / "dlq.jsonl")},
        }
    )
    assert settings.hotlists.change_topics() == [shared, sis]
    sis_change = {"list_id": "SIS", "category": "sis_alert", "action": "observe"}
    produce(broker.address, shared, [change(**sis_change, entry_id="SIS-VIA-SHARED"), change(entry_id="STOLEN-OK")])
    produce(broker.address, sis, [change(entry_id="STOLEN-VIA-SIS"), change(**sis_change, entry_id="SIS-OK")])
    holder = IndexHolder(load_index(settings.hotlists))
    dead: list[DeadLetter] = []
    feed = ChangeFeed(settings, holder, threading.Event(), dead.append)
    feed.catch_up(timeout=20)
    assert sorted(m.entry_id for m in holder.current.probe("9LIV999", None, AT)) == ["SIS-OK", "STOLEN-OK"]
    assert sorted((d.source, d.offset) for d in dead) == [(shared, 0), (sis, 0)]
    errors = {d.source: d.error for d in dead}
    assert f"list SIS takes changes from topic {sis!r} only" in errors[shared]
    assert f"topic {sis!r} is the change topic of SIS only" in errors[sis]
    feed.consumer.close()
