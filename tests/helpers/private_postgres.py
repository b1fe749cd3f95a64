"""A private PostgreSQL cluster for tests that stop, crash or restart the server.

The shared server (``dev/services.sh``, port 25432) is never touched: each `PrivatePostgres`
is its own ``initdb`` in a temporary directory on a free port, started with the same Debian
binaries and, when the tests run as root, as the ``postgres`` system user like services.sh.
Optionally with TLS (a self-signed certificate made by ``openssl``), for verification tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.helpers.services import SCHEMA, free_port


def _pg_bin() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found is None:
        raise AssertionError("PostgreSQL server binaries (initdb) not found; run dev/services.sh")
    return Path(found).parent


@dataclass
class PrivatePostgres:
    """One throw-away cluster: ``start``, ``stop(mode)``, ``dsn``; removed by `private_postgres`."""

    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _as_pg(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if os.getuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)

    def init(self, tls: bool = False) -> None:
        self.directory.chmod(0o755)
        if os.getuid() == 0:
            shutil.chown(self.directory, "postgres")
        bin_dir = _pg_bin()
        self._as_pg(
            str(bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        if tls:
            self._make_certificate()

    def _make_certificate(self) -> None:
        """A self-signed certificate for CN=localhost; the server then accepts TLS."""
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-keyout",
                str(self.directory / "server.key"),
                "-out",
                str(self.directory / "server.crt"),
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
        for name in ("server.key", "server.crt"):
            target = self.data / name
            shutil.copy(self.directory / name, target)
            target.chmod(0o600)
            if os.getuid() == 0:
                shutil.chown(target, "postgres")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\n")

    @property
    def certificate(self) -> Path:
        return self.directory / "server.crt"

    def start(self) -> None:
        log = self.directory / "postgres.log"
        log.touch()
        if os.getuid() == 0:
            shutil.chown(log, "postgres")
        self._as_pg(
            str(_pg_bin() / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1",
            "start",
        )
        self.wait_ready()

    @contextmanager
    def crashed_in_recovery(self) -> Iterator[None]:
        """Crash the server (``pg_ctl stop -m immediate``) and restart it held in crash recovery.

        Inside the block the server answers every connection attempt with ``FATAL: the
        database system is not yet accepting connections`` (SQLSTATE 57P03), as a real server
        does while it replays its WAL after a crash: its checkpointer is stopped (SIGSTOP),
        so the end-of-recovery checkpoint the startup process waits for cannot finish. On
        leaving, the checkpointer goes on and the server is waited for until it is ready.
        """
        self.stop("immediate")
        log = self.directory / "postgres.log"
        self._as_pg(
            str(_pg_bin() / "pg_ctl"),
            *("-D", str(self.data), "-l", str(log), "-W"),  # -W: return at once, not when ready
            *("-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"),
            "start",
        )
        checkpointer = self._child("checkpointer")
        os.kill(checkpointer, signal.SIGSTOP)
        try:
            self._wait_refusal("not yet accepting connections")  # redo has begun
            yield
        finally:
            os.kill(checkpointer, signal.SIGCONT)
        self.wait_ready()

    def _wait_refusal(self, answer: str, timeout: float = 60) -> None:
        """Wait until a connection attempt is refused with ``answer``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
            except psycopg.OperationalError as exc:
                if answer in str(exc):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"the private PostgreSQL never answered {answer!r}")
            time.sleep(0.05)

    def _child(self, role: str, timeout: float = 30) -> int:
        """The pid of the postmaster's child process titled ``postgres: <role>``."""
        pid_file = self.data / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, IndexError):
                postmaster = int(pid_file.read_text().split()[0])
                for entry in Path("/proc").iterdir():
                    if not entry.name.isdigit():
                        continue
                    with contextlib.suppress(OSError):
                        parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                        title = (entry / "cmdline").read_bytes()
                        if parent == postmaster and title.startswith(f"postgres: {role}".encode()):
                            return int(entry.name)
            time.sleep(0.005)
        raise AssertionError(f"no {role} process of the private PostgreSQL in {timeout}s")

    def stop(self, mode: str = "fast") -> None:
        self._as_pg(str(_pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def apply_schema(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(SCHEMA.read_text())


@contextmanager
def private_postgres(tls: bool = False) -> Iterator[PrivatePostgres]:
    """A started private cluster; stopped and deleted afterwards, whatever happened."""
    directory = Path(tempfile.mkdtemp(prefix="etl-private-pg-"))
    server = PrivatePostgres(directory, free_port())
    try:
        server.init(tls=tls)
        server.start()
        yield server
    finally:
        subprocess.run(
            [
                *(["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []),
                str(_pg_bin() / "pg_ctl"),
                "-D",
                str(server.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(directory, ignore_errors=True)
