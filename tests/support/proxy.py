"""A small TCP proxy in front of the test broker, to cut it the way networks fail.

The broker is started advertising the proxy's port, so every client (metadata
included) goes through the proxy. Modes: ``pass``; ``cut`` (every connection
closed, new ones refused: the broker is down); ``drop_produce`` (requests pass,
but Produce requests — Kafka API key 0 — are swallowed: the broker never
confirms a hit, everything else works).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from sources.broker import EmbeddedBroker, free_port

PRODUCE = 0


class KafkaProxy:
    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.broker = EmbeddedBroker(advertised_port=self.port)
        self.mode = "pass"
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._stop = threading.Event()

    def start(self) -> KafkaProxy:
        self._listen()
        self.broker.start()
        return self

    def _listen(self) -> None:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(64)
        srv.settimeout(0.2)
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while not self._stop.is_set() and self._server is srv:
            try:
                client, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            if self.mode == "cut":
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.broker.port), timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _requests(self, src: socket.socket, dst: socket.socket) -> None:
        """Client to broker, a frame at a time, so that Produce requests can be dropped."""
        try:
            while True:
                head = _read_exact(src, 4)
                (size,) = struct.unpack(">i", head)
                body = _read_exact(src, size)
                if self.mode == "drop_produce" and struct.unpack(">h", body[:2])[0] == PRODUCE:
                    continue
                dst.sendall(head + body)
        except OSError:
            pass
        finally:
            _close(src, dst)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src, dst)

    def cut(self) -> None:
        """The broker goes away: every connection closed, new ones refused (nothing listens)."""
        self.mode = "cut"
        server, self._server = self._server, None
        if server is not None:
            server.close()
        with self._lock:
            conns, self._conns = self._conns, []
        _close(*conns)

    def restore(self) -> None:
        self.mode = "pass"
        if self._server is None:
            self._listen()

    def stop(self) -> None:
        self._stop.set()
        self.cut()
        if self._server is not None:
            self._server.close()
        self.broker.stop()

    def __enter__(self) -> KafkaProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionResetError
        buf += chunk
    return buf


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()
