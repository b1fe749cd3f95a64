"""Configuration: one frozen, fully validated `Config`, built once by the CLI and passed down.

The models, their defaults and their validation; `etl.core.config_sources` builds a `Config`
from the TOML file and the environment. Every problem is a `ConfigError` whose message names
the offending key. Secrets (the DSN password, librdkafka properties whose name mentions
password or secret, the Pushgateway's and Sentry's credentials) are masked in ``repr`` and in
`Config.masked`, which is what ``etl config show`` and the logs print. `Config.secrets` lists the
secret values themselves, for `mask_secrets` to take out of text a third party wrote (an error
report sent to Sentry).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from etl.core.errors import ConfigError

MASK = "***"
_SECRET_WORDS = ("password", "secret", "token", "key.pem", "oauthbearer.config", "jaas")


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "ccx.ocp.results"
    group_id: str = "etl"
    auto_offset_reset: str = "earliest"
    isolation_level: str = "read_committed"
    # Seconds without any progress (message, end of partition, assignment) before the run
    # declares Kafka unavailable.
    timeout_seconds: float = 60.0
    client: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        _require(bool(self.bootstrap_servers), "kafka.bootstrap_servers", "must not be empty")
        _require(bool(self.topic), "kafka.topic", "must not be empty")
        _require(bool(self.group_id), "kafka.group_id", "must not be empty")
        _require(
            self.auto_offset_reset in ("earliest", "latest"),
            "kafka.auto_offset_reset",
            "must be 'earliest' or 'latest'",
        )
        _require(
            self.isolation_level in ("read_committed", "read_uncommitted"),
            "kafka.isolation_level",
            "must be 'read_committed' or 'read_uncommitted'",
        )
        _require(self.timeout_seconds > 0, "kafka.timeout_seconds", "must be > 0")
        # The source plans whole assignments (eager rebalancing); incremental protocols differ.
        _require(
            "cooperative" not in self.client.get("partition.assignment.strategy", ""),
            "kafka.client.partition.assignment.strategy",
            "cooperative strategies are not supported; use range or roundrobin",
        )
        _require(
            self.client.get("group.protocol", "classic") == "classic",
            "kafka.client.group.protocol",
            "only the classic group protocol is supported",
        )


@dataclass(frozen=True)
class PostgresConfig:
    dsn: str = field(default="postgresql://postgres@127.0.0.1:5432/postgres", repr=False)
    connect_timeout_seconds: int = 10
    # Transient errors of an idempotent operation are retried until retry_max_seconds have
    # passed since its first failure (etl.pg.sink); retry_attempts > 0 also caps the attempts.
    retry_attempts: int = 0
    retry_max_seconds: float = 60.0
    # A batch statement running longer than this is cancelled; the budget above counts from
    # that failure, so the batch is retried whatever the two values.
    statement_timeout_seconds: float = 600.0
    # Batches stored at once, each in its own transaction on its own connection: the server
    # then uses more than one core. Kafka offsets are still committed in batch order.
    writers: int = 2

    def __post_init__(self) -> None:
        try:
            conninfo_to_dict(self.dsn)
        except Exception:  # psycopg raises ProgrammingError on bad syntax
            # libpq's message may quote the password: never repeat it.
            raise ConfigError(
                "postgres.dsn: not a valid libpq connection string (URI or key=value pairs)"
            ) from None
        _require(
            self.connect_timeout_seconds > 0, "postgres.connect_timeout_seconds", "must be > 0"
        )
        _require(self.retry_attempts >= 0, "postgres.retry_attempts", "must be >= 0 (0: no limit)")
        _require(self.retry_max_seconds > 0, "postgres.retry_max_seconds", "must be > 0")
        _require(
            self.statement_timeout_seconds > 0, "postgres.statement_timeout_seconds", "must be > 0"
        )
        _require(1 <= self.writers <= 8, "postgres.writers", "must be between 1 and 8")

    @property
    def has_password(self) -> bool:
        """True when the DSN itself carries a password (prefer PGPASSWORD or a passfile)."""
        return "password" in conninfo_to_dict(self.dsn)

    @property
    def masked_dsn(self) -> str:
        """The DSN with any password replaced by ``***``; safe to log."""
        params = conninfo_to_dict(self.dsn)
        if "password" in params:
            params["password"] = MASK
        return make_conninfo(**{k: str(v) for k, v in params.items()})


@dataclass(frozen=True)
class PushgatewayConfig:
    """Where metrics go. Credentials: HTTP basic auth (``username``/``password``, or the
    ``user:password@`` part of ``url``, which is then taken out of the URL) or a bearer
    ``token``; never both. They are sent as an ``Authorization`` header and always masked."""

    url: str = field(default="", repr=False)  # empty: do not push
    job: str = "etl"
    # Extra grouping-key labels, e.g. {"worker": "0"}, so parallel copies keep their own series.
    grouping_key: Mapping[str, str] = field(default_factory=dict)
    # One total deadline for the whole push (or the check's request), however the peer answers.
    timeout_seconds: float = 10.0
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        _require(
            self.url == "" or self.url.startswith(("http://", "https://")),
            "pushgateway.url",
            "must start with http:// or https:// (or be empty to disable pushing)",
        )
        try:
            parts = urllib.parse.urlsplit(self.url)
            _ = parts.port  # a non-numeric port raises here
        except ValueError:
            raise ConfigError("pushgateway.url: not a valid URL") from None
        _require(bool(self.job), "pushgateway.job", "must not be empty")
        _require(self.timeout_seconds > 0, "pushgateway.timeout_seconds", "must be > 0")
        user, password = self.basic_auth or ("", "")
        _require(
            not (self.token and (user or password)),
            "pushgateway.token",
            "cannot be combined with basic auth (pushgateway.username/password or user@ in url)",
        )
        _require(
            bool(user) or not password,
            "pushgateway.password",
            "needs pushgateway.username",
        )

    @property
    def base_url(self) -> str:
        """``url`` without any ``user:password@`` part: what requests are sent to."""
        parts = urllib.parse.urlsplit(self.url)
        host = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit(parts._replace(netloc=host))

    @property
    def masked_url(self) -> str:
        """``url`` safe to print: any credentials in it replaced by ``***``."""
        return mask_url(self.url)

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """(username, password) from the keys, else from the URL; None without a username."""
        if self.username:
            return self.username, self.password
        parts = urllib.parse.urlsplit(self.url)
        if parts.username:
            return (
                urllib.parse.unquote(parts.username),
                urllib.parse.unquote(parts.password or ""),
            )
        return None


def mask_url(url: str) -> str:
    """A URL with its ``user:password@`` part (if any) replaced by ``***@``; safe to log."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return MASK
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{MASK}@{host}"))


