"""Client order ids: always valid for the venue, deterministic, and parsed back to the bot."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from actors.venues.binance.ids import (
    CLIENT_ORDER_ID_RE,
    ParsedClientOrderId,
    bot_for,
    bot_stem,
    client_order_id,
    parse_client_order_id,
)
from tests.exchanges.helpers import FUZZ

BOT_IDS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    min_size=1,
    max_size=64,
)
SEQS = st.integers(min_value=0, max_value=10**17)
PREFIXES = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    min_size=1,
    max_size=6,
)


def test_short_bot_ids_are_kept_whole():
    assert client_order_id("grid-btc", 42) == "bcf_grid-btc_42"
    assert client_order_id("a_b", 0, "T1") == "T1_a_b_0"
    assert parse_client_order_id("bcf_grid-btc_42") == ParsedClientOrderId(
        stem="bcf_grid-btc", bot_part="grid-btc", shortened=False, seq=42
    )


def test_long_bot_ids_are_shortened_with_a_hash_and_marked():
    long_id = "a-very-long-bot-identifier-that-does-not-fit"
    cid = client_order_id(long_id, 7)
    assert cid.startswith("bcf-a-very-long-")
    assert cid.endswith("_7")
    assert len(cid) <= 36
    assert cid == client_order_id(long_id, 7)  # a restart computes the same id
    parsed = parse_client_order_id(cid)
    assert parsed is not None
    assert parsed.shortened
    assert parsed.seq == 7
    assert bot_for(parsed, ["other", long_id]) == long_id
    assert bot_for(parsed, [long_id[:-1]]) is None


def test_whether_a_bot_is_shortened_depends_on_the_bot_not_the_sequence():
    # 23 characters fit with the default prefix and 8 digits of room; 24 do not.
    assert bot_stem("b" * 23) == "bcf_" + "b" * 23
    assert bot_stem("b" * 24).startswith("bcf-")
    for seq in (0, 9, 12345678):
        assert client_order_id("b" * 23, seq).startswith("bcf_" + "b" * 23 + "_")
        assert client_order_id("b" * 24, seq).startswith(bot_stem("b" * 24) + "_")


def test_a_sequence_longer_than_the_room_still_gets_an_id_while_one_fits():
    cid = client_order_id("b" * 23, 10**12)
    assert len(cid) <= 36
    assert cid.startswith("bcf-")
    parsed = parse_client_order_id(cid)
    assert parsed is not None
    assert bot_for(parsed, ["b" * 23]) == "b" * 23
    with pytest.raises(ValueError, match="does not fit"):
        client_order_id("b", 10**40)


@pytest.mark.parametrize(
    ("bot", "seq", "prefix"),
    [
        ("", 1, "bcf"),
        ("a b", 1, "bcf"),
        ("é", 1, "bcf"),
        ("a", -1, "bcf"),
        ("a", 1, ""),
        ("a", 1, "bcf_"),
        ("a", 1, "toolong7"),
        ("a", True, "bcf"),
    ],
)
def test_bad_inputs_are_refused(bot: str, seq: int, prefix: str):
    with pytest.raises(ValueError, match="must be"):
        client_order_id(bot, seq, prefix)


@pytest.mark.parametrize(
    "cid",
    [
        "web_order_1",  # someone else's
        "bcfx_bot_1",  # the prefix followed by a letter
        "bcf_bot_",  # no sequence
        "bcf__1",  # no bot
        "bcf_bot_01",  # not how we write numbers
        "bcf_bot_1a",
        "bcf-short_1",  # shortened form without its hash
        "bcf-abcdefghijXYZ_1",  # hash must be lower-case hex
        "bcf_" + "x" * 40,  # too long for the venue
        "bcf_bot 1_2",
        "bcf",
    ],
)
def test_ids_that_are_not_ours_do_not_parse(cid: str):
    assert parse_client_order_id(cid) is None


def test_a_prefix_match_is_not_enough_to_claim_an_order():
    # Bot "a" must not claim bot "a_b"'s orders: the id is parsed, not matched by its start.
    parsed = parse_client_order_id(client_order_id("a_b", 5))
    assert parsed is not None
    assert bot_for(parsed, ["a"]) is None
    assert bot_for(parsed, ["a", "a_b"]) == "a_b"
    # Ours by prefix, but no configured bot: reconciliation decides (adopt or cancel).
    assert bot_for(parsed, ["zzz"]) is None
    # A bot id that cannot make ids is skipped, not an error.
    assert bot_for(parsed, ["not valid!", "a_b"]) == "a_b"


@FUZZ
@given(bot=BOT_IDS, seq=SEQS, prefix=PREFIXES)
def test_ids_are_valid_deterministic_and_parse_back(bot: str, seq: int, prefix: str):
    cid = client_order_id(bot, seq, prefix)
    assert CLIENT_ORDER_ID_RE.match(cid)
    assert len(cid) <= 36
    assert cid == client_order_id(bot, seq, prefix)
    parsed = parse_client_order_id(cid, prefix)
    assert parsed is not None
    assert parsed.seq == seq
    assert bot_for(parsed, [bot], prefix) == bot
    if not parsed.shortened:
        assert parsed.bot_part == bot


@FUZZ
@given(a=st.tuples(BOT_IDS, SEQS), b=st.tuples(BOT_IDS, SEQS))
def test_different_intents_get_different_ids(a: tuple[str, int], b: tuple[str, int]):
    assume(a != b)
    assert client_order_id(*a) != client_order_id(*b)
