from __future__ import annotations

import pytest

from auras_ros.core.clock import SimClock
from auras_ros.core.sources import PeriodicCamera
from core_helpers import FRAME


@pytest.fixture

def sim() -> tuple[SimClock, PeriodicCamera]:
    clock = SimClock()
    return clock, PeriodicCamera(1 / FRAME, lambda seq, stamp: seq * 0.01)
