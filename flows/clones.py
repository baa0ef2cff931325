"""Cloned plates caught live (``[clones]``): one plate read at two places too far apart for the time between.

A stolen car often carries a copy of an innocent car's plate; the only sign is
that plate read at two cameras that no car could drive between in the time that
separates the reads. For every read above ``min_confidence`` whose position is
known (its own, else its camera's in the register, :mod:`sources.cameras`), the
check compares it with the last sighting of the same plate key: when the two are
``min_km`` or more apart, at cameras of different sites, with countries that do
not disagree, within ``window_minutes``, and the speed between them is over
``max_kmh``, the read gives a **clone hit** (DESIGN 6: category ``cloned_plate``,
the earlier read in ``clone``, with distance, time and implied speed). Times less
than a second apart count as one second.

Comparing with the last sighting alone is enough: if each sighting is reachable
from the one before it, every later one is reachable from every earlier one (the
great-circle distance obeys the triangle inequality), so an impossible pair
always shows as an impossible step, which is flagged when it happens.

**The state.** Per plate, its last sighting only, keyed by the keyed SipHash of
the plate key (:mod:`matchers.platehash`) — never the plate — in flat numpy
columns (time, position, site, country, confidence) and four object columns for
the earlier read (read id, camera, vendor, image reference). A sighting older
than the window is dropped at the next sweep (every quarter of a window of
capture time), so memory follows the number of distinct plates read within the
window. The check works a batch at a time: one sort, one dictionary pass and a
dozen numpy operations for the whole batch. The state is kept in memory and not
in the recovery snapshots (it would be rewritten each epoch): after a restart
the window starts empty and fills within ``window_minutes``.

**A cluster.** The processor routes each read's sighting by its hash to one of
``shards`` keyed parts, which Bytewax sends to the worker that owns that key, so
all sightings of a plate meet in one window whichever process read them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from feblam import metrics
from feblam.config import CloneSettings
from feblam.logs import get_logger
from feblam.model import EPOCH, Clone, Match, PayloadBatch, Read
from flows.dedup import Candidate
from matchers.normalize import country_code, plate_key
from matchers.platehash import PlateHasher
from sources.cameras import CameraRegister, load_cameras
from sources.vendors import VENDORS, make_read
from sources.vendors._fields import derived_read_id
from sources.vendors.sightings import Sightings

log = get_logger(__name__)

CATEGORY = "cloned_plate"
#: The entry id of every clone match: with the plate key, what duplicate suppression and the gateway's case key on.
ENTRY_ID = "clone"
EARTH_KM = 6371.0088  # mean Earth radius (IUGG)
#: A read dated further ahead of the wall clock than this is not entered (a camera's clock gone wrong
#: would otherwise move the window's horizon and empty it).
MAX_AHEAD_US = 10 * 60 * 1_000_000
#: Cameras remembered (id -> position, site); a topic full of made-up ids cannot grow this further.
MAX_CAMERAS = 200_000
_US = timedelta(microseconds=1)


def great_circle_km(
    lat1: npt.NDArray[np.float64],
    lon1: npt.NDArray[np.float64],
    lat2: npt.NDArray[np.float64],
    lon2: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Haversine distance in km, element by element."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.minimum(1.0, a)))


@dataclass(slots=True)
class ClonePart:
    """The sightings of one batch that go to one shard (``idx``: their positions in ``sightings``)."""

    shard: str
    batch: PayloadBatch
    sightings: Sightings
    idx: npt.NDArray[np.int64]
    hashes: npt.NDArray[np.uint64]
    ts: npt.NDArray[np.int64]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    site: npt.NDArray[np.int64]
    country: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.idx.shape[0])


@dataclass(frozen=True, slots=True)
class Earlier:
    """The earlier sighting of a flagged pair, as the window or the batch held it (no plate)."""

    read_id: str
    camera_id: str
    vendor: str
    ts_us: int
    lat: float
    lon: float
    confidence: float
    image_ref: str | None
    country: str | None


@dataclass(frozen=True, slots=True)
class Flag:
    """A read of a part that no car could have made after (or before) its plate's last sighting."""

    j: int  # its position in the part
    earlier: Earlier
    km: float
    minutes: float
    kmh: float


