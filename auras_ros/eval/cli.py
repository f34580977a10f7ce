"""Command-line glue shared by the evaluation tools (``demo``, ``eval.realtime``, ``eval.chunk_table``):
argparse ``type=`` functions over the core's checks, which stay free of argparse."""

from __future__ import annotations

import argparse

from auras_ros.core.errors import ConfigError
from auras_ros.core.stages import check_noise_scale


def noise_scale_argument(text: str) -> float:
    """``type=`` of a command-line noise scale (:func:`auras_ros.core.stages.set_noise_scale`): argparse
    shows what is wrong."""
    try:
        return check_noise_scale(float(text))
    except (ConfigError, ValueError):
        raise argparse.ArgumentTypeError(f"invalid noise scale {text!r}: expected a finite number >= 0 "
                                         "(1: the noise as trained, 0: none)") from None
