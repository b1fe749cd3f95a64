"""Where the configuration comes from, later wins: built-in defaults, the TOML file
(``--config`` or ``ETL_CONFIG``), then environment variables ``ETL_<SECTION>__<KEY>`` (e.g.
``ETL_BATCH__MAX_MESSAGES``). librdkafka properties go in the ``[kafka.client]`` table or
``ETL_KAFKA__CLIENT__<PROPERTY>`` with dots written as underscores
(``ETL_KAFKA__CLIENT__SASL_PASSWORD`` -> ``sasl.password``).

Every problem is collected and reported at once, naming the key (with the closest known name
for a mistyped one) and what was expected, never the value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from etl.core.config import (
    BatchConfig,
    Config,
    KafkaConfig,
    LogConfig,
    PostgresConfig,
    PushgatewayConfig,
    TrackerConfig,
    ValidationConfig,
)
from etl.core.errors import ConfigError
from etl.core.suggest import closest

ENV_PREFIX = "ETL_"

_SECTIONS: dict[str, type[Any]] = {
    "kafka": KafkaConfig,
    "postgres": PostgresConfig,
    "pushgateway": PushgatewayConfig,
    "batch": BatchConfig,
    "validation": ValidationConfig,
    "tracker": TrackerConfig,
    "log": LogConfig,
}
_MAPPING_KEYS = {("kafka", "client"), ("pushgateway", "grouping_key")}


# Variables of the dev scripts (dev/services.sh, dev/venv.sh), not configuration keys.
NOT_CONFIG_VARS = frozenset(
    {
        "ETL_SERVICES_DIR",
        "ETL_PG_PORT",
        "ETL_KAFKA_PORT",
        "ETL_PUSHGATEWAY_PORT",
        "ETL_MINIMUM_VENV",
        "ETL_VENV",
    }
)


def load_config(path: Path | None, environ: Mapping[str, str]) -> Config:
    """Build the configuration from an optional TOML file and the environment; validate it all.

    Every problem found is reported at once in one `ConfigError` (a file that cannot be read or
    parsed stops at that): unknown sections and keys with the closest known name, values of the
    wrong type, values out of range, and ``ETL_`` variables that name no key (such as
    ``ETL_KAFKA_TOPIC`` with one underscore), which would otherwise be silently ignored.
    """
    if path is None and environ.get("ETL_CONFIG"):
        path = Path(environ["ETL_CONFIG"])
    problems: list[str] = []
    raw: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    if path is not None:
        _merge_file(raw, path, problems)
    _merge_env(raw, environ, problems)
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        try:
            sections[name] = _build_section(name, cls, raw[name], problems)
        except ConfigError as exc:
            problems.append(str(exc))
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{len(problems)} configuration problems: " + "; ".join(problems))
    return Config(**sections)


def _merge_file(raw: dict[str, dict[str, Any]], path: Path, problems: list[str]) -> None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: invalid TOML ({exc})") from None
    for name, values in data.items():
        if name not in _SECTIONS:
            problems.append(f"{name}: unknown configuration section{_hint(name, _SECTIONS)}")
        elif not isinstance(values, dict):
            problems.append(f"{name}: must be a table")
        else:
            raw[name].update(values)


def _merge_env(
    raw: dict[str, dict[str, Any]], environ: Mapping[str, str], problems: list[str]
) -> None:
    for var, value in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or var == "ETL_CONFIG" or var in NOT_CONFIG_VARS:
            continue
        if "__" not in var:
            problems.append(f"{var}: names no configuration key{_hint(var, _env_names())}")
            continue
        parts = var[len(ENV_PREFIX) :].lower().split("__")
        section = parts[0]
        if section not in _SECTIONS:
            problems.append(
                f"{var}: unknown configuration section {section!r}{_hint(section, _SECTIONS)}"
            )
        elif len(parts) == 3 and (section, parts[1]) in _MAPPING_KEYS:
            key = parts[2].replace("_", ".") if section == "kafka" else parts[2]
            mapping = dict(raw[section].get(parts[1], {}))
            mapping[key] = value
            raw[section][parts[1]] = mapping
        elif len(parts) == 2 and parts[1] in _keys(section):
            raw[section][parts[1]] = value
        elif len(parts) == 2:
            problems.append(f"{var}: unknown configuration key{_env_hint(var, section, parts[1])}")
        else:
            problems.append(f"{var}: expected ETL_<SECTION>__<KEY>{_hint(var, _env_names())}")


def _build_section(name: str, cls: type[Any], values: dict[str, Any], problems: list[str]) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            hint = _hint(key, known, lambda k: f"{name}.{k}")
            problems.append(f"{name}.{key}: unknown configuration key{hint}")
            continue
        default = getattr(cls(), key) if (name, key) not in _MAPPING_KEYS else {}
        try:
            kwargs[key] = _coerce(f"{name}.{key}", value, default)
        except ConfigError as exc:
            problems.append(str(exc))
    return cls(**kwargs)


def _keys(section: str) -> set[str]:
    return {f.name for f in fields(_SECTIONS[section])}


def _env_hint(var: str, section: str, key: str) -> str:
    """A key glued to a table's name (``ETL_KAFKA__CLIENT_SASL_PASSWORD``) or a near miss."""
    for sec, table in _MAPPING_KEYS:
        if sec == section and key.startswith(f"{table}_"):
            rest = key[len(table) + 1 :].upper()
            return f" (did you mean {ENV_PREFIX}{sec.upper()}__{table.upper()}__{rest}?)"
    return _hint(var, _env_names())


def _env_names() -> list[str]:
    """Every ``ETL_<SECTION>__<KEY>`` name, for suggestions."""
    return [
        f"{ENV_PREFIX}{section.upper()}__{f.name.upper()}"
        for section, cls in _SECTIONS.items()
        for f in fields(cls)
    ]


def _hint(typed: str, known: Iterable[str], spell: Callable[[str], str] = lambda k: k) -> str:
    """`` (did you mean X?)`` for the closest known name, or nothing."""
    match = closest(typed, known)
    return f" (did you mean {spell(match)}?)" if match is not None else ""


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Convert a file or environment value to the type of the key's default."""
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: must be a table of strings")
        return {str(k): _scalar_text(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(default, int):
        return _number(key, value, int)
    if isinstance(default, float):
        return _number(key, value, float)
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _number(key: str, value: Any, kind: type[int] | type[float]) -> int | float:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number, got a boolean")
    if isinstance(value, int | float) and (kind is float or isinstance(value, int)):
        return kind(value)
    if isinstance(value, str):
        try:
            return kind(value.strip().replace("_", ""))
        except ValueError:
            pass
    what = "an integer" if kind is int else "a number"
    # Never the value itself: a secret pasted into the wrong key must not be echoed.
    raise ConfigError(f"{key}: expected {what}, got {_kind_of(value)}")


def _kind_of(value: Any) -> str:
    """What a rejected value is, without showing it."""
    if isinstance(value, str):
        return f"a string of {len(value)} character(s)" if value.strip() else "an empty string"
    return f"a {type(value).__name__}"


def _scalar_text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigError(f"{key}: must be a string, number or boolean")