@dataclass(frozen=True)
class BatchConfig:
    max_messages: int = 10_000
    max_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        _require(self.max_messages >= 1, "batch.max_messages", "must be >= 1")
        _require(self.max_bytes >= 1024, "batch.max_bytes", "must be >= 1024")


@dataclass(frozen=True)
class ValidationConfig:
    # Reports stamped later than now + this many seconds are rejected as "from the future".
    clock_skew_seconds: float = 300.0

    def __post_init__(self) -> None:
        _require(self.clock_skew_seconds >= 0, "validation.clock_skew_seconds", "must be >= 0")


@dataclass(frozen=True)
class TrackerConfig:
    topic: str = ""  # empty: no payload tracker events
    service_name: str = "etl"
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        _require(bool(self.service_name), "tracker.service_name", "must not be empty")
        _require(self.timeout_seconds > 0, "tracker.timeout_seconds", "must be > 0")


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    format: str = "auto"  # auto: readable on a TTY, JSON lines otherwise

    def __post_init__(self) -> None:
        _require(
            self.level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"),
            "log.level",
            "must be DEBUG, INFO, WARNING or ERROR",
        )
        _require(
            self.format in ("auto", "json", "text"), "log.format", "must be auto, json or text"
        )


@dataclass(frozen=True)
class SentryConfig:
    """Where ``etl run`` reports failures and Crons check-ins (etl.cli.sentry). The DSN comes
    from here or, when this key is not set, from ``SENTRY_DSN`` (etl.core.config_sources)."""

    dsn: str = field(default="", repr=False)  # empty: nothing is sent, sentry_sdk not imported
    environment: str = "production"
    # Empty: no check-ins. Else the slug of a Crons monitor set up with the CronJob's schedule.
    monitor_slug: str = ""
    # What the flush at exit may add to a run's end, so the job still ends within 10 s of
    # SIGTERM (deploy/base/cronjob.yaml) whatever Sentry's endpoint does.
    flush_seconds: float = 2.0

    def __post_init__(self) -> None:
        _require(
            self.dsn == "" or _is_sentry_dsn(self.dsn),
            "sentry.dsn",
            "must be a Sentry DSN, http(s)://KEY@HOST/PROJECT_ID (or empty to send nothing)",
        )
        _require(bool(self.environment), "sentry.environment", "must not be empty")
        _require(
            0 < self.flush_seconds <= 5,
            "sentry.flush_seconds",
            "must be > 0 and at most 5 (the run must end within 10 s of SIGTERM)",
        )

    @property
    def enabled(self) -> bool:
        return bool(self.dsn)


