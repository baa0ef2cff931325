"""What the gateway keeps beside Bytewax's state, in the shared recovery directory: one SQLite file.

- **the desks' change feeds** (:mod:`gateway.journal`): every case change with
  an audit event, numbered per desk, so that an API client or a webhook resumes
  from the number it has (``Last-Event-ID``) and a change the flow repeats after
  a crash (the same ``event_id``) is kept once;
- **sessions** of the console, by the SHA-256 of their token (never the token),
  so that a standby that takes over keeps every dispatcher signed in;
- **idempotency keys** of the API's actions, with the answer given;
- **webhook cursors**: the last change each desk's webhook delivered.

Only the active gateway writes (it holds the recovery lock, :mod:`flows.service`);
a standby opens the file when it takes over. SQLite's WAL journal keeps each
write whole across a crash.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Where in the recovery directory: a folder of its own, because Bytewax opens every ``*.sqlite3`` beside its
#: partitions, and a second connection of one process that closes drops SQLite's locks and write-ahead log.
FILE = "gateway-store/store.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    desk TEXT NOT NULL, seq INTEGER NOT NULL, event_id TEXT NOT NULL, case_id TEXT NOT NULL,
    at REAL NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (desk, seq), UNIQUE (desk, event_id)
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY, user TEXT NOT NULL, desk TEXT NOT NULL, language TEXT NOT NULL,
    csrf TEXT NOT NULL, created REAL NOT NULL, last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    client TEXT NOT NULL, key TEXT NOT NULL, request TEXT NOT NULL, status INTEGER NOT NULL,
    body BLOB NOT NULL, at REAL NOT NULL, PRIMARY KEY (client, key)
);
CREATE TABLE IF NOT EXISTS webhook_cursors (desk TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""


def token_hash(token: str) -> str:
    """How a session or client token is kept and compared: its SHA-256 (the token is 32 random bytes)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Change:
    """One numbered change of one desk's feed (``body``: its JSON)."""

    desk: str
    seq: int
    event_id: str
    case_id: str
    body: bytes
    at: float = 0.0  # when it was kept (Unix time)


@dataclass(frozen=True, slots=True)
class StoredSession:
    token_sha256: str
    user: str
    desk: str
    language: str
    csrf: str
    created: float
    last_seen: float


class Store:
    """The gateway's SQLite file, shared by the console's threads and the flow's (one connection, one lock)."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---------------------------------------------------------------- change feeds

    def heads(self) -> dict[str, int]:
        """The last number of every desk's feed."""
        with self._lock:
            return dict(self._db.execute("SELECT desk, MAX(seq) FROM changes GROUP BY desk").fetchall())

    def append(self, changes: Iterable[tuple[str, str, str, bytes]], heads: dict[str, int]) -> list[Change]:
        """Number and keep ``(desk, event_id, case_id, body)`` changes after ``heads`` (updated in place); a change
        whose event the desk's feed already has (the flow repeated it after a restart) is kept once: not returned."""
        kept: list[Change] = []
        now = time.time()
        heads_after = dict(heads)
        with self._tx() as db:
            for desk, eid, case_id, body in changes:
                seq = heads_after.get(desk, 0) + 1
                # a repeated event (same desk and event_id) is ignored; any other conflict (a number taken) raises
                cur = db.execute(
                    "INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (desk, event_id) DO NOTHING",
                    (desk, seq, eid, case_id, now, body),
                )
                if not cur.rowcount:
                    continue
                heads_after[desk] = seq
                kept.append(Change(desk, seq, eid, case_id, body, now))
        heads.update(heads_after)  # only once the transaction is committed
        return kept

    def since(self, desk: str, after: int, limit: int) -> list[Change]:
        """Up to ``limit`` changes of one desk numbered after ``after``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, case_id, body, at FROM changes WHERE desk = ? AND seq > ? ORDER BY seq LIMIT ?",
                (desk, after, limit),
            ).fetchall()
        return [Change(desk, seq, eid, cid, body, at) for seq, eid, cid, body, at in rows]

    def first(self, desk: str) -> int | None:
        """The oldest number a desk's feed still keeps (None: empty)."""
        with self._lock:
            row = self._db.execute("SELECT MIN(seq) FROM changes WHERE desk = ?", (desk,)).fetchone()
        return row[0]

    def prune(self, older_than: float) -> int:
        """Forget changes kept before ``older_than`` (a time), except each desk's newest; the number dropped."""
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM changes WHERE at < ? AND seq < (SELECT MAX(seq) FROM changes c WHERE c.desk = changes.desk)",
                (older_than,),
            )
            db.execute("DELETE FROM idempotency WHERE at < ?", (older_than,))
            return cur.rowcount

    # ---------------------------------------------------------------- sessions

    def save_session(self, s: StoredSession) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (s.token_sha256, s.user, s.desk, s.language, s.csrf, s.created, s.last_seen),
            )

    def session(self, token_sha256: str) -> StoredSession | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM sessions WHERE token_sha256 = ?", (token_sha256,)).fetchone()
        return StoredSession(*row) if row else None

    def touch_session(self, token_sha256: str, last_seen: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE sessions SET last_seen = ? WHERE token_sha256 = ?", (last_seen, token_sha256))

    def drop_session(self, token_sha256: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE token_sha256 = ?", (token_sha256,))

    def sweep_sessions(self, idle_before: float, created_before: float) -> int:
        with self._tx() as db:
            return db.execute(
                "DELETE FROM sessions WHERE last_seen < ? OR created < ?", (idle_before, created_before)
            ).rowcount

    # ---------------------------------------------------------------- idempotency

    def answer(self, client: str, key: str) -> tuple[str, int, bytes] | None:
        """The request digest, status and body an idempotency key was answered with, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT request, status, body FROM idempotency WHERE client = ? AND key = ?", (client, key)
            ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def remember(self, client: str, key: str, request: str, status: int, body: bytes) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                (client, key, request, status, body, time.time()),
            )

    # ---------------------------------------------------------------- webhook cursors

    def cursor(self, desk: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM webhook_cursors WHERE desk = ?", (desk,)).fetchone()
        return row[0] if row else 0

    def set_cursor(self, desk: str, seq: int) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO webhook_cursors VALUES (?, ?)", (desk, seq))
