"""Local stand-ins for Sentry's ingest endpoint: one that takes the SDK's real envelopes and
keeps them (decompressed, so a test can search every byte), one that never answers."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class SentryPeer:
    dsn: str
    bodies: list[bytes] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)

    def items(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(item header, payload) of every envelope item received, in order."""
        return [item for body in self.bodies for item in parse_envelope(body)]

    def events(self) -> list[dict[str, Any]]:
        return [payload for head, payload in self.items() if head.get("type") == "event"]

    def check_ins(self) -> list[dict[str, Any]]:
        return [payload for head, payload in self.items() if head.get("type") == "check_in"]


def parse_envelope(body: bytes) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The items of a Sentry envelope: a header line, then per item a header and its payload
    (``length`` bytes when the header says, else up to the end of the line)."""
    _, _, rest = body.partition(b"\n")
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        head = orjson.loads(line)
        if "length" in head:
            payload, rest = rest[: head["length"]], rest[head["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        yield head, orjson.loads(payload)


class _Handler(BaseHTTPRequestHandler):
    peer: SentryPeer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.peer.bodies.append(body)
        self.peer.connected.set()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def sentry_peer() -> Iterator[SentryPeer]:
    """A Sentry endpoint on a free port of 127.0.0.1 answering 200 to every envelope."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    peer = SentryPeer(f"http://public@127.0.0.1:{server.server_address[1]}/1")
    server.RequestHandlerClass = type("Handler", (_Handler,), {"peer": peer})
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def silent_sentry() -> Iterator[SentryPeer]:
    """A Sentry endpoint that accepts every connection and never answers a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    peer = SentryPeer(f"http://public@127.0.0.1:{sock.getsockname()[1]}/1")
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            held.append(conn)  # kept open, unread and unanswered, until the test ends
            peer.connected.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        sock.close()
