"""The ``gateway`` row: the Hit Gateway with 20 desks, each with a console page connected.

``feblam gateway`` runs as an operator runs it (a subprocess, with a recovery
store) on a broker of its own. Twenty desks each take the hits of their own
camera prefix; one page per desk is signed in and follows its board's event
stream, as a browser does (the same ``/api/events`` stream the board page
reads). Two measurements:

- **latency**: hits offered at ``rate`` hits/s for ``seconds``, spread over the
  desks; for each, the time from producing it to the hits topic to its arrival
  on its desk's page (p50/p99; every hit must arrive).
- **throughput**: ``burst`` hits produced at once; hits/s from the first
  produced to the last one on a page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.data import BENCH_HASH_KEY
from feblam.children import die_with_parent

Figures = dict[str, Any]
DESKS = 20


class Page(threading.Thread):
    """One desk's console page: signs in, then records when each new hit arrives on its event stream."""

    def __init__(self, url: str, user: str, password: str) -> None:
        super().__init__(name=f"page-{user}", daemon=True)
        self.url, self.user, self.password = url, user, password
        self.seen: dict[str, float] = {}
        self.connected = threading.Event()
        self.stop_event = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        import httpx2

        try:
            with httpx2.Client(base_url=self.url, timeout=httpx2.Timeout(10.0, read=None)) as client:
                token = re.search(r"name=csrf value='([^']+)'", client.get("/login").text).group(1)  # type: ignore[union-attr]
                client.post("/login", data={"csrf": token, "user": self.user, "password": self.password})
                with client.stream("GET", "/api/events") as stream:
                    event = ""
                    for line in stream.iter_lines():
                        if line.startswith("event: "):
                            event = line[7:]
                        elif line.startswith("data: ") and event == "card":
                            now = time.time()
                            doc = orjson.loads(line[6:])
                            if doc.get("case"):  # a case opened or a sighting joined it: the card's newest hit
                                self.seen.setdefault(doc["hit"]["hit_id"], now)
                        elif line.startswith("data: ") and event == "snapshot":
                            self.connected.set()
                        if self.stop_event.is_set():
                            return
        except Exception as exc:  # reported in the row
            self.error = f"{type(exc).__name__}: {exc}"
            self.connected.set()


#: Hits of one vehicle in the bench: the first opens its case, the others join it as sightings.
SIGHTINGS = 4


def _hit(i: int) -> dict[str, Any]:
    """Hit ``i``: vehicle ``i // SIGHTINGS`` (one entry each), at a camera of one desk's region."""
    from feblam.serde import format_ts

    vehicle = i // SIGHTINGS
    desk = vehicle % DESKS

    hid = f"bench-{os.getpid()}-{i:08d}"
    ts = format_ts(datetime.now(UTC))
    return {
        "hit_id": hid,
        "index_version": "bench",
        "priority": 1 + vehicle % 3,
        "emitted_at": ts,
        "read": {
            "read_id": f"r-{hid}",
            "camera_id": f"CAM-D{desk:02d}-{i % 50:03d}",
            "vendor": "canonical",
            "ts": ts,
            "plate_raw": f"1-B{vehicle:07d}",
            "plate": f"1B{vehicle:07d}",
            "country": "BE",
            "lat": 50.85,
            "lon": 4.35,
            "image_ref": f"img://bench/{hid}.jpg",
        },
        "matches": [
            {
                "list_id": "BENCH",
                "entry_id": f"E-{vehicle}",
                "category": "stolen_vehicle",
                "priority": 1 + vehicle % 3,
                "action": "intercept",
                "match_kind": "exact",
                "owner": "bench",
                "note": "bench",
            }
        ],
        "routes": ["hits"],
        "retro": False,
        "retro_of": None,
    }


