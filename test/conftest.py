"""Fixtures shared by the package-level tests (interfaces, bags, install layout, launch files)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import yaml


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cuda: needs a CUDA device (test/gpu.py); skips without one")


@pytest.fixture(scope="session", autouse=True)
def _clean_fastdds_shm() -> Iterator[None]:
    """Remove Fast DDS shared-memory segments whose owners died (e.g. a test process killed)."""
    yield
    fastdds = shutil.which("fastdds")
    if fastdds:
        subprocess.run([fastdds, "shm", "clean"], check=False, capture_output=True)


@pytest.fixture
def ros_env() -> Iterator[dict[str, str]]:
    """Environment for child processes: a ROS_DOMAIN_ID of their own, discovery on localhost."""
    from auras_ros.launching import private_ros_env

    with private_ros_env() as env:
        yield env


@pytest.fixture
def params_file(tmp_path: Path):
    """Write a ROS parameters file for all nodes (/**) and return its path."""

    def write(params: dict) -> str:
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
        return str(path)

    return write

