"""``botcriptofy backtest`` (and ``python run.py backtest``): a config's bots on recorded data.

    backtest --config FILE --data DIR [--from T] [--to T] [--param PATH=V1,V2 ...]
             [--out DIR] [--speed X] [--jobs N]

Decisions:

* **Everything is checked before anything runs**: the config file, each ``--param`` and every
  variant of the grid as a whole config (``grid``), and what a backtest needs of it
  (``runner.backtest_problems``: paper bots only, no accounts, data for every bot's market).
  Problems are ``path: message`` lines on stderr and exit 2, as for ``check``.
* **One process per variant** (``ProcessPoolExecutor``, ``--jobs`` at a time, default one per
  core): a replay is CPU-bound Python, so processes, not threads, run variants side by side.
  Workers are spawned, not forked: a fork of a process that has started threads (pyarrow's)
  can inherit a lock held by a thread that does not exist in the child. A single variant
  runs in this process.
* **Where results go**: without ``--param``, ``--out`` holds the journal and the report; with a
  grid, each variant gets its own sub-directory (its number and values: ``003_fast=8_slow=20``)
  and ``--out`` holds the grid summary (``summary.csv``, ``summary.html``), also printed.
* Exit codes: 0 done, 1 a backtest failed (its error on stderr; the other variants still
  run and are summarized), 2 invalid arguments, config or data.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import html
import io
import multiprocessing
import os
import sys
import tomllib
import traceback
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from actors.errors import ConfigError
from supervisor.backtest.grid import ParamAxis, Variant, apply_values, expand, parse_param
from supervisor.backtest.runner import backtest_problems, parse_time, run_backtest
from supervisor.config import Config
from supervisor.config_loader import anchor_paths, load_config, parse_config_mapping

__all__ = ["backtest_main", "backtest_parser"]

LOG_LEVELS = ["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]


def backtest_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Run a config's bots on recorded market data and report."
    )
    parser.add_argument("--config", metavar="FILE", required=True, help="the bots to test")
    parser.add_argument(
        "--data", metavar="DIR", required=True, help="a recording ([record] dir or import-binance)"
    )
    parser.add_argument(
        "--from", dest="start", metavar="T", help="ISO date or datetime, UTC (inclusive)"
    )
    parser.add_argument(
        "--to",
        dest="end",
        metavar="T",
        help="ISO datetime (exclusive), or a date (that whole day included)",
    )
    parser.add_argument(
        "--param",
        metavar="PATH=V1,V2",
        action="append",
        default=[],
        help="try these values (TOML) at this config path, e.g. bots[0].params.fast=5,8,13;"
        " repeat for a grid of every combination",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="where journals and reports go (default: data/backtests/CONFIG)",
    )
    parser.add_argument(
        "--speed",
        metavar="X",
        type=float,
        default=0.0,
        help="replay at X times recorded time (default 0: as fast as possible)",
    )
    parser.add_argument(
        "--jobs", metavar="N", type=int, default=None, help="variants run at once (default: cores)"
    )
    parser.add_argument(
        "--log-level", default="WARNING", choices=LOG_LEVELS, type=str.upper, help="default WARNING"
    )
    return parser


@attrs.frozen
class _Job:
    """One variant, as a worker process gets it (plain data: it is pickled)."""

    config_path: str
    raw: Mapping[str, Any]
    axes: tuple[ParamAxis, ...]
    variant: Variant
    data: str
    out: str
    start: float | None
    end: float | None
    speed: float
    log_level: str


@attrs.frozen
class Outcome:
    variant: Variant
    out: str
    error: str | None = None
    table: str = ""
    events: int = 0
    trades: str = ""
    realized: str = ""
    max_drawdown: str = ""
    sharpe: str = ""


def backtest_main(argv: Sequence[str], *, prog: str = "botcriptofy backtest") -> int:
    args = backtest_parser(prog).parse_args(list(argv))
    problems: list[str] = []
    start = end = None
    try:
        start = None if args.start is None else parse_time(args.start)
    except ValueError as exc:
        problems.append(f"--from: {exc}")
    try:
        end = None if args.end is None else parse_time(args.end, end=True)
    except ValueError as exc:
        problems.append(f"--to: {exc}")
    if start is not None and end is not None and not start < end:
        problems.append("--to: must be after --from")
    if not args.speed >= 0:
        problems.append("--speed: must be >= 0 (0: as fast as possible)")
    if args.jobs is not None and args.jobs < 1:
        problems.append("--jobs: must be >= 1")
    axes: list[ParamAxis] = []
    for text in args.param:
        try:
            axes.append(parse_param(text))
        except ConfigError as error:
            problems += error.problems
    if problems:
        return _fail(problems)
    try:
        load_config(args.config)  # every problem of the file itself, as ``check`` prints them
        raw = tomllib.loads(Path(args.config).read_text(encoding="utf-8"))
        variants = expand(axes)
        apply_values(raw, axes, variants[0])  # a path that leads nowhere does in every variant
    except ConfigError as error:
        return _fail(error.problems)
    data = Path(args.data)
    invalid: list[tuple[Variant, list[str]]] = []  # config problems
    unfit: list[tuple[Variant, list[str]]] = []  # what a backtest needs, of the valid ones
    for variant in variants:
        try:
            config = _variant_config(args.config, raw, axes, variant)
        except ConfigError as error:
            invalid.append((variant, list(error.problems)))
            continue
        unfit.append((variant, backtest_problems(config, data, start=start, end=end)))
    # A config problem is one of "the config" only if every variant has it; what a backtest
    # needs (data for each bot) is the same for every valid variant unless --param moved a bot.
    problems = _variant_problems(invalid, shared=len(invalid) == len(variants))
    problems += _variant_problems(unfit, shared=True)
    if problems:
        return _fail(problems)

    from supervisor.logging import configure_logging

    configure_logging(level=args.log_level, json=False, file=None)
    out = Path(args.out or Path("data") / "backtests" / Path(args.config).stem)
    grid = bool(axes)
    jobs = [
        _Job(
            args.config,
            raw,
            tuple(axes),
            variant,
            str(data),
            str(out / variant.dirname if grid else out),
            start,
            end,
            args.speed,
            args.log_level,
        )
        for variant in variants
    ]
    outcomes = _run_all(jobs, args.jobs or os.cpu_count() or 1)
    failed = [o for o in outcomes if o.error is not None]
    for outcome in failed:
        print(f"variant {outcome.variant.label or '(base)'}: {outcome.error}", file=sys.stderr)
    if not grid:
        (outcome,) = outcomes
        if outcome.error is None:
            sys.stdout.write(outcome.table)
            print(f"report: {Path(outcome.out) / 'report.html'}")
        return 1 if failed else 0
    summary = format_summary(outcomes)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.csv").write_text(summary_csv(outcomes), encoding="utf-8")
    (out / "summary.html").write_text(summary_html(outcomes), encoding="utf-8")
    sys.stdout.write(summary)
    print(f"summary: {out / 'summary.csv'}, {out / 'summary.html'}")
    return 1 if failed else 0


def _fail(problems: Sequence[str]) -> int:
    for line in problems:
        print(line, file=sys.stderr)
    return 2


def _variant_problems(found: Sequence[tuple[Variant, list[str]]], *, shared: bool) -> list[str]:
    """With ``shared``, a problem all these variants have once, as it is; any other with each
    variant's values (``... (variant bots[0].params.fast=8)``)."""
    if not found:
        return []
    everywhere = set.intersection(*(set(lines) for _, lines in found)) if shared else set()
    out = list(dict.fromkeys(line for _, lines in found for line in lines if line in everywhere))
    for variant, lines in found:
        out += [f"{line} (variant {variant.label})" for line in lines if line not in everywhere]
    return out


