"""Request signing against the venue's published examples, Ed25519 round trips, server time."""

from __future__ import annotations

import base64
import pickle
from decimal import Decimal
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from actors.venues.binance.signing import (
    API_KEY_HEADER,
    Ed25519Signer,
    HmacSigner,
    Secret,
    ServerClock,
    encode_params,
    encode_value,
    sign_request,
    sign_ws_params,
)

# The example key pair of the venue's "SIGNED endpoint" documentation (REST and WebSocket API).
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET_KEY = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
ORDER = [
    ("symbol", "LTCBTC"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", 1),
    ("price", Decimal("0.1")),
]
TIMESTAMP = 1499827319559


def hmac_signer() -> HmacSigner:
    return HmacSigner(API_KEY, SECRET_KEY)


def pem_of(key: ed25519.Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


# --- HMAC: the published vectors ----------------------------------------------------------------


def test_signers_say_their_key_type():
    assert hmac_signer().kind == "hmac"
    assert Ed25519Signer(API_KEY, ed25519.Ed25519PrivateKey.generate()).kind == "ed25519"


def test_hmac_query_string_vector():
    signed = sign_request(hmac_signer(), ORDER, timestamp_ms=TIMESTAMP)
    assert signed.query == (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        "&recvWindow=5000&timestamp=1499827319559"
        "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )
    assert signed.body == ""
    assert signed.headers == {API_KEY_HEADER: API_KEY}


def test_hmac_request_body_vector():
    signed = sign_request(hmac_signer(), body=ORDER, timestamp_ms=TIMESTAMP)
    assert signed.query == ""
    assert signed.body.endswith(
        "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_hmac_mixed_query_and_body_vector_signs_them_concatenated_without_separator():
    signed = sign_request(hmac_signer(), ORDER[:4], ORDER[4:], timestamp_ms=TIMESTAMP)
    assert signed.query == "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    assert signed.body == (
        "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        "&signature=0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    )
    assert signed.payload == (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
        "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )


def test_hmac_non_ascii_vector_is_percent_encoded_before_signing():
    order = [("symbol", "１２３４５６"), *ORDER[1:]]
    signed = sign_request(hmac_signer(), order, timestamp_ms=TIMESTAMP)
    assert signed.query.startswith(
        "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY"
    )
    assert signed.query.endswith(
        "&signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    )


def test_websocket_api_vector_signs_parameters_sorted_by_name():
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "newOrderRespType": "ACK",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": API_KEY,
    }
    signed = sign_ws_params(hmac_signer(), params)
    assert signed["signature"] == (
        "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"
    )
    assert {k: v for k, v in signed.items() if k != "signature"} == params
    with pytest.raises(ValueError, match="signature"):
        sign_ws_params(hmac_signer(), signed)
    with pytest.raises(ValueError, match="timestamp"):
        sign_ws_params(hmac_signer(), {"apiKey": API_KEY})


def test_timing_parameters_and_signature_come_last():
    signed = sign_request(
        hmac_signer(), [("symbol", "BTCUSDT")], timestamp_ms=7, recv_window_ms=60000
    )
    names = [part.split("=")[0] for part in signed.query.split("&")]
    assert names == ["symbol", "recvWindow", "timestamp", "signature"]
    only_timing = sign_request(hmac_signer(), timestamp_ms=7)
    assert only_timing.query.startswith("recvWindow=5000&timestamp=7&signature=")


# --- values -------------------------------------------------------------------------------------


def test_values_are_written_exactly():
    assert encode_value(Decimal("1E-7")) == "0.0000001"
    assert encode_value(Decimal("1.50")) == "1.50"
    assert encode_value(True) == "true"
    assert encode_value(False) == "false"
    assert encode_value(12) == "12"
    assert encode_value("a b&c=d") == "a%20b%26c%3Dd"
    assert encode_params({"symbols": '["A","B"]'}) == "symbols=%5B%22A%22%2C%22B%22%5D"


def test_unwritable_values_are_refused():
    with pytest.raises(TypeError, match="float"):
        encode_value(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        encode_value(Decimal("NaN"))
    with pytest.raises(ValueError, match="signature"):
        encode_params([("signature", "x")])
    with pytest.raises(ValueError, match="name"):
        encode_params([("", "x")])


@pytest.mark.parametrize("window", [0, -1, 60001, True, 5000.5])
def test_recv_window_must_be_whole_milliseconds_up_to_60000(window: object):
    with pytest.raises(ValueError, match="recvWindow"):
        sign_request(hmac_signer(), timestamp_ms=1, recv_window_ms=window)  # type: ignore[arg-type]


@pytest.mark.parametrize("timestamp", [0, -5, 1.5, True])
def test_timestamp_must_be_positive_milliseconds(timestamp: object):
    with pytest.raises(ValueError, match="timestamp"):
        sign_request(hmac_signer(), timestamp_ms=timestamp)  # type: ignore[arg-type]


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=12)).filter(
            lambda kv: kv[0] != "signature"
        ),
        max_size=5,
    )
)
def test_the_signed_payload_is_exactly_what_is_sent(params: list[tuple[str, str]]):
    signer = hmac_signer()
    signed = sign_request(signer, params, timestamp_ms=1700000000000)
    sent, _, signature = signed.query.rpartition("&signature=")
    assert sent == signed.payload
    assert signature == signer.sign(sent)
    # Round trip: decoding what was sent gives back the parameters, in order.
    pairs = [part.split("=", 1) for part in sent.split("&")]
    assert [(unquote(k), unquote(v)) for k, v in pairs[: len(params)]] == params


# --- Ed25519 ------------------------------------------------------------------------------------


def test_ed25519_signature_verifies_with_the_public_key():
    key = ed25519.Ed25519PrivateKey.generate()
    signer = Ed25519Signer.from_pem("my-api-key", pem_of(key))
    signed = sign_request(signer, body=ORDER, timestamp_ms=TIMESTAMP)
    sent, _, encoded = signed.body.rpartition("&signature=")
    signature = base64.b64decode(unquote(encoded), validate=True)
    key.public_key().verify(signature, sent.encode())  # raises InvalidSignature if wrong
    assert "+" not in encoded
    assert "/" not in encoded
    assert "=" not in encoded
    assert signer.sign(sent) == unquote(encoded)  # deterministic (RFC 8032)
    assert signed.headers == {API_KEY_HEADER: "my-api-key"}


def test_ed25519_signature_of_a_tampered_payload_fails():
    from cryptography.exceptions import InvalidSignature

    key = ed25519.Ed25519PrivateKey.generate()
    signer = Ed25519Signer(API_KEY, key)
    signature = base64.b64decode(signer.sign("symbol=BTCUSDT&timestamp=1"))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, b"symbol=BTCUSDT&timestamp=2")


