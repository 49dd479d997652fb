"""Binance Spot request signing and the server-clock estimate (pure: no I/O, no clock reads).

Decisions:

* **The canonical string is the request exactly as sent.** For REST the venue signs
  ``totalParams``: the query string concatenated, with no separator, with the form body, each
  ``name=value`` joined by ``&`` in the order sent. So ``encode_params`` builds the one string
  that is both signed and sent, and ``SignedRequest`` carries it: the I/O client must put
  ``query`` after the ``?`` and send ``body`` as the raw ``application/x-www-form-urlencoded``
  content, never re-encode either (an HTTP library that re-orders or re-escapes parameters
  breaks the signature, ``-1022``).
* **Percent-encoding** is UTF-8 with only RFC 3986's unreserved characters left as they are
  (``quote(value, safe="-_.~")``): ASCII names and numbers are unchanged, and a non-ASCII value
  is percent-encoded *before* signing, as the venue requires. Names are encoded the same way.
* **Values** are ``str``, ``int``, ``Decimal`` (written with ``format(d, "f")``: never an
  exponent) or ``bool`` (``true``/``false``). A ``float`` is refused: its text can be ``1e-05``
  or carry binary noise, and a price must be the exact text the filters produced.
* **Timing parameters come last**: ``recvWindow`` then ``timestamp``, appended to the part that
  also carries ``signature`` (the body when there is one, else the query), and ``signature`` is
  the last parameter of all. ``timestamp`` is in milliseconds on the *server* clock (local time
  plus ``ServerClock``'s offset) and is passed in: this module never reads a clock.
  ``recvWindow`` is always sent (default 5000, at most 60000, whole milliseconds), so the
  deadline the unknown-order rule computes is the one the venue applied.
* **Key types.** HMAC-SHA256 (hex, lower case; the venue compares case-insensitively) and
  Ed25519 (a PKCS#8 PEM private key; the signature is standard base64, case-sensitive, and is
  percent-encoded in REST parameters since base64 contains ``+``, ``/`` and ``=``). RSA keys
  are out of scope: the venue recommends Ed25519 and nothing here needs RSA; an RSA PEM is
  refused with that message rather than half supported.
* **WebSocket API signing differs**: the payload is every parameter except ``signature``,
  sorted by name (``sign_ws_params``), and the signature goes into the JSON params as is.
* **Secrets never print.** ``Secret`` wraps a key's text and its ``repr``/``str`` show
  ``'***'``; the signers' reprs name the key type and the API key's first four characters only.
  ``SignedRequest.headers`` holds the API key in clear (it must be sent) and is left out of the
  repr: log requests by path and parameters, never their headers.
* **Server time.** ``ServerClock`` keeps the ``GET /api/v3/time`` round trip with the smallest
  round-trip time: the server stamped ``serverTime`` somewhere between our send and receive, so
  the offset estimated at the midpoint is wrong by at most half the round trip, and the
  shortest round trip is the tightest bound (the NTP rule). A sample older than
  ``max_sample_age_s`` is replaced by the next one whatever its round trip, so local clock drift
  cannot accumulate behind an old best sample; ``forget()`` (after a ``-1021``) makes the next
  sample win outright.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import quote

import attrs

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_RECV_WINDOW_MS",
    "MAX_RECV_WINDOW_MS",
    "Ed25519Signer",
    "HmacSigner",
    "ParamValue",
    "Params",
    "Secret",
    "ServerClock",
    "SignedRequest",
    "Signer",
    "encode_params",
    "encode_value",
    "sign_request",
    "sign_ws_params",
]

API_KEY_HEADER = "X-MBX-APIKEY"
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
_UNRESERVED = "-_.~"

ParamValue = str | int | Decimal | bool
Params = Sequence[tuple[str, ParamValue]] | Mapping[str, ParamValue]


class Secret:
    """A key's text that never shows itself: ``repr`` and ``str`` are ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a secret must not be empty")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def _key_hint(api_key: Secret) -> str:
    return api_key.reveal()[:4] + "..."


class Signer(Protocol):
    """What a signed request needs: the API key for the header and a signature of a payload."""

    @property
    def kind(self) -> Literal["hmac", "ed25519"]: ...

    def api_key(self) -> str: ...

    def sign(self, payload: str) -> str:
        """The signature of ``payload`` as the venue expects it (before any URL encoding)."""
        ...


