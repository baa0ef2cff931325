"""The machine API (``/api/v1``): a desk's systems take its cases, follow them live and act, as the console does.

A client is listed under its desk (``[[desks]] clients``) with the SHA-256 of
its bearer token, or with its certificate's subject as a TLS proxy of
``trusted_proxies`` passes it (``[gateway] client_cert_header``). A client
sees its desk's board only (the same need to know as the desk's users), every
case shown and every refusal is an event of the access trail under the
client's name (``via: api``), and its actions are signed by the gateway and
read back by the flow like the console's, in the client's name.

- ``GET /api/v1/cases``: the desk's cases, paged, with the number of the feed's
  newest change (``last_event_id``) to follow from;
- ``GET /api/v1/events``: the desk's changes as server-sent events; with
  ``Last-Event-ID`` (or ``?after=``), every change after that one, once, in
  order, then the live ones (:mod:`gateway.journal`);
- ``POST /api/v1/cases/{case_id}/acknowledge|close``: with an
  ``Idempotency-Key``; the same key again gets the first answer, never a
  second action;
- ``GET /api/v1/openapi.json``: the contract (:mod:`gateway.openapi`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from feblam.config import DeskSettings, GatewaySettings
from feblam.logs import get_logger
from feblam.serde import parse_ts
from gateway import metrics
from gateway.actions import ACTION_KINDS, MAX_REASON, DeskAction
from gateway.board import Board
from gateway.cases import OPEN_STATES, Refusal, card_action
from gateway.journal import Journal, message
from gateway.openapi import MAX_IDEMPOTENCY_KEY, STATES, document
from gateway.store import Store, token_hash

log = get_logger(__name__)
#: Seconds between keep-alive comments on an idle stream.
KEEPALIVE_SECONDS = 15.0
#: Changes read from the feed at a time by one stream.
STREAM_BATCH = 500


@dataclass(frozen=True, slots=True)
class Client:
    """A desk's system, as the API knows it."""

    name: str
    desk: str
    kind: str


class Clients:
    """Every desk's clients, by the hash of their token and by their certificate's subject."""

    def __init__(self, desks: Sequence[DeskSettings]) -> None:
        self._by_token = {
            c.token_sha256: Client(c.name, d.name, d.kind) for d in desks for c in d.clients if c.token_sha256
        }
        self._by_subject = {
            c.cert_subject: Client(c.name, d.name, d.kind) for d in desks for c in d.clients if c.cert_subject
        }

    def by_token(self, token: str) -> Client | None:
        """The client whose token this is (the token's SHA-256 is looked up: no token is kept)."""
        return self._by_token.get(token_hash(token)) if token else None

    def by_subject(self, subject: str) -> Client | None:
        return self._by_subject.get(subject) if subject else None

    def __len__(self) -> int:
        return len(self._by_token) + len(self._by_subject)


def api_card(card: dict[str, Any]) -> dict[str, Any]:
    """A board card as the API gives it."""
    return {"case_id": card["hit_id"], "case": card["case"], "hit": card["hit"]}


def _cursor(case: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([case["at"], case["case_id"]])).decode()


