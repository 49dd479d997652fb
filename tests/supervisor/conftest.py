from __future__ import annotations

from typing import Any

import pytest
from loguru import logger


@pytest.fixture
def records() -> Any:
    """Every loguru record emitted during the test (DEBUG and up)."""
    captured: list[Any] = []
    handler = logger.add(lambda message: captured.append(message.record), level="DEBUG")
    try:
        yield captured
    finally:
        logger.remove(handler)
