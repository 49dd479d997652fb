"""Live accounts in the daemon: built from ``[[accounts]]``, reconciled, then open to bots.

Each account is one child of the root, ``account:NAME``, started after the journal and before
the bots: it becomes ready only once the account actor is up (clock synced, rules read, user
data stream subscribed) **and** ``reconcile_account`` has dealt with the venue's orders the
journal lacks and checked balances. So no bot can trade on an account that has not been
reconciled. The account object outlives restarts of its child; its orders in flight with it,
and its rate-limit hold (a 429's ``Retry-After``, a 418 ban): a restarted child waits it out
before its first request. The hold is also saved in the journal's state of the account
(``account:NAME``, key ``rate_limit_hold``, wall-clock epoch seconds) whenever the venue's
limits start holding orders, and restored at the child's start, so a restarted daemon does not
send into a ban either (which would make the ban longer).

Keys are resolved here, once, from the environment or the secrets file, and go straight
into a signer; nothing else holds them.

In a cluster with ``bot_placement = "cluster"`` every node with the ``[[accounts]]`` entry
runs the account (its live bots may be placed there) and reconciles it with ``shared`` set:
other nodes' bots trade on it meanwhile (``actors.bots.live``). A halt reaches every node's
accounts (``System.halt``); a node halted by another one cancels only the orders its account
tracks (``halt(sweep=False)``): the halting node swept the venue for the rest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

import attrs
import orjson
import trio
from loguru import logger

from actors.bots.config import BotConfig
from actors.bots.live import (
    AccountReconciliation,
    Executors,
    account_state_key,
    describe,
    reconcile_account,
)
from actors.errors import ConfigError, JournalError
from actors.journal import Journal
from actors.venues.binance.account import BinanceAccount
from actors.venues.binance.config import AccountConfig
from actors.venues.binance.ids import parse_client_order_id
from actors.venues.binance.signing import Ed25519Signer, HmacSigner, Signer
from supervisor.alerts import Alert, Alerts
from supervisor.config import Config, SecretsConfig
from supervisor.config_loader import resolve_secret

__all__ = ["Accounts", "account_child_name", "live_report", "make_signer"]

HALTED_KEY = "halted"
RATE_LIMIT_KEY = "rate_limit_hold"
HOLD_MARGIN_S = 1.0  # added to a restored hold: the wall clock may have stepped meanwhile


def account_child_name(name: str) -> str:
    return f"account:{name}"


def make_signer(
    config: AccountConfig, secrets: SecretsConfig, *, environ: Mapping[str, str] | None = None
) -> Signer:
    """``ConfigError`` naming the variable (never a value) when a key is missing or unusable."""
    api_key = resolve_secret(config.api_key_env, secrets, environ=environ)
    secret = resolve_secret(config.api_secret_env, secrets, environ=environ)
    if config.signing == "hmac":
        return HmacSigner(api_key, secret)
    try:
        return Ed25519Signer.from_pem(api_key, secret)
    except ValueError as exc:
        raise ConfigError(
            [f"accounts[{config.name}].api_secret_env: {config.api_secret_env}: {exc}"]
        ) from None


@attrs.define(eq=False)
class Accounts:
    """The daemon's live accounts, the executor factory that reaches them, and what each
    start's reconciliation found."""

    accounts: dict[str, BinanceAccount]
    bots: dict[str, tuple[BotConfig, ...]]  # account name -> its configured live bots
    executors: Executors
    reconciliations: dict[str, AccountReconciliation] = attrs.Factory(dict)
    # A cluster's node: the journal is shared and other nodes' bots trade on the accounts
    # while this node reconciles them (``reconcile_account``'s ``shared``).
    shared: bool = False
    wall_clock: Callable[[], float] = time.time  # epoch seconds: saved holds are wall times

    @classmethod
    def build(
        cls,
        configs: Sequence[AccountConfig],
        bots: Sequence[BotConfig],
        secrets: SecretsConfig,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> Accounts:
        accounts: dict[str, BinanceAccount] = {}
        by_account: dict[str, tuple[BotConfig, ...]] = {}
        for config in configs:
            mine = tuple(b for b in bots if b.mode == "live" and b.account == config.name)
            symbols = tuple(dict.fromkeys(b.symbol for b in mine))
            signer = make_signer(config, secrets, environ=environ)
            accounts[config.name] = BinanceAccount(config, signer, symbols)
            by_account[config.name] = mine
        return cls(accounts, by_account, Executors(accounts))

    async def run_account(
        self,
        name: str,
        journal: Journal,
        alerts: Alerts,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        account = self.accounts[name]
        saved = (await journal.load_state(account_state_key(name))).get(RATE_LIMIT_KEY)
        if saved is not None:
            restore_hold(account, saved, now_ts=self.wall_clock())

        def blocked(wait_s: float) -> None:
            save_hold(account, journal, now_ts=self.wall_clock())
            alerts.emit(
                Alert(
                    "venue_rate_limited",
                    name,
                    "critical",
                    f"the venue's rate limits hold new orders for {wait_s:.0f} s",
                    {"wait_s": round(wait_s, 3)},
                )
            )

        account.on_blocked = blocked
        async with trio.open_nursery() as nursery:
            await nursery.start(account.run)
            result = await reconcile_account(account, journal, self.bots[name], shared=self.shared)
            self.reconciliations[name] = result
            self.executors.blocked.update(result.blocked)
            halted = (await journal.load_state(account_state_key(name))).get(HALTED_KEY)
            if halted is not None:
                account.halted = halted  # an operator's halt outlives restarts
            for bot_id, reason in result.blocked.items():
                alerts.emit(Alert("bot_halted", bot_id, "critical", reason, {"account": name}))
            if result.foreign:
                alerts.emit(
                    Alert(
                        "bot_halted",
                        name,
                        "warning",
                        f"{len(result.foreign)} open order(s) of ours on the venue that the"
                        f" journal lacked: {result.action}",
                        {"client_order_ids": list(result.foreign)},
                    )
                )
            task_status.started()

    async def halt(
        self, reason: str, journal: Journal, *, now_ts: float, sweep: bool = True
    ) -> dict[str, int]:
        """Every account refuses new orders (persisted: a restart stays halted) and cancels
        every open order of ours on the venue, tracked or not (``sweep=False``: only those it
        tracks; a cluster's other nodes, which the halting node swept for); returns cancels
        per account."""
        out: dict[str, int] = {}
        for name, account in self.accounts.items():
            await journal.save_state(account_state_key(name), HALTED_KEY, reason, now_ts=now_ts)
            sent = await account.halt(reason)
            if account.ready and sweep:
                prefix = account.config.client_id_prefix
                for snapshot in await account.open_orders():
                    ours = parse_client_order_id(snapshot.client_order_id, prefix) is not None
                    if ours and snapshot.client_order_id not in account.orders:
                        await account.cancel_foreign(snapshot)
                        sent += 1
            out[name] = sent
        return out

    async def resume_trading(self, journal: Journal, *, now_ts: float) -> list[str]:
        for name, account in self.accounts.items():
            await journal.save_state(account_state_key(name), HALTED_KEY, None, now_ts=now_ts)
            account.resume_trading()
        return list(self.accounts)

    def health(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, account in self.accounts.items():
            info: dict[str, object] = dict(account.statistics())
            info = {
                "healthy": bool(
                    info["ready"]
                    and info["user_stream"] == "up"
                    and not info["halted"]
                    and not info["orders_blocked"]
                ),
                **info,
            }
            found = self.reconciliations.get(name)
            if found is not None:
                info["reconciliation"] = describe(found)
            out[name] = info
        return out


def save_hold(account: BinanceAccount, journal: Journal, *, now_ts: float) -> None:
    """Queue the account's rate-limit hold into the journal, as wall-clock times (best
    effort: the hold is obeyed in this process either way)."""
    now = trio.current_time()
    requests, orders, reason = account.hold_until()

    def wall(until: float) -> float | None:
        return now_ts + (until - now) if math.isfinite(until) and until > now else None

    value = orjson.dumps(
        {"requests_until_ts": wall(requests), "orders_until_ts": wall(orders), "reason": reason}
    ).decode()
    try:
        journal.save_state_nowait(
            account_state_key(account.config.name), RATE_LIMIT_KEY, value, now_ts=now_ts
        )
    except (trio.WouldBlock, JournalError) as exc:
        logger.bind(account=account.config.name).warning(
            "rate-limit hold not saved; a daemon restart may not know it", error=str(exc)
        )


def restore_hold(account: BinanceAccount, saved: str, *, now_ts: float) -> None:
    """Install a hold saved by ``save_hold`` (what is left of it, on this process's Trio
    clock); an unreadable value is logged and ignored."""
    try:
        data = orjson.loads(saved)
        requests, orders = data["requests_until_ts"], data["orders_until_ts"]
        reason = str(data["reason"])
        for value in (requests, orders):
            if value is not None and not isinstance(value, int | float):
                raise TypeError(f"not a time: {value!r}")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        logger.bind(account=account.config.name).warning(
            "saved rate-limit hold unreadable; ignored", error=str(exc)
        )
        return
    now = trio.current_time()

    def local(until_ts: float | None) -> float:
        return -math.inf if until_ts is None else now + (until_ts - now_ts) + HOLD_MARGIN_S

    account.hold(requests_until=local(requests), orders_until=local(orders), reason=reason)


def live_report(config: Config, *, environ: Mapping[str, str] | None = None) -> list[str]:
    """What live mode will do with ``config``, for ``--check-config``: one block per account.
    ``ConfigError`` (exit 2) when a key is missing or unusable: found now, not at 3 a.m."""
    if not config.accounts:
        return []
    problems: list[str] = []
    lines: list[str] = []
    live_bots = [b for b in config.bots if b.mode == "live"]
    lines.append(f"live trading: {len(live_bots)} bot(s) on {len(config.accounts)} account(s)")
    for account in config.accounts:
        try:
            make_signer(account, config.secrets, environ=environ)
        except ConfigError as exc:
            problems += exc.problems
            continue
        where = "REAL MONEY (allow_mainnet = true)" if account.mainnet else "test venue"
        lines += [
            f"  account {account.name}: {account.venue} {where}",
            f"    rest {account.rest_url}, user stream {account.ws_api_url}",
            f"    keys: {account.signing} from {account.api_key_env} and"
            f" {account.api_secret_env} (set; values not shown)",
            f"    caps: one order <= {account.max_order_quote}, working orders <="
            f" {account.max_working_quote} (quote); recvWindow {account.recv_window_ms} ms",
            f"    client order ids: {account.client_id_prefix}_<bot>_<seq>",
            "    at start, before any bot trades: open orders of ours unknown to the journal"
            f" -> {account.foreign_orders}; balances checked against the journal (tolerance"
            f" {account.balance_tolerance_pct}%); unresolved orders looked up, never re-sent",
        ]
        mine = [b for b in live_bots if b.account == account.name]
        for bot in mine:
            lines.append(
                f"    bot {bot.id}: {bot.symbol} via feed {bot.exchange!r}, {bot.strategy},"
                f" order_quote {bot.order_quote}, risk.max_order_quote"
                f" {bot.risk.max_order_quote}"
            )
        if not mine:
            lines.append("    no live bot uses this account")
    if problems:
        raise ConfigError(problems)
    return lines