class HmacSigner:
    """HMAC-SHA256 of the payload with the secret key, hex encoded."""

    __slots__ = ("_api_key", "_secret")

    def __init__(self, api_key: str, secret_key: str) -> None:
        self._api_key = Secret(api_key)
        self._secret = Secret(secret_key)

    @property
    def kind(self) -> Literal["hmac"]:
        return "hmac"

    def api_key(self) -> str:
        return self._api_key.reveal()

    def sign(self, payload: str) -> str:
        key = self._secret.reveal().encode()
        return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"HmacSigner(api_key={_key_hint(self._api_key)!r}, secret_key=***)"


class Ed25519Signer:
    """Ed25519 over the payload with a PKCS#8 private key, standard base64."""

    __slots__ = ("_api_key", "_key")

    def __init__(self, api_key: str, private_key: Ed25519PrivateKey) -> None:
        self._api_key = Secret(api_key)
        self._key = private_key

    @classmethod
    def from_pem(
        cls, api_key: str, private_key_pem: str | bytes, password: str | bytes | None = None
    ) -> Ed25519Signer:
        # Imported here: every daemon imports this module (its config does), few sign with
        # Ed25519, and cryptography costs a daemon start some 30 ms.
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        data = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        secret = password.encode() if isinstance(password, str) else password
        try:
            key = load_pem_private_key(data, password=secret)
        except (ValueError, TypeError) as exc:
            # The library's message never contains the key material.
            raise ValueError(f"not a usable PKCS#8 PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(
                f"expected an Ed25519 private key, got {type(key).__name__}: "
                "only HMAC and Ed25519 API keys are supported (RSA is out of scope)"
            )
        return cls(api_key, key)

    @property
    def kind(self) -> Literal["ed25519"]:
        return "ed25519"

    def api_key(self) -> str:
        return self._api_key.reveal()

    def sign(self, payload: str) -> str:
        return base64.b64encode(self._key.sign(payload.encode())).decode("ascii")

    def __repr__(self) -> str:
        return f"Ed25519Signer(api_key={_key_hint(self._api_key)!r}, private_key=***)"


# --- the canonical string -----------------------------------------------------------------------


def encode_value(value: ParamValue) -> str:
    """One parameter value as sent: percent-encoded UTF-8 text."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"parameter value must be finite, got {value}")
        text = format(value, "f")
    elif isinstance(value, str):
        text = value
    else:
        raise TypeError(
            f"parameter values are str, int, Decimal or bool, got {type(value).__name__}"
        )
    return quote(text, safe=_UNRESERVED)


def _items(params: Params) -> Iterable[tuple[str, ParamValue]]:
    return params.items() if isinstance(params, Mapping) else params


def encode_params(params: Params) -> str:
    """``name=value`` pairs joined by ``&``, in the order given, percent-encoded."""
    parts = []
    for name, value in _items(params):
        if not name:
            raise ValueError("a parameter needs a name")
        if name == "signature":
            raise ValueError("'signature' is added by signing, never passed in")
        parts.append(f"{quote(name, safe=_UNRESERVED)}={encode_value(value)}")
    return "&".join(parts)


def _check_recv_window(recv_window_ms: int) -> None:
    if type(recv_window_ms) is not int or not 0 < recv_window_ms <= MAX_RECV_WINDOW_MS:
        raise ValueError(
            f"recvWindow must be whole milliseconds in 1..{MAX_RECV_WINDOW_MS}, "
            f"got {recv_window_ms!r}"
        )


def _check_timestamp(timestamp_ms: int) -> None:
    if type(timestamp_ms) is not int or timestamp_ms <= 0:
        raise ValueError(f"timestamp must be positive epoch milliseconds, got {timestamp_ms!r}")


@attrs.frozen(slots=True)
class SignedRequest:
    """A signed request's parts, to be sent byte for byte as they are."""

    query: str  # after the "?", "" for none
    body: str  # form body (application/x-www-form-urlencoded), "" for none
    timestamp_ms: int  # the signed timestamp (server clock)
    recv_window_ms: int
    headers: Mapping[str, str] = attrs.field(repr=False)  # the API key, in clear

    @property
    def payload(self) -> str:
        """What was signed: query and body without the signature, concatenated."""
        query, body = self.query, self.body
        if body:
            body = body.rpartition("&signature=")[0]
        else:
            query = query.rpartition("&signature=")[0]
        return query + body


