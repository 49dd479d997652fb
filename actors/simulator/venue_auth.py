"""Binance request signatures, checked the way the venue checks them (pure: no I/O, no clock).

Decisions:

* REST: the signed payload is the query string *as received* concatenated, with no separator,
  with the form body *as received*, the ``signature`` pair taken out of whichever part carries
  it. Nothing is decoded, re-encoded or re-ordered: a client that signs one string and sends
  another (parameters re-sorted or re-encoded by its HTTP library) fails here as it fails at
  Binance. WebSocket API: every param except ``signature``, sorted by name, ``name=value``
  joined by ``&``.
* HMAC-SHA256 signatures are hex and compared case-insensitively (Binance: "not case
  sensitive"); Ed25519 signatures are base64 (URL-encoded on REST), compared by verification.
  RSA keys are not simulated.
* ``cryptography`` is imported only when an Ed25519 key is registered or checked, so HMAC-only
  use needs nothing beyond the standard library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

import attrs

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# The key pair of Binance's own signing example (public documentation, not a secret): the
# default credentials of the local venue, so the published test vector checks against it.
EXAMPLE_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
EXAMPLE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def load_ed25519_public_key(key: bytes | str) -> Ed25519PublicKey:
    """A PEM (``-----BEGIN PUBLIC KEY-----``) or raw 32-byte Ed25519 public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = key.encode() if isinstance(key, str) else key
    if data.lstrip().startswith(b"-----"):
        loaded = serialization.load_pem_public_key(data)
        if not isinstance(loaded, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return loaded
    return Ed25519PublicKey.from_public_bytes(data)


@attrs.frozen(slots=True)
class ApiKey:
    """One API key of the venue's account: HMAC (``secret``) or Ed25519 (``public_key``)."""

    key: str
    secret: str | None = None
    public_key: Ed25519PublicKey | None = attrs.field(default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if (self.secret is None) == (self.public_key is None):
            raise ValueError("an API key needs exactly one of secret (HMAC) or public_key")

    @classmethod
    def from_secret(cls, key: str, secret: str) -> ApiKey:
        return cls(key, secret=secret)

    @classmethod
    def from_ed25519(cls, key: str, public_key: bytes | str) -> ApiKey:
        return cls(key, public_key=load_ed25519_public_key(public_key))

    @property
    def kind(self) -> str:
        return "HMAC_SHA256" if self.secret is not None else "ED25519"

    def verify(self, payload: str, signature: str) -> bool:
        """Whether ``signature`` (already URL-decoded) signs ``payload``."""
        if self.secret is not None:
            expected = hmac_sha256_hex(self.secret, payload)
            return hmac.compare_digest(expected, signature.lower())
        assert self.public_key is not None
        from cryptography.exceptions import InvalidSignature

        try:
            raw = base64.b64decode(signature, validate=True)
            self.public_key.verify(raw, payload.encode())
        except (binascii.Error, ValueError, InvalidSignature):
            return False
        return True


def hmac_sha256_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _strip_signature(part: str) -> tuple[str, str | None]:
    kept: list[str] = []
    signature: str | None = None
    for pair in part.split("&") if part else ():
        name, _, value = pair.partition("=")
        if name == "signature":
            signature = unquote_plus(value) if signature is None else signature
        else:
            kept.append(pair)
    return "&".join(kept), signature


def rest_payload(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """The payload a REST client signed and the signature it sent (None: none sent).

    ``raw_query`` and ``raw_body`` are exactly as received; the query's signature wins when
    both carry one (Binance: a parameter in both places is taken from the query string)."""
    query, query_signature = _strip_signature(raw_query)
    body, body_signature = _strip_signature(raw_body)
    signature = query_signature if query_signature is not None else body_signature
    return query + body, signature


def _ws_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ws_payload(params: Mapping[str, object]) -> str:
    """The payload of a signed WebSocket API request: params but ``signature``, sorted."""
    return "&".join(
        f"{name}={_ws_value(params[name])}" for name in sorted(params) if name != "signature"
    )
