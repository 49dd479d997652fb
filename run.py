"""BotCriptoFy entry point: parse arguments, configure logging, load config, run the daemon.

Exit codes: 0 clean stop, 1 the daemon failed, 2 invalid configuration (one ``path: message``
line per problem on stderr; nothing started). The daemon is imported only when it runs, so
``--check-config`` stays quick. This is ``botcriptofy run`` (``supervisor/cli.py``) under the
name it always had, for a checkout that was never pip-installed.

``python run.py backtest|report|import-binance|check ...`` are ``botcriptofy``'s subcommands of
those names (a first argument that is one of these words; the daemon's own arguments all start
with ``-``, so nothing they meant before changes).
"""

from __future__ import annotations

import argparse
import sys

from supervisor.cli import main as cli_main
from supervisor.cli import run_main, run_parser

SUBCOMMANDS = frozenset({"backtest", "report", "import-binance", "check"})


def _parser() -> argparse.ArgumentParser:
    return run_parser("run.py")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in SUBCOMMANDS:
        return cli_main(argv)
    return run_main(argv, prog="run.py")


if __name__ == "__main__":
    sys.exit(main())
