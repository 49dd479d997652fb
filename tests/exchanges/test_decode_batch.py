"""``decode_batch``: one call per socket read. Binance skips the ticker frames a newer one of
the same batch supersedes; every codec's batch leaves subscribers reading exactly what
``decode`` frame by frame would have: every trade and control event in order, and per ticker
stream its last published ticker."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import DecodeError
from actors.exchanges import PROTOCOLS, codec_for
from actors.exchanges.binance import BinanceCodec
from actors.exchanges.codec import DecodedBatch
from actors.messages import Event, ReconnectRequested, Stream, Subscribed, Ticker, Trade
from tests.exchanges.helpers import FUZZ

BTC, ETH = "BTC/USDT", "ETH/USDT"
STREAMS = [Stream("ticker", BTC), Stream("ticker", ETH), Stream("trade", BTC)]


def book(symbol: str, u: int, bid: str = "25.35190000", ask: str = "25.36520000") -> str:
    """A bookTicker frame exactly as Binance (and the simulator) sends it: compact JSON."""
    native = symbol.replace("/", "")
    return (
        f'{{"stream":"{native.lower()}@bookTicker","data":{{"u":{u},"s":"{native}",'
        f'"b":"{bid}","B":"31.21000000","a":"{ask}","A":"40.66000000"}}}}'
    )


def trade(trade_id: int) -> str:
    return (
        f'{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1672515782136,"s":"BTCUSDT",'
        f'"t":{trade_id},"p":"25.36","q":"0.5","T":1672515782136,"m":true,"M":true}}}}'
    )


ACK = '{"result":null,"id":1}'  # answers the subscribe of the fixture
SHUTDOWN = '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}'


def new_codec(look_ahead_from: int = 2) -> BinanceCodec:
    """Looking ahead from two frames, so that small batches show what the look-ahead does (a
    codec as configured looks ahead only in larger reads:
    ``test_a_small_read_is_decoded_frame_by_frame``)."""
    codec = codec_for("binance")
    assert isinstance(codec, BinanceCodec)
    codec.look_ahead_from = look_ahead_from
    codec.subscribe_messages(STREAMS)
    return codec


@pytest.fixture
def codec() -> BinanceCodec:
    return new_codec()


def tickers(events: list[Event]) -> list[tuple[str, int | None]]:
    return [(e.symbol, e.sequence) for e in events if isinstance(e, Ticker)]


def test_only_the_newest_ticker_per_stream_is_built_and_every_trade_in_order(codec):
    frames = []
    for step in range(10):  # 10 books per symbol, a trade between every pair
        frames += [book(BTC, 100 + step), trade(500 + step), book(ETH, 200 + step)]
    batch = codec.decode_batch(frames, 7.0)
    assert isinstance(batch, DecodedBatch)
    assert tickers(batch.events) == [(BTC, 109), (ETH, 209)]
    assert [e.sequence for e in batch.events if isinstance(e, Trade)] == list(range(500, 510))
    assert batch.failures == []
    assert batch.conflated == 18  # 9 per symbol, skipped undecoded
    [btc] = [e for e in batch.events if isinstance(e, Ticker) and e.symbol == BTC]
    # The very ticker frame-by-frame decoding would have left last, received_ts included.
    assert btc == new_codec().decode(book(BTC, 109), 7.0)[0]


def test_control_frames_keep_their_place_among_the_tickers(codec):
    frames = [
        book(BTC, 1),
        book(ETH, 1),
        book(BTC, 2),
        ACK,
        book(BTC, 3),
        trade(9),
        book(BTC, 4),
        SHUTDOWN,
        book(ETH, 2),
    ]
    batch = codec.decode_batch(frames, 1.0)
    shape = [
        (type(e).__name__, getattr(e, "symbol", None), getattr(e, "sequence", None))
        for e in batch.events
    ]
    assert shape == [
        ("Ticker", BTC, 2),
        ("Ticker", ETH, 1),
        ("Subscribed", None, None),
        ("Trade", BTC, 9),
        ("Ticker", BTC, 4),
        ("ReconnectRequested", None, None),
        ("Ticker", ETH, 2),
    ]
    assert isinstance(batch.events[2], Subscribed)
    assert batch.events[2].streams == tuple(STREAMS)
    assert isinstance(batch.events[5], ReconnectRequested)
    assert batch.conflated == 2


def test_a_newest_frame_that_fails_falls_back_to_the_one_before(codec):
    frames = [
        book(BTC, 1, bid="1.00000000"),
        book(BTC, 2, bid="2.00000000"),
        book(BTC, 3, bid="0.00000000"),  # a zero price: DecodeError
        book(BTC, 4, bid="9.00000000", ask="8.00000000"),  # crossed: DecodeError
    ]
    batch = codec.decode_batch(frames, 1.0)
    [ticker] = batch.events
    assert isinstance(ticker, Ticker)
    assert (ticker.sequence, ticker.bid) == (2, Decimal("2.00000000"))
    # Both newer frames were decoded and rejected, each counted; the first was skipped.
    assert [frame for frame, _ in batch.failures] == [frames[3], frames[2]]
    assert all(isinstance(exc, DecodeError) for _, exc in batch.failures)
    assert batch.conflated == 1
    # The failed frames did not move the sequence filter: the next batch's u=3 is news.
    [later] = codec.decode_batch([book(BTC, 3)], 1.0).events
    assert isinstance(later, Ticker)
    assert later.sequence == 3


def test_when_every_frame_of_a_stream_fails_nothing_is_published_and_all_are_counted(codec):
    frames = [book(BTC, 1, bid="0"), book(BTC, 2, bid="NaN"), book(ETH, 5)]
    batch = codec.decode_batch(frames, 1.0)
    assert tickers(batch.events) == [(ETH, 5)]
    assert len(batch.failures) == 2
    assert batch.conflated == 0


def test_a_superseded_frame_is_never_validated(codec):
    broken = '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"ETHUSDT","b":"x"'  # truncated
    batch = codec.decode_batch([broken, book(BTC, 2)], 1.0)
    assert tickers(batch.events) == [(BTC, 2)]
    assert (batch.failures, batch.conflated) == ([], 1)
    with pytest.raises(DecodeError):  # on its own, it is rejected
        codec.decode(broken, 1.0)


def test_a_stale_newest_frame_is_not_published_over_a_newer_one(codec):
    """u 10, 12, 11: frame by frame, 11 is dropped as out of order and 12 stays; publishing the
    batch's last frame instead would put an older price over a newer one."""
    batch = codec.decode_batch([book(BTC, 10), book(BTC, 12), book(BTC, 11)], 1.0)
    assert tickers(batch.events)[-1] == (BTC, 12)
    assert (BTC, 11) not in tickers(batch.events)
    assert batch.conflated == 0  # not rising: decoded frame by frame


