"""Pure: the known name closest to a mistyped one, for "did you mean" in error messages.

Only names are compared and returned, never values, so a suggestion cannot leak a secret.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_SIMILAR_ENOUGH = 0.6  # difflib ratio: "dns" -> "dsn" (0.67) is found, "url" -> "job" is not


def closest(typed: str, known: Iterable[str]) -> str | None:
    """The known name ``typed`` most likely meant, or None when none is close.

    Case is ignored and a run of underscores counts as one separator, so ``ETL_KAFKA_TOPIC``
    finds ``ETL_KAFKA__TOPIC`` exactly; otherwise the most similar name above a threshold.
    """
    names = list(known)
    squeezed = {_squeeze(n): n for n in names}
    exact = squeezed.get(_squeeze(typed))
    if exact is not None:
        return exact
    lowered = {n.lower(): n for n in names}
    found = difflib.get_close_matches(typed.lower(), lowered, n=1, cutoff=_SIMILAR_ENOUGH)
    return lowered[found[0]] if found else None


def _squeeze(name: str) -> str:
    return re.sub("_+", "_", name.lower())
