"""The human log format (``time level message key=value ...``) written by the real loguru sink,
and read back by the e2e tests' parser; secret-named fields are hidden in every sink."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from loguru import logger

from supervisor.logging import (
    configure_logging,
    format_fields,
    format_value,
    human_format,
    is_secret,
)
from tests.e2e.helpers import _human_record

TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    try:
        yield
    finally:
        logger.remove()
        logger.configure(patcher=lambda record: None)  # loguru cannot unset a patcher
        logger.add(sys.stderr)


def human_sink() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="DEBUG", stream=stream)
    return stream


def test_a_line_is_time_level_message_and_fields() -> None:
    stream = human_sink()
    logger.bind(actor="bot", bot="eth-rsi").info(
        "order filled", side="sell", size=Decimal("0.09353"), tag="signal:rsi_overbought"
    )
    (line,) = stream.getvalue().splitlines()
    assert re.fullmatch(
        TIME + r" INFO     order filled actor=bot bot=eth-rsi side=sell size=0\.09353"
        r" tag=signal:rsi_overbought",
        line,
    )


def test_values_are_quoted_only_with_whitespace_and_never_break_the_line() -> None:
    assert format_value("streaming") == "streaming"
    assert format_value("http://127.0.0.1:8765/x?a=b") == "http://127.0.0.1:8765/x?a=b"
    assert format_value("ConnectionLostError: reset") == '"ConnectionLostError: reset"'
    assert format_value("two\nlines") == '"two\\nlines"'
    assert format_value("") == '""'
    assert format_value('"quoted"') == '"\\"quoted\\""'
    assert format_value(Decimal("-0.6273012226")) == "-0.6273012226"
    assert format_value(1.5) == "1.5"
    assert format_value(None) == "null"
    assert format_value(True) == "true"
    assert format_value(["binance", "kraken"]) == '["binance","kraken"]'
    assert format_value({"rate_limit": 2}) == '{"rate_limit":2}'
    assert format_value(["a b"]) == '"[\\"a b\\"]"'


TRICKY = {
    "tag": "<red>{x}</red>",
    "braces": "{}",
    "escaped": "x\\<b>c",
    "backslashes": "\\\\<red>",
    "closing": "</>",
    "lone": "<",
    "nested": "<a\\<b>",
    "double": "<<b>",
    "trailing": "\\",
    "spaced": "<fg red>z</fg red>",
}


@pytest.mark.parametrize("colorize", [False, True], ids=["plain", "colored"])
def test_markup_braces_and_backslashes_in_values_are_printed_as_they_are(colorize: bool) -> None:
    """Values go into loguru's format template, where braces are fields and ``<...>`` color
    tags: each is escaped, so a value is printed as it is (and cannot break the sink)."""
    stream = io.StringIO()
    logger.remove()
    logger.add(stream, format=human_format, colorize=colorize)
    logger.info("odd", **TRICKY)
    line = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue()).rstrip("\n")
    assert line.endswith(" odd " + format_fields(TRICKY))
    assert format_fields(TRICKY).startswith("tag=<red>{x}</red> braces={} escaped=x\\<b>c ")


def test_an_actors_lines_leave_out_the_supervision_context() -> None:
    stream = human_sink()
    with logger.contextualize(supervisor="bots", child="bot:b1"):
        logger.bind(actor="bot", bot="b1").info("bot started")
        logger.warning("child crashed", error="boom")  # the supervisor's own line keeps it
    first, second = stream.getvalue().splitlines()
    assert first.endswith(" bot started actor=bot bot=b1")
    assert second.endswith(" child crashed supervisor=bots child=bot:b1 error=boom")


def test_a_traceback_follows_its_line() -> None:
    stream = human_sink()
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        logger.exception("daemon failed", error="ZeroDivisionError")
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(" ERROR    daemon failed error=ZeroDivisionError")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ZeroDivisionError: division by zero"


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("api_secret", True),
        ("api_key", True),
        ("apiKey", True),
        ("token", True),
        ("auth_token", True),
        ("password", True),
        ("authorization", True),
        ("signature", True),
        ("token_env", False),  # the name of the variable, not its value
        ("api_key_env", False),
        ("key", False),  # an alert's key
        ("tokens_left", False),
        ("symbol", False),
    ],
)
def test_secret_names(key: str, secret: bool) -> None:
    assert is_secret(key) is secret


def test_secrets_are_hidden_in_every_sink(tmp_path: Path) -> None:
    stream = io.StringIO()
    file = f"{tmp_path}/log.jsonl"
    configure_logging(level="INFO", stream=stream, file=file)
    logger.bind(actor="account", account="testnet").info(
        "signed", api_key="AKIA-visible-if-broken", api_key_env="BINANCE_KEY"
    )
    json_stream = io.StringIO()
    configure_logging(level="INFO", json=True, stream=json_stream)
    logger.info("signed", secret="s3cr3t")
    assert "AKIA" not in stream.getvalue()
    assert stream.getvalue().rstrip().endswith("api_key=*** api_key_env=BINANCE_KEY")
    with open(file, encoding="utf-8") as lines:
        (record,) = [json.loads(line)["record"] for line in lines]
    assert record["extra"]["api_key"] == "***"
    assert json.loads(json_stream.getvalue())["record"]["extra"] == {"secret": "***"}


def test_json_lines_stay_loguru_records() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", json=True, stream=stream)
    logger.bind(actor="daemon").info("http listening", url="http://127.0.0.1:8765")
    document = json.loads(stream.getvalue())
    assert set(document) == {"text", "record"}
    assert document["record"]["message"] == "http listening"
    assert document["record"]["extra"] == {"actor": "daemon", "url": "http://127.0.0.1:8765"}


def test_the_e2e_parser_reads_human_lines_back() -> None:
    stream = human_sink()
    fields = {
        "exchange": "kraken",
        "to_state": "streaming",
        "error": 'ConnectionLostError: "reset" by peer',
        "orders": 3,
        "bots": ["btc-sma", "eth-rsi"],
        "paused": False,
        "reason": None,
        "url": "ws://127.0.0.1:9002/v2?a=b",
    }
    logger.bind(actor="exchange_pool").info("exchange state", **fields)
    logger.warning("http port already in use: set [http] port or pass --http-port", port=8765)
    first, second = stream.getvalue().splitlines()
    assert _human_record(first) == {
        "level": {"name": "INFO", "no": 20},
        "message": "exchange state",
        "extra": {"actor": "exchange_pool", **fields},
    }
    record = _human_record(second)
    assert record is not None
    assert record["message"] == "http port already in use: set [http] port or pass --http-port"
    assert record["extra"] == {"port": 8765}
    assert _human_record("Traceback (most recent call last):") is None
    assert _human_record("bots[0].risk.stop_loss_pct: must be > 0 and < 100, got -1.0") is None
