"""Where and when every read of a batch was taken, as columns: what the clone check needs of each read.

Duplicate suppression and hits need a read only when it matched; the clone check
(:mod:`flows.clones`) needs every read's plate, time, place and confidence. A
vendor with a :class:`JsonSighting` has them decoded for a whole batch in one
msgspec call (the payloads as newline-delimited JSON, into the vendor's own
fast-path struct with its time as text), the times parsed in numpy
(:mod:`sources.timecols`) and each field taken as a column by a C getter: no
Python object a read beyond the strings the fields are.

A payload is in the :class:`Sightings` only when the vendor's ``parse`` would
accept it and give these values (the same struct checks the same fields; a time
the batch parser does not take, a payload over the size limit, a batch that does
not decode whole are left out). The rest take the vendor's ``parse`` one by one
(:func:`from_fields`), which decides, and words the dead letter.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec
import numpy as np
import numpy.typing as npt

from feblam.model import EPOCH
from sources.timecols import iso_micros
from sources.vendors._fields import MAX_PAYLOAD_BYTES, ReadFields
from sources.vendors.batchjson import decode_whole

TimeKind = Literal["iso_zoned", "iso", "epoch_ms"]
_NAN = math.nan
_US = timedelta(microseconds=1)


@dataclass(slots=True)
class Sightings:
    """Columns of some reads of a payload batch; ``rows`` are their positions in it."""

    rows: npt.NDArray[np.int64]
    plates: list[str]
    cameras: list[str]
    vendors: list[str]
    ts_us: npt.NDArray[np.int64]
    lat: npt.NDArray[np.float64]  # NaN: none
    lon: npt.NDArray[np.float64]
    confidence: npt.NDArray[np.float64]
    read_ids: list[str | None]
    images: list[str | None]
    countries: list[str | None]
    #: The plates' key codes and which ones the codes do not cover (matchers.batch.exact_codes), when made.
    codes: npt.NDArray[np.int64] | None = None
    uncoded: npt.NDArray[np.bool_] | None = None

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @classmethod
    def empty(cls) -> Sightings:
        return from_fields([], [])

    def take(self, keep: npt.NDArray[np.int64]) -> Sightings:
        """The sightings at positions ``keep`` (of this object's columns)."""
        pick = keep.tolist()

        def lst(col: list[Any]) -> list[Any]:
            return [col[i] for i in pick]

        return Sightings(
            self.rows[keep],
            lst(self.plates),
            lst(self.cameras),
            lst(self.vendors),
            self.ts_us[keep],
            self.lat[keep],
            self.lon[keep],
            self.confidence[keep],
            lst(self.read_ids),
            lst(self.images),
            lst(self.countries),
            None if self.codes is None else self.codes[keep],
            None if self.uncoded is None else self.uncoded[keep],
        )


def concat(parts: Sequence[Sightings]) -> Sightings:
    """One :class:`Sightings` of several (of one batch: their rows do not overlap)."""
    parts = [p for p in parts if len(p)]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Sightings.empty()

    def lst(name: str) -> list[Any]:
        out: list[Any] = []
        for p in parts:
            out += getattr(p, name)
        return out

    return Sightings(
        np.concatenate([p.rows for p in parts]),
        lst("plates"),
        lst("cameras"),
        lst("vendors"),
        np.concatenate([p.ts_us for p in parts]),
        np.concatenate([p.lat for p in parts]),
        np.concatenate([p.lon for p in parts]),
        np.concatenate([p.confidence for p in parts]),
        lst("read_ids"),
        lst("images"),
        lst("countries"),
    )


def _floats(values: list[Any]) -> npt.NDArray[np.float64]:
    try:
        return np.array(values, dtype=np.float64)
    except TypeError:  # a None among them
        return np.array([_NAN if v is None else v for v in values], dtype=np.float64)


def from_fields(rows: Sequence[int], fields: Sequence[ReadFields]) -> Sightings:
    """The sightings of reads decoded one by one (the vendor's ``parse``)."""
    return Sightings(
        np.array(rows, dtype=np.int64),
        [f.plate_raw for f in fields],
        [f.camera_id for f in fields],
        [f.vendor for f in fields],
        np.array([(f.ts - EPOCH) // _US for f in fields], dtype=np.int64),
        _floats([f.lat for f in fields]),
        _floats([f.lon for f in fields]),
        _floats([f.confidence for f in fields]),
        [f.read_id for f in fields],
        [f.image_ref for f in fields],
        [f.country_raw for f in fields],
    )


def _is_datetime(tp: Any) -> bool:
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp is datetime


def _with_text_time(struct: type[msgspec.Struct], field: str) -> type[msgspec.Struct]:
    """The vendor's struct with its time field decoded as text (every other field and check the same)."""
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for f in msgspec.structs.fields(struct):
        tp = str if f.name == field else f.type
        if f.name == field and not _is_datetime(f.type):
            msg = f"{struct.__qualname__}.{field} is not a datetime field"
            raise TypeError(msg)
        if f.encode_name != f.name:
            rename[f.name] = f.encode_name
        if f.required:
            fields.append((f.name, tp, msgspec.NODEFAULT))
        else:
            fields.append((f.name, tp, f.default))
    return msgspec.defstruct(f"{struct.__name__}Sighting", fields, rename=rename or None, gc=False)


@dataclass(frozen=True)
class JsonSighting:
    """How a JSON vendor's fast-path struct gives a sighting: the attribute path of each field."""

    vendor: str
    payload: type[msgspec.Struct]
    plate: str
    camera: str
    time: str
    time_kind: TimeKind
    read_id: str | None = None
    lat: str | None = None
    lon: str | None = None
    confidence: str | None = None
    confidence_divisor: float = 1.0  # a percent: 100.0, as the vendor's parse divides
    image: str | None = None
    country: str | None = None
    #: A field that, when set, names the read's vendor (canonical reads may); else ``vendor``.
    vendor_field: str | None = None

    def __post_init__(self) -> None:
        top = self.time.split(".", 1)[0]
        struct = self.payload if self.time_kind == "epoch_ms" else _with_text_time(self.payload, top)
        object.__setattr__(self, "_decoder", msgspec.json.Decoder(struct))
        paths = {
            k: getattr(self, k)
            for k in ("plate", "camera", "time", "read_id", "lat", "lon", "confidence", "image", "country")
        }
        paths["vendor"] = self.vendor_field
        names = tuple(k for k, v in paths.items() if v)
        # every field of a read in one C call (a tuple), the batch transposed to columns by zip
        object.__setattr__(self, "_get", (names, operator.attrgetter(*(paths[k] for k in names))))

    def sightings(self, payloads: Sequence[bytes]) -> Sightings:
        """The sightings of the payloads this decoding vouches for (see the module's docstring)."""
        n = len(payloads)
        if n == 0:
            return Sightings.empty()
        rows = np.arange(n, dtype=np.int64)
        sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=n)
        small = sizes <= MAX_PAYLOAD_BYTES
        if not small.all():
            rows = rows[small]
            payloads = [payloads[i] for i in rows.tolist()]
        docs = self._decode(payloads)
        if docs is None:  # one payload does not decode: each on its own, the ones that do are kept
            decode = self._decoder.decode  # type: ignore[attr-defined]
            kept: list[int] = []
            docs = []
            for j, p in enumerate(payloads):
                try:
                    docs.append(decode(p))
                except (msgspec.ValidationError, msgspec.DecodeError):
                    continue
                kept.append(j)
            rows = rows[np.array(kept, dtype=np.int64)]
        return self._columns(rows, docs)

    def _decode(self, payloads: Sequence[bytes]) -> list[Any] | None:
        return decode_whole(self._decoder, payloads)  # type: ignore[attr-defined]

    def _columns(self, rows: npt.NDArray[np.int64], docs: list[Any]) -> Sightings:
        n = len(docs)
        if n == 0:
            return Sightings.empty()
        names, getter = self._get  # type: ignore[attr-defined]
        cols = dict(zip(names, zip(*map(getter, docs), strict=True), strict=True))  # one C call a read
        none = [None] * n

        def col(name: str) -> list[Any]:
            c = cols.get(name)
            return none if c is None else list(c)

        times = cols["time"]
        if self.time_kind == "epoch_ms":
            ts = np.array(times, dtype=np.int64) * 1000
            ok = np.ones(n, dtype=bool)
        else:
            ts, ok = iso_micros(times, naive_utc=self.time_kind == "iso")
        conf = _floats(col("confidence"))
        if self.confidence_divisor != 1.0:
            conf = conf / self.confidence_divisor
        vendors = [v or self.vendor for v in cols["vendor"]] if "vendor" in cols else [self.vendor] * n
        found = Sightings(
            rows,
            col("plate"),
            col("camera"),
            vendors,
            ts,
            _floats(col("lat")),
            _floats(col("lon")),
            conf,
            col("read_id"),
            col("image"),
            col("country"),
        )
        return found if ok.all() else found.take(np.flatnonzero(ok))
