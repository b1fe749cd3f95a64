"""dev/services.sh on a private state directory and ports: a Pushgateway of its own, which keeps
its persistence file there, and stop/running by service name (what dev/test.sh relies on to
leave running the services it did not start)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.helpers.services import ROOT

SERVICES = ROOT / "dev" / "services.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def services(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SERVICES), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_private_pushgateway_persists_into_its_state_directory(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ETL_SERVICES_DIR": str(tmp_path),
        "ETL_PUSHGATEWAY_PORT": str(port),
        "ETL_PG_PORT": str(free_port()),  # nothing listens there: not reported as running
        "ETL_KAFKA_PORT": str(free_port()),
    }
    started = services(env, "start", "pushgateway")
    try:
        assert started.returncode == 0, started.stderr
        assert f"export ETL_PUSHGATEWAY__URL=http://127.0.0.1:{port}" in started.stdout
        assert services(env, "running").stdout == "pushgateway\n"
        body = b"etl_test_metric 42\n"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics/job/etl-dev-test", data=body, method="PUT"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
    finally:
        stopped = services(env, "stop", "pushgateway")
    assert stopped.returncode == 0, stopped.stderr
    assert services(env, "running").stdout == ""
    persisted = tmp_path / "pushgateway.data"
    deadline = time.monotonic() + 10
    while not persisted.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert persisted.stat().st_size > 0  # written on shutdown, in this state directory only


def test_env_prints_the_demo_topic_and_group_once_the_demo_wrote_them(tmp_path: Path) -> None:
    env = {**os.environ, "ETL_SERVICES_DIR": str(tmp_path)}
    assert "ETL_KAFKA__TOPIC" not in services(env, "env").stdout
    (tmp_path / "demo.env").write_text(
        "export ETL_KAFKA__TOPIC=ccx.ocp.results.demo\nexport ETL_KAFKA__GROUP_ID=etl-demo\n"
    )
    out = services(env, "env").stdout.splitlines()
    assert out[-2:] == [
        "export ETL_KAFKA__TOPIC=ccx.ocp.results.demo",
        "export ETL_KAFKA__GROUP_ID=etl-demo",
    ]
