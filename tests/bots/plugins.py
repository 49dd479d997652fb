"""Strategy plugin modules written by a test: each under a fresh name in the test's own directory
on ``sys.path``, so whatever a module does at import time happens in that test only, and a
``marker`` plugin proves by a file whether it was ever imported (in this process or a daemon's).
"""

from __future__ import annotations

import importlib
import textwrap
import uuid
from pathlib import Path

import attrs
import pytest

# A strategy module whose import leaves a file behind: what a refused spawn must never cause.
MARKER_SOURCE = """
from pathlib import Path

Path({marker!r}).write_text("imported", encoding="utf-8")


class Strategy:
    def on_tick(self, ticker, ctx):
        return None
"""


@attrs.frozen
class Plugins:
    directory: Path

    @classmethod
    def on_path(cls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plugins:
        directory = tmp_path / "plugins"
        directory.mkdir()
        monkeypatch.syspath_prepend(str(directory))
        return cls(directory)

    def write(self, source: str, stem: str = "plugin") -> str:
        """Write a module; returns its (unique) name."""
        name = f"{stem}_{uuid.uuid4().hex[:12]}"
        (self.directory / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        importlib.invalidate_caches()  # the directory is on sys.path already
        return name

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.py"

    def marker(self, stem: str = "marker") -> tuple[str, Path]:
        """A module that writes a file when imported: its name and that file."""
        name = f"{stem}_{uuid.uuid4().hex[:12]}"
        flag = self.directory / f"{name}.imported"
        (self.directory / f"{name}.py").write_text(
            MARKER_SOURCE.format(marker=str(flag)), encoding="utf-8"
        )
        importlib.invalidate_caches()
        return name, flag