def sign_request(
    signer: Signer,
    query: Params = (),
    body: Params = (),
    *,
    timestamp_ms: int,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> SignedRequest:
    """Add ``recvWindow``, ``timestamp`` and ``signature`` to a REST request.

    The timing parameters and the signature go into the body when there are body parameters,
    else into the query (a GET or DELETE carries everything in the query; a POST may carry
    everything in the body or split it)."""
    _check_recv_window(recv_window_ms)
    _check_timestamp(timestamp_ms)
    timing = f"recvWindow={recv_window_ms}&timestamp={timestamp_ms}"
    query_text = encode_params(query)
    body_text = encode_params(body)
    if body_text:
        body_text = f"{body_text}&{timing}"
    else:
        query_text = f"{query_text}&{timing}" if query_text else timing
    signature = quote(signer.sign(query_text + body_text), safe=_UNRESERVED)
    if body_text:
        body_text = f"{body_text}&signature={signature}"
    else:
        query_text = f"{query_text}&signature={signature}"
    return SignedRequest(
        query=query_text,
        body=body_text,
        timestamp_ms=timestamp_ms,
        recv_window_ms=recv_window_ms,
        headers={API_KEY_HEADER: signer.api_key()},
    )


def sign_ws_params(signer: Signer, params: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
    """WebSocket API: ``params`` plus ``signature`` over all of them sorted by name.

    The caller includes ``apiKey`` and ``timestamp`` (and ``recvWindow``) in ``params``."""
    if "signature" in params:
        raise ValueError("'signature' is added by signing, never passed in")
    if "timestamp" not in params:
        raise ValueError("a signed WebSocket API request needs a timestamp")
    payload = encode_params(sorted(params.items()))
    return {**params, "signature": signer.sign(payload)}


# --- server time --------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class ClockSample:
    """One ``GET /api/v3/time`` round trip: local send/receive times (s) and ``serverTime``."""

    sent_s: float
    received_s: float
    server_ms: int

    @property
    def rtt_s(self) -> float:
        return self.received_s - self.sent_s

    @property
    def offset_ms(self) -> float:
        """server - local, in ms, at the round trip's midpoint."""
        return self.server_ms - (self.sent_s + self.received_s) / 2 * 1000


@attrs.define
class ServerClock:
    """The estimate ``server time = local time + offset`` from the best round trip kept.

    Local times are seconds on one clock the caller chooses (the wall clock: the venue's
    timestamps are epoch milliseconds) and passes in."""

    max_sample_age_s: float = 900.0
    best: ClockSample | None = None

    def observe(self, sent_s: float, received_s: float, server_ms: int) -> bool:
        """Take one round trip; True if it became the sample in use."""
        if not (math.isfinite(sent_s) and math.isfinite(received_s)):
            raise ValueError("round-trip times must be finite")
        if received_s < sent_s:
            raise ValueError(f"received ({received_s}) before sent ({sent_s})")
        if type(server_ms) is not int or server_ms <= 0:
            raise ValueError(f"serverTime must be positive epoch milliseconds, got {server_ms!r}")
        sample = ClockSample(sent_s, received_s, server_ms)
        best = self.best
        if (
            best is None
            or sample.rtt_s < best.rtt_s
            or received_s - best.received_s > self.max_sample_age_s
        ):
            self.best = sample
            return True
        return False

    def forget(self) -> None:
        """Drop the estimate (the venue said ``-1021``): the next round trip is taken as is."""
        self.best = None

    @property
    def synced(self) -> bool:
        return self.best is not None

    def _sample(self) -> ClockSample:
        if self.best is None:
            raise RuntimeError("no server time yet: observe a GET /api/v3/time round trip first")
        return self.best

    @property
    def offset_ms(self) -> float:
        return self._sample().offset_ms

    @property
    def error_ms(self) -> float:
        """How far the true offset can be from ``offset_ms``: half the round trip."""
        return self._sample().rtt_s * 1000 / 2

    def server_ms(self, local_s: float) -> int:
        """The server time (epoch ms) at local time ``local_s``: what ``timestamp`` carries."""
        return math.floor(local_s * 1000 + self.offset_ms)

    def earliest_server_ms(self, local_s: float) -> int:
        """The earliest the server clock can read at local time ``local_s``."""
        return math.floor(local_s * 1000 + self.offset_ms - self.error_ms)

    def latest_server_ms(self, local_s: float) -> int:
        """The latest the server clock can read at local time ``local_s``."""
        return math.ceil(local_s * 1000 + self.offset_ms + self.error_ms)
