"""Private files for text that a library only takes by file name: the CA certificates of
Clowder's configuration (librdkafka's ``ssl.ca.location``, libpq's ``sslrootcert``).

Each file is created with mode 0600 in a directory of its own (``tempfile.mkdtemp``: mode 0700,
a name no other user can guess or take first), made on the first write and removed when the
process exits. A file is never overwritten: each name is written once per `PrivateFiles`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from etl.core.errors import ConfigError


class PrivateFiles:
    """A lazily made private directory; `write` puts one file in it and returns its path."""

    def __init__(self, prefix: str = "etl-") -> None:
        self._prefix = prefix
        self._dir: Path | None = None

    @property
    def directory(self) -> Path | None:
        """The directory, once a file was written; None before."""
        return self._dir

    def write(self, name: str, text: str) -> str:
        """Write ``text`` to a new file ``name`` (mode 0600); its path. ConfigError if the
        temporary directory cannot be written (the message names the problem, not the text)."""
        try:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix=self._prefix))
                atexit.register(shutil.rmtree, self._dir, ignore_errors=True)
            path = self._dir / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise ConfigError(
                f"cannot write {name} in {tempfile.gettempdir()}: {exc.strerror}"
            ) from None
        return str(path)