def test_a_repeated_newest_frame_falls_back_to_the_one_before(codec):
    batch = codec.decode_batch([book(BTC, 10), book(BTC, 11), book(BTC, 11)], 1.0)
    assert tickers(batch.events)[-1] == (BTC, 11)


def test_a_batch_at_or_below_the_highest_is_decided_by_the_filter_frame_by_frame(codec):
    assert len(codec.decode(book(BTC, 10**18), 1.0)) == 1  # a poisoned u
    # Three rising frames below it: frame by frame, the third re-bases. The batch too.
    batch = codec.decode_batch([book(BTC, 101), book(BTC, 102), book(BTC, 103)], 1.0)
    assert tickers(batch.events) == [(BTC, 103)]
    assert codec._book_seq.highest(BTC) == 103
    # A replay of frames already seen publishes nothing.
    assert codec.decode_batch([book(BTC, 102), book(BTC, 103)], 1.0).events == []


def test_frames_of_another_shape_take_the_full_path_in_order(codec):
    spaced = [json.dumps(json.loads(book(BTC, u))) for u in (1, 2, 3)]  # ", " and ": "
    assert spaced[0].startswith('{"stream": ')
    batch = codec.decode_batch(spaced, 1.0)
    assert tickers(batch.events) == [(BTC, 1), (BTC, 2), (BTC, 3)]
    assert batch.conflated == 0
    # Mixed with compact frames of the same stream, the order still holds.
    frames = [book(BTC, 4), json.dumps(json.loads(book(BTC, 5))), book(BTC, 6), book(BTC, 7)]
    mixed = codec.decode_batch(frames, 1.0)
    assert tickers(mixed.events) == [(BTC, 4), (BTC, 5), (BTC, 7)]
    assert mixed.conflated == 1


def test_binary_frames_are_conflated_too(codec):
    batch = codec.decode_batch([book(BTC, 1).encode(), book(BTC, 2).encode()], 1.0)
    assert tickers(batch.events) == [(BTC, 2)]
    assert batch.conflated == 1
    # Text and binary frames of one stream in one batch: frame by frame.
    mixed = codec.decode_batch([book(BTC, 3).encode(), book(BTC, 4)], 1.0)
    assert tickers(mixed.events) == [(BTC, 3), (BTC, 4)]


def test_a_single_frame_batch_is_decode(codec):
    assert codec.decode_batch([book(BTC, 1)], 1.0) == DecodedBatch(
        new_codec().decode(book(BTC, 1), 1.0), [], 0
    )
    [(frame, exc)] = codec.decode_batch(["garbage"], 1.0).failures
    assert frame == "garbage"
    assert isinstance(exc, DecodeError)


def test_a_small_read_is_decoded_frame_by_frame():
    codec = new_codec(BinanceCodec.look_ahead_from)
    small = [book(BTC, u) for u in range(1, BinanceCodec.look_ahead_from)]
    batch = codec.decode_batch(small, 1.0)
    assert tickers(batch.events) == [(BTC, u) for u in range(1, BinanceCodec.look_ahead_from)]
    assert batch.conflated == 0
    start = BinanceCodec.look_ahead_from
    larger = [book(BTC, u) for u in range(start, 2 * start)]
    batch = codec.decode_batch(larger, 1.0)
    assert tickers(batch.events) == [(BTC, 2 * start - 1)]
    assert batch.conflated == start - 1


