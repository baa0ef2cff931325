"""Hits, desks and settings for the gateway tests."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import tomli_w

from feblam.config import Settings, settings_from_dict
from feblam.serde import format_ts
from gateway.console.auth import hash_password
from tests.support.processes import FEBLAM, clean_env

PASSWORD = "correct horse battery staple"  # noqa: S105 - the test desks' password
PASSWORD_HASH = hash_password(PASSWORD)
#: The action key of the in-process gateway tests (a subprocess gateway keeps its own in recovery.dir).
ACTION_KEY = b"test-action-key-" * 4
#: The privacy.hash_key of the test gateways (an action's vehicle is its keyed hash).
HASH_KEY = "a-test-key-of-this-deployment"


def hit_doc(
    camera: str = "CAM-BXL-001",
    priority: int = 1,
    action: str = "intercept",
    *,
    hit_id: str | None = None,
    emitted_at: datetime | None = None,
    plate: str | None = None,
    retro: bool = False,
    lat: float = 50.8466,
    lon: float = 4.3528,
) -> dict[str, Any]:
    """A hit as DESIGN 6 JSON; of a vehicle of its own unless ``plate`` names one (then of that vehicle)."""
    hid = hit_id or uuid.uuid4().hex
    plate = plate or "1" + "".join(c for c in hid.upper() if c.isalnum())[:8]
    ts = format_ts(emitted_at or datetime.now(UTC))
    return {
        "hit_id": hid,
        "index_version": "v1",
        "priority": priority,
        "emitted_at": ts,
        "read": {
            "read_id": f"r-{hid}",
            "camera_id": camera,
            "vendor": "canonical",
            "ts": ts,
            "plate_raw": plate,
            "country_raw": "B",
            "confidence": 0.9,
            "lat": lat,
            "lon": lon,
            "lane": 1,
            "direction": "N",
            "image_ref": f"img://{camera}/{hid}.jpg",
            "plate": plate,
            "country": "BE",
        },
        "matches": [
            {
                "list_id": "BE-STOLEN",
                "entry_id": "S-1",
                "category": "stolen_vehicle",
                "priority": priority,
                "action": action,
                "match_kind": "exact",
                "owner": "police-be",
                "note": "stolen in Ixelles",
                "entry_plate": plate,
                "entry_country": "BE",
                "valid_from": None,
                "valid_until": None,
            }
        ],
        "routes": ["hits"],
        "retro": retro,
        "retro_of": "v0" if retro else None,
    }


def opened(hit: dict[str, Any], desks: Any, now: datetime) -> tuple[Any, list[Any]]:
    """A new vehicle's state after its first hit, taken at the desks its routing names, and the changes."""
    from gateway.cases import VehicleCases, take_hit, vehicle_of

    vc = VehicleCases(vehicle_of(hit))
    return vc, take_hit(vc, hit, desks.route(hit), desks, now)


def desk_action(
    hit: dict[str, Any],
    desk: str,
    kind: str,
    at: datetime,
    outcome: str | None = None,
    reason: str | None = None,
    *,
    case: str | None = None,
    user: str | None = None,
    hash_key: str | None = None,
) -> Any:
    """What a desk's user does to the case opened by ``hit`` (or to ``case``), as the console builds it
    (``hash_key``: a gateway process's :data:`HASH_KEY`, where the action goes to one)."""
    from gateway.actions import DeskAction
    from gateway.cases import vehicle_of

    if outcome in ("false_read", "not_found") and reason is None:
        reason = "checked by the test"
    return DeskAction(
        case or hit["hit_id"],
        desk,
        user or f"{desk}-1",
        kind,
        at,
        outcome,
        reason,
        vehicle_of(hit, hash_key),  # type: ignore[arg-type]
    )


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``doc`` with the value at ``path`` (keys and indexes) replaced: a hit of another shape."""
    doc = orjson.loads(orjson.dumps(doc))
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


class Clock:
    """A controlled clock: ``clock()`` is ``clock.now`` (kept in the real past: Bytewax fires timers by wall clock)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def gateway_doc(brokers: str = "127.0.0.1:1", prefix: str = "t", **gateway: Any) -> dict[str, Any]:
    """Two regional desks escalating to a national one; user ``<desk>-1`` per desk, password :data:`PASSWORD`."""
    desks = [
        {"name": "brussels", "camera_prefixes": ["CAM-BXL"], "escalate_to": "national"},
        {"name": "antwerp", "camera_prefixes": ["CAM-ANT"], "escalate_to": "national"},
        {"name": "national", "max_priority": 1, "lists": ["NONE"]},  # gets hits only by escalation
    ]
    for d in desks:
        d["users"] = [{"name": f"{d['name']}-1", "password_hash": PASSWORD_HASH}]
    return {
        "kafka": {"brokers": brokers, "start_timeout_seconds": 10},
        "deadletter": {"topic": f"{prefix}.deadletter"},
        "gateway": {
            "hits_topics": [f"{prefix}.hits"],
            "events_topic": f"{prefix}.hit-events",
            "actions_topic": f"{prefix}.hit-actions",
            "access_topic": f"{prefix}.hit-access",
            "quality_topic": f"{prefix}.list-quality",
            "secure_cookies": False,
            "escalate_after_seconds": {"1": 60, "2": 120},
            **gateway,
        },
        "desks": desks,
        "privacy": {"hash_key": HASH_KEY},
        "logging": {"format": "json"},
    }


def gateway_settings(**gateway: Any) -> Settings:
    return settings_from_dict(gateway_doc(**gateway))


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    """A settings document as a TOML file."""
    path.write_bytes(tomli_w.dumps(doc).encode())
    return path


def start_gateway(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    """``feblam gateway --config cfg`` in the background, its output appended to ``log``."""
    return subprocess.Popen(
        [FEBLAM, "gateway", "--config", str(cfg)], stdout=log.open("ab"), stderr=subprocess.STDOUT, env=clean_env()
    )


def produce_hits(brokers: str, topic: str, hits: list[dict[str, Any]]) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": brokers})
    for h in hits:
        p.produce(topic, orjson.dumps(h), key=h["hit_id"].encode())
    assert p.flush(10) == 0


class ConsoleUser:
    """A desk's user signed in to a running console, as a script would be (the standard library's HTTP client
    with a cookie jar)."""

    def __init__(self, url: str, user: str, password: str = PASSWORD) -> None:
        import http.cookiejar
        import re
        import urllib.parse
        import urllib.request

        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = self.opener.open(f"{url}/login", timeout=10).read().decode()
        match = re.search(r"name=csrf value='([^']+)'", form)
        assert match, form
        data = urllib.parse.urlencode({"csrf": match.group(1), "user": user, "password": password}).encode()
        page = self.opener.open(f"{url}/login", data=data, timeout=10).read().decode()
        assert "csrf-token" in page, page[:500]  # signed in: the board page

    def board(self) -> dict[str, dict[str, Any]]:
        """The desk's cards by hit id."""
        doc = orjson.loads(self.opener.open(f"{self.url}/api/board", timeout=10).read())
        return {c["hit_id"]: c for c in doc["cards"]}
