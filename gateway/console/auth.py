"""Who may use the console: users and their argon2id hashes, sessions, CSRF tokens, login throttling.

- Passwords are checked against ``[[desks]] users`` hashes with argon2id
  (argon2-cffi: the reference implementation, a slow salted hash); an unknown
  user name costs the same time as a known one.
- A session is a random token in an ``HttpOnly``, ``SameSite=Strict`` cookie
  (``Secure`` unless ``[gateway] secure_cookies = false``), kept server-side with
  its user, desk and CSRF token; it ends after ``session_idle_minutes`` unused,
  and at logout.
- ``login_max_failures`` failed logins of one user name, or from one address,
  within ``login_window_seconds`` block further attempts of that name or address
  until the window has passed.
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


class Users:
    """The console's users, from the desks of the settings."""

    def __init__(self, desks: Sequence[DeskSettings]) -> None:
        self._by_name = {u.name: (User(u.name, d.name), u.password_hash) for d in desks for u in d.users}

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
    last_seen: float = field(default_factory=time.monotonic)


class Sessions:
    """Signed-in sessions, server-side: the cookie holds only a random token."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle = idle_seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: User) -> Session:
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32))
        with self._lock:
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie's token (refreshing its idle time), or None."""
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if now - session.last_seen > self.idle:
                del self._sessions[token]
                return None
            session.last_seen = now
            return session

    def alive(self, session: Session) -> bool:
        """Whether a session is still signed in (an event stream checks this without refreshing it)."""
        with self._lock:
            return self._sessions.get(session.token) is session and time.monotonic() - session.last_seen <= self.idle

    def drop(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)


def csrf_ok(expected: str, given: str | None) -> bool:
    """A request's CSRF token is the session's (compared in constant time)."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class LoginThrottle:
    """Failed logins per user name and per client address, in a sliding window."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.max = settings.login_max_failures
        self.window = settings.login_window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> float:
        """Seconds until these keys may try again (0: not blocked)."""
        now = time.monotonic()
        with self._lock:
            waits = [self.window - (now - t[0]) for t in (self._recent(k, now) for k in keys) if len(t) >= self.max]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # bounded: forget the quiet keys
                for key in [k for k, t in self._failures.items() if not t]:
                    del self._failures[key]

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{name}", None)
