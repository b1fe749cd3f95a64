"""A private single-node KRaft Kafka whose only client listener demands SASL/PLAIN.

For the authentication tests: the shared broker (``dev/services.sh``) is plaintext and is never
touched. The jars come from the same place services.sh fetches them to,
``$ETL_SERVICES_DIR/kafka-libs`` (default /tmp/etl-services).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.private_postgres import free_port

SASL_USER = "etl"
SASL_PASSWORD = "etl-right-pw"


def _libs() -> Path:
    libs = Path(os.environ.get("ETL_SERVICES_DIR", "/tmp/etl-services")) / "kafka-libs"
    if not (libs / ".complete").exists():
        raise AssertionError(f"Kafka jars missing in {libs}; run dev/services.sh install")
    return libs


@contextmanager
def sasl_kafka() -> Iterator[str]:
    """Start the broker; yields its bootstrap address; stops it and deletes its data."""
    libs = _libs()
    directory = Path(tempfile.mkdtemp(prefix="etl-sasl-kafka-"))
    port, controller = free_port(), free_port()
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="admin" password="admin-pw" user_admin="admin-pw" '
        f'user_{SASL_USER}="{SASL_PASSWORD}";'
    )
    props = directory / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=SASL_PLAINTEXT",
                "sasl.enabled.mechanisms=PLAIN",
                "sasl.mechanism.inter.broker.protocol=PLAIN",
                f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}",
                f"log.dirs={directory / 'data'}",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        )
    )
    log4j = directory / "log4j2.properties"
    log4j.write_text(
        "rootLogger.level=WARN\nrootLogger.appenderRef.file.ref=FILE\n"
        "appender.file.type=File\nappender.file.name=FILE\n"
        f"appender.file.fileName={directory / 'kafka.log'}\n"
        "appender.file.layout.type=PatternLayout\nappender.file.layout.pattern=%m%n\n"
    )
    java = [
        "java",
        "-Xms128m",
        "-Xmx512m",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{libs}/*",
    ]
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [
                *java,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                "etl-sasl-cluster-00001",
                "-c",
                str(props),
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        proc = subprocess.Popen(
            [*java, "kafka.Kafka", str(props)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, "the SASL broker exited at start"
                assert time.monotonic() < deadline, "the SASL broker did not start"
                time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
