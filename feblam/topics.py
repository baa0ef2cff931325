"""Every topic a configuration names, with its role and how it is kept; and ``feblam topics create``.

One definition: the job's and the gateway's start-up checks name a missing
topic by the role given here, and ``feblam topics create`` and ``feblam broker``
create the same list. Change topics are compacted (keyed ``list_id/entry_id``:
a restart reads every change still in force); every other topic is deleted by
retention, which the deployment sets (the audit topics longest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from feblam.config import Settings
from feblam.errors import FeblamError


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    role: str  # how a message names it: "source topic (sources, vendor vendor-a)"
    compacted: bool = False


def _deadletter(settings: Settings) -> list[Topic]:
    if settings.deadletter.topic and not settings.deadletter.path:
        return [Topic(settings.deadletter.topic, "dead-letter topic (deadletter.topic)")]
    return []


def job_topics(settings: Settings) -> list[Topic]:
    """Every topic ``feblam run`` reads or writes."""
    topics = [Topic(s.topic, f"source topic (sources, vendor {s.vendor})") for s in settings.sources]
    topics += [Topic(s.topic, f"sink topic (sinks {s.name!r})") for s in settings.sinks if s.topic]
    topics += _deadletter(settings)
    hot = settings.hotlists
    if hot.changes_topic:
        topics.append(Topic(hot.changes_topic, "change topic (hotlists.changes_topic)", compacted=True))
    for topic in hot.change_topics():
        if topic != hot.changes_topic:
            lists = sorted(lid for lid, t in hot.list_changes_topics.items() if t == topic)
            topics.append(
                Topic(topic, f"change topic of {', '.join(lists)} (hotlists.list_changes_topics)", compacted=True)
            )
    return topics


def gateway_topics(settings: Settings) -> list[Topic]:
    """Every topic ``feblam gateway`` reads or writes."""
    g = settings.gateway
    topics = [Topic(t, "hits topic (gateway.hits_topics)") for t in g.hits_topics]
    topics += [
        Topic(g.events_topic, "events topic (gateway.events_topic)"),
        Topic(g.actions_topic, "actions topic (gateway.actions_topic)"),
        Topic(g.access_topic, "access-audit topic (gateway.access_topic)"),
    ]
    return topics + _deadletter(settings)


def topics_of(settings: Settings) -> list[Topic]:
    """The job's topics, and the gateway's where the configuration has desks; each name once."""
    topics = job_topics(settings) if settings.sources else []
    if settings.desks:
        topics += gateway_topics(settings)
    seen: dict[str, Topic] = {}
    for t in topics:
        seen.setdefault(t.name, t)
    return list(seen.values())


def create_topics(
    settings: Settings, topics: Sequence[Topic], partitions: int, replication: int
) -> list[tuple[Topic, str]]:
    """Create what is missing (idempotent: a topic that exists is left alone, as it is); each topic with what
    was done: ``created`` or ``exists (N partitions)``."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    k = settings.kafka
    admin = AdminClient(k.client_config())
    try:
        md = admin.list_topics(timeout=k.start_timeout_seconds)
    except KafkaException as exc:
        reason = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
        msg = f"broker {k.brokers} (kafka.brokers) did not answer within {k.start_timeout_seconds:g} s: {reason}"
        raise FeblamError(msg) from None
    done: list[tuple[Topic, str]] = []
    new: list[Topic] = []
    for t in topics:
        have = md.topics.get(t.name)
        if have is not None and have.error is None and have.partitions:
            done.append((t, f"exists ({len(have.partitions)} partitions)"))
        else:
            new.append(t)
    if not new:
        return done
    futures = admin.create_topics(
        [
            NewTopic(
                t.name,
                num_partitions=partitions,
                replication_factor=replication,
                config={"cleanup.policy": "compact"} if t.compacted else {},
            )
            for t in new
        ],
        request_timeout=k.start_timeout_seconds,
    )
    for t in new:
        try:
            futures[t.name].result(timeout=k.start_timeout_seconds)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else exc
            if "already exists" in str(err).lower() or "TOPIC_ALREADY_EXISTS" in str(err):
                done.append((t, "exists (made meanwhile)"))
                continue
            reason = err.str() if hasattr(err, "str") else str(err)
            msg = f"{t.role} {t.name!r}: the broker {k.brokers} refused to create it: {reason}"
            raise FeblamError(msg) from None
        done.append((t, f"created ({partitions} partitions{', compacted' if t.compacted else ''})"))
    return done
