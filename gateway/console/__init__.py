"""The Hit Gateway's console: the desks' boards in the browser (DESIGN 12).

:class:`Console` serves :func:`~gateway.console.app.create_app` with uvicorn on a
thread of the gateway process, beside its dataflow; ``/metrics``, ``/live`` and
``/ready`` are on the same port.
"""

from __future__ import annotations

from typing import Any

from feblam.config import Settings
from feblam.logs import get_logger

log = get_logger(__name__)

__all__ = ["Console"]


class Console:
    """The console's web server and its action producer, started and stopped with the gateway."""

    def __init__(
        self,
        settings: Settings,
        board: Any,
        action_key: bytes,
        monitor: Any = None,
        stats: Any = None,
        *,
        journal: Any = None,
        store: Any = None,
    ) -> None:
        """``action_key``: what the console signs every action with (the flow takes no other); ``journal`` and
        ``store``: the desks' feeds and the shared store (the machine API, sessions that survive a takeover)."""
        self.settings = settings
        self.journal = journal
        self.store = store
        #: While a standby: the active gateway's lock line (``/ready`` says standby; the rest answers 503).
        self.standby_for: str | None = None
        self.started = False
        self.action_key = action_key
        self.board = board
        self.monitor = monitor
        self.stats = stats
        self._server: Any = None
        self._writer: Any = None
        self._trail: Any = None
        self.port = settings.gateway.http_port

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``/ready``: partitions assigned, the flow running, the broker answering."""
        if self.standby_for is not None:
            return False, {"status": "standby", "active": self.standby_for}
        m = self.monitor
        if m is None:
            return True, {"status": "ready"}
        if m.partitions == 0:
            return False, {"status": "not ready", "reason": "no hits partition assigned yet"}
        reason = m.broker_problem(self.settings.http.broker_timeout_seconds)
        if reason:
            return False, {"status": "not ready", "reason": reason}
        return True, {"status": "ready", "pages": self.board.pages()}

    def start(self) -> Console:
        """Bind the port (a port in use is one clear error) and serve on a thread."""
        from feblam.metrics import READY
        from flows.operations import HttpServer
        from gateway.access import AccessTrail
        from gateway.api import Clients
        from gateway.console.app import create_app
        from gateway.console.auth import Users
        from gateway.console.producer import ActionWriter

        g = self.settings.gateway
        if not g.http_port:
            self.started = True
            log.warning("console_off", reason="gateway.http_port = 0")
            return self
        server = HttpServer(g.http_host, g.http_port, "gateway.http_port")
        self.port = server.port
        READY.set_function(lambda: 1.0 if self.health()[0] else 0.0)
        self._writer = ActionWriter(self.settings.kafka, g.actions_topic, self.action_key)
        self._trail = AccessTrail(self.settings.kafka, g.access_topic)
        app = create_app(
            g,
            self.board,
            Users(self.settings.desks),
            self._writer.write,
            self.health,
            self._trail,
            journal=self.journal,
            store=self.store,
            clients=Clients(self.settings.desks),
            active=lambda: self.standby_for is None,
        )
        self._server = server.start(app)
        self.started = True
        host = "127.0.0.1" if g.http_host in ("0.0.0.0", "::") else g.http_host  # noqa: S104 - only a display name
        log.info(
            "console_listening",
            url=f"http://{host}:{self.port}/",
            desks=len(self.settings.desks),
            api=f"http://{host}:{self.port}/api/v1/",
            standby=self.standby_for is not None,
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._writer is not None:
            self._writer.close()
        if self._trail is not None:
            self._trail.close()
