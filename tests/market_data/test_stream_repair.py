"""A stream that stops while its connection lives is repaired on its own, and no single frame
can mute a stream: the plane against the local Binance over real sockets, in virtual time."""

from __future__ import annotations

import orjson
import pytest
import trio
import trio.testing

from actors.messages import FeedState, Stream, Ticker
from actors.simulator import ExchangeServer, open_exchange_server
from tests.market_data.helpers import ENGINES, config_for, next_of, next_state, open_plane

BTC, ETH = "BTC/USDT", "ETH/USDT"


def methods(server: ExchangeServer) -> list[tuple[str, list[str]]]:
    out = []
    for request in server.requests():
        message = request.message
        if isinstance(message, dict) and message.get("method") in ("SUBSCRIBE", "UNSUBSCRIBE"):
            out.append((message["method"], message["params"]))
    return out


@pytest.mark.parametrize("transport", ENGINES)
async def test_a_muted_stream_is_resubscribed_alone_and_flows_again(
    autojump_clock: trio.testing.MockClock, transport: str
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC, ETH), rate_hz=10.0) as server,
            open_plane([config_for(server, stale_after_s=2.0)], transport=transport) as md,
            md.subscribe("binance", "ticker", BTC) as btc,
            md.subscribe("binance", "ticker", ETH) as eth,
        ):
            await md.wait_streaming("binance")
            await next_of(btc, Ticker)
            await next_of(eth, Ticker)
            before = len(methods(server))
            server.mute_stream(Stream("ticker", BTC))
            muted_at = trio.current_time()
            stale = await next_state(btc, "stale")
            assert stale.reason == "no data for 2.0 s"
            await next_state(btc, "live")
            repaired = await next_of(btc, Ticker)
            assert trio.current_time() - muted_at < 2.0 + 1.0
            assert repaired.symbol == BTC
            assert methods(server)[before:] == [
                ("UNSUBSCRIBE", ["btcusdt@bookTicker"]),
                ("SUBSCRIBE", ["btcusdt@bookTicker"]),
            ]
            stats = md.statistics().exchanges["binance"]
            assert (stats.stream_repairs, stats.stale_replacements, stats.connects) == (1, 0, 1)
            # the other stream never noticed
            while (item := eth.receive_nowait()) is not None:
                assert not isinstance(item, FeedState), item
                if eth.statistics().pending == 0:
                    break


async def test_a_stream_resubscribing_cannot_bring_back_replaces_its_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC, ETH), rate_hz=10.0) as server,
            open_plane([config_for(server, stale_after_s=2.0)]) as md,
            md.subscribe("binance", "ticker", BTC) as btc,
            md.subscribe("binance", "ticker", ETH) as eth,
        ):
            await md.wait_streaming("binance")
            await next_of(btc, Ticker)
            server.mute_stream(Stream("ticker", BTC), for_good=True)
            muted_at = trio.current_time()
            down = await next_state(btc, "down")
            # quiet for 2 s, resubscribed twice, each given 2 s: replaced at about 6 s
            assert 6.0 <= trio.current_time() - muted_at < 7.0
            assert "still quiet after 2 resubscribes" in down.reason
            await next_of(btc, Ticker)  # the new connection carries it again
            stats = md.statistics().exchanges["binance"]
            assert (stats.stream_repairs, stats.stale_replacements, stats.connects) == (2, 1, 2)
            await next_of(eth, Ticker)


async def test_one_frame_with_an_absurd_update_id_does_not_mute_the_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server, stale_after_s=5.0)]) as md,
            md.subscribe("binance", "ticker", BTC) as btc,
        ):
            await md.wait_streaming("binance")
            last = await next_of(btc, Ticker)
            poisoned = {
                "u": 10**18,
                "s": "BTCUSDT",
                "b": str(last.bid),
                "B": "1",
                "a": str(last.ask),
                "A": "1",
            }
            server.send_garbage(
                orjson.dumps({"stream": "btcusdt@bookTicker", "data": poisoned}).decode()
            )
            injected_at = trio.current_time()
            sequences = []
            while len(sequences) < 10:
                item = await btc.receive()
                assert not isinstance(item, FeedState), item  # never stale, never repaired
                if isinstance(item, Ticker):
                    sequences.append(item.sequence)
            assert trio.current_time() - injected_at < 2.0
            assert sequences[-1] is not None
            assert sequences[-1] < 10**18
            stats = md.statistics().exchanges["binance"]
            assert (stats.stream_repairs, stats.connects) == (0, 1)
