"""The command line: ``botcriptofy`` (installed by pip) and ``python run.py``.

    botcriptofy run [options]         the daemon; the options of ``python run.py``
    botcriptofy check FILE            validate a config: ``python run.py --check-config FILE``
    botcriptofy report --journal PATH how each bot did (also --config FILE: its journal)
        [--out DIR]                   ... and report.html, report.png (charts) in DIR
    botcriptofy backtest --config FILE --data DIR [--param PATH=V1,V2 ...] ...
                                      the config's bots on recorded data, and a report
    botcriptofy import-binance FILE.zip ... --data DIR
                                      Binance's public dumps into the record format
    botcriptofy journal migrate --from FILE --to URL
                                      copy a SQLite journal into an empty PostgreSQL one
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

import attrs

from actors.errors import ConfigError, JournalError
from supervisor.config import Config
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
    parser.add_argument(
        "--node", metavar="NAME", help="override [cluster] node (one config for every node)"
    )
    parser.add_argument(
        "--roles",
        metavar="ROLES",
        help="override [cluster] roles: feed, bots or feed,bots",
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
    if args.node is not None or args.roles is not None:
        try:
            config = with_cluster_overrides(config, node=args.node, roles=args.roles)
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


def with_cluster_overrides(config: Config | None, *, node: str | None, roles: str | None) -> Config:
    """``--node``/``--roles`` applied to the config's ``[cluster]`` (``ConfigError`` naming the
    option when there is none, or the value is not valid)."""
    option = "--node" if node is not None else "--roles"
    if config is None or config.cluster is None:
        raise ConfigError([f"{option}: needs a config with a [cluster] section (--config FILE)"])
    cluster = config.cluster
    try:
        if node is not None:
            cluster = attrs.evolve(cluster, node=node)
        option = "--roles"
        if roles is not None:
            names = tuple(part.strip() for part in roles.split(",") if part.strip())
            unknown = [name for name in names if name not in ("feed", "bots")]
            if unknown:
                raise ValueError(f"unknown role {unknown[0]!r}; expected feed, bots or feed,bots")
            cluster = attrs.evolve(cluster, roles=names)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError([f"{option}: {exc}"]) from None
    return attrs.evolve(config, cluster=cluster)


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


def report(journal: str | None, config: str | None, out: str | None = None) -> int:
    """Print the table; with ``out`` also write ``report.html`` and ``report.png`` there."""
    from pathlib import Path

    from supervisor.report import build_report, write_report

    if journal is None:
        assert config is not None
        try:
            journal_config = load_config(config).journal
        except ConfigError as error:
            return _problems(error)
        if journal_config.url is not None:
            print(
                f"{config}: journal.url: report reads SQLite journals only; this journal is in"
                f" {journal_config.where} (query it with psql)",
                file=sys.stderr,
            )
            return 2
        journal = journal_config.path
    try:
        if out is None:
            text = build_report(journal).table
        else:
            files = write_report(Path(journal), Path(out))
            text = files.table + f"\nwrote {files.html} and {files.png}\n"
    except JournalError as error:
        return _problems(error)
    except OSError as error:
        print(f"--out {out}: cannot write the report: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


# --- import-binance -----------------------------------------------------------------------------


def import_binance(files: list[str], data: str, exchange: str) -> int:
    """One line per file written; a bad file is one ``file:line: message`` line and 2 (the
    files before it stay imported, that file leaves nothing)."""
    from pathlib import Path

    from actors.recording.binance_dump import DumpError, import_dump

    for file in files:
        try:
            result = import_dump(Path(file), Path(data), exchange=exchange)
        except DumpError as error:
            print(error, file=sys.stderr)
            return 2
        days = ", ".join(result.days) or "no rows"
        print(
            f"{file}: {result.rows} {result.kind} rows of {result.exchange} {result.symbol}"
            f" ({days}) -> {data}"
        )
    return 0


# --- journal migrate ----------------------------------------------------------------------------


def journal_migrate(source: str, target: str, password_env: str | None) -> int:
    """Copy the SQLite journal ``source`` into the empty PostgreSQL journal ``target``;
    print what was copied and the checksum both sides agree on."""
    from actors.journal.migrate import sqlite_to_postgres
    from supervisor.config import SecretsConfig
    from supervisor.config_loader import resolve_secret

    try:
        password = None
        if password_env is not None:
            password = resolve_secret(password_env, SecretsConfig())
        result = sqlite_to_postgres(source, target, password=password)
    except (ConfigError, JournalError) as error:
        return _problems(error)
    for line in result.lines():
        print(line)
    return 0


# --- botcriptofy --------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG, description="BotCriptoFy: a real-time crypto trading daemon."
    )
    top.add_argument("--version", action="version", version=f"{PROG} {version()}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # "run", "backtest" and "simulator" are listed here for --help; ``main`` hands them their
    # arguments before this parser sees them, so each parses (and refuses) as its own program.
    commands.add_parser("run", help="run the daemon (botcriptofy run --help)", add_help=False)
    check = commands.add_parser("check", help="validate a config: exit 0 (OK) or 2 (problems)")
    check.add_argument("file", metavar="FILE")
    reporting = commands.add_parser("report", help="how each bot did, from its journal")
    source = reporting.add_mutually_exclusive_group(required=True)
    source.add_argument("--journal", metavar="PATH", help="the journal file")
    source.add_argument("--config", metavar="FILE", help="the journal of this config")
    reporting.add_argument(
        "--out", metavar="DIR", help="also write report.html and report.png (charts) into DIR"
    )
    journal = commands.add_parser("journal", help="journal tools (migrate)")
    journal_commands = journal.add_subparsers(dest="journal_command", required=True)
    migrate = journal_commands.add_parser(
        "migrate", help="copy a SQLite journal into an empty PostgreSQL journal, verified"
    )
    migrate.add_argument("--from", dest="source", metavar="FILE", required=True)
    migrate.add_argument(
        "--to", dest="target", metavar="URL", required=True, help="postgresql://... (no password)"
    )
    migrate.add_argument(
        "--password-env", metavar="NAME", help="environment variable holding the password"
    )
    commands.add_parser(
        "backtest",
        help="the config's bots on recorded data (botcriptofy backtest --help)",
        add_help=False,
    )
    importing = commands.add_parser(
        "import-binance",
        help="convert Binance public dumps (trades, aggTrades, bookTicker zips) to a recording",
    )
    importing.add_argument(
        "files", metavar="FILE", nargs="+", help="e.g. BTCUSDT-trades-2026-01-15.zip"
    )
    importing.add_argument("--data", metavar="DIR", required=True, help="the recording directory")
    importing.add_argument(
        "--exchange",
        default="binance",
        help="the exchange name to file them under (default binance)",
    )
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
    if argv[:1] == ["backtest"]:
        from supervisor.backtest.command import backtest_main

        return backtest_main(argv[1:], prog=f"{PROG} backtest")
    if argv[:1] == ["simulator"]:
        from actors.simulator.__main__ import main as simulator_main

        return simulator_main(argv[1:], prog=f"{PROG} simulator")
    args = parser().parse_args(argv)
    if args.command == "check":
        return check_config(args.file)
    if args.command == "import-binance":
        return import_binance(args.files, args.data, args.exchange)
    if args.command == "journal":
        return journal_migrate(args.source, args.target, args.password_env)
    return report(args.journal, args.config, args.out)


if __name__ == "__main__":
    sys.exit(main())
