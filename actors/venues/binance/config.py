"""A live trading account on Binance Spot: one ``[[accounts]]`` entry.

Decisions:

* **Testnet by default.** The URLs default to the Spot testnet. Any other host is treated as
  real money and refused unless ``allow_mainnet = true`` is set on the account: a typo in a
  URL must not be what sends a first real order. Loopback addresses (the local venue) and the
  venue's demo hosts count as test venues.
* **Secrets are named, never written here**: ``api_key_env`` and ``api_secret_env`` are the
  names of environment variables or of keys in the ``[secrets]`` file. For ``signing =
  "ed25519"`` the secret is the PEM private key.
* **Caps are the account's**, on top of each bot's own ``[bots.risk]``: ``max_order_quote``
  bounds any one order's notional, ``max_working_quote`` the notional of all the account's
  orders still working (sent and not final), across its bots.
* ``foreign_orders`` says what reconciliation at start does with an open order whose client
  id carries our prefix and one of our bots' ids but that the journal does not have (a lost
  journal, or another deployment sharing the prefix): ``cancel`` it (default), ``adopt`` it
  (journal it for its bot, which then tracks it) or only ``report`` it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from actors.schema import (
    FieldValueError,
    at_least_one,
    check,
    env_var_name,
    name_like,
    non_negative,
    percent,
    positive,
    url_with_scheme,
)
from actors.venues.binance.ids import DEFAULT_PREFIX
from actors.venues.binance.signing import DEFAULT_RECV_WINDOW_MS, MAX_RECV_WINDOW_MS

__all__ = [
    "MAINNET_REST_URL",
    "MAINNET_WS_API_URL",
    "TESTNET_REST_URL",
    "TESTNET_WS_API_URL",
    "AccountConfig",
    "FieldValueError",
    "is_test_venue",
]

TESTNET_REST_URL = "https://testnet.binance.vision"
TESTNET_WS_API_URL = "wss://ws-api.testnet.binance.vision/ws-api/v3"
MAINNET_REST_URL = "https://api.binance.com"
MAINNET_WS_API_URL = "wss://ws-api.binance.com:443/ws-api/v3"
TEST_HOSTS = frozenset(
    {
        "testnet.binance.vision",
        "api1.testnet.binance.vision",
        "ws-api.testnet.binance.vision",
        "demo-api.binance.com",
        "demo-ws-api.binance.com",
        "127.0.0.1",
        "localhost",
        "::1",
    }
)


def is_test_venue(url: str) -> bool:
    return (urlsplit(url).hostname or "") in TEST_HOSTS


def _recv_window(_inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    check(0 < value <= MAX_RECV_WINDOW_MS, f"must be 1..{MAX_RECV_WINDOW_MS} ms", value)


def _prefix(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    check(
        1 <= len(value) <= 6 and value.isascii() and value.isalnum(), "1-6 letters or digits", value
    )


@attrs.frozen
class AccountConfig:
    name: str = attrs.field()
    api_key_env: str = attrs.field(validator=env_var_name)
    api_secret_env: str = attrs.field(validator=env_var_name)
    venue: Literal["binance"] = "binance"
    signing: Literal["hmac", "ed25519"] = "hmac"
    rest_url: str = attrs.field(
        default=TESTNET_REST_URL, validator=url_with_scheme("http://", "https://")
    )
    ws_api_url: str = attrs.field(
        default=TESTNET_WS_API_URL, validator=url_with_scheme("ws://", "wss://")
    )
    allow_mainnet: bool = False
    client_id_prefix: str = attrs.field(default=DEFAULT_PREFIX, validator=_prefix)
    recv_window_ms: int = attrs.field(default=DEFAULT_RECV_WINDOW_MS, validator=_recv_window)
    request_timeout_s: float = attrs.field(default=10.0, validator=positive)
    max_order_quote: Decimal = attrs.field(default=Decimal("1000"), validator=positive)
    max_working_quote: Decimal = attrs.field(default=Decimal("5000"), validator=positive)
    foreign_orders: Literal["cancel", "adopt", "report"] = "cancel"
    balance_tolerance_pct: float = attrs.field(default=1.0, validator=percent)
    order_poll_s: float = attrs.field(default=10.0, validator=positive)
    unknown_poll_s: float = attrs.field(default=2.0, validator=positive)
    unknown_confirmations: int = attrs.field(default=3, validator=at_least_one)
    query_lag_s: float = attrs.field(default=5.0, validator=non_negative)
    processing_limit_s: float = attrs.field(default=10.0, validator=non_negative)

    @name.validator
    def _name(self, attribute: attrs.Attribute[Any], value: str) -> None:
        check(name_like(value, 24), "must be 1-24 letters, digits, '-' or '_'", value)

    def __attrs_post_init__(self) -> None:
        if self.allow_mainnet:
            return
        for field, url in (("rest_url", self.rest_url), ("ws_api_url", self.ws_api_url)):
            if not is_test_venue(url):
                raise FieldValueError(
                    f"{url!r} is not a test venue (testnet, demo or loopback): trading real"
                    " money needs allow_mainnet = true on this account",
                    field=field,
                )

    @property
    def mainnet(self) -> bool:
        return not (is_test_venue(self.rest_url) and is_test_venue(self.ws_api_url))
