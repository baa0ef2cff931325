"""A batch of JSON payloads decoded in one msgspec call, and a JSON vendor's screen over a whole batch.

The hot path's 99 % case needs only each payload's raw plate and the certainty
that the vendor's ``parse`` accepts it (the vendor's ``screen``). Decoding the
batch as newline-delimited JSON in one call of compiled code, into the vendor's
own fast-path struct, gives both for the whole batch without a Python call a
payload. It is taken only when it is certainly the same as decoding each payload
on its own (:func:`decode_whole`); otherwise the batch takes the per-payload
screen, so a bad payload costs its batch the speed, never a read or a dead letter.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from sources.vendors._fields import MAX_PAYLOAD_BYTES

_OPEN, _CLOSE = ord("{"), ord("}")


def decode_whole(decoder: msgspec.json.Decoder[Any], payloads: Sequence[bytes]) -> list[Any] | None:
    """The struct of every payload, in order, from one ``decode_lines`` call; None unless that is certainly
    what decoding each payload alone gives.

    Taken when every payload is within the size limit, starts with ``{`` and ends with ``}``, the whole
    batch decodes and validates, and it gives exactly one document a payload. Why that is enough: the
    batch is the payloads joined by line breaks, and the decoder reads one value after another. A JSON
    string cannot hold a raw line break, so a line break inside a value is whitespace between its tokens.
    A value cannot run on from one payload into the next: the next payload starts with ``{``, and inside a
    value a ``}`` is followed only by ``,``, ``]`` or ``}``, never by ``{``, so the previous payload's
    last ``}`` must end its document (or the batch does not decode). Each payload therefore starts at least one
    document of its own; ``n`` payloads giving ``n`` documents give exactly one each, and a payload of two
    objects (``{...}{...}``, or ``{...}`` a line break ``{...}``) makes more than ``n``.
    """
    n = len(payloads)
    if n == 0:
        return []
    sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=n)
    if int(sizes.max()) > MAX_PAYLOAD_BYTES or int(sizes.min()) < 2:
        return None
    joined = b"\n".join(payloads)
    ends = np.cumsum(sizes + 1) - 1  # the position of each payload's line break (the last one's: the end)
    raw = np.frombuffer(joined, dtype=np.uint8)
    if not ((raw[ends - sizes] == _OPEN).all() and (raw[ends - 1] == _CLOSE).all()):
        return None
    try:
        docs: list[Any] = decoder.decode_lines(joined)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return docs if len(docs) == n else None


@dataclass(frozen=True)
class JsonScreen:
    """A JSON vendor's ``screen`` over a batch: the raw plate of each payload ``parse`` accepts, ``""`` where
    only parse can tell; equal to ``list(map(screen, payloads))`` on any batch (a property test holds that)."""

    payload: type[msgspec.Struct]  # the vendor's fast-path struct, which parse and screen decode into
    plate: str  # the plate's attribute path in it
    screen: Callable[[bytes], str]  # the vendor's per-payload screen: a batch that does not decode whole
    #: The struct's datetime, whose years 1 and 9999 the screen leaves to parse (moving them to UTC may
    #: overflow); None: the struct holds none.
    time: str | None = None
    _decoder: msgspec.json.Decoder[Any] = field(init=False, repr=False)
    _plate: Callable[[Any], str] = field(init=False, repr=False)
    _year: Callable[[Any], int] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_decoder", msgspec.json.Decoder(self.payload))
        object.__setattr__(self, "_plate", operator.attrgetter(self.plate))
        year = None if self.time is None else operator.attrgetter(f"{self.time}.year")
        object.__setattr__(self, "_year", year)

    def __call__(self, payloads: Sequence[bytes]) -> list[str]:
        docs = decode_whole(self._decoder, payloads)
        if docs is None:
            return list(map(self.screen, payloads))
        plates = list(map(self._plate, docs))
        if self._year is not None:
            years = np.fromiter(map(self._year, docs), dtype=np.int64, count=len(docs))
            for i in np.flatnonzero((years <= 1) | (years >= 9999)).tolist():
                plates[i] = ""
        return plates
