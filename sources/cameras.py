"""The camera register: where each fixed camera stands, and which cameras are one site (``[clones] cameras``).

A CSV file with a header row: ``camera_id,lat,lon`` and optionally ``site``.
Cameras of one site (one gantry, both sides of a road, an entrance and its
exit) are never compared by the clone check; a camera without a site is a site
of its own. A camera listed with empty ``lat`` and ``lon`` is known but not
placed: it is named in a warning at start, and its reads (unless they carry
their own position) are not checked. Any other mistake (a missing column, a
number that is not one, a latitude out of range, a camera listed twice) is one
error naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from feblam.errors import ConfigError

MAX_CAMERAS = 1_000_000


@dataclass(frozen=True, slots=True)
class CameraRegister:
    """camera id -> (lat, lon, site); ``unplaced``: the cameras listed without a position."""

    path: str = ""
    positions: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    unplaced: tuple[str, ...] = ()


def _coordinate(text: str, where: str, lo: float, hi: float) -> float:
    try:
        value = float(text)
    except ValueError:
        msg = f"{where}: {text[:40]!r} is not a number"
        raise ConfigError(msg) from None
    if not math.isfinite(value) or not lo <= value <= hi:
        msg = f"{where}: {value:g} is not within {lo:g}..{hi:g}"
        raise ConfigError(msg)
    return value


def load_cameras(path: str | Path) -> CameraRegister:
    """The register of ``path``; :class:`ConfigError` naming file, row and column on any mistake."""
    try:
        with Path(path).open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        msg = f"{path}: cannot be read ({exc.strerror or exc})"
        raise ConfigError(msg) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        msg = f"{path}: not a UTF-8 CSV file ({exc})"
        raise ConfigError(msg) from None
    if not rows:
        msg = f"{path}: empty; expected a header row camera_id,lat,lon[,site]"
        raise ConfigError(msg)
    header = [h.strip() for h in rows[0]]
    missing = [c for c in ("camera_id", "lat", "lon") if c not in header]
    if missing:
        msg = f"{path}: row 1: no column {', '.join(missing)} (the header is camera_id,lat,lon[,site])"
        raise ConfigError(msg)
    unknown = [c for c in header if c not in ("camera_id", "lat", "lon", "site")]
    if unknown:
        msg = f"{path}: row 1: unknown column {unknown[0]!r} (the header is camera_id,lat,lon[,site])"
        raise ConfigError(msg)
    if len(rows) - 1 > MAX_CAMERAS:
        msg = f"{path}: {len(rows) - 1} cameras, over the {MAX_CAMERAS} a register may list"
        raise ConfigError(msg)
    col = {name: header.index(name) for name in header}
    positions: dict[str, tuple[float, float, str]] = {}
    unplaced: list[str] = []
    seen: set[str] = set()
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            msg = f"{path}: row {n}: {len(row)} columns, the header has {len(header)}"
            raise ConfigError(msg)
        camera = row[col["camera_id"]].strip()
        if not camera:
            msg = f"{path}: row {n}, column camera_id: empty"
            raise ConfigError(msg)
        if camera in seen:
            msg = f"{path}: row {n}, column camera_id: {camera!r} is listed twice"
            raise ConfigError(msg)
        seen.add(camera)
        lat_text, lon_text = row[col["lat"]].strip(), row[col["lon"]].strip()
        if not lat_text and not lon_text:
            unplaced.append(camera)
            continue
        lat = _coordinate(lat_text, f"{path}: row {n}, column lat", -90.0, 90.0)
        lon = _coordinate(lon_text, f"{path}: row {n}, column lon", -180.0, 180.0)
        site = row[col["site"]].strip() if "site" in col else ""
        positions[camera] = (lat, lon, site or camera)
    return CameraRegister(str(path), positions, tuple(unplaced))
