"""Small HTTP peers for the Pushgateway tests: one that trickles, one that records requests,
and a private Pushgateway, with basic auth or without (the real binary, on its own port)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.services import free_port

# bcrypt of PUSHGATEWAY_PASSWORD (cost 4), for the Pushgateway's web config.
PUSHGATEWAY_USER = "etl"
PUSHGATEWAY_PASSWORD = "pgw-test-pass"
_PASSWORD_HASH = "$2b$04$6XwU36Y.RbSgRWDpXqzmuezwfUhEZ7bsOnzZWcrKkw3/Q6PiJsWhO"


@dataclass
class Peer:
    url: str
    connected: threading.Event = field(default_factory=threading.Event)
    requests: list[bytes] = field(default_factory=list)


def _serve(sock: socket.socket, peer: Peer, stop: threading.Event, trickle: bool) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        threading.Thread(target=_answer, args=(conn, peer, stop, trickle), daemon=True).start()


def _answer(conn: socket.socket, peer: Peer, stop: threading.Event, trickle: bool) -> None:
    with conn:
        conn.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
        except OSError:
            return
        peer.requests.append(data)
        peer.connected.set()
        try:
            if not trickle:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            # A status line that never ends: one byte a second, each inside any read timeout.
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 100_000:
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(1)
        except OSError:
            return


@contextmanager
def http_peer(trickle: bool) -> Iterator[Peer]:
    """A listener on a free port: trickling a byte per second, or answering 200 at once."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    peer = Peer(f"http://127.0.0.1:{sock.getsockname()[1]}")
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(sock, peer, stop, trickle), daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(5)
        sock.close()


@contextmanager
def pushgateway_with_basic_auth() -> Iterator[str]:
    """A private Pushgateway demanding basic auth; its URL (without credentials)."""
    with private_pushgateway(basic_auth=True) as url:
        yield url


@contextmanager
def private_pushgateway(*, basic_auth: bool = False) -> Iterator[str]:
    """A private Pushgateway (the real binary on its own port), demanding basic auth or not;
    its URL (without credentials)."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        raise AssertionError("prometheus-pushgateway not found; run dev/services.sh install")
    directory = Path(tempfile.mkdtemp(prefix="etl-pgw-"))
    web = directory / "web.yml"
    web.write_text(f'basic_auth_users:\n  {PUSHGATEWAY_USER}: "{_PASSWORD_HASH}"\n')
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            *([f"--web.config.file={web}"] if basic_auth else []),
            # Debian's default file is the shared Pushgateway's: never read or write it.
            f"--persistence.file={directory / 'metrics.data'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "private Pushgateway did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
