"""The console's HTTP side (Starlette): login, the board page, its event stream and the desks' actions.

Every page and stream needs a session (pages redirect to ``/login``, the API
answers 401); a desk sees and acts on the hits on its own board only (403
otherwise); every action carries the session's CSRF token in
``X-CSRF-Token`` and, when the browser sends one, an ``Origin`` of this host.
URLs carry hit ids, never plates, and the log lines name users, desks and hit
ids only. The board page is static HTML and JavaScript under a strict
Content-Security-Policy (no inline script), and builds every card with DOM text
nodes, so nothing in a hit can become markup.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feblam.config import GatewaySettings
from feblam.logs import get_logger
from feblam.metrics import GATEWAY_REGISTRY
from flows.operations import operations_routes
from gateway import metrics
from gateway.access import access_event
from gateway.actions import ACTION_KINDS, MAX_REASON, DeskAction
from gateway.api import Client, Clients, api_routes
from gateway.board import Board
from gateway.cases import Refusal, card_action
from gateway.console.auth import LoginThrottle, Session, Sessions, Users, csrf_ok
from gateway.console.i18n import CATALOG, LOCALES, choose
from gateway.journal import Journal
from gateway.store import Store

log = get_logger(__name__)
STATIC = Path(__file__).parent / "static"
BASE_SESSION_COOKIE = "feblam_session"
BASE_LOGIN_COOKIE = "feblam_login"
#: Seconds between keep-alive comments on an idle event stream (proxies close silent connections).
KEEPALIVE_SECONDS = 15.0


def content_security_policy(tiles_url: str = "") -> bytes:
    """Scripts and styles of the gateway only; images also from the force's tile server where one is set."""
    tiles = ""
    if tiles_url:
        parts = urlsplit(tiles_url)
        tiles = f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data:{tiles}; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ).encode()


