"""The evaluation's policies: the shipped checkpoints, loaded by the one loader every entry point uses
(:func:`auras_ros.models.factory.build_agent`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from auras_ros.core.stages import Agent
from auras_ros.models.factory import build_agent

CHECKPOINTS = Path(__file__).parent / "checkpoints"
POLICIES = ("diffusion", "ar")


def load_policy(policy: str, directory: Path | None = None) -> Agent:
    """The shipped checkpoint of ``policy`` (or the one in ``directory``)."""
    return build_agent(str(directory if directory is not None else CHECKPOINTS / policy))


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", choices=POLICIES, required=True)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped one")
