#!/usr/bin/env python3
"""A dispatch system's client of the FEBLAM Hit Gateway's machine API: follow a desk's cases, acknowledge,
close. Copy it, and put your CAD where ``handle`` is.

    export FEBLAM_API_TOKEN=...      # from `feblam gateway client-token`; the desk lists its token_sha256
    python dispatch_client.py --url https://gateway.police.example --out changes.jsonl --acknowledge

What it does, and why:

- On its first start it lists the desk's open cases (``GET /api/v1/cases``, every page) and then follows the
  desk's changes (``GET /api/v1/events``) from the number the listing gave: nothing falls between.
- Every change it has handled is one line of ``--out``, written after it acted on it. That file is also its
  memory: after a crash or a restart it reads the number of the last line and reconnects with
  ``Last-Event-ID``, so it gets every later change once, in order, and none twice.
- An action carries an ``Idempotency-Key`` made from the change it answers: when the client dies after acting
  and before writing the line, it acts again on restart with the same key, and the gateway answers as the
  first time instead of acting twice.
- When the gateway is away (a restart, a standby taking over: 503) it waits and reconnects; a ``reset``
  (its number is older than the gateway keeps) makes it list the cases again.

It needs Python 3.11 and httpx2 (``pip install httpx2``). It never logs a plate: the lines name cases.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx2

UNACKNOWLEDGED = {"new", "escalated", "reopened"}


class Client:
    def __init__(self, url: str, token: str, out: Path, acknowledge: bool, close_outcome: str | None) -> None:
        self.url = url.rstrip("/")
        self.http = httpx2.Client(
            base_url=self.url, headers={"authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(10.0, read=60.0)
        )
        self.out = out
        self.acknowledge = acknowledge
        self.close_outcome = close_outcome
        self.stopping = False

    # ------------------------------------------------------------ what the client remembers: its --out file

    def last_seen(self) -> int | None:
        """The number of the last change handled (None: never started)."""
        if not self.out.exists():
            return None
        last = None
        with self.out.open("rb") as fh:
            for line in fh:
                if line.endswith(b"\n"):  # a line cut by a crash is not one handled
                    last = json.loads(line).get("seq", last)
        return last

    def record(self, doc: dict[str, Any]) -> None:
        fd = os.open(self.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(doc, separators=(",", ":")) + "\n").encode())  # one write: whole or not
            os.fsync(fd)
        finally:
            os.close(fd)

    # ------------------------------------------------------------ the API

    def list_open(self) -> int:
        """Every open case of the desk (handled as they stand); the number to follow the stream from."""
        cursor, last = None, 0
        while True:
            params = {"state": "open", **({"cursor": cursor} if cursor else {})}
            page = self.call("GET", "/api/v1/cases", params=params).json()
            last = last or page["last_event_id"]
            for card in page["cases"]:
                self.handle(card["case_id"], card["case"], None)
            cursor = page["next_cursor"]
            if cursor is None:
                return last

    def act(self, case_id: str, kind: str, key: str, body: dict[str, Any] | None = None) -> None:
        resp = self.call(
            "POST", f"/api/v1/cases/{case_id}/{kind}", json=body, headers={"idempotency-key": key}, ok=(202, 409)
        )
        if resp.status_code == 409:  # someone else did it first (a dispatcher in the console): not an error
            print(f"case {case_id}: {resp.json()['error']}", file=sys.stderr)

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kw: Any) -> httpx2.Response:
        """One request, retried while the gateway is away (a restart, a takeover); an answer that no retry
        mends (401: a wrong token, 400: a bug of ours) stops the client."""
        wait = 0.5
        while True:
            try:
                resp = self.http.request(method, path, **kw)
                if resp.status_code in ok:
                    return resp
                if resp.status_code not in (429, 502, 503, 504):
                    sys.exit(f"{method} {path}: {resp.status_code} {resp.text[:200]}")
            except httpx2.TransportError as exc:
                print(f"{method} {path}: {exc}; retrying", file=sys.stderr)
            time.sleep(wait)
            wait = min(wait * 2, 10.0)

    # ------------------------------------------------------------ your CAD goes here

    def handle(self, case_id: str, case: dict[str, Any], seq: int | None) -> None:
        """Act on a case as it now stands (put it in your CAD here), then remember the change."""
        if case["state"] in UNACKNOWLEDGED and self.acknowledge:
            self.act(case_id, "acknowledge", f"ack:{case_id}:{seq or case['at']}")
        elif case["state"] == "acknowledged" and self.close_outcome:
            self.act(case_id, "close", f"close:{case_id}", {"outcome": self.close_outcome})
        if seq is not None:
            self.record({"seq": seq, "case_id": case_id, "state": case["state"], "at": case["at"]})

    def follow(self, after: int) -> int | None:
        """Handle every change after ``after`` until stopped; None when the gateway says to list again."""
        headers = {"last-event-id": str(after)}
        with self.http.stream("GET", "/api/v1/events", headers=headers) as resp:
            if resp.status_code != 200:
                resp.read()
                msg = f"events: {resp.status_code}"  # the gateway away or a standby: reconnect
                raise httpx2.TransportError(msg)
            event = None
            for line in resp.iter_lines():
                if self.stopping:
                    return after
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    doc = json.loads(line[6:])
                    if event == "reset":
                        print(f"reset: {doc['reason']}", file=sys.stderr)
                        return None
                    self.handle(doc["case_id"], doc["case"], doc["seq"])
                    after = doc["seq"]
        return after

    def run(self) -> None:
        last = self.last_seen()
        wait = 0.5
        while not self.stopping:
            if last is None:
                last = self.list_open()
            try:
                last = self.follow(last)
                wait = 0.5
            except httpx2.TransportError as exc:  # the gateway is away: reconnect from the same number
                print(f"stream: {exc}; reconnecting after {last}", file=sys.stderr)
                time.sleep(wait)
                wait = min(wait * 2, 10.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the gateway, e.g. https://gateway.police.example")
    ap.add_argument("--token-env", default="FEBLAM_API_TOKEN", help="the variable holding the client's token")
    ap.add_argument("--out", required=True, type=Path, help="one line per change handled (also where it resumes)")
    ap.add_argument("--acknowledge", action="store_true", help="acknowledge every new case")
    ap.add_argument("--close-outcome", default=None, help="then close it with this outcome (e.g. intercepted)")
    args = ap.parse_args()
    token = os.environ.get(args.token_env, "")
    if not token:
        sys.exit(f"{args.token_env}: not set; it holds the client's bearer token")
    client = Client(args.url, token, args.out, args.acknowledge, args.close_outcome)

    def stop(*_: Any) -> None:
        client.stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        client.run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
