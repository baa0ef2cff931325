"""A desk's webhook: every change of its cases POSTed to its system, signed, in order, retried, never lost.

Each desk with ``[desks.webhook]`` has a thread that follows the desk's feed
(:mod:`gateway.journal`) from the last change it delivered (kept in the store,
so a restart or a takeover resumes there) and POSTs each change, one at a time
and in the feed's order (so in order per case), as the JSON the API streams.

Every request is signed the way the well-known webhook schemes do it:

- ``Feblam-Timestamp``: the Unix time of the attempt;
- ``Feblam-Signature: v1=<hex>``: HMAC-SHA256 under the desk's secret of
  ``<timestamp>.<body>``; a receiver recomputes it (:func:`verify`), compares in
  constant time and refuses a timestamp more than five minutes off (a replay);
- ``Feblam-Event-Id``: ``<desk>:<seq>``; a receiver keeps the last ``seq`` it
  took and ignores one it has (a delivery retried after a lost answer).

An answer other than 2xx, a timeout or a refused connection is retried after
``backoff_seconds``, doubled each time; after ``max_attempts`` the change is
kept for replay on ``[gateway] webhook_deadletter_topic`` (with the reason),
logged as ``webhook_deadlettered`` and counted, and the thread goes on with the
next change. The receiver acts on a case through the API (:mod:`gateway.api`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from feblam.config import DeskSettings, Settings, WebhookSettings
from feblam.errors import FeblamError
from feblam.logs import get_logger
from gateway import metrics
from gateway.actions import long_enough, read_secret
from gateway.journal import Journal, message
from gateway.store import Change, Store

log = get_logger(__name__)
#: The longest wait between two attempts of one delivery.
MAX_BACKOFF = 60.0
#: How far a receiver should accept a timestamp from its own clock.
TOLERANCE_SECONDS = 300


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Feblam-Signature`` of one delivery."""
    return "v1=" + hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def verify(
    secret: bytes,
    timestamp: str,
    signed: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: the signature is the desk's over this timestamp and body, and the timestamp is recent."""
    if not timestamp.isdigit() or abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signed.encode(), signature(secret, int(timestamp), body).encode())


def load_secret(desk: DeskSettings, environ: Mapping[str, str] | None = None) -> bytes:
    """A desk's webhook secret, from the variable ``secret_env`` names or from ``secret_file``; one clear line
    naming the desk and the key when it is missing or short."""
    hook = desk.webhook
    if hook is None:
        msg = f"desks ({desk.name}): no webhook"
        raise FeblamError(msg)
    env = os.environ if environ is None else environ
    where = f"desks ({desk.name}).webhook"
    if hook.secret_env:
        secret, origin = env.get(hook.secret_env, "").encode(), f"{where}.secret_env: {hook.secret_env}"
        if not secret:
            msg = f"{origin} is not set; the webhook's signing secret comes from it"
            raise FeblamError(msg)
    else:
        origin = f"{where}.secret_file: {hook.secret_file}"
        secret = read_secret(Path(hook.secret_file), origin, "the webhook's signing secret")
    return long_enough(secret, origin, "the signing secret")


