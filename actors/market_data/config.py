"""One exchange feed's configuration."""

from __future__ import annotations

from typing import Literal

import attrs

from actors.exchanges import PROTOCOLS
from actors.schema import FieldValueError, check, name_like, positive, url_with_scheme

__all__ = ["TRANSPORT_ENGINES", "FeedConfig", "TransportEngine"]

TransportEngine = Literal["wsproto", "trio-websocket"]
TRANSPORT_ENGINES: tuple[TransportEngine, ...] = ("wsproto", "trio-websocket")


@attrs.frozen
class FeedConfig:
    """One exchange's feed: where to connect and how to judge it. ``protocol`` defaults to
    ``name``."""

    name: str = attrs.field()
    protocol: str | None = attrs.field(default=None)
    # WebSocket URL override (default: the codec's production URL)
    url: str | None = attrs.field(default=None, validator=url_with_scheme("ws://", "wss://"))
    # REST base URL override for the fallback
    rest_url: str | None = attrs.field(
        default=None, validator=url_with_scheme("http://", "https://")
    )
    stale_after_s: float = attrs.field(default=10.0, validator=positive)
    fallback: Literal["none", "rest"] = "none"
    rest_poll_interval_s: float = attrs.field(default=2.0, validator=positive)
    # WebSocket engine; wsproto (the default) batches a whole socket read per scheduler round
    transport: TransportEngine = "wsproto"

    @name.validator
    def _name(self, attribute: attrs.Attribute[str], value: str) -> None:
        check(name_like(value, 32), "must be 1-32 letters, digits, '-' or '_'", value)

    @protocol.validator
    def _protocol(self, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value is None:
            if self.name not in PROTOCOLS:
                raise FieldValueError(
                    f"not set and the exchange name {self.name!r} is not a protocol;"
                    f" set it to one of {', '.join(PROTOCOLS)}"
                )
            return
        check(value in PROTOCOLS, f"must be one of {', '.join(PROTOCOLS)}", value)

    @property
    def protocol_name(self) -> str:
        return self.protocol or self.name