def _after(cursor: str) -> tuple[datetime, str]:
    try:
        at, case_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return parse_ts(str(at)), str(case_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        msg = "cursor: not a cursor this API gave"
        raise ValueError(msg) from None


def _error(status: int, text: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=headers or None)


def api_routes(
    settings: GatewaySettings,
    board: Board,
    journal: Journal,
    store: Store,
    clients: Clients,
    write_action: Callable[[DeskAction], None],
    *,
    address: Callable[[Request], str],
    trusted: Callable[[str], bool],
    audit: Callable[..., None],
    throttle: Any,
    streams: Any,
) -> list[Route]:
    """The API's routes. ``address``: the request's client address; ``trusted``: whether a peer is one of
    ``trusted_proxies``; ``audit(kind, request, client, hit_ids=, reason=)``: one access event."""
    page_size = settings.api_page_size
    posting: dict[str, asyncio.Lock] = {}

    def who(request: Request) -> Client | JSONResponse:
        """The request's client, or the answer that refuses it (audited, throttled per address)."""
        peer = address(request)
        keys = (f"addr:api:{peer}",)
        wait = throttle.blocked(*keys)
        if wait:
            audit("refused", request, None, reason=f"API: throttled for {int(wait) + 1} s")
            return _error(429, "too many refused requests from this address", **{"retry-after": str(int(wait) + 1)})
        client = None
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and 0 < len(token.strip()) <= 256:
            client = clients.by_token(token.strip())
        elif settings.client_cert_header and request.client and trusted(request.client.host):
            client = clients.by_subject(request.headers.get(settings.client_cert_header, "")[:512])
        if client is None:
            throttle.failed(*keys)
            metrics.API.labels("", "unauthorised").inc()
            log.warning("api_refused", client=peer, path=request.url.path[:100], reason="no valid credentials")
            audit("refused", request, None, reason="API: no valid credentials")
            return _error(
                401,
                "a client's bearer token is needed (Authorization: Bearer ...)",
                **{"www-authenticate": 'Bearer realm="feblam-gateway"'},
            )
        return client

    async def me(request: Request) -> Response:
        client = who(request)
        if isinstance(client, Response):
            return client
        return JSONResponse({"client": client.name, "desk": client.desk, "kind": client.kind})

    async def cases(request: Request) -> Response:
        client = who(request)
        if isinstance(client, Response):
            return client
        q = request.query_params
        state = q.get("state", "open")
        if state not in STATES:
            return _error(400, f"state: one of {', '.join(STATES)}")
        try:
            limit = int(q.get("limit", page_size))
            if not 1 <= limit <= page_size:
                raise ValueError
        except ValueError:
            return _error(400, f"limit: a whole number from 1 to {page_size} (gateway.api_page_size)")
        try:
            since = parse_ts(q["since"]) if "since" in q else None
            after = _after(q["cursor"]) if "cursor" in q else None
        except ValueError as exc:
            return _error(400, str(exc) if "cursor" in str(exc) else "since: an ISO 8601 time")
        head = journal.head(client.desk)  # before the board: a change in neither is never missed
        chosen = []
        for card in board.cards(client.desk):
            case = card["case"]
            st = case["state"]
            if state == "open" and st not in OPEN_STATES or state not in ("open", "all") and st != state:
                continue
            at = parse_ts(case["at"])
            if since is not None and at < since:
                continue
            if after is not None and (at, case["case_id"]) <= after:
                continue
            chosen.append((at, case["case_id"], card))
        chosen.sort(key=lambda t: (t[0], t[1]))
        page = [c for _, _, c in chosen[:limit]]
        more = len(chosen) > limit
        audit("shown", request, client, hit_ids=[c["hit_id"] for c in page])
        metrics.API.labels(client.desk, "cases").inc()
        return JSONResponse(
            {
                "desk": client.desk,
                "cases": [api_card(c) for c in page],
                "next_cursor": _cursor(page[-1]["case"]) if more else None,
                "last_event_id": head,
            }
        )

    async def one_case(request: Request) -> Response:
        client = who(request)
        if isinstance(client, Response):
            return client
        case_id = request.path_params["case_id"][:128]
        card = board.card(client.desk, case_id)
        if card is None:
            audit("refused", request, client, hit_ids=[case_id], reason="not on the desk's board")
            return _error(404, "no such case on your desk's board")
        audit("shown", request, client, hit_ids=[case_id])
        return JSONResponse(api_card(card))

    async def events(request: Request) -> Response:
        client = who(request)
        if isinstance(client, Response):
            return client
        given = request.headers.get("last-event-id") or request.query_params.get("after")
        if given is not None and not (given.isdigit() and len(given) < 19):
            return _error(400, "Last-Event-ID: the number of a change this API sent")
        desk = client.desk
        refused = streams.open(f"api:{client.name}", desk)
        if refused:
            audit("refused", request, client, reason=refused)
            return _error(429, refused, **{"retry-after": "5"})
        follower = journal.follow(desk, asyncio.get_running_loop())
        last = int(given) if given is not None else journal.head(desk)
        metrics.API.labels(desk, "stream").inc()
        log.info("api_stream", client=client.name, desk=desk, after=last)

        async def stream() -> AsyncIterator[bytes]:
            nonlocal last
            try:
                yield b"retry: 1000\n: following desk " + desk.encode() + b"\n\n"
                while True:
                    follower.woken.clear()
                    batch = journal.since(desk, last, STREAM_BATCH)
                    if batch is None:
                        head = journal.head(desk)
                        reason = f"change {last} is not kept (the feed is at {head}); list the cases again"
                        yield (
                            b"event: reset\ndata: " + orjson.dumps({"reason": reason, "last_event_id": head}) + b"\n\n"
                        )
                        return
                    if batch:
                        audit("shown", request, client, hit_ids=list(dict.fromkeys(c.case_id for c in batch)))
                        yield b"".join(b"id: %d\nevent: change\ndata: " % c.seq + message(c) + b"\n\n" for c in batch)
                        last = batch[-1].seq
                        continue
                    try:
                        await asyncio.wait_for(follower.woken.wait(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
            finally:
                journal.unfollow(follower)
                streams.close(f"api:{client.name}", desk)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})

    async def act(request: Request) -> Response:
        client = who(request)
        if isinstance(client, Response):
            return client
        case_id, kind = request.path_params["case_id"][:128], request.path_params["kind"]
        if kind not in ACTION_KINDS:
            return _error(404, f"no such action ({' or '.join(ACTION_KINDS)})")
        key = request.headers.get("idempotency-key", "")
        if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
            return _error(400, f"Idempotency-Key: a header of 1 to {MAX_IDEMPOTENCY_KEY} characters is needed")
        body = await request.body()
        digest = hashlib.sha256(request.url.path.encode() + b"\x1f" + body).hexdigest()
        lock = posting.setdefault(client.name, asyncio.Lock())
        async with lock:  # one request of a client at a time: a retried key waits for the first answer
            kept = await run_in_threadpool(store.answer, client.name, key)
            if kept is not None:
                request_digest, status, answer = kept
                if not hmac.compare_digest(request_digest, digest):
                    return _error(422, "this Idempotency-Key was used for another request")
                return Response(
                    answer,
                    status_code=status,
                    media_type="application/json",
                    headers={"idempotent-replayed": "true"},
                )
            status, answer = await _act(request, client, case_id, kind, body)
            if status < 500:  # a failure to record may be retried with the same key
                await run_in_threadpool(store.remember, client.name, key, digest, status, answer)
        return Response(answer, status_code=status, media_type="application/json")

    async def _act(request: Request, client: Client, case_id: str, kind: str, body: bytes) -> tuple[int, bytes]:
        def err(status: int, text: str) -> tuple[int, bytes]:
            return status, orjson.dumps({"error": text})

        card = board.card(client.desk, case_id)
        if card is None:
            log.warning("api_action_forbidden", client=client.name, desk=client.desk, case_id=case_id)
            audit("refused", request, client, hit_ids=[case_id], reason="action on a case not on the desk's board")
            return err(404, "no such case on your desk's board")
        outcome = reason = None
        if kind == "close":
            try:
                doc = orjson.loads(body or b"{}")
            except orjson.JSONDecodeError:
                return err(400, 'the body is not JSON (close: {"outcome": ..., "reason": ...})')
            if not isinstance(doc, dict) or set(doc) - {"outcome", "reason"}:
                return err(400, "the body is an object with outcome and reason only")
            outcome, reason = doc.get("outcome"), doc.get("reason")
            if outcome is not None and not isinstance(outcome, str):
                return err(400, "outcome: text")
            if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
                return err(400, f"reason: text of at most {MAX_REASON} characters")
        action = card_action(card, client.desk, client.name, kind, outcome, reason)
        if isinstance(action, Refusal):
            return err(409 if action.conflict else 400, action.reason)
        try:
            await run_in_threadpool(write_action, action)
        except Exception as exc:  # noqa: BLE001 - the broker did not take it: the client may retry
            log.error("api_action_not_delivered", client=client.name, desk=client.desk, case_id=case_id, error=str(exc))
            return err(503, "the action could not be recorded; retry with the same Idempotency-Key")
        metrics.API.labels(client.desk, kind).inc()
        log.info("api_action", client=client.name, desk=client.desk, case_id=case_id, action=kind, outcome=outcome)
        return 202, orjson.dumps({"status": "accepted", "case_id": case_id, "action": kind})

    async def openapi(request: Request) -> Response:
        return JSONResponse(document())

    return [
        Route("/api/v1/openapi.json", openapi),
        Route("/api/v1/me", me),
        Route("/api/v1/cases", cases),
        Route("/api/v1/events", events),
        Route("/api/v1/cases/{case_id}", one_case),
        Route("/api/v1/cases/{case_id}/{kind:str}", act, methods=["POST"]),
    ]