def _variant_config(
    path: str, raw: Mapping[str, Any], axes: Sequence[ParamAxis], variant: Variant
) -> Config:
    config = parse_config_mapping(apply_values(raw, axes, variant), source=path)
    return anchor_paths(config, Path(os.path.abspath(path)).parent)


def _run_all(jobs: Sequence[_Job], workers: int) -> list[Outcome]:
    if len(jobs) == 1:
        return [run_job(jobs[0])]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=context
    ) as pool:
        return list(pool.map(run_job, jobs))


def run_job(job: _Job) -> Outcome:
    """One variant, start to report (in a worker process for a grid)."""
    from supervisor.logging import configure_logging
    from supervisor.report import write_report

    configure_logging(level=job.log_level, json=False, file=None)
    try:
        config = _variant_config(job.config_path, job.raw, job.axes, job.variant)
        result = run_backtest(
            config, Path(job.data), Path(job.out), start=job.start, end=job.end, speed=job.speed
        )
        title = f"Backtest: {Path(job.config_path).name} {job.variant.label}".strip()
        files = write_report(result.journal, result.out, prices=result.prices, title=title)
    except Exception as exc:  # reported with its variant; the other variants go on
        return Outcome(job.variant, job.out, error=describe(exc))
    figures = [group.total or group.bots[0][1] for group in files.report.groups if group.bots]
    return Outcome(
        job.variant,
        job.out,
        table=files.table,
        events=result.statistics.events,
        trades=" / ".join(str(f.trades) for f in figures),
        realized=" / ".join(_money(f.realized, f.quote) for f in figures),
        max_drawdown=" / ".join(_money(f.max_drawdown, f.quote) for f in figures),
        sharpe=" / ".join("n/a" if f.sharpe is None else f"{f.sharpe:.2f}" for f in figures),
    )


def describe(exc: BaseException) -> str:
    """The errors inside Trio's exception groups, one ``Type: message`` each: the nursery's
    wrapper says nothing about what failed."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    return "".join(traceback.format_exception_only(exc)).strip()


def _money(value: Decimal, quote: str | None) -> str:
    text = f"{value.quantize(Decimal('0.01')):f}"
    return f"{text} {quote}" if quote else text


# --- the grid summary ---------------------------------------------------------------------------

SUMMARY_HEADER = ("#", "params", "trades", "PnL", "max drawdown", "Sharpe", "dir")


def _rows(outcomes: Sequence[Outcome]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for o in outcomes:
        if o.error is not None:
            cells = ("failed", "", "", "")
        else:
            cells = (o.trades, o.realized, o.max_drawdown, o.sharpe)
        rows.append((str(o.variant.number), o.variant.label, *cells, Path(o.out).name))
    return rows


def format_summary(outcomes: Sequence[Outcome]) -> str:
    rows = [SUMMARY_HEADER, *_rows(outcomes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_HEADER))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def summary_csv(outcomes: Sequence[Outcome]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_HEADER)
    writer.writerows(_rows(outcomes))
    return buffer.getvalue()


def summary_html(outcomes: Sequence[Outcome]) -> str:
    def row(cells: Sequence[str], tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"

    def variant(cells: Sequence[str]) -> str:
        name = html.escape(cells[-1])
        link = f'<td><a href="{name}/report.html">{name}</a></td>'
        return row(cells[:-1], "td").removesuffix("</tr>") + link + "</tr>"

    body = "\n".join(variant(cells) for cells in _rows(outcomes))
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Backtest grid</title>'
        "<style>body{font-family:sans-serif}td,th{padding:2px 10px;text-align:left}</style>"
        f"</head><body><h1>Backtest grid</h1><table>{row(SUMMARY_HEADER, 'th')}\n{body}"
        "</table></body></html>\n"
    )
