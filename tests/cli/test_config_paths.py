"""A config's relative paths are relative to the config file, not to the directory the daemon
is started from: ``[journal] path``, ``[logging] file`` and ``[secrets] file``. Real
subprocesses started from another directory."""

from __future__ import annotations

from pathlib import Path

from supervisor import load_config
from tests.cli.helpers import botcriptofy, run_py

CONFIG = """\
[[exchanges]]
name = "binance"
url = "ws://127.0.0.1:9/stream"        # nothing listens: the bot just waits
rest_url = "http://127.0.0.1:9"

[[bots]]
id = "b1"
exchange = "binance"
symbol = "BTC/USDT"

[http]
enabled = false

[journal]
path = "state/journal.sqlite3"
fsync = false

[logging]
file = "logs/daemon.jsonl"

[secrets]
file = "secrets.toml"

[[alerts.webhooks]]
url_env = "HOOK_URL"                   # in secrets.toml: the daemon stops (exit 2) unless found
"""


def layout(tmp_path: Path) -> tuple[Path, Path]:
    conf, elsewhere = tmp_path / "conf", tmp_path / "elsewhere"
    conf.mkdir()
    elsewhere.mkdir()
    (conf / "bot.toml").write_text(CONFIG)
    (conf / "secrets.toml").write_text('HOOK_URL = "http://127.0.0.1:9/hook"\n')
    return conf, elsewhere


def test_paths_resolve_against_the_config_files_directory(tmp_path: Path) -> None:
    conf, _ = layout(tmp_path)
    config = load_config(conf / "bot.toml")
    assert config.journal.path == str(conf / "state" / "journal.sqlite3")
    assert config.logging.file == str(conf / "logs" / "daemon.jsonl")
    assert config.secrets.file == str(conf / "secrets.toml")
    text = CONFIG.replace('"state/journal.sqlite3"', '":memory:"')
    (conf / "other.toml").write_text(text.replace("logs/", f"{tmp_path}/logs/"))
    config = load_config(conf / "other.toml")
    assert config.journal.path == ":memory:"  # not a file
    assert config.logging.file == f"{tmp_path}/logs/daemon.jsonl"  # absolute: as written


def test_a_daemon_started_elsewhere_uses_the_files_beside_its_config(tmp_path: Path) -> None:
    conf, elsewhere = layout(tmp_path)
    result = run_py("--config", "../conf/bot.toml", "--duration", "1", cwd=elsewhere, timeout=90)
    assert result.returncode == 0, result.stderr
    assert (conf / "state" / "journal.sqlite3").exists()
    assert (conf / "logs" / "daemon.jsonl").stat().st_size > 0
    assert list(elsewhere.iterdir()) == []
    report = botcriptofy("report", "--config", "../conf/bot.toml", cwd=elsewhere)
    assert report.returncode == 0, report.stderr
    assert f"journal {conf}/state/journal.sqlite3  schema 4  bots 1  fills 0" in report.stdout
