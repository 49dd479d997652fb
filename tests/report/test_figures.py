"""The report's figures against an example computed by hand, from a real journal (SQLite
written by the journal's own store) and a price series, as a backtest hands them over."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from actors.journal.store import JournalStore
from supervisor.report import build_report
from supervisor.report.figures import Curve, Figures, bot_curve, drawdown, exposure, ratios
from tests.cli.journals import T0, write_bot

# sma: 1000 USDT; buys 1 BTC at 100 (fee 1) at T0+60, sells it at 110 (fee 1) at T0+480.
# dip: 500 USDT; buys 2 ETH at 50 (fee 0) at T0+300 and still holds them at the end.
BTC = [(T0 + t, Decimal(p)) for t, p in [(0, 100), (120, 104), (240, 98), (360, 110), (600, 110)]]
ETH = [(T0 + t, Decimal(p)) for t, p in [(0, 50), (300, 50), (450, 45), (600, 47)]]
PRICES = {("binance", "BTC/USDT"): BTC, ("binance", "ETH/USDT"): ETH}


def journal(path: Path) -> Path:
    store = JournalStore(path, fsync=False)
    store.open()
    try:
        write_bot(
            store,
            "sma",
            "BTC/USDT",
            [("buy", "1", "100", "1"), ("sell", "1", "110", "1")],
            quote="1000",
            times=[T0 + 60, T0 + 480],
        )
        write_bot(store, "dip", "ETH/USDT", [("buy", "2", "50", "0")], "500", [T0 + 300])
    finally:
        store.close()
    return path


def figures(
    path: Path, prices: Mapping[tuple[str, str], Sequence[tuple[float, Decimal]]] | None = PRICES
) -> dict[str, Figures]:
    report = build_report(path, prices=prices)
    found = {f.label: f for g in report.groups for _, f, _ in g.bots}
    found |= {g.total.label: g.total for g in report.groups if g.total is not None}
    return found


def test_marked_to_market_figures_match_the_hand_computation(tmp_path: Path) -> None:
    f = figures(journal(tmp_path / "j.sqlite3"))
    sma, dip, total = f["sma"], f["dip"], f["total"]

    # sma's equity = quote + BTC x the latest price at or before t:
    #   [0, 60) 1000 | 60: 1000 - 100 - 1 + 1 x 100 = 999 | 120: 899 + 104 = 1003
    #   240: 899 + 98 = 997 | 360: 899 + 110 = 1009 | 480: sold, 899 + 110 - 1 = 1008 | 600: 1008
    # peak 1003 at 120, then 997: the deepest fall, 6 USDT = 6 / 1003 = 0.5982 %
    assert (sma.trades, sma.wins, sma.realized, sma.fees) == (1, 1, Decimal(8), Decimal(2))
    assert (sma.start_equity, sma.end_equity) == (Decimal(1000), Decimal(1008))
    assert sma.max_drawdown == Decimal(6)
    assert sma.max_drawdown_pct == Decimal(6) / Decimal(1003)
    # a position from 60 to 480 over a span of 0..600: 420 / 600
    assert sma.exposure == pytest.approx(0.7)
    # span 600 s: 1 min gives 10 returns, 15 s the first with >= 30: 40 returns, 5 not zero:
    #   t=60 999/1000-1 = -0.001; t=120 1003/999-1 = +0.004004; t=240 997/1003-1 = -0.005982
    #   t=360 1009/997-1 = +0.012036; t=480 1008/1009-1 = -0.000991
    # sum 0.00806698, mean = sum / 40 = 0.000201674; sum of squares 0.000198667
    # sample variance = (0.000198667 - 40 x 0.000201674^2) / 39 = 5.05231e-6, sd 0.00224774
    # x sqrt(365 x 86400 / 15) = 1449.9655: Sharpe = 0.000201674 / 0.00224774 x 1449.97 = 130.10
    # downside: (0.001^2 + 0.005982^2 + 0.000991^2) / 40 = 9.44180e-7, sqrt 0.000971689:
    # Sortino = 0.000201674 / 0.000971689 x 1449.97 = 300.94
    assert sma.interval_s == 15
    assert round(sma.sharpe or 0, 2) == 130.10
    assert round(sma.sortino or 0, 2) == 300.94

    # dip: 500 until 300; bought 2 at 50 (500 - 100 + 2 x 50 = 500); 450: 400 + 90 = 490;
    # 600: 400 + 94 = 494. Deepest fall 10 from 500 = 2 %; held from 300 to the end: 300 / 600
    assert (dip.trades, dip.wins, dip.realized) == (0, 0, Decimal(0))
    assert (dip.max_drawdown, dip.max_drawdown_pct) == (Decimal(10), Decimal("0.02"))
    assert dip.exposure == pytest.approx(0.5)

    # total = sma + dip at every time either moves:
    #   0: 1500 | 60: 1499 | 120: 1503 | 240: 1497 | 300: 1497 | 360: 1509 | 450: 1499
    #   480: 1498 | 600: 1502 -> peak 1509, deepest 1498: 11 USDT = 11 / 1509 = 0.7290 %
    #   (the earlier fall, 1503 -> 1497, is 6 / 1503 = 0.3992 %: smaller)
    # a position in [60, 480) or [300, 600]: 60..600 = 540 / 600
    assert (total.trades, total.wins, total.realized, total.fees) == (1, 1, 8, 2)
    assert total.max_drawdown == Decimal(11)
    assert total.max_drawdown_pct == Decimal(11) / Decimal(1509)
    assert total.exposure == pytest.approx(0.9)
    assert total.end_equity == Decimal(1502)


def test_without_prices_equity_is_known_at_fills_only(tmp_path: Path) -> None:
    sma = figures(journal(tmp_path / "j.sqlite3"), prices=None)["sma"]
    # 999 after the buy (marked at the fill's 100), 1008 after the sale; the peak starts at
    # the initial 1000: deepest fall 1 = 0.1 %. The span is 60..480, all of it in a position.
    assert not sma.marked
    assert (sma.max_drawdown, sma.max_drawdown_pct) == (Decimal(1), Decimal("0.001"))
    assert sma.exposure == 1.0
    # span 420 s: 15 s gives 28 returns, 5 s 84; one is not zero, r = 1008/999 - 1 at 480.
    # mean r/84, sd sqrt((r^2 - 84 (r/84)^2) / 83) = r / sqrt(84), so
    # Sharpe = sqrt(84) / 84 x sqrt(365 x 86400 / 5) = sqrt(6307200 / 84) = 274.0177;
    # no losing period: Sortino is n/a, not infinity
    assert sma.interval_s == 5
    assert sma.sharpe == pytest.approx(math.sqrt(6_307_200 / 84))
    assert sma.sortino is None


def curve(*points: tuple[float, int], initial: int = 100) -> Curve:
    return Curve(Decimal(initial), tuple((t, Decimal(e)) for t, e in points), (), marked=True)


def test_too_few_periods_flat_equity_and_a_zero_span_are_not_computable() -> None:
    assert ratios(curve((0, 100), (29, 110))) == (None, None, None)  # 29 one-second returns
    assert ratios(curve((0, 100), (30, 110)))[0] == 1  # 30: enough
    assert ratios(curve((0, 100), (3600, 100))) == (60, None, None)  # flat: no deviation
    assert exposure(curve((5, 100))) is None
    assert exposure(curve()) is None
    assert drawdown(curve(initial=0)) == (Decimal(0), None)
    # equity at zero: no return can be computed from it
    assert ratios(curve((0, 0), (60, 10), initial=0)) == (1, None, None)


def test_a_bot_without_fills_or_prices_is_flat() -> None:
    flat = bot_curve(Decimal(50), ())
    assert (flat.points, flat.held, flat.at(0.0)) == ((), (), Decimal(50))
    assert drawdown(flat) == (Decimal(0), Decimal(0))


def test_a_symbol_priced_on_two_exchanges_needs_the_bot_s_exchange(tmp_path: Path) -> None:
    path = journal(tmp_path / "j.sqlite3")
    prices = {**PRICES, ("kraken", "BTC/USDT"): BTC[:2]}
    with pytest.raises(ValueError, match="'sma': BTC/USDT is priced on binance, kraken"):
        build_report(path, prices=prices)
    report = build_report(path, prices=prices, exchanges={"sma": "kraken"})
    assert report.prices["sma"] == BTC[:2]


def test_the_docstring_the_page_footer_and_the_user_guide_state_the_same_rules() -> None:
    import supervisor.report.figures as module

    guide = (Path(__file__).resolve().parents[2] / "docs/user-guide.md").read_text("utf-8")
    ladder = "1 s, 5 s, 15 s, 1 min, 5 min, 15 min, 1 h, 4 h, 1"
    assert module.INTERVALS_S == (1, 5, 15, 60, 300, 900, 3600, 14_400, 86_400)  # the ladder
    assert module.YEAR_S == 365 * 86_400
    footer = " ".join(how for _, how in module.METHODS)
    for rule in (ladder, f"at least {module.MIN_RETURNS} returns", "365 days", "running peak"):
        for name, text in (("docstring", module.__doc__ or ""), ("footer", footer)):
            assert rule in " ".join(text.split()), (name, rule)
        assert rule in guide, ("user guide", rule)
