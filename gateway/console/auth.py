"""Who may use the console: users and their argon2id hashes, sessions, CSRF tokens, login throttling.

- Passwords are checked against ``[[desks]] users`` hashes with argon2id
  (argon2-cffi: the reference implementation, a slow salted hash); an unknown
  user name costs the same time as a known one.
- A session is a random token in an ``HttpOnly``, ``SameSite=Strict`` cookie
  (``Secure`` unless ``[gateway] secure_cookies = false``), kept server-side with
  its user, desk and CSRF token (in the recovery directory's store by the hash of
  its token, so that it survives a takeover); it ends after
  ``session_idle_minutes`` unused, ``session_max_hours`` after sign-in, and at logout.
- ``login_max_failures`` failed logins of one user name from one address within
  ``login_window_seconds`` block that pair until the window has passed (ten
  times as many block the address): a stranger never locks a user out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from feblam.config import DeskSettings, GatewaySettings
from gateway.store import Store, StoredSession, token_hash

_hasher = PasswordHasher()
#: Verified when the user name is unknown, so that a wrong name costs what a wrong password does.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """The argon2id hash of a password, for ``password_hash`` in ``[[desks]] users``."""
    return _hasher.hash(password)


@dataclass(frozen=True, slots=True)
class User:
    name: str
    desk: str
    language: str = ""  # the console's language for this user; empty: the browser's


class Users:
    """The console's users, from the desks of the settings."""

    def __init__(self, desks: Sequence[DeskSettings]) -> None:
        self._by_name = {u.name: (User(u.name, d.name, u.language), u.password_hash) for d in desks for u in d.users}

    def verify(self, name: str, password: str) -> User | None:
        """The user, when the password is theirs (slow by design: call it off the event loop)."""
        known = self._by_name.get(name)
        try:
            _hasher.verify(known[1] if known else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return known[0] if known else None


@dataclass(slots=True)
class Session:
    token: str
    user: User
    csrf: str
    last_seen: float = field(default_factory=time.time)
    created: float = field(default_factory=time.time)
    #: When ``last_seen`` was last written to the store (it is written at most every TOUCH_SECONDS).
    stored: float = 0.0


#: How stale a session's last use may be in the store (a standby that takes over sees it this late at most).
TOUCH_SECONDS = 30.0


class Sessions:
    """Signed-in sessions, server-side: the cookie holds only a random token.

    With a :class:`~gateway.store.Store`, each session is also kept there under
    the SHA-256 of its token (never the token), so a standby that takes over the
    recovery directory knows every session: nobody is signed out by a takeover.
    """

    def __init__(self, idle_seconds: float, max_seconds: float = 12 * 3600.0, store: Store | None = None) -> None:
        self.idle = idle_seconds
        self.max = max_seconds
        self.store = store
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self.idle or now - session.created > self.max

    def create(self, user: User) -> Session:
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32))
        now = session.stored = session.created
        with self._lock:
            for token in [t for t, s in self._sessions.items() if self._expired(s, now)]:
                del self._sessions[token]  # swept at each sign-in: the table holds live sessions only
            self._sessions[session.token] = session
        if self.store is not None:
            self.store.sweep_sessions(now - self.idle, now - self.max)
            self.store.save_session(
                StoredSession(token_hash(session.token), user.name, user.desk, user.language, session.csrf, now, now)
            )
        return session

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _load(self, token: str) -> Session | None:
        """A session another gateway process signed in (the one this standby took over from)."""
        if self.store is None:
            return None
        kept = self.store.session(token_hash(token))
        if kept is None:
            return None
        user = User(kept.user, kept.desk, kept.language)
        return Session(token, user, kept.csrf, kept.last_seen, kept.created, kept.last_seen)

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie's token (refreshing its idle time), or None."""
        if not token or len(token) > 128:
            return None
        now = time.time()
        with self._lock:
            session = self._sessions.get(token)
        if session is None:
            session = self._load(token)
            if session is None:
                return None
            with self._lock:
                session = self._sessions.setdefault(token, session)
        if self._expired(session, now):
            self.drop(token)
            return None
        session.last_seen = now
        if self.store is not None and now - session.stored > TOUCH_SECONDS:
            session.stored = now
            self.store.touch_session(token_hash(token), now)
        return session

    def alive(self, session: Session) -> bool:
        """Whether a session is still signed in (an event stream checks this without refreshing it)."""
        with self._lock:
            return self._sessions.get(session.token) is session and not self._expired(session, time.time())

    def drop(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)
        if self.store is not None:
            self.store.drop_session(token_hash(token))


def csrf_ok(expected: str, given: str | None) -> bool:
    """A request's CSRF token is the session's (compared in constant time)."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class LoginThrottle:
    """Failed logins per (user name, client address) and per address, in a sliding window.

    A pair is refused after ``login_max_failures``, an address after ten times
    as many (many names tried from one place): a stranger elsewhere can never
    lock a dispatcher out. The table is bounded (:data:`MAX_KEYS`), swept of
    what the window has forgotten.
    """

    MAX_KEYS = 100_000

    def __init__(self, settings: GatewaySettings) -> None:
        self.max = settings.login_max_failures
        self.window = settings.login_window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(name: str, client: str) -> tuple[str, str]:
        """The throttle's keys of a sign-in attempt."""
        return f"pair:{name}\x1f{client}", f"addr:{client}"

    def _limit(self, key: str) -> int:
        return self.max * 10 if key.startswith("addr:") else self.max

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> float:
        """Seconds until these keys may try again (0: not blocked)."""
        now = time.monotonic()
        with self._lock:
            waits = [
                self.window - (now - t[0])
                for k in keys
                if k in self._failures and len(t := self._recent(k, now)) >= self._limit(k)
            ]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > self.MAX_KEYS:  # bounded: forget what the window forgot, then the oldest
                for key in [k for k in self._failures if not self._recent(k, now)]:
                    del self._failures[key]
                while len(self._failures) > self.MAX_KEYS:
                    del self._failures[next(iter(self._failures))]

    def succeeded(self, name: str, client: str) -> None:
        with self._lock:
            self._failures.pop(self.keys(name, client)[0], None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._failures)
