"""A private single-node KRaft Kafka broker for tests that kill, crash or restart the broker,
or that need a client listener demanding SASL/PLAIN (`sasl_kafka`).

The shared services are never touched: this broker runs from the same jars ``dev/services.sh``
fetches (``$ETL_SERVICES_DIR/kafka-libs``, default ``/tmp/etl-services/kafka-libs``, as in CI),
on free loopback ports, with its data in a temporary directory. `PrivateKafka.kill` SIGKILLs it
and keeps it down; `start` brings it back on the same ports and data.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from tests.helpers.services import free_port

CLUSTER_ID = "etl-private-cluster-01"  # 22 characters: a base64 UUID as KRaft wants it
SASL_USER = "etl"
SASL_PASSWORD = "etl-right-pw"
_SASL_ADMIN = {"username": "admin", "password": "admin-pw"}
_START_SECONDS = 90


def kafka_libs() -> Path:
    libs = Path(os.environ.get("ETL_SERVICES_DIR", "/tmp/etl-services")) / "kafka-libs"
    if not (libs / ".complete").exists():
        raise RuntimeError(f"no Kafka jars in {libs}: run dev/services.sh install first")
    return libs


class PrivateKafka:
    """One broker+controller process on its own ports; ``bootstrap`` is its address."""

    def __init__(self, workdir: Path, *, sasl: bool = False) -> None:
        self.dir = workdir
        self.sasl = sasl
        workdir.mkdir(parents=True, exist_ok=True)
        self.port, self.controller_port = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._props = workdir / "server.properties"
        self._props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    *self._listeners(),
                    f"log.dirs={workdir / 'data'}",
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
        (workdir / "log4j2.properties").write_text(
            "rootLogger.level=WARN\nrootLogger.appenderRef.file.ref=FILE\n"
            "appender.file.type=File\nappender.file.name=FILE\n"
            f"appender.file.fileName={workdir / 'kafka.log'}\n"
            "appender.file.layout.type=PatternLayout\n"
            "appender.file.layout.pattern=[%d] %p %m (%c)%n\n"
        )
        self._java = [
            "java",
            "-Xms128m",
            "-Xmx512m",
            f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
            "-cp",
            f"{kafka_libs()}/*",
        ]
        # A static quorum (controller.quorum.voters): formatted without --standalone.
        fmt = [*self._java, "kafka.tools.StorageTool", "format", "-t", CLUSTER_ID]
        done = subprocess.run(
            [*fmt, "-c", str(self._props)], check=False, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"formatting the private Kafka storage failed: {done.stderr}")

    def _listeners(self) -> list[str]:
        kind = "SASL_PLAINTEXT" if self.sasl else "PLAINTEXT"
        lines = [
            f"listeners={kind}://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners={kind}://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            f"listener.security.protocol.map={kind}:{kind},CONTROLLER:PLAINTEXT",
            f"inter.broker.listener.name={kind}",
        ]
        if self.sasl:
            admin = _SASL_ADMIN
            jaas = (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{admin["username"]}" password="{admin["password"]}" '
                f'user_{admin["username"]}="{admin["password"]}" '
                f'user_{SASL_USER}="{SASL_PASSWORD}";'
            )
            lines += [
                "sasl.enabled.mechanisms=PLAIN",
                "sasl.mechanism.inter.broker.protocol=PLAIN",
                f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}",
            ]
        return lines

    def client_config(self) -> dict[str, str | int | float | bool]:
        """What an admin client needs to talk to this broker."""
        conf: dict[str, str | int | float | bool] = {"bootstrap.servers": self.bootstrap}
        if self.sasl:
            conf |= {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "PLAIN",
                "sasl.username": _SASL_ADMIN["username"],
                "sasl.password": _SASL_ADMIN["password"],
            }
        return conf

    def start(self) -> None:
        """Start the broker and wait until it answers metadata requests."""
        with (self.dir / "kafka.out").open("ab") as out:  # the broker keeps its own copy
            self.proc = subprocess.Popen(
                [*self._java, "kafka.Kafka", str(self._props)], stdout=out, stderr=out
            )
        admin = AdminClient(self.client_config())
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"private Kafka exited; see {self.dir / 'kafka.out'}")
            with contextlib.suppress(Exception):
                if admin.list_topics(timeout=2).brokers:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"private Kafka did not come up in {_START_SECONDS}s")

    def kill(self) -> None:
        """SIGKILL the broker (no clean shutdown) and wait until it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def create_topic(self, partitions: int, name: str = "etl-private") -> str:
        admin = AdminClient(self.client_config())
        for fut in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            fut.result(timeout=30)
        return name


@contextlib.contextmanager
def private_kafka(workdir: Path, *, sasl: bool = False) -> Iterator[PrivateKafka]:
    """A started private broker, killed at the end whatever happened."""
    broker = PrivateKafka(workdir, sasl=sasl)
    try:
        broker.start()
        yield broker
    finally:
        broker.kill()


@contextlib.contextmanager
def sasl_kafka() -> Iterator[str]:
    """A started broker whose client listener demands SASL/PLAIN (user `SASL_USER`, password
    `SASL_PASSWORD`); yields its bootstrap address; stopped and deleted at the end."""
    with (
        tempfile.TemporaryDirectory(prefix="etl-sasl-kafka-") as workdir,
        private_kafka(Path(workdir), sasl=True) as broker,
    ):
        yield broker.bootstrap
