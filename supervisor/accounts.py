"""Live accounts in the daemon: built from ``[[accounts]]``, reconciled, then open to bots.

Each account is one child of the root, ``account:NAME``, started after the journal and before
the bots: it becomes ready only once the account actor is up (clock synced, rules read, user
data stream subscribed) **and** ``reconcile_account`` has dealt with the venue's orders the
journal lacks and checked balances. So no bot can trade on an account that has not been
reconciled. The account object outlives restarts of its child; its orders in flight with it.

Keys are resolved here, once, from the environment or the secrets file, and go straight
into a signer; nothing else holds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import trio

from actors.bots.config import BotConfig
from actors.bots.live import AccountReconciliation, Executors, describe, reconcile_account
from actors.errors import ConfigError
from actors.journal import Journal
from actors.venues.binance.account import BinanceAccount
from actors.venues.binance.config import AccountConfig
from actors.venues.binance.signing import Ed25519Signer, HmacSigner, Signer
from supervisor.alerts import Alert, Alerts
from supervisor.config import SecretsConfig
from supervisor.config_loader import resolve_secret

__all__ = ["Accounts", "account_child_name", "make_signer"]


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
        async with trio.open_nursery() as nursery:
            await nursery.start(account.run)
            result = await reconcile_account(account, journal, self.bots[name])
            self.reconciliations[name] = result
            self.executors.blocked.update(result.blocked)
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

    async def halt(self, reason: str) -> int:
        sent = 0
        for account in self.accounts.values():
            sent += await account.halt(reason)
        return sent

    def resume_trading(self) -> None:
        for account in self.accounts.values():
            account.resume_trading()

    def health(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, account in self.accounts.items():
            info: dict[str, object] = dict(account.statistics())
            found = self.reconciliations.get(name)
            if found is not None:
                info["reconciliation"] = describe(found)
            out[name] = info
        return out