def gateway(cache: Path, *, rate: float = 100.0, seconds: float = 20.0, burst: int = 10_000) -> Figures:
    """The ``gateway`` row (see the module's docstring)."""
    import psutil

    pages: list[Page] = []
    try:
        with Running(cache) as gw:
            pages = [Page(gw.url, f"user-{d:02d}", gw.password) for d in range(DESKS)]
            for page in pages:
                page.start()
            for page in pages:
                page.connected.wait(30)
            errors = [pg.error for pg in pages if pg.error]
            if errors:
                raise RuntimeError(errors[0])

            def arrived(ids: list[str]) -> dict[str, float]:
                out: dict[str, float] = {}
                for page in pages:
                    out.update({h: t for h, t in list(page.seen.items()) if h in ids})
                return out

            # Latency at the offered rate.
            n = int(rate * seconds)
            sent = gw.offer(rate, n)
            ids = list(sent)
            _wait(lambda: len(arrived(ids)) >= n, 30)
            got = arrived(ids)
            lat = [(got[h] - sent[h]) * 1000 for h in got]

            # Throughput: a burst.
            cpu0 = psutil.Process(gw.proc.pid).cpu_times()
            burst_hits = [_hit(n + i) for i in range(burst)]
            b0 = time.time()
            for hit in burst_hits:
                while True:
                    try:  # a vehicle in order, as the job keys it
                        gw.producer.produce(f"{gw.p}.hits", orjson.dumps(hit), key=hit["read"]["plate"].encode())
                        break
                    except BufferError:
                        gw.producer.poll(0.01)
            gw.producer.flush(30)
            burst_ids = [h["hit_id"] for h in burst_hits]
            _wait(lambda: len(arrived(burst_ids)) >= burst, 120)
            done = arrived(burst_ids)
            cpu1 = psutil.Process(gw.proc.pid).cpu_times()
            burst_seconds = (max(done.values()) - b0) if done else float("nan")
            return {
                "name": "gateway",
                "reads": None,
                "seconds": round(burst_seconds, 2),
                "reads_per_s": None,
                "cpu_seconds": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2),
                "hits_per_s": round(len(done) / burst_seconds, 1) if done else None,
                "offered_hits_per_s": rate,
                "latency_hits": n,
                "latency_hits_lost": n - len(got),
                "burst_hits": burst,
                "burst_hits_lost": burst - len(done),
                "desks": DESKS,
                "sightings_per_case": SIGHTINGS,
                "pages": len(pages),
                **_percentiles(lat),
            }
    finally:
        for page in pages:
            page.stop_event.set()


