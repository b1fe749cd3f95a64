"""The ``--max-age`` interval of ``etl cleanup`` and ``etl runs --since``: pure parsing.

`parse_max_age` validates ``N unit [N unit ...]`` before any SQL runs and returns canonical
text that PostgreSQL then turns into a cutoff (``now() - interval``), so months and years follow
its calendar arithmetic; the sizes below only bound the total.
"""

from __future__ import annotations

import re
from typing import Final

from etl.core.errors import ConfigError

_UNITS: Final = {
    "second": ("seconds", 1),
    "minute": ("minutes", 60),
    "hour": ("hours", 3600),
    "day": ("days", 86400),
    "week": ("weeks", 7 * 86400),
    "month": ("months", 30 * 86400),
    "year": ("years", 365 * 86400),
}
_SPELLINGS: Final = {
    "second": ("s", "sec", "secs", "second", "seconds"),
    "minute": ("min", "mins", "minute", "minutes"),
    "hour": ("h", "hour", "hours"),
    "day": ("d", "day", "days"),
    "week": ("w", "week", "weeks"),
    "month": ("mon", "mons", "month", "months"),
    "year": ("y", "year", "years"),
}
_ALIASES: Final = {word: unit for unit, words in _SPELLINGS.items() for word in words}
_PART: Final = re.compile(r"(\d{1,7})\s*([a-z]+)")
_MAX_SECONDS: Final = 1000 * 365 * 86400


def parse_max_age(text: str) -> str:
    """Validate ``N unit [N unit ...]`` (e.g. ``7 days``, ``1 day 12 hours``); canonical text.

    Units: second(s)/sec/s, minute(s)/min, hour(s)/h, day(s)/d, week(s)/w, month(s)/mon,
    year(s)/y. The total must be positive and at most 1000 years. Anything else is a
    `ConfigError` naming ``--max-age``.
    """
    value = text.strip().lower()
    parts = _PART.findall(value)
    if not parts or _PART.sub("", value).strip():
        raise ConfigError(
            f"--max-age: {text!r} is not an interval like '7 days' or '1 day 12 hours'"
        )
    canonical: list[str] = []
    seconds = 0
    for number, unit in parts:
        name = _ALIASES.get(unit)
        if name is None:
            raise ConfigError(f"--max-age: unknown unit {unit!r} in {text!r}")
        plural, size = _UNITS[name]
        canonical.append(f"{int(number)} {name if int(number) == 1 else plural}")
        seconds += int(number) * size
    if seconds == 0:
        raise ConfigError("--max-age: must be greater than zero")
    if seconds > _MAX_SECONDS:
        raise ConfigError("--max-age: must be at most 1000 years")
    return " ".join(canonical)
