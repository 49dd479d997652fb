"""Bots take turns (``WakeQueue``): a busy feed wakes every bot in every scheduler round, and
without turns each round would run all of them, so whatever needs a few hops (a spawn, a journal
reply, the socket reader) would wait for every bot's tick at each hop.

Counted in scheduler rounds and task steps (a Trio instrument), not timed: the tests say how
much bot work runs while something else makes progress, whatever the machine's speed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import ClassVar

import attrs
import pytest
import trio
import trio.testing

from actors.bots import Bot, Signal, StrategyContext
from actors.journal import Journal
from actors.journal.store import BotRecord, OrderIntent
from actors.market_data.mailbox import (
    WAKE_QUEUE_WIDTH,
    Mailbox,
    TickerSlot,
    WakeQueue,
    Waker,
    shared_wake_queue,
)
from actors.messages import Stream, Ticker
from supervisor.config import JournalConfig
from tests.bots.helpers import (
    SYMBOL,
    FakeFeed,
    WallClock,
    bot_config,
    running_journal,
    send_events,
    tick,
)

TICKERS = Stream("ticker", SYMBOL)


class Rounds(trio.abc.Instrument):
    """Counts scheduler rounds, and the steps of bot tasks in each."""

    def __init__(self) -> None:
        self.round = 0
        self.bot_steps: dict[int, int] = defaultdict(int)

    def after_io_wait(self, timeout: float) -> None:
        self.round += 1

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if getattr(task.coro, "cr_code", None) is Bot.run.__code__:
            self.bot_steps[self.round] += 1

    def steps_between(self, first: int, last: int) -> list[int]:
        return [self.bot_steps.get(r, 0) for r in range(first, last + 1)]


@asynccontextmanager
async def counting_rounds() -> AsyncIterator[Rounds]:
    rounds = Rounds()
    trio.lowlevel.add_instrument(rounds)
    try:
        yield rounds
    finally:
        trio.lowlevel.remove_instrument(rounds)


class Recorder:
    """Decides nothing; remembers when (in rounds) it was handed which ticker."""

    rounds: ClassVar[Rounds | None] = None
    decisions: ClassVar[dict[str, list[tuple[int, int]]]] = defaultdict(list)

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        assert Recorder.rounds is not None
        assert ticker.sequence is not None
        Recorder.decisions[ctx.bot_id].append((Recorder.rounds.round, ticker.sequence))
        return None


class InstantJournal:
    """Answers a bot's load after one checkpoint, so the hops of a spawn are countable (the
    real journal's worker thread takes wall time, during which rounds go on)."""

    async def load_bot(
        self, bot_id: str, *, initial_quote: Decimal, now_ts: float, owner_epoch: int = 0
    ) -> BotRecord:
        await trio.lowlevel.checkpoint()
        return BotRecord(bot_id, initial_quote, (), (), (), {}, 1, 0)


class BusyFeed:
    """One ticker slot shared by every bot, and a publisher that puts a newer ticker in it in
    every scheduler round (once all of them have started): each publish wakes every bot
    parked on it."""

    def __init__(self, rounds: Rounds) -> None:
        self.slot = TickerSlot(TICKERS)
        self.rounds = rounds
        self.published: list[tuple[int, int]] = []  # (round, sequence)

    @asynccontextmanager
    async def subscribe(self, exchange: str, kind: str, symbol: str) -> AsyncIterator[Mailbox]:
        with self.slot.open_mailbox() as mailbox:
            yield mailbox

    def publish(self, sequence: int) -> None:
        self.slot.publish(attrs.evolve(tick(100 + sequence % 7), sequence=sequence))
        self.published.append((self.rounds.round, sequence))

    async def run(self) -> None:
        sequence = 0
        while True:
            sequence += 1
            self.publish(sequence)
            await trio.lowlevel.checkpoint()


def new_bot(n: int, feed: BusyFeed) -> Bot:
    config = bot_config("tests.bots.test_turns:Recorder", {}, bot_id=f"b{n}")
    return Bot(config, feed.subscribe, InstantJournal(), wall_clock=WallClock())  # type: ignore[arg-type]