class Webhook(threading.Thread):
    """The delivery thread of one desk's webhook."""

    def __init__(
        self,
        desk: str,
        hook: WebhookSettings,
        secret: bytes,
        journal: Journal,
        store: Store,
        deadletter: Callable[[bytes, bytes], None],
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"webhook-{desk}", daemon=True)
        self.desk, self.hook, self.secret = desk, hook, secret
        self.journal, self.store = journal, store
        self.deadletter = deadletter
        self.stop_event = stop
        self.delivered = 0

    def run(self) -> None:
        import httpx2

        cursor = self.store.cursor(self.desk)
        log.info("webhook_following", desk=self.desk, url=self.hook.url, after=cursor)
        with httpx2.Client(timeout=self.hook.timeout_seconds, follow_redirects=False) as http:
            while not self.stop_event.is_set():
                batch = self.journal.since(self.desk, cursor, 100)
                if batch is None:
                    cursor = self._skip(cursor)
                    continue
                metrics.WEBHOOK_LAG.labels(self.desk).set(self.journal.head(self.desk) - cursor)
                if not batch:
                    self.journal.wait(self.desk, cursor, 1.0)
                    continue
                for change in batch:
                    if not self._deliver(http, change):
                        return  # stopping: this change is delivered again at the next start
                    cursor = change.seq
                    self.store.set_cursor(self.desk, cursor)

    def _skip(self, cursor: int) -> int:
        """The feed cannot continue from ``cursor``: the store was replaced (beyond its head), or the changes
        were forgotten before this webhook could deliver them (retention). Said, never silent."""
        head, first = self.journal.head(self.desk), self.store.first(self.desk)
        after = head if cursor > head or first is None else first - 1
        log.error(
            "webhook_gap",
            desk=self.desk,
            cursor=cursor,
            resumes_after=after,
            reason="the desk's feed no longer holds the changes after the webhook's cursor",
        )
        self.store.set_cursor(self.desk, after)
        return after

    def _deliver(self, http: Any, change: Change) -> bool:
        """POST one change until it is taken or ``max_attempts`` failed (then kept for replay); False: stopping."""
        body = message(change)
        wait = self.hook.backoff_seconds
        error = ""
        for attempt in range(1, self.hook.max_attempts + 1):
            ts = int(time.time())
            headers = {
                "content-type": "application/json",
                "feblam-timestamp": str(ts),
                "feblam-signature": signature(self.secret, ts, body),
                "feblam-event-id": f"{self.desk}:{change.seq}",
                "feblam-attempt": str(attempt),
                "user-agent": "feblam-gateway-webhook",
            }
            try:
                answer = http.post(self.hook.url, content=body, headers=headers)
                if 200 <= answer.status_code < 300:
                    self.delivered += 1
                    metrics.WEBHOOKS.labels(self.desk, "delivered").inc()
                    metrics.WEBHOOK_SECONDS.observe(max(0.0, time.time() - change.at))
                    return True
                error = f"HTTP {answer.status_code}"
            except Exception as exc:  # noqa: BLE001 - whatever the receiver does, the change is retried, then kept
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
            metrics.WEBHOOKS.labels(self.desk, "failed").inc()
            log.warning("webhook_failed", desk=self.desk, seq=change.seq, attempt=attempt, error=error)
            if attempt < self.hook.max_attempts and self.stop_event.wait(wait):
                return False
            wait = min(wait * 2, MAX_BACKOFF)
        return self._keep(change, body, error)

    def _keep(self, change: Change, body: bytes, error: str) -> bool:
        """Keep a change its webhook did not take for replay; retried until the broker has it (False: stopping)."""
        doc = {
            "desk": self.desk,
            "seq": change.seq,
            "event_id": change.event_id,
            "case_id": change.case_id,
            "url": self.hook.url,
            "attempts": self.hook.max_attempts,
            "error": error,
            "change": orjson.Fragment(body),
        }
        while True:
            try:
                self.deadletter(orjson.dumps(doc), f"{self.desk}:{change.case_id}".encode())
                break
            except Exception as exc:  # noqa: BLE001 - not kept yet: never go on without it
                log.error("webhook_deadletter_failed", desk=self.desk, seq=change.seq, error=str(exc)[:200])
                if self.stop_event.wait(5.0):
                    return False
        metrics.WEBHOOKS.labels(self.desk, "deadlettered").inc()
        log.error(
            "webhook_deadlettered",
            desk=self.desk,
            seq=change.seq,
            case_id=change.case_id,
            attempts=self.hook.max_attempts,
            error=error,
            reason="kept on the webhook dead-letter topic for replay",
        )
        return True


class Webhooks:
    """Every desk's webhook thread, started when this gateway is the active one."""

    def __init__(self, settings: Settings, journal: Journal, store: Store) -> None:
        self.settings = settings
        self.journal, self.store = journal, store
        self.secrets = {d.name: load_secret(d) for d in settings.desks if d.webhook is not None}
        self._stop = threading.Event()
        self._threads: list[Webhook] = []
        self._producer: Any = None

    def start(self) -> Webhooks:
        if not self.secrets:
            return self
        from feblam.kafka import ConfirmedProducer

        g = self.settings.gateway
        self._producer = ConfirmedProducer(
            self.settings.kafka, g.webhook_deadletter_topic, "webhook-deadletters", "webhook dead letter"
        )
        for d in self.settings.desks:
            if d.webhook is not None:
                w = Webhook(
                    d.name, d.webhook, self.secrets[d.name], self.journal, self.store, self._producer.send, self._stop
                )
                w.start()
                self._threads.append(w)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.journal.wake_all()
        for t in self._threads:
            t.join(10.0)
        if self._producer is not None:
            self._producer.close()
