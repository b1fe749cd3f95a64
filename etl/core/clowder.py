"""Clowder's ``cdappconfig.json`` (the file named by ``ACG_CONFIG``) read into the few values etl
uses, and turned into configuration settings.

Clowder, the operator of the platform etl runs on, mounts that file with the brokers, the real
topic names, the database and the Pushgateway. We read it with a small typed reader of our own
rather than app-common-python: that library reads and parses the file when it is imported (a
side effect at import time, and a failure there would escape our one-line errors), maps every
field of the schema we do not use, and would be one more runtime dependency. This reader takes
only the fields below, checks their JSON types, and reports the first problem as a
`ConfigError` naming the file and the field, never a value:

    kafka.brokers[]      hostname, port (optional), cacert, authtype, securityProtocol,
                         sasl.{saslMechanism, username, password, securityProtocol (deprecated)}
    kafka.topics[]       requestedName -> name
    database             hostname, port, name, username, password, sslMode, rdsCa
    prometheusGateway    hostname, port  (plain HTTP, as the platform serves it)

`settings` turns the result into the same ``{section: {key: value}}`` shape as the TOML file;
the CA certificates (``brokers[].cacert``, ``database.rdsCa``) are given to a writer, because
librdkafka's ``ssl.ca.location`` and libpq's ``sslrootcert`` take file names (see
`etl.core.private_files`). The topic names are not a setting but a translation of whatever name
the configuration asks for (`Clowder.topic_name`), as the Go service did it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from psycopg.conninfo import make_conninfo

from etl.core.errors import ConfigError

ACG_CONFIG = "ACG_CONFIG"
# (file name, PEM text) -> the path of a private copy of that text.
WriteFile = Callable[[str, str], str]


@dataclass(frozen=True)
class Broker:
    hostname: str
    port: int | None
    cacert: str = field(default="", repr=False)
    security_protocol: str = ""
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)

    @property
    def address(self) -> str:
        """``hostname:port``, or the hostname alone for a broker without a port."""
        return self.hostname if self.port is None else f"{self.hostname}:{self.port}"

    def client(self) -> dict[str, str]:
        """The librdkafka security properties this broker asks for (CA location aside)."""
        props = {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
        }
        return {k: v for k, v in props.items() if v}


@dataclass(frozen=True)
class Database:
    hostname: str
    port: int
    name: str
    username: str
    password: str = field(repr=False)
    ssl_mode: str
    rds_ca: str = field(default="", repr=False)


@dataclass(frozen=True)
class Clowder:
    """What etl takes from one ``cdappconfig.json``; ``None``/empty where the file has none."""

    path: Path
    brokers: tuple[Broker, ...] = ()
    topics: Mapping[str, str] | None = None  # requestedName -> name; None: no kafka section
    database: Database | None = None
    pushgateway_url: str = ""

    def topic_name(self, requested: str) -> str | None:
        """The real name of a requested topic; None when Clowder lists no such topic."""
        return None if self.topics is None else self.topics.get(requested)

    def settings(self, write_file: WriteFile) -> dict[str, dict[str, Any]]:
        """The settings this file gives, as ``{section: {key: value}}``; CA files via
        ``write_file``. ConfigError when the brokers ask for different credentials (one
        client has one set)."""
        out: dict[str, dict[str, Any]] = {}
        if self.brokers:
            first = self.brokers[0]
            for i, broker in enumerate(self.brokers[1:], start=1):
                if broker.client() != first.client():
                    _fail(self.path, f"kafka.brokers[{i}]", "security settings differ from [0]")
            client = first.client()
            cas = list(dict.fromkeys(b.cacert.strip() for b in self.brokers if b.cacert.strip()))
            if cas:
                client["ssl.ca.location"] = write_file("kafka-ca.pem", "\n".join(cas) + "\n")
            bootstrap = ",".join(b.address for b in self.brokers)
            out["kafka"] = {"bootstrap_servers": bootstrap, "client": client}
        if self.database is not None:
            out["postgres"] = {"dsn": self._dsn(self.database, write_file)}
        if self.pushgateway_url:
            out["pushgateway"] = {"url": self.pushgateway_url}
        return out

    @staticmethod
    def _dsn(db: Database, write_file: WriteFile) -> str:
        params: dict[str, str] = {
            "host": db.hostname,
            "port": str(db.port),
            "dbname": db.name,
            "user": db.username,
            "password": db.password,
            "sslmode": db.ssl_mode,
        }
        if db.rds_ca.strip():
            params["sslrootcert"] = write_file("db-ca.pem", db.rds_ca.strip() + "\n")
        return make_conninfo(**{k: v for k, v in params.items() if v})


def read(path: Path) -> Clowder:
    """The Clowder file at ``path``; ConfigError naming the file if unreadable or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{ACG_CONFIG} file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{ACG_CONFIG} file {path}: not UTF-8 text") from None
    return parse(path, text)


