"""What a desk does to a case, as one message on ``[gateway] actions_topic``: one type, one encoding.

The console builds a :class:`DeskAction` and produces :func:`encode_action`;
the gateway's flow reads it back with :func:`decode_action`. Whether an action
may be applied to a case is decided by :func:`gateway.cases.refusal`, for both.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import msgspec
import orjson

from feblam.serde import format_ts, parse_ts
from gateway.schema import validation_reason

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


class _ActionMessage(msgspec.Struct, frozen=True):
    hit_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    desk: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    user: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    kind: ActionKind
    at: Annotated[str, msgspec.Meta(max_length=64)]
    outcome: Annotated[str, msgspec.Meta(max_length=64)] | None = None


_decoder = msgspec.json.Decoder(_ActionMessage)


def decode_action(payload: bytes, max_bytes: int = 64 * 1024) -> DeskAction:
    """An action message; what the flow cannot use raises ValueError with the reason."""
    if len(payload) > max_bytes:
        msg = f"message of {len(payload)} bytes is over the {max_bytes}-byte limit (gateway.max_message_bytes)"
        raise ValueError(msg)
    try:
        doc = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise ValueError(validation_reason(exc)) from None
    except msgspec.DecodeError as exc:
        msg = f"not valid JSON: {exc}"
        raise ValueError(msg) from None
    return DeskAction(doc.hit_id, doc.desk, doc.user, doc.kind, parse_ts(doc.at), doc.outcome)
