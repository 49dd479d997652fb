"""BotCriptoFy entry point: parse arguments, configure logging, load config, run the daemon.

Exit codes: 0 clean stop, 1 the daemon failed, 2 invalid configuration (one ``path: message``
line per problem on stderr; nothing started). The daemon is imported only when it runs, so
``--check-config`` stays quick.
"""

from __future__ import annotations

import argparse
import functools
import sys

from supervisor import ConfigError, configure_logging, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.partition("\n")[0])
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
        choices=["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"],
        type=str.upper,
        help="log level (default: the config's [logging] level, else INFO)",
    )
    return parser


def _report(error: ConfigError) -> int:
    for line in error.problems:
        print(line, file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.duration is not None and not args.duration > 0:  # NaN too
        print("--duration: must be > 0", file=sys.stderr)
        return 2
    if args.http_port is not None and not 0 <= args.http_port <= 65535:
        print("--http-port: must be a TCP port in 0..65535 (0 picks a free one)", file=sys.stderr)
        return 2
    if args.check_config is not None:
        try:
            checked = load_config(args.check_config)
            report: list[str] = []
            if checked.accounts:  # the live stack is imported only when there is one
                from supervisor.accounts import live_report

                report = live_report(checked)
        except ConfigError as error:
            return _report(error)
        print("OK")
        for line in report:
            print(line)
        return 0

    config = None
    if args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigError as error:
            return _report(error)
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


if __name__ == "__main__":
    sys.exit(main())
