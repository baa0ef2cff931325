"""The access audit (DESIGN 12): every sign-in, failed sign-in, sign-out, each hit shown to a user and each
refused request, as one JSON event on ``[gateway] access_topic``, kept apart from the case events.

An event names the user (or the name typed), the desk, the client address, a
reference of the session (a keyed hash of its token, never the token) and the
hit ids shown; never a plate. The console never waits for the broker: an event
is handed to the producer and the request goes on; one the producer cannot take
(its queue full, the broker away for long) is counted
(``feblam_gateway_access_lost_total``) and logged, so a gap in the trail is seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import Counter

from feblam.config import KafkaSettings
from feblam.kafka import ServedProducer
from feblam.logs import get_logger
from feblam.metrics import GATEWAY_REGISTRY
from feblam.serde import format_ts

log = get_logger(__name__)
LOST = Counter(
    "feblam_gateway_access_lost",
    "Access-audit events the producer could not take (a gap in the access trail)",
    registry=GATEWAY_REGISTRY,
)
#: The kinds of access events.
KINDS = ("signin", "signin_failed", "signin_blocked", "signout", "shown", "refused")


def session_ref(token: str) -> str:
    """A reference of a session for the trail: the same for every event of one session, never its token."""
    return hashlib.blake2b(token.encode(), digest_size=8, person=b"feblam-session").hexdigest() if token else ""


def access_event(
    kind: str,
    *,
    user: str | None,
    desk: str | None,
    client: str,
    session: str = "",
    hit_ids: Iterable[str] = (),
    path: str = "",
    reason: str | None = None,
    at: datetime | None = None,
    via: str = "console",
) -> dict[str, Any]:
    """One event of the access trail (``session``: the session's token, kept only as :func:`session_ref`;
    ``via``: ``console`` for a person in the browser, ``api`` for a desk's system, ``user`` then its client name)."""
    return {
        "via": via,
        "kind": kind,
        "at": format_ts(at or datetime.now(UTC)),
        "user": user[:64] if user else user,
        "desk": desk,
        "client": client,
        "session": session_ref(session),
        "hit_ids": list(hit_ids),
        "path": path[:200],
        "reason": reason,
    }


class AccessTrail:
    """The producer of the access events, with a thread serving its delivery reports."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self._served = ServedProducer(settings, "access-trail", **{"queue.buffering.max.messages": 100_000})

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            LOST.inc()
            log.error("access_event_lost", topic=self.topic, error=str(err))

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            key = (event.get("user") or event.get("client") or "").encode()
            self._served.producer.produce(self.topic, orjson.dumps(event), key=key, on_delivery=self._delivered)
        except BufferError:
            LOST.inc()
            log.error("access_event_lost", topic=self.topic, kind=event.get("kind"), reason="producer queue full")

    def close(self, timeout: float = 5.0) -> None:
        self._served.close(timeout)