async def busy_bots(nursery: trio.Nursery, feed: BusyFeed, n_bots: int) -> list[Bot]:
    bots = [new_bot(n, feed) for n in range(n_bots)]
    for bot in bots:
        await nursery.start(bot.run)
    feed.publish(0)
    nursery.start_soon(feed.run)
    for _ in range(3 * n_bots // WAKE_QUEUE_WIDTH):  # until every bot has been woken
        await trio.lowlevel.checkpoint()
    return bots


# --- the queue ----------------------------------------------------------------------------------


async def test_woken_wakers_run_at_most_width_per_round_in_the_order_they_were_woken():
    queue, slot = WakeQueue(4), TickerSlot(TICKERS)
    resumed: dict[int, int] = {}
    async with counting_rounds() as rounds, trio.open_nursery() as nursery:
        mailboxes = [slot.open_mailbox() for _ in range(20)]

        async def waiter(n: int) -> None:
            await Waker(queue).wait([mailboxes[n]])
            resumed[n] = rounds.round

        for n in range(20):
            nursery.start_soon(waiter, n)
            await trio.testing.wait_all_tasks_blocked()  # parked in this order
        slot.publish(tick(100))
        slot.publish(tick(101))  # already woken: not queued twice
    per_round = [list(resumed.values()).count(r) for r in set(resumed.values())]
    assert len(resumed) == 20
    assert max(per_round) == 4
    assert [resumed[n] for n in range(20)] == sorted(resumed.values())  # first woken, first run
    stats = queue.statistics()
    assert (stats.let_in, stats.queued) == (0, 0)


async def test_a_waker_cancelled_while_queued_gives_its_place_up(autojump_clock):
    queue, slot = WakeQueue(1), TickerSlot(TICKERS)
    mailboxes = [slot.open_mailbox() for _ in range(3)]
    done: list[int] = []
    scopes = [trio.CancelScope() for _ in range(3)]
    async with trio.open_nursery() as nursery:

        async def waiter(n: int) -> None:
            with scopes[n]:
                await Waker(queue).wait([mailboxes[n]])
                done.append(n)

        for n in range(3):
            nursery.start_soon(waiter, n)
            await trio.testing.wait_all_tasks_blocked()
        slot.publish(tick(100))  # 0 let in, 1 and 2 queued
        assert queue.statistics().queued == 2
        scopes[1].cancel()
    assert done == [0, 2]
    stats = queue.statistics()
    assert (stats.let_in, stats.queued) == (0, 0)  # every turn came back


def test_a_queue_has_room_for_one_at_least():
    with pytest.raises(ValueError, match="width"):
        WakeQueue(0)


async def test_every_bot_of_a_run_takes_turns_in_the_same_queue():
    assert shared_wake_queue() is shared_wake_queue()
    assert shared_wake_queue().width == WAKE_QUEUE_WIDTH


# --- bots on a busy feed ------------------------------------------------------------------------


async def test_a_spawn_under_a_busy_feed_does_not_wait_for_the_other_bots_ticks():
    n_bots = 25 * WAKE_QUEUE_WIDTH
    async with counting_rounds() as rounds, trio.open_nursery() as nursery:
        Recorder.rounds, Recorder.decisions = rounds, defaultdict(list)
        feed = BusyFeed(rounds)
        await busy_bots(nursery, feed, n_bots)

        first = rounds.round
        await nursery.start(
            new_bot(n_bots, feed).run
        )  # spawn: replayed from the journal, subscribed
        steps = rounds.steps_between(first, rounds.round)
        nursery.cancel_scope.cancel()
    # The spawn's own hops take a handful of rounds, and each round holds at most a few bot
    # steps: the spawn never waits for the other bots' ticks (without turns, every one of its
    # rounds would hold a step of each of the bots).
    assert sum(steps) >= len(steps)  # the other bots kept deciding meanwhile
    assert len(steps) <= 10
    assert max(steps) <= WAKE_QUEUE_WIDTH + 1  # + the spawned bot's own first step
    assert sum(steps) < n_bots // 4


async def test_no_bot_starves_each_decides_on_a_recent_ticker():
    n_bots = 10 * WAKE_QUEUE_WIDTH
    async with counting_rounds() as rounds, trio.open_nursery() as nursery:
        Recorder.rounds, Recorder.decisions = rounds, defaultdict(list)
        feed = BusyFeed(rounds)
        bots = await busy_bots(nursery, feed, n_bots)
        start = rounds.round
        passes = 20
        for _ in range(passes * n_bots // WAKE_QUEUE_WIDTH):
            await trio.lowlevel.checkpoint()
        end = rounds.round
        nursery.cancel_scope.cancel()

    # Every ticker published in the window is decided on (it or a newer one) by every bot
    # within one pass of the queue: n_bots / width rounds, plus the round it was published in
    # and the one the bot runs in.
    bound = math.ceil(n_bots / WAKE_QUEUE_WIDTH) + 2
    published = [(r, s) for r, s in feed.published if start <= r <= end - bound]
    assert len(published) > passes * n_bots // WAKE_QUEUE_WIDTH // 2
    for bot in bots:
        decisions = Recorder.decisions[bot.config.id]
        decided_in = [r for r, _ in decisions if start <= r <= end]
        assert len(decided_in) >= passes - 2, bot.config.id  # its turn came every pass
        waits = []
        for published_in, sequence in published:
            decided = next(r for r, s in decisions if s >= sequence and r >= published_in)
            waits.append(decided - published_in)
        assert max(waits) <= bound, bot.config.id


async def test_a_command_sent_while_no_run_is_up_is_applied_by_the_next_run(tmp_path):
    feed = BusyFeed(Rounds())
    async with running_journal(tmp_path / "j.sqlite3") as journal, trio.open_nursery() as nursery:
        config = bot_config("tests.bots.test_turns:Recorder", {}, bot_id="cmd")
        bot = Bot(config, feed.subscribe, journal, wall_clock=WallClock())
        nursery.start_soon(bot.pause)  # queued in the inbox: no run is up
        await trio.testing.wait_all_tasks_blocked()
        await nursery.start(bot.run)
        with trio.fail_after(5):
            while not bot.statistics().paused:
                await bot.wait_processed(bot.statistics().events + 1)
        nursery.cancel_scope.cancel()


class GatedJournal(Journal):
    """A real journal whose intent writes wait for ``gate``: the test decides when a round that
    places an order gets its answer."""

    def __init__(self, config: JournalConfig) -> None:
        super().__init__(config)
        self.gate = trio.Event()

    async def record_intent(self, intent: OrderIntent, *, owner_epoch: int = 0) -> None:
        await self.gate.wait()
        await super().record_intent(intent, owner_epoch=owner_epoch)


async def test_a_command_sent_while_a_round_awaits_the_journal_needs_no_other_wakeup(
    tmp_path, thread_clock
):
    """The command's wakeup finds the bot busy (a no-op); the bot looks at its inbox again
    before it parks, so the pause is applied with no further publish."""
    journal = GatedJournal(JournalConfig(path=str(tmp_path / "j.sqlite3"), fsync=False))
    feed = FakeFeed()
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        bot = Bot(bot_config(), feed.subscribe, journal, wall_clock=WallClock())
        await nursery.start(bot.run)
        await send_events(bot, feed, tick(105))
        feed.publish(tick(99))  # buys: the round waits for the intent's write
        await trio.testing.wait_all_tasks_blocked()
        paused = trio.Event()

        async def pause() -> None:
            await bot.pause()
            paused.set()

        nursery.start_soon(pause)
        await trio.testing.wait_all_tasks_blocked()
        assert (bot.statistics().orders, paused.is_set()) == (0, False)
        journal.gate.set()
        with trio.fail_after(30):
            await paused.wait()
        stats = bot.statistics()
        nursery.cancel_scope.cancel()
    assert stats.paused
    assert (stats.orders, stats.fills) == (1, 1)
