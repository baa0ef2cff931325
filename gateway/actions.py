"""What a desk does to a case, as one message on ``[gateway] actions_topic``: one type, one encoding.

The console builds a :class:`DeskAction` and produces :func:`encode_action`;
the gateway's flow reads it back with :func:`decode_action`. Whether an action
may be applied to a case is decided by :func:`gateway.cases.refusal`, for both.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson

from feblam.serde import format_ts, parse_ts

ActionKind = Literal["acknowledge", "close"]
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


def encode_action(action: DeskAction) -> bytes:
    """The message the console produces (keyed by ``hit_id``)."""
    return orjson.dumps(
        {
            "hit_id": action.hit_id,
            "desk": action.desk,
            "user": action.user,
            "kind": action.kind,
            "outcome": action.outcome,
            "at": format_ts(action.at),
        }
    )


def decode_action(payload: bytes) -> DeskAction:
    """An action message; what the flow cannot use raises ValueError, KeyError or TypeError with the reason."""
    doc = orjson.loads(payload)
    if not isinstance(doc, dict):
        msg = "not a JSON object"
        raise ValueError(msg)
    kind = doc.get("kind")
    if kind not in ACTION_KINDS:
        msg = f"kind: {kind!r} is not {' or '.join(ACTION_KINDS)}"
        raise ValueError(msg)
    return DeskAction(
        str(doc["hit_id"]), str(doc["desk"]), str(doc["user"]), kind, parse_ts(doc["at"]), doc.get("outcome")
    )
