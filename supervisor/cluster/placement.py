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
* The plan is a whole ``bot -> node`` mapping; ``changes`` says which keys to write, so the
  scheduler writes only what moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["changes", "plan"]


def plan(bots: Iterable[str], nodes: Iterable[str], current: Mapping[str, str]) -> dict[str, str]:
    """The new assignment of every bot in ``bots`` to one of ``nodes`` (empty without nodes)."""
    live = sorted(set(nodes))
    if not live:
        return {}
    wanted = sorted(set(bots))
    load: dict[str, list[str]] = {node: [] for node in live}
    homeless: list[str] = []
    for bot in wanted:
        node = current.get(bot)
        if node in load:
            load[node].append(bot)
        else:
            homeless.append(bot)
    for bot in homeless:
        node = min(live, key=lambda n: (len(load[n]), n))
        load[node].append(bot)
    while True:
        most = max(live, key=lambda n: (len(load[n]), n))
        least = min(live, key=lambda n: (len(load[n]), n))
        if len(load[most]) - len(load[least]) <= 1:
            break
        load[least].append(load[most].pop())  # the one placed last moves
    return {bot: node for node, names in load.items() for bot in names}


def changes(current: Mapping[str, str], new: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What to write to turn ``current`` into ``new``: ``(set, delete)``."""
    to_set = {bot: node for bot, node in new.items() if current.get(bot) != node}
    to_delete = sorted(bot for bot in current if bot not in new)
    return to_set, to_delete
