"""The command line: ``botcriptofy`` (installed by pip) and ``python run.py``.

    botcriptofy run [options]         the daemon; the options of ``python run.py``
    botcriptofy check FILE            validate a config: ``python run.py --check-config FILE``
    botcriptofy report --journal PATH how each bot did (also --config FILE: its journal)
    botcriptofy simulator ...         a local exchange: ``python -m actors.simulator ...``
    botcriptofy --version

``run.py`` is ``botcriptofy run`` under the name it always had: both parse with ``run_parser``
and run ``run_main``, so their options, output and exit codes cannot drift apart.

Exit codes: 0 clean stop (or no problem found), 1 the daemon failed, 2 invalid configuration,
arguments or journal (one ``path: message`` line per problem on stderr; nothing started). The
daemon is imported only when it runs, so ``check`` and ``report`` stay quick.
"""

from __future__ import annotations

import argparse
import functools
import sys
from importlib import metadata

from actors.errors import ConfigError, JournalError
from supervisor.config_loader import load_config
from supervisor.logging import configure_logging

PROG = "botcriptofy"
LOG_LEVELS = ["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]


def version() -> str:
    """The installed distribution's version, so ``--version`` says what pip installed."""
    try:
        return metadata.version(PROG)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


# --- run ----------------------------------------------------------------------------------------


def add_run_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--config", metavar="FILE", help="run this TOML config")
    what.add_argument(
        "--check-config", metavar="FILE", help="validate FILE: exit 0 (OK) or 2 (problems)"
    )
    parser.add_argument("--duration", metavar="S", type=float, help="stop cleanly after S seconds")
    parser.add_argument(
        "--http-port", metavar="PORT", type=int, help="override [http] port (0: any free port)"
    )
    parser.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")
    parser.add_argument(
        "--log-level",
        default=None,
        choices=LOG_LEVELS,
        type=str.upper,
        help="log level (default: the config's [logging] level, else INFO)",
    )
    return parser


def run_parser(prog: str = "run.py") -> argparse.ArgumentParser:
    description = (
        "BotCriptoFy entry point: parse arguments, configure logging, load config, run the daemon."
    )
    return add_run_options(argparse.ArgumentParser(prog=prog, description=description))


def run_main(argv: list[str] | None = None, *, prog: str = "run.py") -> int:
    return _run(run_parser(prog).parse_args(argv))


def _problems(error: ConfigError | JournalError) -> int:
    lines = error.problems if isinstance(error, ConfigError) else [str(error)]
    for line in lines:
        print(line, file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    if args.duration is not None and not args.duration > 0:  # NaN too
        print("--duration: must be > 0", file=sys.stderr)
        return 2
    if args.http_port is not None and not 0 <= args.http_port <= 65535:
        print("--http-port: must be a TCP port in 0..65535 (0 picks a free one)", file=sys.stderr)
        return 2
    if args.check_config is not None:
        return check_config(args.check_config)

    config = None
    if args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigError as error:
            return _problems(error)
    log = config.logging if config is not None else None
    configure_logging(
        level=args.log_level or (log.level if log else "INFO"),
        json=args.log_json or bool(log and log.json),
        file=log.file if log else None,
    )

    import trio

    from supervisor import daemon

    return trio.run(
        functools.partial(daemon.main, config, duration_s=args.duration, http_port=args.http_port)
    )


def check_config(path: str) -> int:
    """``OK`` (and, for a config with accounts, what live mode will do) and 0, or one line per
    problem on stderr and 2."""
    try:
        checked = load_config(path)
        report: list[str] = []
        if checked.accounts:  # the live stack is imported only when there is one
            from supervisor.accounts import live_report

            report = live_report(checked)
    except ConfigError as error:
        return _problems(error)
    print("OK")
    for line in report:
        print(line)
    return 0


# --- report -------------------------------------------------------------------------------------


def report(journal: str | None, config: str | None) -> int:
    from supervisor.report import format_report, read_journal, summarize

    if journal is None:
        assert config is not None
        try:
            journal = load_config(config).journal.path
        except ConfigError as error:
            return _problems(error)
    try:
        contents = read_journal(journal)
        text = format_report(contents, summarize(contents))
    except JournalError as error:
        return _problems(error)
    sys.stdout.write(text)
    return 0


# --- botcriptofy --------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG, description="BotCriptoFy: a real-time crypto trading daemon."
    )
    top.add_argument("--version", action="version", version=f"{PROG} {version()}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # "run" and "simulator" are listed here for --help; ``main`` hands them their arguments
    # before this parser sees them, so each parses (and refuses) exactly as its own program.
    commands.add_parser("run", help="run the daemon (botcriptofy run --help)", add_help=False)
    check = commands.add_parser("check", help="validate a config: exit 0 (OK) or 2 (problems)")
    check.add_argument("file", metavar="FILE")
    reporting = commands.add_parser("report", help="how each bot did, from its journal")
    source = reporting.add_mutually_exclusive_group(required=True)
    source.add_argument("--journal", metavar="PATH", help="the journal file")
    source.add_argument("--config", metavar="FILE", help="the journal of this config")
    commands.add_parser(
        "simulator",
        help="a local exchange (botcriptofy simulator --help)",
        add_help=False,
    )
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:
        return run_main(argv[1:], prog=f"{PROG} run")
    if argv[:1] == ["simulator"]:
        from actors.simulator.__main__ import main as simulator_main

        return simulator_main(argv[1:])
    args = parser().parse_args(argv)
    if args.command == "check":
        return check_config(args.file)
    return report(args.journal, args.config)


if __name__ == "__main__":
    sys.exit(main())
