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
from matchers.batch import exact_codes
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

    def objects(self) -> npt.NDArray[Any]:
        """The earlier-read fields the window keeps (read id, camera, vendor, image), as object rows."""
        s = self.sightings
        out = np.empty((4, len(s)), dtype=object)
        out[0], out[1], out[2], out[3] = s.read_ids, s.cameras, s.vendors, s.images
        return out


@dataclass(frozen=True, slots=True)
class Earlier:
    """The earlier sighting of a flagged pair, as the window or the batch held it (no plate)."""

    read_id: str | None  # None: the vendor gives none (see earlier_read)
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
        got = np.fromiter(map(self._countries.get, raws, repeat(-1)), dtype=np.int64, count=len(raws))
        for j in np.flatnonzero(got < 0).tolist():
            raw = raws[j]
            code = country_code(raw) if isinstance(raw, str) else None
            if code not in self.country_names:
                self.country_names.append(code)
            got[j] = number = self.country_names.index(code)
            if len(self._countries) < 10_000:  # a topic of made-up codes cannot grow it further
                self._countries[raw] = number
        return got


EMPTY = np.uint64(0)
TOMB = np.uint64(1)  # a slot whose sighting left the window (a probe goes on past it)


class CloneWindow:
    """The last sighting of each plate seen within the window (one shard's), and the check (see the module).

    An open-addressing hash table in numpy columns, keyed by the plate hash (0: empty, 1: a slot whose
    sighting left, which a lookup passes and an insert takes), at most half full: a batch is looked up and
    stored with a few vectorised probe rounds, never a Python step a read."""

    def __init__(self, settings: CloneSettings, places: Places | None = None, capacity: int = 1 << 16) -> None:
        self.places = places or Places(CameraRegister())
        self.window_us = int(settings.window_minutes * 60_000_000)
        self.max_kmh = settings.max_kmh
        self.min_km = settings.min_km
        self.newest = -(2**62)
        self._swept = -(2**62)
        self.live = 0
        self.tombs = 0
        self._alloc(capacity)

    def _alloc(self, cap: int) -> None:
        self.cap, self.mask = cap, np.uint64(cap - 1)
        self.key = np.zeros(cap, dtype=np.uint64)
        self.ts = np.zeros(cap, dtype=np.int64)
        self.lat = np.zeros(cap, dtype=np.float64)
        self.lon = np.zeros(cap, dtype=np.float64)
        self.site = np.zeros(cap, dtype=np.int64)
        self.country = np.zeros(cap, dtype=np.int64)
        self.conf = np.zeros(cap, dtype=np.float32)
        self.objs = np.full((4, cap), None, dtype=object)  # read id, camera, vendor, image reference

    def __len__(self) -> int:
        return self.live

    def nbytes(self) -> int:
        """The columns' bytes (the strings the object column refers to not counted)."""
        cols = (self.key, self.ts, self.lat, self.lon, self.site, self.country, self.conf, self.objs)
        return int(sum(a.nbytes for a in cols))

    def _lookup(self, h: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """The slot of each hash (-1: not held)."""
        slot = np.full(h.shape[0], -1, dtype=np.int64)
        pos = h & self.mask
        todo = np.arange(h.shape[0])
        while todo.shape[0]:
            p = pos[todo]
            k = self.key[p]
            found = k == h[todo]
            slot[todo[found]] = p[found].astype(np.int64)
            go = ~found & (k != EMPTY)
            todo = todo[go]
            pos[todo] = (p[go] + np.uint64(1)) & self.mask
        return slot

    def _insert(self, h: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """Slots for hashes not held (distinct): each takes the first empty or left slot of its probe (room for
        them made beforehand, :meth:`_reserve`)."""
        slot = np.full(h.shape[0], -1, dtype=np.int64)
        pos = h & self.mask
        todo = np.arange(h.shape[0])
        while todo.shape[0]:
            p = pos[todo]
            k = self.key[p]
            free = np.flatnonzero(k <= TOMB)
            pf = p[free]
            self.tombs -= int((k[free] == TOMB).sum())
            self.key[pf] = h[todo[free]]  # two hashes at one free slot: one of them takes it, the other goes on
            won = self.key[pf] == h[todo[free]]
            slot[todo[free[won]]] = pf[won].astype(np.int64)
            self.tombs += int((k[free[~won]] == TOMB).sum())  # a slot two hashes wanted was counted twice
            rest = np.ones(todo.shape[0], dtype=bool)
            rest[free[won]] = False
            todo, p = todo[rest], p[rest]
            pos[todo] = (p + np.uint64(1)) & self.mask
        self.live += h.shape[0]
        return slot

    def _reserve(self, more: int) -> None:
        """Room for ``more`` new plates with the table at most half full (a rehash moves every slot: before a
        batch looks its plates up, never between)."""
        if 2 * (self.live + self.tombs + more) > self.cap:
            self._rehash(self.live + more)

    def _rehash(self, need: int) -> None:
        held = np.flatnonzero(self.key > TOMB)
        values = [a[held] for a in (self.ts, self.lat, self.lon, self.site, self.country, self.conf)]
        keys, objs = self.key[held], self.objs[:, held]
        cap = self.cap
        while 4 * need > cap:
            cap *= 2
        self._alloc(cap)
        self.live = self.tombs = 0
        s = self._insert(keys)
        columns: tuple[npt.NDArray[Any], ...] = (self.ts, self.lat, self.lon, self.site, self.country, self.conf)
        for new, held_values in zip(columns, values, strict=True):
            new[s] = held_values
        self.objs[:, s] = objs

    def check(self, part: ClonePart) -> list[Flag]:
        """The flagged reads of ``part``; the window then holds each plate's newest sighting."""
        n = len(part)
        if n == 0:
            return []
        self._reserve(n)
        order = np.lexsort((part.ts, part.hashes))
        h, ts = part.hashes[order], part.ts[order]
        lat, lon, site, country = part.lat[order], part.lon[order], part.site[order], part.country[order]
        first = np.ones(n, dtype=bool)
        first[1:] = h[1:] != h[:-1]
        last = np.ones(n, dtype=bool)
        last[:-1] = first[1:]
        slot = np.full(n, -1, dtype=np.int64)
        firsts = np.flatnonzero(first)
        slot[firsts] = self._lookup(h[firsts])
        horizon = self.newest - self.window_us
        # the sighting each read is compared with: the one before it in the batch, else the window's
        prev = np.arange(n) - 1  # >= 0: a row of the batch; -1 - slot: the window's slot
        have = ~first
        held = firsts[slot[firsts] >= 0]
        if held.shape[0]:
            s = slot[held]
            fresh = self.ts[s] >= horizon
            held, s = held[fresh], s[fresh]
            prev[held] = -1 - s
            have[held] = True
        from_window = prev < 0
        ps = np.where(from_window, -1 - prev, 0)
        pb = np.where(from_window, 0, np.maximum(prev, 0))
        p_ts = np.where(from_window, self.ts[ps], ts[pb])
        p_site = np.where(from_window, self.site[ps], site[pb])
        p_country = np.where(from_window, self.country[ps], country[pb])
        dt = np.abs(ts - p_ts)
        cand = have & (dt <= self.window_us) & (site != p_site)
        cand &= (country == 0) | (p_country == 0) | (country == p_country)
        flags: list[Flag] = []
        if cand.any():
            c = np.flatnonzero(cand)
            p_lat = np.where(from_window[c], self.lat[ps[c]], lat[pb[c]])
            p_lon = np.where(from_window[c], self.lon[ps[c]], lon[pb[c]])
            km = great_circle_km(lat[c], lon[c], p_lat, p_lon)
            kmh = km / (np.maximum(dt[c], 1_000_000) / 3.6e9)
            hit = (km >= self.min_km) & (kmh > self.max_kmh)
            for i, k, v in zip(c[hit].tolist(), km[hit].tolist(), kmh[hit].tolist(), strict=True):
                earlier = (
                    self._earlier(-1 - int(prev[i])) if from_window[i] else self._in_part(part, int(order[prev[i]]))
                )
                flags.append(Flag(int(order[i]), earlier, k, float(dt[i]) / 60e6, v))
        self._store(part, order, h, ts, lat, lon, site, country, last, slot, horizon)
        newest = int(ts.max())
        if newest > self.newest:
            self.newest = newest
        if self.newest - self._swept >= self.window_us // 4:
            self.sweep()
        return flags

    def _earlier(self, s: int) -> Earlier:
        read_id, camera, vendor, image = self.objs[:, s].tolist()
        return Earlier(
            read_id,
            camera,
            vendor,
            int(self.ts[s]),
            float(self.lat[s]),
            float(self.lon[s]),
            float(self.conf[s]),
            image,
            self.country_name(int(self.country[s])),
        )

    def _in_part(self, part: ClonePart, k: int) -> Earlier:
        s, j = part.sightings, int(part.idx[k])
        return Earlier(
            s.read_ids[j] or None,
            s.cameras[j],
            s.vendors[j],
            int(part.ts[k]),
            float(part.lat[k]),
            float(part.lon[k]),
            float(s.confidence[j]),
            s.images[j] or None,
            self.country_name(int(part.country[k])),
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
        horizon: int,
    ) -> None:
        """Each plate's newest sighting of the batch into its slot (unless the slot holds a newer one in the
        window), a new slot for a plate the window does not hold."""
        rows = np.flatnonzero(last)
        s = self._group_slots(slot, rows)  # a group's slot was looked up at its first row
        known = s >= 0
        safe = np.maximum(s, 0)
        newer_held = known & (self.ts[safe] > ts[rows]) & (self.ts[safe] >= horizon)
        rows, s, known = rows[~newer_held], s[~newer_held], known[~newer_held]
        fresh = np.flatnonzero(~known)
        if fresh.shape[0]:
            s[fresh] = self._insert(h[rows[fresh]])
        self.ts[s] = ts[rows]
        self.lat[s] = lat[rows]
        self.lon[s] = lon[rows]
        self.site[s] = site[rows]
        self.country[s] = country[rows]
        sg = part.sightings
        src = part.idx[order[rows]]
        self.conf[s] = sg.confidence[src]
        self.objs[:, s] = part.objects()[:, src]

    @staticmethod
    def _group_slots(slot: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The slot of each group (looked up at its first row), at the group's last row."""
        starts = np.empty(rows.shape[0], dtype=np.int64)
        starts[0] = 0
        starts[1:] = rows[:-1] + 1
        return slot[starts]

    def sweep(self) -> int:
        """Forget the sightings older than the window (their slots left); returns how many."""
        self._swept = self.newest
        old = np.flatnonzero((self.key > TOMB) & (self.ts < self.newest - self.window_us))
        self.key[old] = TOMB
        self.objs[:, old] = None
        self.live -= int(old.shape[0])
        self.tombs += int(old.shape[0])
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
        if s.codes is None or s.uncoded is None:
            s.codes, s.uncoded = exact_codes(s.plates)
        idx = np.flatnonzero(keep)
        plates = s.plates
        hashes = self.hasher.of_codes(s.codes[idx], s.uncoded[idx], lambda i: plates[int(idx[i])])
        if not (hashes >= 2).all():  # 0: no key, or one no country issues (a dead letter)
            idx, hashes = idx[hashes >= 2], hashes[hashes >= 2]
        if not idx.shape[0]:
            return []
        country = self.places.country_numbers(s.countries)[idx]
        whole = ClonePart("0", batch, s, idx, hashes, s.ts_us[idx], lat[idx], lon[idx], site[idx], country)
        if self.shards == 1:
            return [whole]
        by = (whole.hashes % np.uint64(self.shards)).astype(np.int64)
        out = []
        for k in np.unique(by).tolist():
            m = np.flatnonzero(by == k)
            out.append(
                ClonePart(
                    str(k),
                    batch,
                    s,
                    idx[m],
                    whole.hashes[m],
                    whole.ts[m],
                    whole.lat[m],
                    whole.lon[m],
                    whole.site[m],
                    country[m],
                )
            )
        return out

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
    """The earlier sighting as a read. Its plate is the key both reads share (the window keeps no plate); a read
    whose vendor gives no id gets the id derived from camera, time and that key (DESIGN 2 derives it from the
    raw plate, which may differ by separators: camera and time name the read)."""
    ts = EPOCH + timedelta(microseconds=e.ts_us)
    return Read(
        e.read_id or derived_read_id(e.camera_id, ts, key),
        e.camera_id,
        e.vendor,
        ts,
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
