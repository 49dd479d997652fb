"""Which node runs which bot: the scheduler's rule, pure (bots and live nodes in, plan out).

Decisions:

* **Balanced by count.** Every live node with the ``bots`` role should run ``n`` or ``n + 1``
  bots (``n = bots // nodes``). Bots cost about the same (one symbol each, the same plane);
  a measured-load rule would need load reports that lag the moves they cause.
* **Moves are minimal.** A bot whose node is alive stays there. Bots without a live node go,
  one by one, to the least loaded node (ties: the node's name, so every scheduler computes
  the same plan). Then, while one node runs two bots more than another, one bot moves from
  the most to the least loaded node: adding a node moves only the bots it takes over, and
  the others keep trading without a pause.
* **Eligibility.** A bot may be limited to some nodes (``eligible``): a live bot runs only
  on a node whose config has its ``[[accounts]]`` entry (the node's heartbeat lists them).
  The rule stays count-based among the eligible nodes: a bot stays on its node while that
  node is live and eligible, a homeless bot goes to its least loaded eligible node, and a
  rebalancing move takes, from the most loaded node, the last placed bot that may run on a
  node with two bots fewer. A bot with no live eligible node is left out of the plan (no
  node runs it) until one comes.
* The plan is a whole ``bot -> node`` mapping; ``changes`` says which keys to write, so the
  scheduler writes only what moved.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

__all__ = ["changes", "plan"]


def plan(
    bots: Iterable[str],
    nodes: Iterable[str],
    current: Mapping[str, str],
    eligible: Mapping[str, Collection[str]] | None = None,
) -> dict[str, str]:
    """The new assignment of every bot in ``bots`` to one of ``nodes`` (empty without nodes).
    ``eligible``: the nodes a bot may run on (a bot not in it: any node)."""
    live = sorted(set(nodes))
    if not live:
        return {}
    limits = eligible or {}

    def allowed(bot: str) -> list[str]:
        only = limits.get(bot)
        return live if only is None else [n for n in live if n in only]

    wanted = sorted(set(bots))
    load: dict[str, list[str]] = {node: [] for node in live}
    homeless: list[str] = []
    for bot in wanted:
        node = current.get(bot)
        if node in load and node in allowed(bot):
            load[node].append(bot)
        else:
            homeless.append(bot)
    for bot in homeless:
        choices = allowed(bot)
        if choices:
            load[min(choices, key=lambda n: (len(load[n]), n))].append(bot)
    while _move_one(live, load, allowed):
        pass
    return {bot: node for node, names in load.items() for bot in names}


def _move_one(
    live: list[str], load: dict[str, list[str]], allowed: Callable[[str], list[str]]
) -> bool:
    """One rebalancing move (see the module docstring); False when none is left. Each move
    lowers the sum of squared loads, so the loop ends."""
    for most in sorted(live, key=lambda n: (len(load[n]), n), reverse=True):
        for bot in reversed(load[most]):  # the one placed last moves first
            targets = [n for n in allowed(bot) if len(load[n]) <= len(load[most]) - 2]
            if targets:
                least = min(targets, key=lambda n: (len(load[n]), n))
                load[most].remove(bot)
                load[least].append(bot)
                return True
    return False


def changes(current: Mapping[str, str], new: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What to write to turn ``current`` into ``new``: ``(set, delete)``."""
    to_set = {bot: node for bot, node in new.items() if current.get(bot) != node}
    to_delete = sorted(bot for bot in current if bot not in new)
    return to_set, to_delete
