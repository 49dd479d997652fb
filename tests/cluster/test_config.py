"""``[cluster]``: parsing and its problems, the ``--node``/``--roles`` overrides, and nothing of
the cluster (nor coredis) loaded without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actors.errors import ConfigError
from supervisor.cli import with_cluster_overrides
from supervisor.config_loader import parse_config

ROOT = Path(__file__).resolve().parents[2]
BASE = """
[[exchanges]]
name = "binance"
"""


def test_cluster_section_and_its_defaults() -> None:
    config = parse_config(BASE + '[cluster]\nredis_url = "redis://127.0.0.1:6379/0"\n')
    assert config.cluster is not None
    assert (config.cluster.node, config.cluster.roles) == ("node", ("feed", "bots"))
    assert parse_config(BASE).cluster is None


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("", "cluster.redis_url: set exactly one of redis_url and redis_url_env"),
        ('redis_url = "http://x"', "cluster.redis_url: must be a URL starting with redis://"),
        ('redis_url = "redis://h"\nroles = []', "cluster.roles: must name each of"),
        ('redis_url = "redis://h"\nroles = ["feed", "x"]', "cluster.roles"),
        ('redis_url = "redis://h"\nnode = "a b"', "cluster.node: must be a short name"),
    ],
)
def test_cluster_problems_name_the_field(table: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + "[cluster]\n" + table + "\n")
    assert any(line.startswith(problem) for line in caught.value.problems), caught.value.problems


def test_node_and_roles_overrides() -> None:
    config = parse_config(BASE + '[cluster]\nredis_url = "redis://h"\nnode = "a"\n')
    changed = with_cluster_overrides(config, node="feed-2", roles="feed")
    assert changed.cluster is not None
    assert (changed.cluster.node, changed.cluster.roles) == ("feed-2", ("feed",))
    with pytest.raises(ConfigError, match=r"--roles: unknown role 'x'"):
        with_cluster_overrides(config, node=None, roles="feed,x")
    with pytest.raises(ConfigError, match=r"--node: must be a short name"):
        with_cluster_overrides(config, node="a/b", roles=None)
    with pytest.raises(ConfigError, match=r"--node: needs a config with a \[cluster\] section"):
        with_cluster_overrides(parse_config(BASE), node="n", roles=None)


def test_without_cluster_nothing_of_it_is_imported() -> None:
    script = textwrap.dedent(
        """
        import sys
        from supervisor.build import build_tree
        from supervisor.config_loader import parse_config
        build_tree(parse_config('[[exchanges]]\\nname = "binance"\\n'))
        loaded = [m for m in sys.modules if m.startswith(("coredis", "supervisor.cluster"))]
        assert not loaded, loaded
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