class Places:
    """camera id -> (lat, lon) from the register (NaN: not placed) and its site as a number; countries as numbers."""

    def __init__(self, register: CameraRegister) -> None:
        self.register = register
        self._index: dict[str, int] = {}
        self._lat: list[float] = []
        self._lon: list[float] = []
        self._site: list[int] = []
        self._sites: dict[str, int] = {}
        self._countries: dict[str | None, int] = {None: 0}
        self.country_names: list[str | None] = [None]
        self.unplaced_warned: set[str] = set()
        self._arrays: tuple[Any, ...] | None = None

    def cameras(
        self, names: list[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Each camera's registered position (NaN: none) and site number."""
        idx = np.fromiter(map(self._index.get, names, repeat(-1)), dtype=np.int64, count=len(names))
        if (idx < 0).any():
            for j in np.flatnonzero(idx < 0).tolist():
                idx[j] = self._add(names[j])
            self._arrays = None
        if self._arrays is None:
            self._arrays = (np.array(self._lat), np.array(self._lon), np.array(self._site, dtype=np.int64))
        lat, lon, site = self._arrays
        return lat[idx], lon[idx], site[idx]

    def _add(self, camera: str) -> int:
        if len(self._index) >= MAX_CAMERAS:
            self._index.clear()
            self._lat.clear()
            self._lon.clear()
            self._site.clear()
            self._sites.clear()
        lat, lon, site = self.register.positions.get(camera, (math.nan, math.nan, camera))
        number = self._sites.setdefault(site, len(self._sites) + 1)
        self._index[camera] = len(self._lat)
        self._lat.append(lat)
        self._lon.append(lon)
        self._site.append(number)
        return self._index[camera]

    def country_numbers(self, raws: list[str | None]) -> npt.NDArray[np.int64]:
        """Each raw country as a number of its ISO code (0: unknown)."""
        got = list(map(self._countries.get, raws))
        for j, g in enumerate(got):
            if g is None:
                code = country_code(raws[j]) if isinstance(raws[j], str) else None
                if code not in self.country_names:
                    self.country_names.append(code)
                number = self.country_names.index(code)
                if len(self._countries) < 10_000:
                    self._countries[raws[j]] = number
                got[j] = number
        return np.array(got, dtype=np.int64)


class CloneWindow:
    """The last sighting of each plate seen within the window (one shard's), and the check (see the module)."""

    def __init__(self, settings: CloneSettings, places: Places | None = None) -> None:
        self.places = places or Places(CameraRegister())
        self.window_us = int(settings.window_minutes * 60_000_000)
        self.max_kmh = settings.max_kmh
        self.min_km = settings.min_km
        self.slot_of: dict[int, int] = {}
        self.newest = -(2**62)
        self._swept = -(2**62)
        self._grow(1024)

    def _grow(self, cap: int) -> None:
        old = getattr(self, "ts", None)
        n = 0 if old is None else old.shape[0]

        def ext(a: Any, dtype: Any, fill: Any) -> Any:
            out = np.full(cap, fill, dtype=dtype)
            if a is not None:
                out[:n] = a
            return out

        self.key = ext(getattr(self, "key", None), np.uint64, 0)
        self.ts = ext(old, np.int64, 0)
        self.lat = ext(getattr(self, "lat", None), np.float64, 0.0)
        self.lon = ext(getattr(self, "lon", None), np.float64, 0.0)
        self.site = ext(getattr(self, "site", None), np.int64, 0)
        self.country = ext(getattr(self, "country", None), np.int64, 0)
        self.conf = ext(getattr(self, "conf", None), np.float32, 0.0)
        self.objs = self._objs(cap, n)
        self.free: list[int] = [*getattr(self, "free", []), *range(cap - 1, n - 1, -1)]

    def _objs(self, cap: int, n: int) -> npt.NDArray[Any]:
        out = np.full((4, cap), None, dtype=object)
        if n:
            out[:, :n] = self.objs
        return out

    def __len__(self) -> int:
        return len(self.slot_of)

    def nbytes(self) -> int:
        """The columns' bytes (the strings the object columns refer to not counted)."""
        return int(
            sum(
                a.nbytes for a in (self.key, self.ts, self.lat, self.lon, self.site, self.country, self.conf, self.objs)
            )
        )

    def check(self, part: ClonePart) -> list[Flag]:
        """The flagged reads of ``part``; the window then holds each plate's newest sighting."""
        n = len(part)
        if n == 0:
            return []
        order = np.lexsort((part.ts, part.hashes))
        h, ts = part.hashes[order], part.ts[order]
        lat, lon, site, country = part.lat[order], part.lon[order], part.site[order], part.country[order]
        first = np.ones(n, dtype=bool)
        first[1:] = h[1:] != h[:-1]
        last = np.ones(n, dtype=bool)
        last[:-1] = first[1:]
        hl = h.tolist()
        slot = np.fromiter(map(self.slot_of.get, hl, repeat(-1)), dtype=np.int64, count=n)
        # the sighting each read is compared with: the one before it in the batch, else the window's
        prev_ts = np.empty(n, dtype=np.int64)
        prev_ts[0] = 0
        prev_ts[1:] = ts[:-1]
        prev = np.arange(n) - 1  # >= 0: a row of the batch; -1 - slot: the window's slot
        have = ~first
        in_window = np.flatnonzero(first & (slot >= 0))
        if in_window.shape[0]:
            s = slot[in_window]
            live = self.ts[s] >= self.newest - self.window_us
            in_window, s = in_window[live], s[live]
            prev_ts[in_window] = self.ts[s]
            prev[in_window] = -1 - s
            have[in_window] = True
        from_window = prev < 0
        ps = np.where(from_window, -1 - prev, 0)
        pb = np.where(from_window, 0, np.maximum(prev, 0))
        p_lat = np.where(from_window, self.lat[ps], lat[pb])
        p_lon = np.where(from_window, self.lon[ps], lon[pb])
        p_site = np.where(from_window, self.site[ps], site[pb])
        p_country = np.where(from_window, self.country[ps], country[pb])
        dt = np.abs(ts - prev_ts)
        cand = have & (dt <= self.window_us) & (site != p_site)
        cand &= (country == 0) | (p_country == 0) | (country == p_country)
        flags: list[Flag] = []
        if cand.any():
            km = great_circle_km(lat, lon, p_lat, p_lon)
            kmh = km / (np.maximum(dt, 1_000_000) / 3.6e9)
            hit = cand & (km >= self.min_km) & (kmh > self.max_kmh)
            for i in np.flatnonzero(hit).tolist():
                earlier = (
                    self._earlier(-1 - int(prev[i])) if from_window[i] else self._in_part(part, int(order[prev[i]]))
                )
                flags.append(Flag(int(order[i]), earlier, float(km[i]), float(dt[i]) / 60e6, float(kmh[i])))
        self._store(part, order, h, ts, lat, lon, site, country, last, slot)
        newest = int(ts.max())
        if newest > self.newest:
            self.newest = newest
        if self.newest - self._swept >= self.window_us // 4:
            self.sweep()
        return flags

    def _earlier(self, s: int) -> Earlier:
        read_id, camera, vendor, image = self.objs[:, s].tolist()
        name = self.country_name(int(self.country[s]))
        return Earlier(
            read_id,
            camera,
            vendor,
            int(self.ts[s]),
            float(self.lat[s]),
            float(self.lon[s]),
            float(self.conf[s]),
            image,
            name,
        )

    def _in_part(self, part: ClonePart, k: int) -> Earlier:
        s, j = part.sightings, int(part.idx[k])
        name = self.country_name(int(part.country[k]))
        return Earlier(
            s.read_ids[j] or "",
            s.cameras[j],
            s.vendors[j],
            int(part.ts[k]),
            float(part.lat[k]),
            float(part.lon[k]),
            float(s.confidence[j]),
            s.images[j] or None,
            name,
        )

    def country_name(self, number: int) -> str | None:
        names = self.places.country_names
        return names[number] if 0 <= number < len(names) else None

    def _store(
        self,
        part: ClonePart,
        order: npt.NDArray[np.int64],
        h: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        lat: npt.NDArray[np.float64],
        lon: npt.NDArray[np.float64],
        site: npt.NDArray[np.int64],
        country: npt.NDArray[np.int64],
        last: npt.NDArray[np.bool_],
        slot: npt.NDArray[np.int64],
    ) -> None:
        rows = np.flatnonzero(last)
        s = slot[rows]
        known = s >= 0
        # a plate the window holds: its slot takes this sighting when it is newer (or the slot's is stale)
        keep = (
            known & (self.ts[np.maximum(s, 0)] > ts[rows]) & (self.ts[np.maximum(s, 0)] >= self.newest - self.window_us)
        )
        rows, s, known = rows[~keep], s[~keep], known[~keep]
        fresh = np.flatnonzero(~known)
        if fresh.shape[0]:
            while len(self.free) < fresh.shape[0]:
                self._grow(self.ts.shape[0] * 2)
            taken = [self.free.pop() for _ in range(fresh.shape[0])]
            s[fresh] = taken
            self.slot_of.update(zip(h[rows[fresh]].tolist(), taken, strict=True))
        self.key[s] = h[rows]
        self.ts[s] = ts[rows]
        self.lat[s] = lat[rows]
        self.lon[s] = lon[rows]
        self.site[s] = site[rows]
        self.country[s] = country[rows]
        sg = part.sightings
        src = part.idx[order[rows]]
        self.conf[s] = sg.confidence[src]
        pick = src.tolist()
        self.objs[0, s] = [sg.read_ids[j] for j in pick]
        self.objs[1, s] = [sg.cameras[j] for j in pick]
        self.objs[2, s] = [sg.vendors[j] for j in pick]
        self.objs[3, s] = [sg.images[j] or None for j in pick]

    def sweep(self) -> int:
        """Forget the sightings older than the window; returns how many."""
        self._swept = self.newest
        used = np.fromiter(self.slot_of.values(), dtype=np.int64, count=len(self.slot_of))
        old = used[self.ts[used] < self.newest - self.window_us]
        for k in self.key[old].tolist():
            del self.slot_of[k]
        self.objs[:, old] = None
        self.free.extend(old.tolist())
        return int(old.shape[0])


@dataclass
class ClonePrep:
    """The processor's half: each batch's sightings filtered, placed, hashed and cut into shard parts."""

    settings: CloneSettings
    hasher: PlateHasher
    places: Places
    shards: int = 1
    unplaced: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: CloneSettings, hash_key: str, shards: int = 1) -> ClonePrep:
        register = load_cameras(settings.cameras) if settings.cameras else CameraRegister()
        return cls(settings, PlateHasher(hash_key), Places(register), max(1, shards))

    def parts(self, batch: PayloadBatch, s: Sightings) -> list[ClonePart]:
        n = len(s)
        if n == 0:
            return []
        floor = self.settings.min_confidence
        keep = s.confidence >= floor
        if floor <= 0:
            keep |= np.isnan(s.confidence)
        keep &= s.ts_us <= int(time.time() * 1e6) + MAX_AHEAD_US
        r_lat, r_lon, site = self.places.cameras(s.cameras)
        own = ~(np.isnan(s.lat) | np.isnan(s.lon))
        lat = np.where(own, s.lat, r_lat)
        lon = np.where(own, s.lon, r_lon)
        placed = ~np.isnan(lat) & ~np.isnan(lon)
        if not placed.all():
            self._unplaced(batch.vendor, s, np.flatnonzero(keep & ~placed))
        keep &= placed
        idx = np.flatnonzero(keep)
        if not idx.shape[0]:
            return []
        pick = idx.tolist()
        hashes = self.hasher.of_plates([s.plates[j] for j in pick])
        country = self.places.country_numbers([s.countries[j] for j in pick])
        self._derive_ids(s, pick)
        whole = ClonePart("0", batch, s, idx, hashes, s.ts_us[idx], lat[idx], lon[idx], site[idx], country)
        if self.shards == 1:
            return [whole]
        by = (hashes % np.uint64(self.shards)).astype(np.int64)
        out = []
        for k in np.unique(by).tolist():
            m = np.flatnonzero(by == k)
            out.append(
                ClonePart(
                    str(k),
                    batch,
                    s,
                    idx[m],
                    hashes[m],
                    whole.ts[m],
                    whole.lat[m],
                    whole.lon[m],
                    whole.site[m],
                    country[m],
                )
            )
        return out

    @staticmethod
    def _derive_ids(s: Sightings, pick: list[int]) -> None:
        """A read the vendor gives no id gets the derived one (DESIGN 2), while its plate is still at hand."""
        ids = s.read_ids
        for j in pick:
            if not ids[j]:
                ts = EPOCH + timedelta(microseconds=int(s.ts_us[j]))
                ids[j] = derived_read_id(s.cameras[j], ts, s.plates[j])

    def _unplaced(self, vendor: str, s: Sightings, rows: npt.NDArray[np.int64]) -> None:
        if not rows.shape[0]:
            return
        metrics.CLONE_UNPLACED.labels(vendor).inc(int(rows.shape[0]))
        warned = self.places.unplaced_warned
        if len(warned) >= 10_000:
            return
        for j in rows.tolist():
            camera = s.cameras[j]
            if camera not in warned:
                warned.add(camera)
                log.warning("clone_camera_unplaced", camera_id=camera, vendor=vendor)


def clone_match(settings: CloneSettings, key: str, country: str | None, flag: Flag) -> Match:
    """The one match of a clone hit: the configured list, category ``cloned_plate``, and why in its note."""
    e = flag.earlier
    note = (
        f"also read at {e.camera_id} {flag.km:.1f} km away, {flag.minutes:.1f} min apart: "
        f"{flag.kmh:.0f} km/h, over the {settings.max_kmh:g} km/h a car can make"
    )
    return Match(
        settings.list_id,
        ENTRY_ID,
        CATEGORY,
        settings.priority,
        settings.action,
        "exact",
        settings.owner or None,
        note,
        key,
        country,
    )


def earlier_read(e: Earlier, key: str) -> Read:
    """The earlier sighting as a read (its plate: the key both reads share; the window keeps no plate)."""
    return Read(
        e.read_id,
        e.camera_id,
        e.vendor,
        EPOCH + timedelta(microseconds=e.ts_us),
        key,
        e.country,
        None if math.isnan(e.confidence) else round(e.confidence, 6),
        e.lat,
        e.lon,
        None,
        None,
        e.image_ref,
    )


def make_checker(
    settings: CloneSettings, version: Callable[[], str], places: Places
) -> Callable[[None, ClonePart], tuple[None, Iterable[Candidate]]]:
    """The keyed step: one :class:`CloneWindow` per shard key, in this process's memory (see the module)."""
    windows: dict[str, CloneWindow] = {}

    def check(_state: None, part: ClonePart) -> tuple[None, Iterable[Candidate]]:
        window = windows.get(part.shard)
        if window is None:
            window = windows[part.shard] = CloneWindow(settings, places)
        flags = window.check(part)
        metrics.CLONE_PLATES.labels(part.shard).set(len(window))
        return None, [_candidate(settings, part, f, version()) for f in flags]

    return check


def _candidate(settings: CloneSettings, part: ClonePart, flag: Flag, version: str) -> Candidate:
    batch, j = part.batch, int(part.idx[flag.j])
    row = int(part.sightings.rows[j])
    fields = VENDORS[batch.vendor].parse(batch.payloads[row])
    read = make_read(fields)
    key = plate_key(read.plate_raw)
    country = country_code(read.country_raw)
    metrics.CLONE_HITS.inc()
    clone = Clone(earlier_read(flag.earlier, key), round(flag.km, 1), round(flag.minutes, 1), round(flag.kmh))
    appended = batch.appended_ms[row] if batch.appended_ms is not None else None
    return Candidate(
        read,
        key,
        country,
        (clone_match(settings, key, country, flag),),
        version,
        (read.ts - EPOCH) // _US,
        appended,
        clone,
    )