SECURITY_HEADERS = [
    (b"content-security-policy", content_security_policy()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would send "Origin: null" on our own forms
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """The same protective headers on every answer."""

    def __init__(self, app: ASGIApp, tiles_url: str = "") -> None:
        self.app = app
        self.headers = [
            (k, content_security_policy(tiles_url) if k == b"content-security-policy" else v)
            for k, v in SECURITY_HEADERS
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in self.headers if k not in names),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class HostCheck:
    """With ``[gateway] public_url``, a request for another Host is refused (421): a page served under a
    name an attacker controls (DNS rebinding) never reaches a session. The operations paths stay open to
    the internal network under any name."""

    OPEN = ("/metrics", "/live", "/ready")

    def __init__(self, app: ASGIApp, public: str | None) -> None:
        self.app = app
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.public is None or scope["type"] != "http" or scope.get("path", "") in self.OPEN:
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        if host != self.public:
            log.warning("console_host_refused", host=host[:100], path=scope.get("path", "")[:100])
            await JSONResponse({"error": f"this console is served as {self.public}"}, status_code=421)(
                scope, _no_body, send
            )
            return
        await self.app(scope, receive, send)


class Standby:
    """While this gateway is a standby (``active`` false), everything but the operations paths is 503: a load
    balancer sends people and systems to the active gateway (its ``/ready``), and nothing here is half-served."""

    def __init__(self, app: ASGIApp, active: Callable[[], bool] | None) -> None:
        self.app = app
        self.active = active

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.active is None or self.active() or scope["type"] != "http" or scope.get("path") in HostCheck.OPEN:
            await self.app(scope, receive, send)
            return
        answer = JSONResponse(
            {"error": "this gateway is a standby; the active one serves the desks"},
            status_code=503,
            headers={"retry-after": "2"},
        )
        await answer(scope, _no_body, send)


class BodyLimit:
    """A request body over ``limit`` bytes is refused with 413 before anything reads it: by its
    Content-Length, or as it arrives when it has none (chunked)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(scope, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        client = scope.get("client") or ("unknown", 0)
        log.warning("console_request_too_large", path=scope.get("path", "")[:100], client=client[0], limit=self.limit)
        await JSONResponse({"error": f"request body over {self.limit} bytes"}, status_code=413)(scope, _no_body, send)


class _TooLarge(Exception):  # noqa: N818 - a signal inside BodyLimit, never raised out of it
    pass


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class StreamCounts:
    """Open event streams per session and per desk, each capped: a page opened in a loop cannot exhaust the
    console (each stream holds a queue of up to 10,000 cards)."""

    def __init__(self, per_session: int, per_desk: int) -> None:
        self.per_session = per_session
        self.per_desk = per_desk
        self._sessions: dict[str, int] = {}
        self._desks: dict[str, int] = {}
        self._lock = threading.Lock()

    def open(self, session: str, desk: str) -> str | None:
        """Count a new stream, or the reason it is refused."""
        with self._lock:
            if self._sessions.get(session, 0) >= self.per_session:
                return (
                    f"this session has {self.per_session} event streams open already (gateway.max_streams_per_session)"
                )
            if self._desks.get(desk, 0) >= self.per_desk:
                return f"desk {desk} has {self.per_desk} event streams open already (gateway.max_streams_per_desk)"
            self._sessions[session] = self._sessions.get(session, 0) + 1
            self._desks[desk] = self._desks.get(desk, 0) + 1
            return None

    def close(self, session: str, desk: str) -> None:
        with self._lock:
            for table, key in ((self._sessions, session), (self._desks, desk)):
                table[key] -= 1
                if not table[key]:
                    del table[key]


def shown_ids(cards: Iterable[dict[str, Any]]) -> list[str]:
    """The hit ids a page was shown: each card's case, and the newest hit of its trail where that is another."""
    ids: dict[str, None] = {}
    for c in cards:
        ids[c["hit_id"]] = None
        hit = c.get("hit")
        if isinstance(hit, dict) and isinstance(hit.get("hit_id"), str):
            ids[hit["hit_id"]] = None
    return list(ids)


def _page(title: str, body: str, head: str = "", lang: str = "en") -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang={lang}><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><link rel=stylesheet href='/static/board.css'>{head}</head>"
        f"<body>{body}</body></html>"
    )


def create_app(
    settings: GatewaySettings,
    board: Board,
    users: Users,
    write_action: Callable[[DeskAction], None],
    health: Callable[[], tuple[bool, dict[str, Any]]] | None = None,
    audit: Callable[[dict[str, Any]], None] | None = None,
    *,
    journal: Journal | None = None,
    store: Store | None = None,
    clients: Clients | None = None,
    active: Callable[[], bool] | None = None,
) -> Starlette:
    """The console as an ASGI app: ``write_action`` sends an action to the flow (blocking until it is safe).
    With ``journal`` and ``store``, also the machine API of ``clients`` (:mod:`gateway.api`) and sessions kept in
    the store; ``active`` false: a standby, which answers 503 to all but the operations paths."""
    sessions = Sessions(settings.session_idle_minutes * 60, settings.session_max_hours * 3600, store)
    # A Secure cookie gets the __Host- prefix: the browser then takes it only from this host, over HTTPS, for /.
    SESSION_COOKIE = ("__Host-" if settings.secure_cookies else "") + BASE_SESSION_COOKIE  # noqa: N806
    LOGIN_COOKIE = ("__Host-" if settings.secure_cookies else "") + BASE_LOGIN_COOKIE  # noqa: N806
    proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]

    def _client(request: Request) -> str:
        """The client's address: the peer's, or, behind a proxy of ``trusted_proxies``, the nearest address of
        X-Forwarded-For that is not one of them (a header from anyone else is ignored)."""
        peer = request.client.host if request.client else "unknown"
        forwarded = request.headers.get("x-forwarded-for")
        if not forwarded or not _trusted(peer):
            return peer
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            if not _trusted(hop):
                return hop[:64]
        return peer

    def _trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in proxies)

    def trail(
        kind: str,
        request: Request,
        session: Session | None = None,
        *,
        user: str | None = None,
        desk: str | None = None,
        hit_ids: Iterable[str] = (),
        reason: str | None = None,
        via: str = "console",
    ) -> None:
        """One event of the access trail (:mod:`gateway.access`): who, from where, which hits; never a plate."""
        if audit is None:
            return
        audit(
            access_event(
                kind,
                user=session.user.name if session else user,
                desk=session.user.desk if session else desk,
                client=_client(request),
                session=session.token if session else "",
                hit_ids=hit_ids,
                path=request.url.path,
                reason=reason,
                via=via,
            )
        )

    streams = StreamCounts(settings.max_streams_per_session, settings.max_streams_per_desk)
    throttle = LoginThrottle(settings)

    def set_cookie(resp: Response, name: str, value: str, max_age: int | None = None) -> None:
        resp.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="strict", secure=settings.secure_cookies, path="/"
        )

    def session_of(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(SESSION_COOKIE))

    def not_signed_in(request: Request) -> JSONResponse:
        trail("refused", request, reason="not signed in")
        return JSONResponse({"error": "not signed in"}, status_code=401)

    public = urlsplit(settings.public_url) if settings.public_url else None

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None:
            return True
        if public is not None:  # the one origin the console is published at
            return origin.rstrip("/") == f"{public.scheme}://{public.netloc}"
        return urlsplit(origin).netloc == request.headers.get("host")

    # ---------------------------------------------------------------- login

    def login_form(request: Request, error: str = "", status: int = 200) -> Response:
        # One token per browser: a page opened twice (two tabs, a reload) keeps the cookie the forms carry.
        token = request.cookies.get(LOGIN_COOKIE) or ""
        if len(token) != 32:
            token = secrets.token_urlsafe(24)
        notice = f"<p class=error role=alert>{html.escape(error)}</p>" if error else ""
        resp = _page(
            "FEBLAM Hit Gateway — sign in",
            (
                "<main class=login><h1>FEBLAM Hit Gateway</h1><p>Sign in with your desk account.</p>"
                f"{notice}<form method=post action='/login'>"
                f"<input type=hidden name=csrf value='{token}'>"
                "<label>User <input name=user id=user autocomplete=username required maxlength=64 autofocus></label>"
                "<label>Password <input type=password name=password id=password autocomplete=current-password required maxlength=1024></label>"
                "<button type=submit id=signin>Sign in</button></form></main>"
            ),
        )
        resp.status_code = status
        set_cookie(resp, LOGIN_COOKIE, token, max_age=3600)
        return resp

    async def login_page(request: Request) -> Response:
        if session_of(request):
            return RedirectResponse("/", status_code=303)
        return login_form(request)

    async def login(request: Request) -> Response:
        form = await request.form()
        name = str(form.get("user", ""))[:64]
        password = str(form.get("password", ""))[:1024]
        client = _client(request)
        if not csrf_ok(request.cookies.get(LOGIN_COOKIE, ""), str(form.get("csrf", ""))) or not same_origin(request):
            log.warning("console_login_refused", user=name, client=client, reason="missing or wrong CSRF token")
            trail("refused", request, user=name, reason="sign-in form: missing or wrong CSRF token")
            return login_form(request, "The sign-in form expired; please try again.", 403)
        keys = throttle.keys(name, client)
        wait = throttle.blocked(*keys)
        if wait:
            metrics.LOGINS.labels("blocked").inc()
            log.warning("console_login_blocked", user=name, client=client, retry_after_seconds=round(wait))
            trail("signin_blocked", request, user=name, reason=f"throttled for {int(wait) + 1} s")
            resp = login_form(request, f"Too many failed sign-ins. Try again in {int(wait) + 1} s.", 429)
            resp.headers["retry-after"] = str(int(wait) + 1)
            return resp
        user = await run_in_threadpool(users.verify, name, password)
        if user is None:
            throttle.failed(*keys)
            metrics.LOGINS.labels("failed").inc()
            log.warning("console_login_failed", user=name, client=client)
            trail("signin_failed", request, user=name)
            return login_form(request, "Wrong user or password.", 401)
        throttle.succeeded(name, client)
        metrics.LOGINS.labels("ok").inc()
        session = sessions.create(user)
        log.info("console_login", user=user.name, desk=user.desk, client=client)
        trail("signin", request, session)
        resp = RedirectResponse("/", status_code=303)
        set_cookie(resp, SESSION_COOKIE, session.token)
        resp.delete_cookie(LOGIN_COOKIE, path="/")
        return resp

    async def logout(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        form = await request.form()
        if not csrf_ok(session.csrf, str(form.get("csrf", ""))) or not same_origin(request):
            return JSONResponse({"error": "CSRF token missing or wrong"}, status_code=403)
        sessions.drop(session.token)
        log.info("console_logout", user=session.user.name, desk=session.user.desk)
        trail("signout", request, session)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    # ---------------------------------------------------------------- the board

    async def board_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        desk, user = html.escape(session.user.desk), html.escape(session.user.name)
        lang = choose(session.user.language, request.headers.get("accept-language"))
        words = CATALOG[lang]
        config = {
            "lang": lang,
            "locale": LOCALES[lang],
            "words": words,
            "alert_max_priority": settings.alert_max_priority,
            "map_tiles_url": settings.map_tiles_url,
        }
        # a JSON data block is never executed (script-src 'self' stays): the page's words and settings
        data = orjson.dumps(config).decode().replace("<", "\\u003c")
        leaflet = (
            "<link rel=stylesheet href='/static/vendor/leaflet/leaflet.css'>"
            "<script src='/static/vendor/leaflet/leaflet.js'></script>"
            if settings.map_tiles_url
            else ""
        )
        return _page(
            f"{session.user.desk} — FEBLAM Hit Gateway",
            (
                f"<header><h1>FEBLAM · <span id=desk>{desk}</span></h1>"
                "<label class=filter><span id=filter-state-label></span> <select id=filter-state></select></label>"
                "<label class=filter><span id=filter-priority-label></span> <select id=filter-priority></select></label>"
                f"<span id=counts></span><span id=status class=status>{html.escape(words['connecting'])}</span>"
                f"<button type=button id=sound aria-pressed=true>{html.escape(words['sound_on'])}</button>"
                f"<span class=who>{user}</span>"
                f"<form method=post action='/logout'><input type=hidden name=csrf value='{html.escape(session.csrf)}'>"
                f"<button type=submit id=logout>{html.escape(words['sign_out'])}</button></form></header>"
                f"<p id=keys class=keys>{html.escape(words['keys'])}</p>"
                "<p id=notice role=alert hidden></p><main id=board aria-live=polite></main>"
                f"<script type=application/json id=console-config>{data}</script>"
                f"{leaflet}<script src='/static/board.js'></script>"
            ),
            head=f"<meta name=csrf-token content='{html.escape(session.csrf)}'>",
            lang=lang,
        )

    async def board_json(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return not_signed_in(request)
        cards = board.cards(session.user.desk)
        trail("shown", request, session, hit_ids=shown_ids(cards))
        return JSONResponse({"desk": session.user.desk, "user": session.user.name, "cards": cards})

    async def events(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return not_signed_in(request)
        desk = session.user.desk
        refused = streams.open(session.token, desk)
        if refused:
            log.warning(
                "console_stream_refused", user=session.user.name, desk=desk, client=_client(request), reason=refused
            )
            trail("refused", request, session, reason=refused)
            return JSONResponse({"error": refused}, status_code=429, headers={"retry-after": "5"})
        sub = board.subscribe(desk, asyncio.get_running_loop())

        async def stream() -> AsyncIterator[bytes]:
            try:
                cards = board.cards(desk)
                trail("shown", request, session, hit_ids=shown_ids(cards))
                snapshot = orjson.dumps({"desk": desk, "user": session.user.name, "cards": cards})
                yield b"retry: 1000\nevent: snapshot\ndata: " + snapshot + b"\n\n"
                while True:
                    try:
                        message = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        if not sessions.alive(session):
                            yield b"event: signedout\ndata: {}\n\n"
                            return
                        yield b": keep-alive\n\n"
                        continue
                    if sub.dropped:
                        return  # the page fell behind; it reconnects and starts from a fresh snapshot
                    if not sessions.alive(session):  # signed out (or idle past the limit) while hits kept coming
                        yield b"event: signedout\ndata: {}\n\n"
                        return
                    trail("shown", request, session, hit_ids=shown_ids([orjson.loads(message)]))
                    yield b"event: card\ndata: " + message + b"\n\n"
            finally:
                board.unsubscribe(sub)
                streams.close(session.token, desk)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})

    async def hit(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return not_signed_in(request)
        card = board.card(session.user.desk, request.path_params["hit_id"])
        if card is None:
            trail(
                "refused",
                request,
                session,
                hit_ids=[request.path_params["hit_id"][:64]],
                reason="not on the desk's board",
            )
            return JSONResponse({"error": "this hit is not on your desk's board"}, status_code=403)
        trail("shown", request, session, hit_ids=shown_ids([card]))
        return JSONResponse(card)

    async def act(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return not_signed_in(request)
        if not csrf_ok(session.csrf, request.headers.get("x-csrf-token")) or not same_origin(request):
            log.warning("console_csrf_refused", user=session.user.name, desk=session.user.desk, client=_client(request))
            trail("refused", request, session, reason="action: missing or wrong CSRF token")
            return JSONResponse({"error": "CSRF token missing or wrong"}, status_code=403)
        hit_id, kind = request.path_params["hit_id"], request.path_params["kind"]
        if kind not in ACTION_KINDS:
            return JSONResponse({"error": f"no such action ({' or '.join(ACTION_KINDS)})"}, status_code=404)
        card = board.card(session.user.desk, hit_id)
        if card is None:
            log.warning("console_action_forbidden", user=session.user.name, desk=session.user.desk, hit_id=hit_id[:64])
            trail("refused", request, session, hit_ids=[hit_id[:64]], reason="action on a hit not on the desk's board")
            return JSONResponse({"error": "this hit is not on your desk's board"}, status_code=403)
        outcome = reason = None
        if kind == "close":
            try:
                body = orjson.loads(await request.body() or b"{}")
            except orjson.JSONDecodeError:
                body = None
            outcome = body.get("outcome") if isinstance(body, dict) else None
            reason = body.get("reason") if isinstance(body, dict) else None
            if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
                return JSONResponse({"error": f"reason: text of at most {MAX_REASON} characters"}, status_code=400)
        # the case rules decide; the flow asks the same
        action = card_action(card, session.user.desk, session.user.name, kind, outcome, reason)
        if isinstance(action, Refusal):
            return JSONResponse({"error": action.reason}, status_code=409 if action.conflict else 400)
        try:
            await run_in_threadpool(write_action, action)
        except Exception as exc:  # the broker did not take it: tell the dispatcher, who can retry
            log.error(
                "console_action_not_delivered",
                user=session.user.name,
                desk=session.user.desk,
                hit_id=hit_id,
                error=str(exc),
            )
            return JSONResponse({"error": "the action could not be recorded; try again"}, status_code=503)
        log.info(
            "console_action",
            user=session.user.name,
            desk=session.user.desk,
            hit_id=hit_id,
            action=kind,
            outcome=outcome,
        )
        return JSONResponse({"status": "accepted"}, status_code=202)

    # ---------------------------------------------------------------- operations

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    def live() -> tuple[bool, dict[str, Any]]:
        return True, {"status": "live"}

    def ready() -> tuple[bool, dict[str, Any]]:
        return health() if health else (True, {"status": "ready"})

    def api_trail(
        kind: str, request: Request, client: Client | None, *, hit_ids: Iterable[str] = (), reason: str | None = None
    ) -> None:
        name, desk = (client.name, client.desk) if client else (None, None)
        trail(kind, request, None, user=name, desk=desk, hit_ids=hit_ids, reason=reason, via="api")

    api = []
    if journal is not None and store is not None:
        api = api_routes(
            settings,
            board,
            journal,
            store,
            clients or Clients(()),
            write_action,
            address=_client,
            trusted=_trusted,
            audit=api_trail,
            throttle=throttle,
            streams=streams,
        )
    routes = [
        *api,
        Route("/", board_page),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/board", board_json),
        Route("/api/events", events),
        Route("/api/hits/{hit_id}", hit),
        Route("/api/hits/{hit_id}/{kind:str}", act, methods=["POST"]),
        Route("/favicon.ico", no_icon),
        *operations_routes(live, ready, GATEWAY_REGISTRY),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Standby, active=active),
            Middleware(SecurityHeaders, tiles_url=settings.map_tiles_url),
            Middleware(HostCheck, public=public.netloc if public is not None else None),
            Middleware(BodyLimit, limit=settings.max_request_bytes),
        ],
    )
    app.state.sessions = sessions
    return app
