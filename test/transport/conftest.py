"""Fixtures of the transport tests: a plain stand-in for TensorPayload (fake_payload.py, a module with
a name of its own, so test files importing it never get another directory's conftest), and a
session-level check that no test leaves an auras shared-memory segment behind."""

from __future__ import annotations

import os
import re
from typing import Iterator

import pytest

from fake_payload import FakePayload

SHM_DIR = "/dev/shm"
_OURS = re.compile(r"^auras_(\d+)_[0-9a-f]+$")


def _segments() -> set[str]:
    return {n for n in os.listdir(SHM_DIR) if _OURS.match(n)}


def _owner_dead(name: str) -> bool:
    pid = int(_OURS.match(name).group(1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@pytest.fixture(scope="session", autouse=True)
def no_leftover_segments() -> Iterator[None]:
    """After the session: no segment of this process, and none left by a child that died meanwhile.

    Segments of other live processes (other test sessions on this host) are not ours to judge.
    """
    before = _segments()
    yield
    left = sorted(n for n in _segments() - before
                  if n.startswith(f"auras_{os.getpid()}_") or _owner_dead(n))
    assert not left, f"shared-memory segments left in {SHM_DIR}: {left}"


@pytest.fixture
def payload() -> FakePayload:
    return FakePayload()
