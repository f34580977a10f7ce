"""Shared fixtures of the model tests."""

from __future__ import annotations


def pytest_configure(config) -> None:
    # Tests over a real checkpoint take ~30-60 s on two cores; `-m "not slow"` skips them.
    config.addinivalue_line("markers", "slow: loads a real checkpoint or runs longer than a few seconds")
