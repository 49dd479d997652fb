"""A minimal Binance Spot client for the venue tests, written from Binance's public docs only:
httpx for REST, trio-websocket for the WebSocket API, hmac for signatures.

Nothing here imports the venue's own signing code; the tests check the venue against the
documented rules. The client's clock is the venue model's clock (``venue.now_ts()``, virtual
under ``autojump_clock``) plus ``clock_offset_ms``, so a test skews one side or the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import trio
from trio_websocket import WebSocketConnection

from actors.simulator.binance_venue import BinanceVenue

FORM = {"content-type": "application/x-www-form-urlencoded"}


def hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class VenueClient:
    def __init__(
        self,
        venue: BinanceVenue,
        http: httpx.AsyncClient,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        signer: Callable[[str], str] | None = None,
        clock_offset_ms: int = 0,
    ) -> None:
        self.venue = venue
        self.http = http
        self.api_key = api_key or venue.api_key
        secret = secret or venue.secret
        self.sign: Callable[[str], str] = signer or (lambda payload: hmac_hex(secret, payload))
        self.clock_offset_ms = clock_offset_ms

    def timestamp(self) -> int:
        return int(self.venue.now_ts() * 1000) + self.clock_offset_ms

    def query(self, params: Mapping[str, object], *, timestamp: bool = True) -> str:
        items = dict(params)
        if timestamp and "timestamp" not in items:
            items["timestamp"] = self.timestamp()
        payload = urlencode(items)
        return f"{payload}&signature={quote(self.sign(payload), safe='')}"

    async def signed(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None = None,
        *,
        body: bool = False,
    ) -> httpx.Response:
        """A signed request; POST/DELETE parameters in the form body when ``body``."""
        text = self.query(params or {})
        headers = {"X-MBX-APIKEY": self.api_key}
        if body:
            return await self.http.request(method, path, content=text, headers={**headers, **FORM})
        return await self.http.request(method, f"{path}?{text}", headers=headers)

    async def order(self, **params: object) -> httpx.Response:
        return await self.signed("POST", "/api/v3/order", params, body=True)

    async def get_order(self, **params: object) -> httpx.Response:
        return await self.signed("GET", "/api/v3/order", params)

    async def cancel(self, **params: object) -> httpx.Response:
        return await self.signed("DELETE", "/api/v3/order", params)

    async def account(self) -> dict[str, Any]:
        response = await self.signed("GET", "/api/v3/account")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def balance(self, asset: str) -> tuple[str, str]:
        for item in (await self.account())["balances"]:
            if item["asset"] == asset:
                return item["free"], item["locked"]
        raise AssertionError(f"no {asset} balance")


def ws_signature_payload(params: Mapping[str, object]) -> str:
    """WebSocket API: every param except ``signature``, sorted by name."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")


def ed25519_signer(private_key: Any) -> Callable[[str], str]:
    return lambda payload: base64.b64encode(private_key.sign(payload.encode())).decode()


async def ws_request(ws: WebSocketConnection, request: dict[str, Any]) -> dict[str, Any]:
    """Send one request and read frames up to its answer (events before it are skipped)."""
    await ws.send_message(json.dumps(request))
    while True:
        frame = json.loads(await ws.get_message())
        if "id" in frame and frame.get("id") == request.get("id"):
            return frame  # type: ignore[no-any-return]


async def subscribe(
    ws: WebSocketConnection, client: VenueClient, request_id: object = 1
) -> dict[str, Any]:
    params: dict[str, object] = {"apiKey": client.api_key, "timestamp": client.timestamp()}
    params["signature"] = client.sign(ws_signature_payload(params))
    return await ws_request(
        ws, {"id": request_id, "method": "userDataStream.subscribe.signature", "params": params}
    )


async def next_event(ws: WebSocketConnection, kind: str | None = None) -> dict[str, Any]:
    """The next user-data event (of type ``kind``), skipping answers and other events."""
    while True:
        frame = json.loads(await ws.get_message())
        event = frame.get("event")
        if event is not None and (kind is None or event.get("e") == kind):
            return frame  # type: ignore[no-any-return]


async def events_until(
    ws: WebSocketConnection, predicate: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Events (the inner ``event`` objects) up to and including the first matching one."""
    events = []
    while True:
        frame = json.loads(await ws.get_message())
        if "event" in frame:
            events.append(frame["event"])
            if predicate(frame["event"]):
                return events


async def no_frame_within(ws: WebSocketConnection, seconds: float) -> bool:
    with trio.move_on_after(seconds):
        await ws.get_message()
        return False
    return True