def parse(path: Path, text: str) -> Clowder:
    """``text`` (the content of ``path``) read per Clowder's schema; ConfigError if malformed."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:  # the message quotes no content, only a position
        _fail(path, "invalid JSON", f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    top = _object(path, doc, "the document")
    kafka = _optional_object(path, top, "kafka")
    brokers: tuple[Broker, ...] = ()
    topics: dict[str, str] | None = None
    if kafka is not None:
        brokers = tuple(
            _broker(path, _object(path, item, f"kafka.brokers[{i}]"), f"kafka.brokers[{i}]")
            for i, item in enumerate(_array(path, kafka, "brokers", "kafka"))
        )
        topics = {}
        for i, item in enumerate(_array(path, kafka, "topics", "kafka")):
            where = f"kafka.topics[{i}]"
            topic = _object(path, item, where)
            topics[_text(path, topic, "requestedName", where, required=True)] = _text(
                path, topic, "name", where, required=True
            )
    db = _optional_object(path, top, "database")
    gateway = _optional_object(path, top, "prometheusGateway")
    url = ""
    if gateway is not None:
        host = _text(path, gateway, "hostname", "prometheusGateway", required=True)
        port = _port(path, gateway, "port", "prometheusGateway", required=True)
        url = f"http://{host}:{port}"
    return Clowder(
        path=path,
        brokers=brokers,
        topics=topics,
        database=None if db is None else _database(path, db),
        pushgateway_url=url,
    )


def _broker(path: Path, b: Mapping[str, Any], where: str) -> Broker:
    sasl = _optional_object(path, b, "sasl", where) or {}
    cacert = _text(path, b, "cacert", where)
    protocol = _text(path, b, "securityProtocol", where) or _text(
        path, sasl, "securityProtocol", f"{where}.sasl"
    )
    authtype = _text(path, b, "authtype", where)
    if not protocol and authtype == "sasl":
        # Encrypted unless the file says otherwise: a password is never sent in clear by default.
        protocol = "SASL_SSL"
    elif not protocol and cacert:
        protocol = "SSL"
    return Broker(
        hostname=_text(path, b, "hostname", where, required=True),
        port=_port(path, b, "port", where),
        cacert=cacert,
        security_protocol=protocol,
        sasl_mechanism=_text(path, sasl, "saslMechanism", f"{where}.sasl"),
        sasl_username=_text(path, sasl, "username", f"{where}.sasl"),
        sasl_password=_text(path, sasl, "password", f"{where}.sasl"),
    )


def _database(path: Path, db: Mapping[str, Any]) -> Database:
    def text(key: str, required: bool = True) -> str:
        return _text(path, db, key, "database", required=required)

    port = _port(path, db, "port", "database", required=True)
    assert port is not None  # required above
    return Database(
        hostname=text("hostname"),
        port=port,
        name=text("name"),
        username=text("username"),
        # Absent or empty: libpq then takes PGPASSWORD or a passfile, as without Clowder.
        password=text("password", required=False),
        ssl_mode=text("sslMode", required=False),
        rds_ca=text("rdsCa", required=False),
    )


def _fail(path: Path, where: str, problem: str) -> NoReturn:
    raise ConfigError(f"{ACG_CONFIG} file {path}: {where}: {problem}")


def _object(path: Path, value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        _fail(path, where, f"expected an object, got {_json_type(value)}")
    return value


def _optional_object(
    path: Path, parent: Mapping[str, Any], key: str, where: str = ""
) -> Mapping[str, Any] | None:
    value = parent.get(key)
    return None if value is None else _object(path, value, _join(where, key))


def _array(path: Path, parent: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(path, _join(where, key), f"expected an array, got {_json_type(value)}")
    return value


def _text(
    path: Path, parent: Mapping[str, Any], key: str, where: str, *, required: bool = False
) -> str:
    value = parent.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        _fail(path, _join(where, key), f"expected a non-empty string, got {_json_type(value)}")
    return value


def _port(
    path: Path, parent: Mapping[str, Any], key: str, where: str, *, required: bool = False
) -> int | None:
    value = parent.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        _fail(path, _join(where, key), f"expected a port number, got {_json_type(value)}")
    return value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _json_type(value: Any) -> str:
    """The JSON type of a rejected value, never the value (it may be a password)."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array"}
    return names.get(type(value), "an object")
