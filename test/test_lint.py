"""The linter and the type checker run as tests, so their findings fail CI like any other bug:
`ruff check` (pyflakes, pycodestyle errors, bugbear, blind excepts; ruff.toml) over the package, the
launch files, the tests and the tools, and `mypy` over the ROS-free core (mypy.ini)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    done = run("ruff", "check", "--no-cache", "auras_ros", "launch", "test", "tools")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_nothing_in_the_core() -> None:
    done = run("mypy", "--no-incremental", "--cache-dir", "/dev/null")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "auras_ros/core" in (ROOT / "mypy.ini").read_text()  # the files it checked
