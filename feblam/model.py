"""Model types that cross module boundaries: frozen, slotted dataclasses.

On the hot path payloads travel in one :class:`PayloadBatch` per poll; the
vendors' screens and the batch filter settle most reads without decoding them,
the rest are parsed into ``ReadFields`` (see ``sources.vendors``), and a
:class:`Read` is built only for reads that matched something, because a frozen
dataclass with twelve fields costs microseconds to construct.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

#: The start of Unix time, in UTC (the index's microsecond times and epoch-ms payloads count from it).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MatchKind = Literal["exact", "ocr_equivalent", "ocr_format", "pattern"]
Action = Literal["intercept", "observe", "inform"]
ACTIONS: frozenset[str] = frozenset({"intercept", "observe", "inform"})
#: The vendor decoders of ``sources/vendors`` (a test pins the registry to this tuple).
VENDOR_NAMES: tuple[str, ...] = ("canonical", "vendor-a", "vendor-b", "vendor-c")


@dataclass(frozen=True, slots=True)
class Read:
    """A canonical plate read (DESIGN section 2)."""

    read_id: str
    camera_id: str
    vendor: str
    ts: datetime
    plate_raw: str
    country_raw: str | None = None
    confidence: float | None = None
    lat: float | None = None
    lon: float | None = None
    lane: str | int | None = None
    direction: str | int | None = None
    image_ref: str | None = None


@dataclass(frozen=True, slots=True)
class HotlistEntry:
    """One entry of one hotlist, after normalisation."""

    list_id: str
    entry_id: str
    plate: str
    key: str
    country: str | None
    category: str
    priority: int
    action: Action
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    owner: str | None = None
    note: str | None = None

    @property
    def is_pattern(self) -> bool:
        return "?" in self.key or "*" in self.key


@dataclass(frozen=True, slots=True)
class Match:
    """One hotlist entry that a read matched, with its effective priority."""

    list_id: str
    entry_id: str
    category: str
    priority: int
    action: Action
    match_kind: MatchKind
    owner: str | None = None
    note: str | None = None
    #: The entry's own plate (a pattern entry: its pattern), so that the hit explains why it matched.
    entry_plate: str | None = None
    #: The entry's country (None: any country), which agreed with the read's.
    entry_country: str | None = None
    #: The entry's validity window (None: open), which the read's capture time fell in.
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Clone:
    """Why a clone hit (DESIGN 6): the plate's earlier sighting, and the speed a car would have needed."""

    earlier: Read
    km: float
    minutes: float
    kmh: float


@dataclass(frozen=True, slots=True)
class Hit:
    """A prioritised hit for the Hit Gateway (DESIGN section 6)."""

    hit_id: str
    index_version: str
    priority: int
    emitted_at: datetime
    read: Read
    plate: str
    country: str | None
    matches: tuple[Match, ...]
    routes: tuple[str, ...] = field(default=())
    #: A retro-hit (DESIGN section 10): found by looking back when ``retro_of`` added the entries.
    retro: bool = False
    retro_of: str | None = None
    #: A clone hit (``[clones]``): the plate's earlier sighting, too far away for the time between.
    clone: Clone | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that could not become a read, with where it came from and why."""

    source: str
    error: str
    payload: bytes
    vendor: str | None = None
    line: int | None = None
    partition: int | None = None
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class PayloadBatch:
    """Payloads of one vendor from one place: the one shape every source (Kafka, files, memory) emits.

    ``positions[i]`` is where ``payloads[i]`` came from: its offset in a topic
    partition (or a memory source), or its line in a file (``by_line``). It is
    looked up only for a dead letter, so a source may pass a lazy sequence.
    ``appended_ms[i]``, when the source knows it, is the broker's append time
    (for the append-to-hit latency).
    """

    vendor: str
    origin: str  # topic, file path or memory source name
    partition: int | None
    payloads: Sequence[bytes]
    positions: Sequence[int]
    by_line: bool = False
    appended_ms: Sequence[int] | None = None

    def __len__(self) -> int:
        return len(self.payloads)

    def deadletter(self, i: int, error: str) -> DeadLetter:
        """The dead letter of payload ``i``: where it came from, why, and the payload itself."""
        pos = self.positions[i]
        payload = self.payloads[i]
        return DeadLetter(
            self.origin,
            error,
            payload if payload is not None else b"",
            self.vendor,
            pos if self.by_line else None,
            self.partition,
            None if self.by_line else pos,
        )


def match_order(m: Match) -> tuple[int, str, str]:
    """The order of the matches in a hit (DESIGN section 6): priority, list id, entry id."""
    return (m.priority, m.list_id, m.entry_id)
