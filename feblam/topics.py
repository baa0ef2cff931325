"""Every topic a configuration names, with its role and how it is kept; and ``feblam topics create``.

One definition: the job's and the gateway's start-up checks
(:func:`require_topics`) name a missing topic by the role given here, and
``feblam topics create`` and ``feblam broker`` create the same list. Change topics are compacted (keyed ``list_id/entry_id``:
a restart reads every change still in force); every other topic is deleted by
retention, which the deployment sets (the audit topics longest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    for topic in hot.change_topics():
        role = (
            "change topic (hotlists.changes_topic)"
            if topic == hot.changes_topic
            else f"change topic of {', '.join(hot.lists_of(topic))} (hotlists.list_changes_topics)"
        )
        topics.append(Topic(topic, role, compacted=True))
    return topics


def gateway_topics(settings: Settings) -> list[Topic]:
    """Every topic ``feblam gateway`` reads or writes."""
    g = settings.gateway
    topics = [Topic(t, "hits topic (gateway.hits_topics)") for t in g.hits_topics]
    topics += [
        Topic(g.events_topic, "events topic (gateway.events_topic)"),
        Topic(g.actions_topic, "actions topic (gateway.actions_topic)"),
        Topic(g.access_topic, "access-audit topic (gateway.access_topic)"),
        Topic(g.quality_topic, "list-quality topic (gateway.quality_topic)"),
    ]
    if any(d.webhook for d in settings.desks):
        topics.append(Topic(g.webhook_deadletter_topic, "webhook dead-letter topic (gateway.webhook_deadletter_topic)"))
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


def _metadata(settings: Settings) -> Any:
    """The cluster's topic metadata, or one line: the broker did not answer within the start timeout."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    k = settings.kafka
    try:
        return AdminClient(k.client_config()).list_topics(timeout=k.start_timeout_seconds)
    except KafkaException as exc:
        reason = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
        msg = (
            f"broker {k.brokers} (kafka.brokers) did not answer within {k.start_timeout_seconds:g} s "
            f"(kafka.start_timeout_seconds): {reason}"
        )
        raise FeblamError(msg) from None


def require_topics(settings: Settings, topics: Sequence[Topic]) -> None:
    """Before a start: the broker answers and every topic exists (listed, so nothing is auto-created)."""
    md = _metadata(settings)
    for t in topics:
        have = md.topics.get(t.name)
        if have is None or have.error is not None or not have.partitions:
            msg = (
                f"{t.role} {t.name!r} does not exist on {settings.kafka.brokers}; "
                "create it first (it is never auto-created)"
            )
            raise FeblamError(msg)


def create_topics(
    settings: Settings, topics: Sequence[Topic], partitions: int, replication: int
) -> list[tuple[Topic, str]]:
    """Create what is missing (idempotent: a topic that exists is left alone, as it is); each topic with what
    was done: ``created`` or ``exists (N partitions)``."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    k = settings.kafka
    md = _metadata(settings)
    admin = AdminClient(k.client_config())
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