def test_ed25519_pem_with_a_password():
    key = ed25519.Ed25519PrivateKey.generate()
    signer = Ed25519Signer.from_pem(API_KEY, pem_of(key, b"pw").decode(), "pw")
    signature = base64.b64decode(signer.sign("x=1"))
    key.public_key().verify(signature, b"x=1")


def test_rsa_keys_are_out_of_scope():
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="RSA is out of scope"):
        Ed25519Signer.from_pem(API_KEY, pem)


def test_a_broken_pem_is_refused_without_echoing_it():
    with pytest.raises(ValueError, match="not a usable PKCS#8 PEM") as info:
        Ed25519Signer.from_pem(API_KEY, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n")
    assert "c2VjcmV0" not in str(info.value)


# --- secrets never show -------------------------------------------------------------------------


def test_secrets_are_hidden_from_reprs_and_pickles():
    signer = hmac_signer()
    for text in (repr(signer), str(signer), repr(Secret(SECRET_KEY)), str(Secret(SECRET_KEY))):
        assert SECRET_KEY not in text
        assert API_KEY not in text
    assert repr(signer) == "HmacSigner(api_key='vmPU...', secret_key=***)"
    ed = Ed25519Signer(API_KEY, ed25519.Ed25519PrivateKey.generate())
    assert repr(ed) == "Ed25519Signer(api_key='vmPU...', private_key=***)"
    signed = sign_request(signer, ORDER, timestamp_ms=TIMESTAMP)
    assert API_KEY not in repr(signed)
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(signer)
    with pytest.raises(ValueError, match="empty"):
        Secret("")


# --- server time --------------------------------------------------------------------------------


def test_server_clock_estimates_the_offset_at_the_round_trip_midpoint():
    clock = ServerClock()
    assert not clock.synced
    with pytest.raises(RuntimeError, match="no server time"):
        clock.server_ms(0.0)
    assert clock.observe(1000.0, 1000.2, 1_000_100 + 250)  # midpoint 1000.1 s, server +250 ms
    assert clock.synced
    assert clock.offset_ms == pytest.approx(250)
    assert clock.error_ms == pytest.approx(100)
    assert clock.server_ms(2000.0) == 2_000_250
    assert clock.earliest_server_ms(2000.0) == 2_000_150
    assert clock.latest_server_ms(2000.0) == 2_000_350


def test_server_clock_keeps_the_smallest_round_trip():
    clock = ServerClock()
    clock.observe(10.0, 10.4, 10_200 + 50)  # rtt 400 ms, offset +50
    assert clock.observe(20.0, 20.02, 20_010 - 30)  # rtt 20 ms, offset -30: better
    assert not clock.observe(30.0, 30.5, 30_250 + 999)  # rtt 500 ms: ignored
    assert clock.offset_ms == pytest.approx(-30)
    assert clock.error_ms == pytest.approx(10)


def test_an_old_best_sample_is_replaced_and_forget_starts_over():
    clock = ServerClock(max_sample_age_s=60)
    clock.observe(0.0, 0.01, 5 + 7)
    assert clock.observe(100.0, 100.5, 100_250 + 3)  # worse rtt, but the best is too old
    assert clock.offset_ms == pytest.approx(3)
    clock.forget()
    assert not clock.synced
    assert clock.observe(200.0, 201.0, 200_500)


@pytest.mark.parametrize(
    ("sent", "received", "server"),
    [(2.0, 1.0, 1000), (float("nan"), 1.0, 1000), (1.0, 2.0, 0), (1.0, 2.0, 1.5)],
)
def test_server_clock_refuses_impossible_samples(sent: float, received: float, server: object):
    with pytest.raises(ValueError, match=r"finite|before|serverTime"):
        ServerClock().observe(sent, received, server)  # type: ignore[arg-type]


@given(
    sent=st.floats(1e9, 2e9),
    rtt=st.floats(0, 5),
    true_offset_ms=st.integers(-(10**6), 10**6),
    position=st.floats(0, 1),
)
def test_the_true_server_time_lies_within_the_error_bounds(
    sent: float, rtt: float, true_offset_ms: int, position: float
):
    # The server stamps its time somewhere during the round trip.
    stamped_local = sent + rtt * position
    server_ms = int(stamped_local * 1000 + true_offset_ms)
    clock = ServerClock()
    clock.observe(sent, sent + rtt, server_ms)
    later = sent + 60
    true_later = later * 1000 + true_offset_ms
    assert clock.earliest_server_ms(later) <= true_later + 2  # int() and float rounding
    assert clock.latest_server_ms(later) >= true_later - 2
