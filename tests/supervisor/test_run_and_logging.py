from __future__ import annotations

import io
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import trio
from loguru import logger

import run
from supervisor import Config, configure_logging

GOOD = '[[exchanges]]\nname = "binance"\n'


@pytest.fixture
def restore_logging() -> Any:
    try:
        yield
    finally:
        logger.remove()
        logger.add(sys.stderr)


@pytest.fixture
def fake_daemon(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    calls: list[tuple[Any, Any]] = []
    module = types.ModuleType("supervisor.daemon")

    def main(config: Config | None, *, duration_s: float | None) -> int:
        calls.append((config, duration_s))
        return 0

    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "supervisor.daemon", module)
    return calls


def test_a_bad_config_exits_2_and_starts_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_daemon: list[Any],
    restore_logging: None,
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[http]\nport = "x"\nbogus = 1\n')
    assert run.main(["--config", str(path)]) == 2
    assert capsys.readouterr().err == "http.port: expected int, got 'x'\nhttp.bogus: unknown key\n"
    assert fake_daemon == []


def test_a_good_config_runs_the_daemon_with_the_duration(
    tmp_path: Path, fake_daemon: list[Any], restore_logging: None
) -> None:
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    assert run.main(["--config", str(path), "--duration", "3", "--log-level", "warning"]) == 0
    ((config, duration_s),) = fake_daemon
    assert config.exchanges[0].name == "binance"
    assert duration_s == 3.0
    assert run.main([]) == 0
    assert fake_daemon[-1] == (None, None)  # no config: the daemon's embedded default


def test_an_async_daemon_main_runs_under_trio(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    seen: list[float] = []
    module = types.ModuleType("supervisor.daemon")

    async def main(config: Config | None, *, duration_s: float | None) -> int:
        await trio.lowlevel.checkpoint()
        seen.append(duration_s or 0.0)
        return 1

    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "supervisor.daemon", module)
    assert run.main(["--duration", "0.5"]) == 1
    assert seen == [0.5]


def test_a_missing_daemon_module_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    monkeypatch.setitem(sys.modules, "supervisor.daemon", None)
    assert run.main([]) == 1
    assert "supervisor.daemon is not available" in capsys.readouterr().err


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
    assert "child crashed" in line
    assert "'child': 'binance'" in line
    assert "'error': 'ConnectionLostError: reset'" in line
