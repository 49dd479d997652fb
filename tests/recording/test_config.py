"""``[record]`` in a config file: defaults, the streams it names, errors with their paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.errors import ConfigError
from actors.recording.config import RecordConfig, RecordStream, record_streams
from supervisor.config_loader import load_config, parse_config

EXCHANGE = '[[exchanges]]\nname = "binance"\nprotocol = "binance"\n'
BOT = '[[bots]]\nid = "b1"\nexchange = "binance"\nsymbol = "ETH/USDT"\n'


def test_no_record_section_records_nothing() -> None:
    assert parse_config(EXCHANGE).record is None


def test_streams_are_the_listed_ones_then_the_bots_each_once() -> None:
    config = parse_config(
        EXCHANGE
        + BOT
        + '[record]\nstreams = [{exchange = "binance", kind = "trade", symbol = "ETH/USDT"},'
        ' {exchange = "binance", symbol = "BTC/USDT"}]\n'
    )
    assert config.record is not None
    assert config.record.streams[1] == RecordStream("binance", "BTC/USDT", "ticker")
    markets = [(b.exchange, b.symbol) for b in config.bots]
    assert record_streams(config.record, markets) == [
        ("binance", "trade", "ETH/USDT"),
        ("binance", "ticker", "BTC/USDT"),
        ("binance", "ticker", "ETH/USDT"),
    ]
    only_listed = RecordConfig(streams=config.record.streams, bot_streams=False)
    assert len(record_streams(only_listed, markets)) == 2


def test_errors_name_the_field_path() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(
            EXCHANGE + "[record]\nflush_s = 0\nrotate_s = -1\nraw_frames = 1\n"
            'streams = [{exchange = "kraken", kind = "book", symbol = "btcusdt"}]\n'
        )
    text = "\n".join(error.value.problems)
    for path in (
        "record.flush_s:",
        "record.rotate_s:",
        "record.raw_frames:",
        "record.streams[0].kind:",
        "record.streams[0].symbol:",
        "record.streams[0].exchange: unknown exchange 'kraken'",
    ):
        assert path in text, text


def test_a_relative_dir_is_the_config_files(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    path.write_text(EXCHANGE + '[record]\ndir = "rec"\n')
    config = load_config(path)
    assert config.record is not None
    assert config.record.dir == str(tmp_path / "rec")


def test_the_recorder_starts_after_the_feeds_and_before_the_bots(tmp_path: Path) -> None:
    from supervisor.build import build_tree

    config = parse_config(
        EXCHANGE + BOT + f'[journal]\npath = "{tmp_path / "j.sqlite3"}"\n[record]\n'
    )
    tree = build_tree(config)
    names = [child.name for child in tree.root.children]
    assert names.index("feeds") < names.index("recorder") < names.index("bots")
    recorder = tree.root.child("recorder")
    assert getattr(recorder, "restart_limit", None) is not None  # contained: never stops trading
    assert tree.recorder is not None
    assert list(tree.recorder.streams) == [
        ("binance", "ticker", "ETH/USDT"),
        ("binance", "trade", "ETH/USDT"),
    ]
    assert build_tree(parse_config(EXCHANGE)).recorder is None
