"""What the gateway reads of a hit: one typed schema (msgspec, validated in C) of the fields it uses.

Anything on the hits topics is hostile until it fits: any JSON shape, any field
type, an impossible time, a message over ``[gateway] max_message_bytes`` is a
:class:`MessageRefused` with its reason (a dead letter), never an exception in the
flow. What fits is handed on as the plain JSON object of exactly these fields
(unknown fields are dropped), so the board draws nothing that was not checked.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from feblam.model import Action
from feblam.serde import parse_ts
from matchers.normalize import MAX_KEY_LENGTH as MAX_KEY  # the longest plate key a country issues (DESIGN 4)

Text = Annotated[str, Meta(max_length=256)]
Id = Annotated[str, Meta(min_length=1, max_length=128)]
Note = Annotated[str, Meta(max_length=4096)]
Priority = Annotated[int, Meta(ge=1, le=5)]
Degrees = Annotated[float, Meta(ge=-180.0, le=180.0)]


def validation_reason(exc: msgspec.ValidationError) -> str:
    """msgspec's ``Expected `int`, got `str` - at `$.read.lat``` as ``read.lat: Expected `int`, got `str```."""
    message, _, where = str(exc).partition(" - at `$")
    where = where.rstrip("`").lstrip(".")
    return f"{where}: {message}" if where else message


class MessageRefused(ValueError):
    """A message the gateway cannot use; the text is the reason its dead letter carries."""


class SeenRead(msgspec.Struct, frozen=True, omit_defaults=False, kw_only=True):
    """A read as a hit carries it (a clone hit's earlier sighting is one)."""

    read_id: Id
    camera_id: Id
    ts: Text
    plate_raw: Annotated[str, Meta(max_length=64)]
    vendor: Text | None = None
    country_raw: Text | None = None
    confidence: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    lat: Degrees | None = None
    lon: Degrees | None = None
    lane: int | Text | None = None
    direction: int | Text | None = None
    image_ref: Annotated[str, Meta(max_length=2048)] | None = None


class HitRead(SeenRead, frozen=True, kw_only=True):
    plate: Annotated[str, Meta(min_length=1, max_length=MAX_KEY, pattern="^[A-Z0-9]+$")]
    country: Text | None = None


class HitClone(msgspec.Struct, frozen=True):
    """A clone hit's why (DESIGN 6): the plate's earlier sighting, the distance, the time and the speed between."""

    earlier: SeenRead
    km: Annotated[float, Meta(ge=0.0, le=20_100.0)]  # half the Earth's circumference
    minutes: Annotated[float, Meta(ge=0.0, le=7 * 24 * 60)]
    kmh: Annotated[float, Meta(ge=0.0, le=1e9)]


class HitMatch(msgspec.Struct, frozen=True):
    list_id: Id
    entry_id: Id
    category: Text
    priority: Priority
    action: Action
    match_kind: Text
    owner: Text | None = None
    note: Note | None = None
    entry_plate: Text | None = None
    entry_country: Text | None = None
    valid_from: Text | None = None
    valid_until: Text | None = None


class GatewayHit(msgspec.Struct, frozen=True):
    hit_id: Id
    index_version: Text
    priority: Priority
    emitted_at: Text
    read: HitRead
    matches: Annotated[list[HitMatch], Meta(min_length=1, max_length=1000)]
    routes: Annotated[list[Text], Meta(max_length=1000)] = []
    retro: bool = False
    retro_of: Text | None = None
    clone: HitClone | None = None


_decoder = msgspec.json.Decoder(GatewayHit)
T = TypeVar("T")


def decode_message(decoder: msgspec.json.Decoder[T], payload: bytes, max_bytes: int) -> T:
    """One message of the gateway's topics through its typed decoder, or :class:`MessageRefused` with the
    reason: over ``max_bytes``, not JSON, or a field missing or of another type (named by its path)."""
    if len(payload) > max_bytes:
        msg = f"message of {len(payload)} bytes is over the {max_bytes}-byte limit (gateway.max_message_bytes)"
        raise MessageRefused(msg)
    try:
        return decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise MessageRefused(validation_reason(exc)) from None
    except msgspec.DecodeError as exc:
        msg = f"not valid JSON: {exc}"
        raise MessageRefused(msg) from None


def read_hit(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """The hit's JSON object of the checked fields, or :class:`MessageRefused` with the reason."""
    hit = decode_message(_decoder, payload, max_bytes)
    times = [("emitted_at", hit.emitted_at), ("read.ts", hit.read.ts)]
    if hit.clone is not None:
        times.append(("clone.earlier.ts", hit.clone.earlier.ts))
    for name, text in times:
        try:
            parse_ts(text)
        except ValueError:
            msg = f"{name}: {text[:40]!r} is not an ISO 8601 time"
            raise MessageRefused(msg) from None
    doc: dict[str, Any] = msgspec.to_builtins(hit)
    if doc["clone"] is None:
        del doc["clone"]  # a hit is drawn as it came: only a clone hit has the key
    return doc