class Running:
    """``feblam gateway`` as an operator runs it, on a broker of its own, with ``DESKS`` desks (``desk`` adds keys
    to each desk's table: clients, a webhook); the hits producer and the gateway's process."""

    def __init__(self, cache: Path, desk: Any = None, env: dict[str, str] | None = None, **gateway: Any) -> None:
        self.cache, self.env, self.gateway = cache, env or {}, gateway
        self.desk: Callable[[int], dict[str, Any]] = desk or (lambda d: {})

    def __enter__(self) -> Running:
        from confluent_kafka import Producer

        from feblam.config import settings_from_dict, settings_toml
        from gateway.console.auth import hash_password
        from sources.broker import EmbeddedBroker, free_port

        self.broker = EmbeddedBroker().start()
        self.proc: Any = None
        try:
            self._start(settings_from_dict, settings_toml, hash_password, free_port)
        except BaseException:
            self.__exit__()
            raise
        self.producer = Producer({"bootstrap.servers": self.broker.address, "linger.ms": 1})
        return self

    def _start(self, settings_from_dict: Any, settings_toml: Any, hash_password: Any, free_port: Any) -> None:
        work = self.cache / f"gateway-{os.getpid()}-{time.monotonic_ns()}"
        work.mkdir(parents=True, exist_ok=True)
        self.p = p = f"gw{os.getpid()}x{time.monotonic_ns() % 10**6}"
        self.broker.create_topics([f"{p}.hits"], partitions=2)
        self.broker.create_topics(
            [f"{p}.hit-events", f"{p}.hit-actions", f"{p}.hit-access", f"{p}.list-quality", f"{p}.dlq", f"{p}.wh-dlq"]
        )
        self.password = "bench-password-0123"  # noqa: S105 - the bench's own throwaway desks
        hashed = hash_password(self.password)
        port = free_port()
        settings = settings_from_dict(
            {
                "kafka": {"brokers": self.broker.address, "poll_timeout_ms": 5, "fetch_wait_ms": 5, "linger_ms": 1},
                "deadletter": {"topic": f"{p}.dlq"},
                "recovery": {"dir": str(work / "state"), "snapshot_seconds": 2.0},
                "logging": {"level": "warning", "format": "json"},
                "privacy": {"hash_key": BENCH_HASH_KEY},
                "gateway": {
                    "hits_topics": [f"{p}.hits"],
                    "events_topic": f"{p}.hit-events",
                    "actions_topic": f"{p}.hit-actions",
                    "access_topic": f"{p}.hit-access",
                    "quality_topic": f"{p}.list-quality",
                    "webhook_deadletter_topic": f"{p}.wh-dlq",
                    "http_port": port,
                    "secure_cookies": False,
                    "login_max_failures": 1000,
                    **self.gateway,
                },
                "desks": [
                    {
                        "name": f"desk-{d:02d}",
                        "camera_prefixes": [f"CAM-D{d:02d}-"],
                        "users": [{"name": f"user-{d:02d}", "password_hash": hashed}],
                        **self.desk(d),
                    }
                    for d in range(DESKS)
                ],
            }
        )
        cfg = work / "gateway.toml"
        cfg.write_text(settings_toml(settings))
        log = work / "gateway.log"
        self.proc = subprocess.Popen(  # noqa: S603 - our CLI
            [sys.executable, "-m", "feblam.cli", "gateway", "--config", str(cfg)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            env={**os.environ, **self.env},
        )
        self.url = url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                import httpx2

                if httpx2.get(url + "/ready", timeout=1).status_code == 200:
                    return
            except Exception:  # noqa: S110 - not listening yet
                pass
            if self.proc.poll() is not None:
                msg = f"feblam gateway exited: {log.read_text()[-500:]}"
                raise RuntimeError(msg)
            time.sleep(0.2)
        msg = f"feblam gateway not ready within 60 s: {log.read_text()[-500:]}"
        raise RuntimeError(msg)

    def offer(self, rate: float, n: int, first: int = 0) -> dict[str, float]:
        """``n`` hits at ``rate`` hits/s, keyed by vehicle as the job keys them; when each was produced."""
        sent: dict[str, float] = {}
        t0 = time.perf_counter()
        for i in range(n):
            due = t0 + i / rate
            while (wait := due - time.perf_counter()) > 0:
                time.sleep(min(wait, 0.005))
            hit = _hit(first + i)
            self.producer.produce(f"{self.p}.hits", orjson.dumps(hit), key=hit["read"]["plate"].encode())
            self.producer.poll(0)
            sent[hit["hit_id"]] = time.time()
        self.producer.flush(10)
        return sent

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.broker.stop()


def _percentiles(lat: list[float]) -> dict[str, float | None]:
    lat = sorted(lat)

    def pct(q: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None

    return {"p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(lat[-1], 1) if lat else None}


def _wait(done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


class Stream(threading.Thread):
    """One API client on its desk's stream: when each hit first arrives (a new case or a sighting)."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.seen: dict[str, float] = {}
        self.connected = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        import httpx2

        headers = {"authorization": f"Bearer {self.token}", "last-event-id": "0"}
        try:
            with httpx2.Client(base_url=self.url, timeout=httpx2.Timeout(10.0, read=None)) as client:
                with client.stream("GET", "/api/v1/events", headers=headers) as stream:
                    for line in stream.iter_lines():
                        self.connected.set()
                        if line.startswith("data: "):
                            now = time.time()
                            doc = orjson.loads(line[6:])
                            if doc["event"]["state"] in ("new", "sighting"):
                                self.seen.setdefault(doc["hit"]["hit_id"], now)
        except Exception as exc:  # reported in the row
            self.error = f"{type(exc).__name__}: {exc}"
            self.connected.set()


def gateway_api(cache: Path, *, rate: float = 100.0, seconds: float = 20.0, clients: int = 50) -> Figures:
    """The ``gateway-api`` row: ``clients`` API clients (spread over the desks) on their desks' streams; for every
    hit and every client of its desk, the time from the hits topic to the client (p50/p99), none lost."""
    import secrets

    from gateway.store import token_hash

    tokens = [secrets.token_urlsafe(32) for _ in range(clients)]

    def desk(d: int) -> dict[str, Any]:
        mine = [i for i in range(clients) if i % DESKS == d]
        return {"clients": [{"name": f"client-{i:02d}", "token_sha256": token_hash(tokens[i])} for i in mine]}

    with Running(cache, desk) as gw:
        streams = [Stream(gw.url, t) for t in tokens]
        for st in streams:
            st.start()
        for st in streams:
            st.connected.wait(30)
        time.sleep(0.5)  # every stream past its first line
        errors = [st.error for st in streams if st.error]
        if errors:
            raise RuntimeError(errors[0])
        n = int(rate * seconds)
        sent = gw.offer(rate, n)
        # who must get each hit: every client of the desk of its camera
        want = {(h, i) for j, h in enumerate(sent) for i in range(clients) if i % DESKS == (j // SIGHTINGS) % DESKS}

        def got() -> dict[tuple[str, int], float]:
            return {(h, i): t for i, st in enumerate(streams) for h, t in list(st.seen.items()) if (h, i) in want}

        _wait(lambda: len(got()) >= len(want), 30)
        arrived = got()
        lat = [(t - sent[h]) * 1000 for (h, _), t in arrived.items()]
        return {
            "name": "gateway-api",
            "reads": None,
            "seconds": seconds,
            "reads_per_s": None,
            "offered_hits_per_s": rate,
            "hits_per_s": round(len(arrived) / seconds, 1),
            "clients": clients,
            "deliveries": len(want),
            "deliveries_lost": len(want) - len(arrived),
            "desks": DESKS,
            **_percentiles(lat),
        }


def gateway_webhook(cache: Path, *, rate: float = 100.0, seconds: float = 20.0, fail_every: int = 10) -> Figures:
    """The ``gateway-webhook`` row: every desk's webhook to one receiver on loopback that refuses every
    ``fail_every``-th delivery (10 %); deliveries/s and the time from the hits topic to the delivery taken."""
    import secrets
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gateway.webhooks import verify

    secret = secrets.token_hex(32)
    taken: dict[str, float] = {}
    counts = {"calls": 0, "refused": 0, "bad": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            body = self.rfile.read(int(self.headers["content-length"]))
            now = time.time()
            with lock:
                counts["calls"] += 1
                refuse = counts["calls"] % fail_every == 0
            if not verify(secret.encode(), self.headers["feblam-timestamp"], self.headers["feblam-signature"], body):
                counts["bad"] += 1
                status = 401
            elif refuse:
                counts["refused"] += 1
                status = 503
            else:
                doc = orjson.loads(body)
                if doc["event"]["state"] in ("new", "sighting"):
                    with lock:
                        taken.setdefault(doc["hit"]["hit_id"], now)
                status = 204
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = {
        "url": f"http://127.0.0.1:{server.server_address[1]}/feblam",
        "secret_env": "BENCH_WEBHOOK_SECRET",
        "backoff_seconds": 0.1,
    }
    try:
        with Running(cache, lambda d: {"webhook": hook}, env={"BENCH_WEBHOOK_SECRET": secret}) as gw:
            n = int(rate * seconds)
            t0 = time.time()
            sent = gw.offer(rate, n)
            _wait(lambda: len(set(taken) & set(sent)) >= n, 60)
            last = max((taken[h] for h in sent if h in taken), default=t0)
            arrived = {h: taken[h] for h in sent if h in taken}
            lat = [(t - sent[h]) * 1000 for h, t in arrived.items()]
            return {
                "name": "gateway-webhook",
                "reads": None,
                "seconds": round(last - t0, 2),
                "reads_per_s": None,
                "offered_hits_per_s": rate,
                "hits_per_s": round(len(arrived) / (last - t0), 1) if arrived else None,
                "deliveries": counts["calls"],
                "refused": counts["refused"],
                "bad_signatures": counts["bad"],
                "hits_lost": n - len(arrived),
                "backoff_seconds": hook["backoff_seconds"],
                "desks": DESKS,
                **_percentiles(lat),
            }
    finally:
        server.shutdown()
        server.server_close()
