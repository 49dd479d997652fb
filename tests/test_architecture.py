"""The import contracts in pyproject.toml (``[tool.importlinter]``) hold.

Dependencies run one way, run.py -> supervisor -> actors, and the actor packages are layered.
``lint-imports`` runs in its own process (it builds the import graph from the source files, not
from what this test process has imported), from the venv that runs the tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.exists(), f"{lint_imports} is missing: pip install -e '.[test]'"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
