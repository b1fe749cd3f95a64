"""Where the real services are: from the environment (``dev/services.sh env``), else none."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schema.sql"
HOW_TO_START = (
    "integration tests need Kafka, PostgreSQL and a Pushgateway: run "
    "'eval \"$(dev/services.sh start)\"' first (or have a Docker engine for testcontainers)"
)


@dataclass(frozen=True)
class Services:
    kafka: str
    postgres_dsn: str
    pushgateway: str


def from_env() -> Services | None:
    kafka = os.environ.get("ETL_KAFKA__BOOTSTRAP_SERVERS")
    dsn = os.environ.get("ETL_POSTGRES__DSN")
    pgw = os.environ.get("ETL_PUSHGATEWAY__URL")
    if kafka and dsn and pgw:
        return Services(kafka, dsn, pgw)
    return None


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def free_port() -> int:
    """A loopback port nobody listens on now, for a private service of a test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
