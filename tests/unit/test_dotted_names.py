"""Every module path quoted in a docstring, a comment or a doc page names something that exists.

A reference such as `etl.pg.progress.read_positions` is checked by importing the longest module
prefix and looking up the rest; a file path such as `etl/core/decode.py` must exist. Renamed or
moved code then fails here instead of leaving the prose pointing at the old layout.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers.services import ROOT

DOTTED = re.compile(r"`(etl(?:\.\w+)+)`")
FILE = re.compile(r"`((?:etl|tests|bench|dev|native|deploy|docs)/[\w./-]+\.(?:py|rs|sh|md|yaml))`")
# Quoted names that are not modules: the logger librdkafka's lines go to, a config file name.
NOT_MODULES = {"etl.librdkafka", "etl.toml"}


def _sources() -> list[Path]:
    found = [ROOT / "README.md"]
    for folder, pattern in (
        ("etl", "*.py"),
        ("tests", "*.py"),
        ("bench", "*.py"),
        ("dev", "*.py"),
        ("native/src", "*.rs"),
        ("docs", "*.md"),
    ):
        found += sorted((ROOT / folder).rglob(pattern))
    return found


def resolves(name: str) -> bool:
    """Whether ``name`` is a module, or a module followed by attributes that exist."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(target, attr):
                return False
            target = getattr(target, attr)
        return True
    return False


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_quoted_module_path_and_file_exists(path: Path) -> None:
    text = path.read_text()
    wrong = [n for n in DOTTED.findall(text) if n not in NOT_MODULES and not resolves(n)]
    wrong += [f for f in FILE.findall(text) if not (ROOT / f).exists()]
    assert not wrong, f"{path.relative_to(ROOT)} names what does not exist: {sorted(set(wrong))}"


def test_the_checker_refuses_a_moved_module_and_accepts_attributes() -> None:
    assert resolves("etl.pg.progress.read_positions")
    assert resolves("etl.core.ports.Source")
    assert not resolves("etl.cli_run")
    assert not resolves("etl.core.ports.NoSuchPort")
    assert isinstance(importlib.import_module("etl.core"), ModuleType)
