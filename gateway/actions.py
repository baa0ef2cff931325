"""What a desk does to a case, as one message on ``[gateway] actions_topic``: one type, one encoding.

The console builds a :class:`DeskAction` and produces :func:`encode_action`,
signed with HMAC-SHA256 under the gateway's action key (:func:`load_action_key`:
from the environment, a file, or the recovery directory; never the
configuration text); the gateway's flow reads it back with :func:`decode_action`
and takes it only when :func:`signed` holds, so that a producer on the actions
topic without the key acts for nobody. Whether an action may be applied to a
case is decided by :func:`gateway.cases.refusal`, for both.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import orjson

from feblam.config import Settings
from feblam.errors import FeblamError
from feblam.serde import format_ts, parse_ts
from gateway.schema import decode_message

ActionKind = Literal["acknowledge", "close"]
#: The longest reason a desk may give with an outcome (what was checked, what was wrong).
MAX_REASON = 500
ACTION_KINDS: tuple[str, ...] = typing.get_args(ActionKind)


@dataclass(frozen=True, slots=True)
class DeskAction:
    """What a desk user did in the console (one message on ``actions_topic``)."""

    hit_id: str
    desk: str
    user: str
    kind: ActionKind
    at: datetime
    outcome: str | None = None
    #: Why (what was checked, what was wrong): required with the outcomes ``false_read`` and ``not_found``.
    reason: str | None = None
    #: The case's vehicle (:func:`gateway.cases.vehicle_of`, a keyed hash): where the flow keeps the case.
    vehicle: str = ""


#: The environment variable that carries the action key (hex or text, 32 bytes or more).
KEY_ENV = "FEBLAM_GATEWAY_ACTION_KEY"
KEY_MIN_BYTES = 32


def load_action_key(settings: Settings, environ: Mapping[str, str] | None = None) -> bytes:
    """The action key: ``FEBLAM_GATEWAY_ACTION_KEY``, else ``[gateway] action_key_file``, else ``action.key`` in
    the recovery directory (made on first start, readable by this user only); a short key is one clear error."""
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        key, origin = env[KEY_ENV].encode(), KEY_ENV
    else:
        path = Path(settings.gateway.action_key_file) if settings.gateway.action_key_file else None
        origin = "gateway.action_key_file"
        if path is None:
            path = Path(settings.recovery.dir) / "action.key"
            origin = f"{path} (the key kept in recovery.dir)"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_hex(32).encode())
        key = read_secret(path, f"{origin} {path}", "the action key")
    return long_enough(key, origin, "the action key")


def read_secret(path: Path, origin: str, what: str) -> bytes:
    """A secret kept in a file (surrounding whitespace dropped); one line naming ``origin`` when it cannot be
    read. The action key's and the webhooks' secrets are read alike."""
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        msg = f"{origin}: cannot read {what} ({exc.strerror})"
        raise FeblamError(msg) from None


def long_enough(secret: bytes, origin: str, what: str) -> bytes:
    """A secret of :data:`KEY_MIN_BYTES` or more, else one line naming ``origin``."""
    if len(secret) < KEY_MIN_BYTES:
        msg = f"{origin}: {what} has {len(secret)} bytes; it needs {KEY_MIN_BYTES} or more"
        raise FeblamError(msg)
    return secret


def _signed_text(
    hit_id: str, desk: str, user: str, kind: str, outcome: str | None, at: str, reason: str | None, vehicle: str
) -> bytes:
    return "\x1f".join((hit_id, desk, user, kind, outcome or "", at, reason or "", vehicle)).encode()


def _signature(key: bytes, text: bytes) -> str:
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def encode_action(action: DeskAction, key: bytes) -> bytes:
    """The message the console produces (keyed by ``hit_id``), signed with ``key``."""
    at = format_ts(action.at)
    a = action
    text = _signed_text(a.hit_id, a.desk, a.user, a.kind, a.outcome, at, a.reason, a.vehicle)
    return orjson.dumps(
        {
            "hit_id": action.hit_id,
            "desk": action.desk,
            "user": action.user,
            "kind": action.kind,
            "outcome": action.outcome,
            "reason": action.reason,
            "vehicle": action.vehicle,
            "at": at,
            "sig": _signature(key, text),
        }
    )


class _ActionMessage(msgspec.Struct, frozen=True):
    hit_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    desk: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    user: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    kind: ActionKind
    vehicle: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    at: Annotated[str, msgspec.Meta(max_length=64)]
    outcome: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=MAX_REASON)] | None = None
    sig: Annotated[str, msgspec.Meta(max_length=128)] = ""


_decoder = msgspec.json.Decoder(_ActionMessage)


@dataclass(frozen=True, slots=True)
class SignedAction:
    """An action as read from the topic, with whether its signature is the console's."""

    action: DeskAction
    signed: bool


def decode_action(payload: bytes, key: bytes, max_bytes: int = 64 * 1024) -> SignedAction:
    """An action message and whether ``key`` signed it; what the flow cannot read raises ValueError."""
    doc = decode_message(_decoder, payload, max_bytes)
    action = DeskAction(
        doc.hit_id, doc.desk, doc.user, doc.kind, parse_ts(doc.at), doc.outcome, doc.reason, doc.vehicle
    )
    text = _signed_text(doc.hit_id, doc.desk, doc.user, doc.kind, doc.outcome, doc.at, doc.reason, doc.vehicle)
    return SignedAction(action, hmac.compare_digest(doc.sig, _signature(key, text)))
