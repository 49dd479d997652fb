"""The scheduler's rule (``supervisor.cluster.placement``): balanced by count, minimal moves."""

from __future__ import annotations

from collections import Counter

from supervisor.cluster.placement import changes, plan

BOTS = [f"b{i:02d}" for i in range(10)]


def loads(assignment: dict[str, str]) -> list[int]:
    return sorted(Counter(assignment.values()).values())


def test_new_bots_are_spread_by_count() -> None:
    assignment = plan(BOTS, ["n1", "n2", "n3"], {})
    assert set(assignment) == set(BOTS)
    assert loads(assignment) == [3, 3, 4]
    assert plan(BOTS, ["n3", "n1", "n2"], {}) == assignment  # same plan on every scheduler


def test_no_nodes_no_assignment() -> None:
    assert plan(BOTS, [], {"b00": "n1"}) == {}


def test_a_dead_node_s_bots_go_to_the_least_loaded_and_nothing_else_moves() -> None:
    before = plan(BOTS, ["n1", "n2", "n3"], {})
    after = plan(BOTS, ["n2", "n3"], before)
    to_set, to_delete = changes(before, after)
    assert set(to_set) == {b for b, n in before.items() if n == "n1"}
    assert to_delete == []
    assert loads(after) == [5, 5]


def test_adding_a_node_moves_only_what_it_takes_over() -> None:
    before = plan(BOTS, ["n1", "n2"], {})
    after = plan(BOTS, ["n1", "n2", "n3"], before)
    to_set, _ = changes(before, after)
    assert loads(after) == [3, 3, 4]
    assert set(to_set.values()) == {"n3"}  # every move goes to the new node
    assert len(to_set) == 3


def test_a_removed_bot_is_deleted_and_the_rest_stay() -> None:
    before = plan(BOTS, ["n1", "n2"], {})
    after = plan(BOTS[1:], ["n1", "n2"], before)
    to_set, to_delete = changes(before, after)
    assert to_delete == ["b00"]
    assert all(after[b] == before[b] for b in after if b not in to_set)
    assert loads(after) in ([4, 5], [5, 4])
