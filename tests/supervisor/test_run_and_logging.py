from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

import run
from supervisor import configure_logging

GOOD = '[[exchanges]]\nname = "binance"\n'


@pytest.fixture
def restore_logging() -> Any:
    try:
        yield
    finally:
        logger.remove()
        logger.add(sys.stderr)


def test_a_bad_config_exits_2_and_starts_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    restore_logging: None,
) -> None:
    monkeypatch.chdir(tmp_path)  # the default journal path is relative: data/journal.sqlite3
    path = tmp_path / "bad.toml"
    path.write_text('[http]\nport = "x"\nbogus = 1\n')
    assert run.main(["--config", str(path)]) == 2
    assert capsys.readouterr().err == "http.port: expected int, got 'x'\nhttp.bogus: unknown key\n"
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("duration", ["0", "-1", "nan"])
def test_a_duration_that_is_not_positive_exits_2(
    duration: str, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    assert run.main(["--duration", duration, "--check-config", "missing.toml"]) == 2
    assert capsys.readouterr().err == "--duration: must be > 0\n"


@pytest.mark.parametrize("port", ["-5", "65536", "99999"])
def test_an_http_port_out_of_range_exits_2(
    port: str, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    assert run.main(["--http-port", port, "--duration", "1"]) == 2
    assert capsys.readouterr().err == (
        "--http-port: must be a TCP port in 0..65535 (0 picks a free one)\n"
    )


def test_json_logging_keeps_kwargs_as_fields(tmp_path: Path, restore_logging: None) -> None:
    stream = io.StringIO()
    log_file = tmp_path / "log.jsonl"
    configure_logging(level="INFO", json=True, file=log_file, stream=stream)
    logger.bind(actor="keeper").info("restart scheduled", delay_s=1.5, attempt=2)
    logger.debug("below the level")
    for text in (stream.getvalue(), log_file.read_text()):
        (line,) = text.splitlines()
        record = json.loads(line)["record"]
        assert record["message"] == "restart scheduled"
        assert record["extra"] == {"actor": "keeper", "delay_s": 1.5, "attempt": 2}


def test_human_logging_shows_extra(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", stream=stream)
    with logger.contextualize(child="binance"):
        logger.warning("child crashed", error="ConnectionLostError: reset")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(' WARNING  child crashed child=binance error="ConnectionLostError: reset"')
