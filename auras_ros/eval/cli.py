"""Command-line glue shared by the evaluation tools and benchmarks (``demo``, ``eval.*``, ``bench.*``):
argparse ``type=`` functions over the core's parsers and checks, which stay free of argparse."""

from __future__ import annotations

import argparse

from typing import Callable, TypeVar

from auras_ros.core.chunks import check_overlap
from auras_ros.core.errors import ConfigError
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import check_noise_scale

T = TypeVar("T")


def config_argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` as an argparse ``type=``: its ConfigError becomes argparse's own error with the same text."""
    def argument(text: str) -> T:
        try:
            return parse(text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return argument


executor_argument = config_argument(ExecutorSpec.parse)
"""``type=`` of an option taking executor specs (``seq``, ``auras:1+4``, ...)."""

overlap_argument = config_argument(check_overlap)
"""``type=`` of an option taking an overlap's text form (``replace``, ``ensemble:-0.5``, ...)."""


def noise_scale_argument(text: str) -> float:
    """``type=`` of a command-line noise scale (:func:`auras_ros.core.stages.set_noise_scale`): argparse
    shows what is wrong."""
    try:
        return check_noise_scale(float(text))
    except (ConfigError, ValueError):
        raise argparse.ArgumentTypeError(f"invalid noise scale {text!r}: expected a finite number >= 0 "
                                         "(1: the noise as trained, 0: none)") from None
