from __future__ import annotations

from typing import Any

import pytest

from supervisor.otp.intensity import RestartIntensity
from supervisor.otp.spec import ChildSpec, SupervisorSpec


async def idle(*, task_status: Any) -> None:
    task_status.started()


def test_intensity_counts_within_a_sliding_window() -> None:
    intensity = RestartIntensity(max_restarts=2, period_s=10.0)
    assert intensity.record(0.0) is False
    assert intensity.record(5.0) is False
    assert intensity.record(9.9) is True  # third within 10 s
    spread = RestartIntensity(max_restarts=2, period_s=10.0)
    assert [spread.record(t) for t in (0.0, 6.0, 12.0, 18.0, 24.0)] == [False] * 5
    assert spread.count(24.0) == 2
    # A restart exactly period_s ago no longer counts.
    edge = RestartIntensity(max_restarts=1, period_s=10.0)
    assert edge.record(0.0) is False
    assert edge.record(10.0) is False


def test_child_spec_validation() -> None:
    with pytest.raises(ValueError, match="'restart' must be in"):
        ChildSpec("x", idle, restart="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must not be empty"):
        ChildSpec("", idle)
    with pytest.raises(ValueError, match="duplicate child name 'a'"):
        SupervisorSpec(children=(ChildSpec("a", idle), ChildSpec("a", idle)))
