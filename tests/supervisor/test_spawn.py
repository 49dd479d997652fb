"""What a spawn may start. Plugins are trusted code loaded from config only: a spec from the
control API (``parse_bot_spec``, ``System.spawn_bot`` with a mapping, ``POST /bots``) may name a
built-in strategy or a module the config allows, and any other module is refused before it is
imported (a marker module proves it by the file its import would write). A live bot the config
declares starts in the daemon (``open_supervisor(start=False)`` then ``start()``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio.testing import MockClock

from actors.errors import ConfigError
from actors.simulator import open_binance_venue, open_exchange_server
from supervisor import parse_config
from supervisor.config import (
    AccountConfig,
    BotConfig,
    Config,
    ExchangeConfig,
    HttpConfig,
    JournalConfig,
    RiskConfig,
)
from supervisor.config_loader import allowed_plugins, parse_bot_spec
from supervisor.system import open_supervisor
from tests.bots.plugins import Plugins
from tests.e2e.helpers import local_exchange, log_is, open_daemon, write_config

TOKEN = "spawn-test-token-19c2"
TOKEN_ENV = "SPAWN_TEST_TOKEN"


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plugins:
    return Plugins.on_path(tmp_path, monkeypatch)


def spec(bot_id: str, strategy: str, exchange: str = "binance") -> dict[str, Any]:
    return {"id": bot_id, "exchange": exchange, "symbol": "BTC/USDT", "strategy": strategy}


def refusal(module: str, allowed: str) -> str:
    return (
        f"bot.strategy: module {module!r} is not an allowed plugin; a spawned bot runs a"
        " built-in strategy or one from a module the config file allows (the top-level plugins"
        f" list, or a configured bot's strategy); allowed: {allowed}"
    )


def test_a_spec_may_name_builtins_and_the_modules_the_config_allows(plugins: Plugins) -> None:
    listed, _ = plugins.marker("listed")
    configured, _ = plugins.marker("configured")
    refused, refused_imported = plugins.marker("refused")
    config = parse_config(
        f'plugins = ["{listed}"]\n[[exchanges]]\nname = "binance"\n'
        f'[[bots]]\nid = "c"\nexchange = "binance"\nsymbol = "BTC/USDT"\n'
        f'strategy = "{configured}:Strategy"\n'
    )
    assert allowed_plugins(config) == {listed, configured}
    for strategy in (f"{listed}:Strategy", f"{configured}:Strategy", "sma_cross"):
        assert parse_bot_spec(spec("b", strategy), config=config).strategy == strategy

    with pytest.raises(ConfigError) as info:
        parse_bot_spec({**spec("b", f"{refused}:Strategy"), "symbol": "btc"}, config=config)
    assert info.value.problems == (  # refused with the spec's other problems, in one answer
        "bot.symbol: must be a unified BASE/QUOTE symbol like 'BTC/USDT', got 'btc'",
        refusal(refused, f"{configured}, {listed}"),
    )
    assert not refused_imported.exists()
    # Exact module names: neither a submodule nor the package of an allowed module.
    with pytest.raises(ConfigError, match="is not an allowed plugin"):
        parse_bot_spec(spec("b", f"{listed}.sub:Strategy"), config=config)


async def test_system_spawn_refuses_unallowed_modules_before_importing_them(
    plugins: Plugins, tmp_path: Path, thread_clock: MockClock
) -> None:
    allowed, allowed_imported = plugins.marker("allowed")
    refused, refused_imported = plugins.marker("refused")
    with trio.fail_after(60):
        async with open_exchange_server("binance", ("BTC/USDT",), seed=3, rate_hz=10.0) as server:
            config = Config(
                plugins=(allowed,),
                exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
                journal=JournalConfig(path=str(tmp_path / "journal.sqlite3"), fsync=False),
                http=HttpConfig(enabled=False),
            )
            async with open_supervisor(config) as sup:
                with pytest.raises(ConfigError) as info:
                    await sup.spawn_bot(spec("b1", f"{refused}:Strategy", "sim"))
                assert info.value.problems == (refusal(refused, allowed),)
                assert not refused_imported.exists()
                assert sup.bot_ids == ()

                assert await sup.spawn_bot(spec("b2", f"{allowed}:Strategy", "sim")) == "b2"
                assert allowed_imported.exists()
                # A BotConfig is the embedding program's own code: trusted like the config.
                trusted = BotConfig(
                    id="b3", exchange="sim", symbol="BTC/USDT", strategy=f"{refused}:Strategy"
                )
                assert await sup.spawn_bot(trusted) == "b3"
                assert refused_imported.exists()
                for bot_id in sup.bot_ids:
                    await sup.stop_bot(bot_id)


async def test_post_bots_cannot_make_the_daemon_import_a_module(
    plugins: Plugins, tmp_path: Path
) -> None:
    listed, listed_imported = plugins.marker("listed")
    refused, refused_imported = plugins.marker("refused")
    with trio.fail_after(40):
        async with open_exchange_server("binance", ("BTC/USDT",), seed=5, rate_hz=10.0) as server:
            config = write_config(
                tmp_path / "daemon.toml",
                {
                    "plugins": [listed],
                    "http": {"token_env": TOKEN_ENV},
                    "journal": {"path": tmp_path / "journal.sqlite3", "fsync": False},
                    "exchanges": [local_exchange("binance", server)],
                },
            )
            env = {TOKEN_ENV: TOKEN, "PYTHONPATH": str(plugins.directory)}
            async with open_daemon(
                "--config", str(config), "--http-port", "0", cwd=tmp_path, env=env
            ) as daemon:
                url = await daemon.http_url()
                auth = {"Authorization": f"Bearer {TOKEN}"}
                async with httpx.AsyncClient(base_url=url, timeout=5, headers=auth) as client:
                    refused_answer = await client.post("/bots", json=spec("r", f"{refused}:X"))
                    assert refused_answer.status_code == 400
                    assert refused_answer.json()["problems"] == [refusal(refused, listed)]
                    assert not refused_imported.exists()
                    # The example: the standard library's ``this`` prints at import.
                    zen = await client.post("/bots", json=spec("z", "this:Nope"))
                    assert zen.json()["problems"] == [refusal("this", listed)]

                    spawned = await client.post("/bots", json=spec("ok", f"{listed}:Strategy"))
                    assert spawned.status_code == 201, spawned.text
                    await daemon.wait_log(log_is("bot started", bot="ok"))
                assert await daemon.stop() == 0
            assert listed_imported.exists()  # at start: the config lists it
            assert not refused_imported.exists()
            assert not any("Beautiful is better than ugly" in line for line in daemon.stdout)


async def test_the_daemon_starts_the_live_bots_its_config_declares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon opens the system with ``start=False`` (HTTP binds first) and ``start()``
    spawns the configured bots: a declared live bot is not a live spawn to refuse."""
    with trio.fail_after(30):
        async with (
            open_exchange_server("binance", ("BTC/USDT",), seed=7, rate_hz=10.0) as server,
            open_binance_venue(("BTC/USDT",), market_server=server) as venue,
        ):
            monkeypatch.setenv("SPAWN_TEST_KEY", venue.api_key)
            monkeypatch.setenv("SPAWN_TEST_SECRET", venue.secret)
            live = BotConfig(
                id="declared",
                exchange="sim",
                symbol="BTC/USDT",
                strategy="threshold",
                params={"buy_below": "1"},  # far under the market: never trades
                mode="live",
                account="main",
                order_quote=Decimal("100"),
                risk=RiskConfig(price_confirm_ticks=1),
            )
            config = Config(
                exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
                accounts=(
                    AccountConfig(
                        name="main",
                        api_key_env="SPAWN_TEST_KEY",
                        api_secret_env="SPAWN_TEST_SECRET",
                        rest_url=venue.rest_url,
                        ws_api_url=venue.ws_api_url,
                    ),
                ),
                bots=(live,),
                journal=JournalConfig(path=str(tmp_path / "journal.sqlite3"), fsync=False),
                http=HttpConfig(enabled=False),
            )
            async with open_supervisor(config, start=False) as system:
                await system.start()
                assert system.bot_ids == ("declared",)
                assert system.bot("declared").statistics().state == "running"
                await system.stop_bot("declared")
                with pytest.raises(ConfigError) as info:  # a live bot from elsewhere is not
                    await system.spawn_bot(
                        {**spec("other", "threshold", "sim"), "mode": "live", "account": "main"}
                    )
                assert info.value.problems == (
                    "bot.params: set buy_below, sell_above or both",
                    "bot.mode: live bots are declared in the config file only (their account"
                    " reconciles them before they trade); spawn paper bots here",
                )
