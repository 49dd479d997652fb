"""The installed ``botcriptofy`` command: ``run`` and ``check`` are ``python run.py`` under
other names (same options, output and exit codes), ``simulator`` is ``python -m
actors.simulator``, ``--version`` is the installed distribution's. Real subprocesses."""

from __future__ import annotations

import re
import signal
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import trio

from tests.cli.helpers import BOTCRIPTOFY, ROOT, botcriptofy, run_py

EXAMPLE = ROOT / "docs" / "examples" / "binance.toml"


def test_version_is_the_installed_distributions() -> None:
    result = botcriptofy("--version")
    assert (result.returncode, result.stdout) == (
        0,
        f"botcriptofy {metadata.version('botcriptofy')}\n",
    )


def test_an_unknown_command_is_refused_with_the_list_of_commands() -> None:
    result = botcriptofy("trade")
    assert result.returncode == 2
    assert "invalid choice: 'trade'" in result.stderr


@pytest.mark.parametrize("case", ["ok", "problems"])
def test_check_is_run_py_check_config(case: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[http]\nport = "x"\n\n[[bots]]\nid = "b 1"\n')
    path = EXAMPLE if case == "ok" else bad
    ours, theirs = botcriptofy("check", path), run_py("--check-config", path)
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode,
        theirs.stdout,
        theirs.stderr,
    )
    assert ours.returncode == (0 if case == "ok" else 2)
    if case == "ok":
        assert ours.stdout == "OK\n"
    else:
        assert ours.stdout == ""
        assert "http.port: expected int, got 'x'" in ours.stderr.splitlines()


def test_run_has_the_options_of_run_py() -> None:
    ours, theirs = botcriptofy("run", "--help"), run_py("--help")
    assert ours.returncode == theirs.returncode == 0
    # the same words; the usage lines wrap at other places, the program names differing
    assert ours.stdout.replace("botcriptofy run", "run.py").split() == theirs.stdout.split()
    assert "--check-config FILE" in ours.stdout


@pytest.mark.parametrize(
    "args",
    [["--duration", "0"], ["--bogus"]],
    ids=["duration", "unknown"],
)
def test_run_refuses_bad_arguments_as_run_py_does(args: list[str]) -> None:
    ours, theirs = botcriptofy("run", *args), run_py(*args)
    assert ours.returncode == theirs.returncode == 2
    # the same words (the usage lines wrap at other places, the program names differing)
    assert ours.stderr.replace("botcriptofy run", "run.py").split() == theirs.stderr.split()


def test_simulator_help_is_the_simulators() -> None:
    result = botcriptofy("simulator", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: botcriptofy simulator ")  # not python -m ...
    assert "{binance," in result.stdout
    assert "--ws-port" in result.stdout


async def test_simulator_serves_until_interrupted() -> None:
    with trio.fail_after(30):
        process = await trio.lowlevel.open_process(
            [str(BOTCRIPTOFY), "simulator", "kraken", "--symbols", "BTC/USD"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            text = ""
            while "simulator listening" not in text:
                chunk = await process.stderr.receive_some(4096)
                assert chunk, text
                text += chunk.decode()
            assert re.search(r"'ws_url': 'ws://127\.0\.0\.1:\d+", text), text
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