def _is_sentry_dsn(dsn: str) -> bool:
    """What sentry_sdk accepts: a scheme, a public key, a host and a numeric project id."""
    try:
        parts = urllib.parse.urlsplit(dsn)
        _ = parts.port
    except ValueError:
        return False
    project = parts.path.rpartition("/")[2]
    return (
        parts.scheme in ("http", "https")
        and bool(parts.username)
        and bool(parts.hostname)
        and project.isdigit()
    )


@dataclass(frozen=True)
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    postgres: PostgresConfig = field(default_factory=PostgresConfig)
    pushgateway: PushgatewayConfig = field(default_factory=PushgatewayConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    log: LogConfig = field(default_factory=LogConfig)
    sentry: SentryConfig = field(default_factory=SentryConfig)

    def masked(self) -> dict[str, dict[str, Any]]:
        """The effective configuration as plain data with every secret replaced by ``***``."""
        out: dict[str, dict[str, Any]] = {}
        for section in fields(self):
            value = getattr(self, section.name)
            data = {f.name: getattr(value, f.name) for f in fields(value)}
            out[section.name] = data
        out["postgres"]["dsn"] = self.postgres.masked_dsn
        out["kafka"]["client"] = {
            k: (MASK if _is_secret(k) else v) for k, v in self.kafka.client.items()
        }
        out["pushgateway"]["grouping_key"] = dict(self.pushgateway.grouping_key)
        out["pushgateway"]["url"] = self.pushgateway.masked_url
        for key in ("password", "token"):
            if out["pushgateway"][key]:
                out["pushgateway"][key] = MASK
        out["sentry"]["dsn"] = mask_url(self.sentry.dsn)
        return out

    def secrets(self) -> frozenset[str]:
        """The secret values `masked` hides, as written and percent-encoded.

        The DSN password, every librdkafka property `masked` hides (SASL, TLS key, OAuth),
        the Pushgateway's password and token and the password in its URL.
        """
        pg = conninfo_to_dict(self.postgres.dsn).get("password")
        basic = self.pushgateway.basic_auth
        values = {
            str(pg or ""),
            *(v for k, v in self.kafka.client.items() if _is_secret(k)),
            self.pushgateway.password,
            self.pushgateway.token,
            basic[1] if basic else "",
        }
        values |= {urllib.parse.quote(v, safe="") for v in values}
        return frozenset(v for v in values if v)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` made ``***``; the longest first, so that a secret
    holding another is masked whole."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _is_secret(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)


def _require(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {problem}")
