"""Running the installed ``botcriptofy`` command (and ``run.py``) as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_PY = ROOT / "run.py"
BOTCRIPTOFY = Path(sys.executable).with_name("botcriptofy")


def botcriptofy(
    *args: str | Path, cwd: Path = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    assert BOTCRIPTOFY.exists(), f"{BOTCRIPTOFY} is missing: pip install -e '.[test]'"
    return _run([str(BOTCRIPTOFY), *map(str, args)], cwd, timeout)


def run_py(
    *args: str | Path, cwd: Path = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, str(RUN_PY), *map(str, args)], cwd, timeout)


def _run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    # Wide enough that argparse never wraps, so two programs' help texts compare line by line.
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
