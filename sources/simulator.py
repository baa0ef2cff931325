"""Camera simulator: realistic plates of several countries in the three vendor formats.

Used by ``feblam demo`` (publishing to Kafka at a steady rate) and by the
benchmark suite (the same generated reads for every row).
"""

from __future__ import annotations

import random
import string
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from feblam.kafka import produce_waiting

L = string.ascii_uppercase
D = string.digits
BRUSSELS = ZoneInfo("Europe/Brussels")

#: country (ISO alpha-2) -> (weight, plate template); L letter, D digit, others literal.
FORMATS: dict[str, tuple[float, tuple[str, ...]]] = {
    "BE": (0.55, ("D-LLL-DDD",)),
    "NL": (0.10, ("LL-DDD-L", "DD-LLL-D", "L-DDD-LL")),
    "FR": (0.12, ("LL-DDD-LL",)),
    "DE": (0.10, ("L-LL DDDD", "LL-L DDD", "LLL-LL DD")),
    "LU": (0.04, ("LL DDDD",)),
    "GB": (0.03, ("LLDD LLL",)),
    "PL": (0.03, ("LL DDDDD", "LLL DDDL")),
    "IT": (0.03, ("LL DDDLL",)),
}
#: How each vendor writes each country.
COUNTRY_FORMS = {
    "vendor-a": {"BE": "B", "NL": "NL", "FR": "F", "DE": "D", "LU": "L", "GB": "GB", "PL": "PL", "IT": "I"},
    "vendor-b": {
        "BE": "BEL",
        "NL": "NLD",
        "FR": "FRA",
        "DE": "DEU",
        "LU": "LUX",
        "GB": "GBR",
        "PL": "POL",
        "IT": "ITA",
    },
    "vendor-c": {c: c for c in FORMATS},
}
VENDORS = ("vendor-a", "vendor-b", "vendor-c")


def random_plate(rng: random.Random, country: str | None = None) -> tuple[str, str]:
    """A plate as printed, and its country (ISO alpha-2)."""
    if country is None:
        countries = list(FORMATS)
        country = rng.choices(countries, weights=[FORMATS[c][0] for c in countries])[0]
    template = rng.choice(FORMATS[country][1])
    plate = "".join(rng.choice(L) if ch == "L" else rng.choice(D) if ch == "D" else ch for ch in template)
    return plate, country


def payload(vendor: str, seq: int, camera: str, plate: str, country: str | None, ts: datetime, conf: float) -> bytes:
    """One read in the wire format of ``vendor``."""
    code = COUNTRY_FORMS[vendor].get(country or "", country or "") if country else None
    if vendor == "vendor-a":
        return orjson.dumps(
            {
                "id": f"a-{seq}",
                "camera": {"id": camera, "lat": 50.85, "lon": 4.35, "lane": 1 + seq % 3},
                "plate": {"text": plate, "country": code, "confidence": round(conf * 100)},
                "captured_at": ts.astimezone(BRUSSELS).isoformat(timespec="milliseconds"),
                "image": f"s3://anpr/a/{seq}.jpg",
            }
        )
    if vendor == "vendor-b":
        ms = int(ts.timestamp() * 1000)
        return orjson.dumps(
            {
                "ReadId": f"b-{seq}",
                "CameraId": camera,
                "Plate": plate.replace("-", "").replace(" ", ""),
                "Country": code,
                "Conf": round(conf, 2),
                "TimestampMs": ms,
                "Lat": 50.9,
                "Lon": 4.1,
                "Direction": "N",
            }
        )
    if vendor == "vendor-c":
        local = ts.astimezone(BRUSSELS)
        stamp = local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"
        return f"{camera};{stamp};{plate};{code or ''};{conf:.2f}".encode()
    msg = f"unknown vendor {vendor!r}"
    raise ValueError(msg)


BAD_PAYLOADS = (
    b'{"id": "broken", "camera": ',
    b'{"ReadId": "b-x", "CameraId": "E40", "Plate": "1ABC123", "Conf": "high", "TimestampMs": 1}',
    b"CAM-LIE-0001;20260329023000000;1-ABC-123;BE;0.9",
    b"\xff\xfe\x00garbage",
)


@dataclass
class Generated:
    """A batch of generated payloads and how many of them should hit."""

    vendor: str
    payloads: list[bytes]
    hits: int


class ReadGenerator:
    """Deterministic stream of vendor payloads with a given share of hotlisted plates."""

    def __init__(
        self,
        hot_plates: Sequence[tuple[str, str | None]],
        *,
        hit_rate: float = 0.005,
        bad_rate: float = 0.0,
        seed: int = 7,
        start: datetime | None = None,
        cameras: int = 200,
    ) -> None:
        self.rng = random.Random(seed)
        self.hot = list(hot_plates)
        self.hit_rate = hit_rate if self.hot else 0.0
        self.bad_rate = bad_rate
        self.ts = start or datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
        self.seq = 0
        prefixes = ("CAM-BXL-", "CAM-LIE-", "CAM-ANT-", "E40-KM", "E19-KM", "CAM-GNT-")
        self.cameras = [f"{prefixes[i % len(prefixes)]}{i:04d}" for i in range(cameras)]

    def next(self, vendor: str, *, now: bool = False, ts: datetime | None = None) -> tuple[bytes, bool]:
        """One payload and whether it carries a hotlisted plate."""
        rng = self.rng
        self.seq += 1
        if self.bad_rate and rng.random() < self.bad_rate:
            return rng.choice(BAD_PAYLOADS), False
        if ts is None:
            ts = datetime.now(UTC) if now else self.ts + timedelta(milliseconds=self.seq * 7)
        if rng.random() < self.hit_rate:
            plate, country = rng.choice(self.hot)
            hot = True
        else:
            plate, country = random_plate(rng)
            hot = False
        if rng.random() < 0.05:
            country = None  # the camera could not read the country
        return payload(vendor, self.seq, rng.choice(self.cameras), plate, country, ts, 0.5 + rng.random() / 2), hot

    def batch(self, vendor: str, n: int) -> Generated:
        out = []
        hits = 0
        for _ in range(n):
            p, hot = self.next(vendor)
            out.append(p)
            hits += hot
        return Generated(vendor, out, hits)


class KafkaSimulator(threading.Thread):
    """Publishes reads of the three vendors to their topics at ``rate`` reads/s until stopped."""

    def __init__(
        self,
        brokers: str,
        topics: dict[str, str],
        generator: ReadGenerator,
        rate: float,
        stop: threading.Event,
    ) -> None:
        super().__init__(name="camera-simulator", daemon=True)
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5, "enable.idempotence": True})
        self.topics = topics  # vendor -> topic
        self.gen = generator
        self.rate = rate
        self.stop_event = stop
        self.sent = 0

    def run(self) -> None:
        vendors = list(self.topics)
        started = time.monotonic()
        tick = 0.01
        while not self.stop_event.is_set():
            due = int((time.monotonic() - started) * self.rate) - self.sent
            for _ in range(max(0, due)):
                vendor = vendors[self.sent % len(vendors)]
                value, _hot = self.gen.next(vendor, now=True)
                produce_waiting(self.producer, self.topics[vendor], value)
                self.sent += 1
            self.producer.poll(0)
            time.sleep(tick)
        self.producer.flush(10)
