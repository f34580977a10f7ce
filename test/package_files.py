"""What the source tree says the package installs (shared by the install and launch tests)."""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def console_scripts() -> dict[str, str]:
    """setup.cfg's console_scripts, the one list of node executables: {name: "module:function"}."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].splitlines()
    entries = [line.split("=", 1) for line in lines if line.strip()]
    return {name.strip(): target.strip() for name, target in entries}
