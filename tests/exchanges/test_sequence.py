from hypothesis import given
from hypothesis import strategies as st

from actors.exchanges import sequence
from actors.exchanges.sequence import REBASE_AFTER, SequenceFilter
from tests.exchanges.helpers import FUZZ


def feed(seq: SequenceFilter[str], key: str, numbers: list[int]) -> list[bool]:
    return [seq.accept(key, number) for number in numbers]


def test_rebase_after_is_three():
    assert REBASE_AFTER == 3


def test_accepts_rising_and_drops_duplicates_and_out_of_order():
    seq: SequenceFilter[str] = SequenceFilter()
    assert seq.highest("a") is None
    assert feed(seq, "a", [5, 6, 6, 4, 9, 7]) == [True, True, False, False, True, False]
    assert seq.highest("a") == 9


def test_keys_are_independent():
    seq: SequenceFilter[str] = SequenceFilter()
    assert feed(seq, "a", [100]) == [True]
    assert feed(seq, "b", [1, 2]) == [True, True]
    assert seq.highest("a") == 100


def test_a_poisoned_number_is_rebased_on_the_third_rising_frame_below_it():
    seq: SequenceFilter[str] = SequenceFilter()
    assert feed(seq, "a", [10, 10**18, 11, 12, 13, 14]) == [True, True, False, False, True, True]
    assert seq.highest("a") == 14


def test_a_counter_that_restarted_is_rebased():
    seq: SequenceFilter[str] = SequenceFilter()
    assert feed(seq, "a", [500, 501, 0, 1, 2, 3]) == [True, True, False, False, True, True]


def test_a_repeated_frame_never_rebases():
    seq: SequenceFilter[str] = SequenceFilter()
    assert feed(seq, "a", [10**18] + [7] * 10) == [True] + [False] * 10
    assert seq.highest("a") == 10**18


def test_the_run_must_be_consecutive_and_strictly_rising():
    seq: SequenceFilter[str] = SequenceFilter()
    seq.accept("a", 100)
    # 5, 6 then 6 (not rising) restarts the run at 6; 7 and 8 complete it.
    assert feed(seq, "a", [5, 6, 6, 7, 8]) == [False, False, False, False, True]
    # A frame above the highest ends a run: after 201, the run of 1, 2 starts over.
    seq.accept("a", 200)
    assert feed(seq, "a", [1, 2]) == [False, False]
    assert seq.accept("a", 201)
    assert feed(seq, "a", [3, 4, 5]) == [False, False, True]


def test_runs_are_per_key():
    seq: SequenceFilter[str] = SequenceFilter()
    seq.accept("a", 100)
    seq.accept("b", 100)
    assert [seq.accept("a", 1), seq.accept("b", 2), seq.accept("a", 3)] == [False, False, False]
    assert seq.accept("a", 4)  # a: 1, 3, 4 rising; b's frame in between is another key
    assert seq.accept("b", 3) is False  # b: 2, 3 only


def test_forget_accepts_the_next_frame_whatever_its_number():
    seq: SequenceFilter[str] = SequenceFilter()
    feed(seq, "a", [10**18, 1, 2])
    seq.forget("a")
    assert seq.highest("a") is None
    assert feed(seq, "a", [3, 4]) == [True, True]
    seq.forget("never seen")  # harmless


def test_keys_are_bounded(monkeypatch):
    monkeypatch.setattr(sequence, "MAX_KEYS", 3)
    seq: SequenceFilter[str] = SequenceFilter()
    for key in "abcd":
        seq.accept(key, 10)
    assert seq.highest("a") is None  # the oldest key was forgotten
    assert [seq.highest(key) for key in "bcd"] == [10, 10, 10]


@given(numbers=st.lists(st.integers(0, 50), max_size=60))
@FUZZ
def test_no_frame_mutes_a_key_for_more_than_two_frames_of_a_rising_counter(numbers):
    seq: SequenceFilter[str] = SequenceFilter()
    feed(seq, "a", numbers)
    # Whatever came before, a live counter gets through by its third frame, and from then on.
    live = list(range(10, 16))
    assert feed(seq, "a", live)[REBASE_AFTER - 1 :] == [True] * (len(live) - REBASE_AFTER + 1)
