"""Replay: recorded market data through the live subscription seam, on a virtual clock."""

from actors.replay.clock import ReplayClock
from actors.replay.feed import Consumer, ReplayFeed, ReplayReader, ReplayStatistics

__all__ = ["Consumer", "ReplayClock", "ReplayFeed", "ReplayReader", "ReplayStatistics"]