def test_an_unexpected_error_leaves_no_frame_behind(codec, monkeypatch):
    def boom(frame: object, received_ts: object = None) -> list[Event]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(codec, "decode", boom)
    with pytest.raises(RuntimeError):
        codec.decode_batch([book(BTC, 1), book(BTC, 2)], 1.0)
    monkeypatch.undo()
    batch = codec.decode_batch([book(BTC, 3), book(BTC, 4)], 1.0)
    assert tickers(batch.events) == [(BTC, 4)]
    assert batch.conflated == 1  # not 3: the frames of the failed batch are gone


@pytest.mark.parametrize("protocol", [p for p in PROTOCOLS if p != "binance"])
def test_the_other_codecs_decode_a_batch_frame_by_frame(protocol):
    codec, reference = codec_for(protocol), codec_for(protocol)
    frames: list[str | bytes] = ["not json", "[]", "{}", b"\xff"]
    batch = codec.decode_batch(frames, 1.0)
    expected_failures = []
    for frame in frames:
        try:
            reference.decode(frame, 1.0)
        except DecodeError:
            expected_failures.append(frame)
    assert [frame for frame, _ in batch.failures] == expected_failures
    assert (batch.events, batch.conflated) == ([], 0)


# --- equivalence with frame-by-frame decoding, fuzzed --------------------------------------


def _frames(specs: list[tuple[str, str, int, bool]]) -> list[str | bytes]:
    """``u`` moves by each spec's step per symbol: mostly rising, sometimes back or repeated."""
    update_ids = {BTC: 100, ETH: 100}
    frames: list[str | bytes] = []
    for kind, symbol, step, text in specs:
        update_ids[symbol] += step
        u = update_ids[symbol]
        if kind == "book":
            frame = book(symbol, u)
        elif kind == "bad":
            frame = book(symbol, u, bid="0")
        elif kind == "poisoned":
            frame = book(symbol, 10**18)
        elif kind == "spaced":
            frame = json.dumps(json.loads(book(symbol, u)))
        elif kind == "trade":
            frame = trade(u)
        elif kind == "ack":
            frame = ACK
        else:
            frame = "garbage"
        frames.append(frame if text else frame.encode())
    return frames


frame_specs = st.tuples(
    st.sampled_from(
        ["book"] * 8 + ["bad", "poisoned", "spaced", "trade", "trade", "ack", "garbage"]
    ),
    st.sampled_from([BTC, ETH]),
    st.sampled_from([1, 1, 1, 2, 7, 0, -1, -3]),
    st.sampled_from([True] * 5 + [False]),
)


def _segments(events: list[Event]) -> list[tuple[list[Event], dict[str, list[Ticker]]]]:
    """Per stretch between control events: its trades, and its tickers per symbol."""
    out: list[tuple[list[Event], dict[str, list[Ticker]]]] = [([], {})]
    for event in events:
        if isinstance(event, Trade):
            out[-1][0].append(event)
        elif isinstance(event, Ticker):
            out[-1][1].setdefault(event.symbol, []).append(event)
        else:
            out.append(([event], {}))
    return out


@FUZZ
@given(
    st.lists(frame_specs, min_size=8, max_size=60),
    st.lists(st.integers(1, 60), max_size=5),
    st.sampled_from([2, BinanceCodec.look_ahead_from]),
)
def test_a_batch_leaves_subscribers_what_frame_by_frame_decoding_does(specs, cuts, look_ahead):
    frames = _frames(specs)
    per_frame, batched = new_codec(), new_codec(look_ahead)
    expected: list[Event] = []
    expected_failures: list[str | bytes] = []
    for frame in frames:
        try:
            expected += per_frame.decode(frame, 1.0)
        except DecodeError:
            expected_failures.append(frame)
    got: list[Event] = []
    failures: list[str | bytes] = []
    conflated = 0
    bounds = sorted({0, len(frames), *(c for c in cuts if c < len(frames))})
    for start, end in itertools.pairwise(bounds):
        batch = batched.decode_batch(frames[start:end], 1.0)
        got += batch.events
        failures += [frame for frame, _ in batch.failures]
        conflated += batch.conflated

    want_segments, got_segments = _segments(expected), _segments(got)
    assert len(got_segments) == len(want_segments)
    for (want_other, want_tickers), (got_other, got_tickers) in zip(
        want_segments, got_segments, strict=True
    ):
        assert got_other == want_other  # trades and control events: all, in order
        assert got_tickers.keys() == want_tickers.keys()
        for symbol, published in got_tickers.items():
            assert published[-1] == want_tickers[symbol][-1]  # what subscribers read
            assert all(t in want_tickers[symbol] for t in published)  # never another
    # The sequence filter ends in the same state: later batches are judged alike.
    assert batched._book_seq._highest == per_frame._book_seq._highest
    assert batched._book_seq._behind == per_frame._book_seq._behind
    # Every failure is a frame-by-frame failure; the others were skipped undecoded.
    remaining = list(expected_failures)
    for frame in failures:
        remaining.remove(frame)
    assert len(remaining) <= conflated
