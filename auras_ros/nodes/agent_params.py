"""The parameters that choose and load the agent, declared alike by every node that loads one (perception,
generation; the composed process loads it once, in generation, and shares it)."""

from __future__ import annotations

from typing import Any

from auras_ros.core.stages import Agent
from auras_ros.models.factory import build_agent
from auras_ros.nodes.params import Param

AGENT_PARAMS = (
    Param("model", "synthetic", "agent preset (synthetic, diffusion-tiny, ar-tiny) or local checkpoint directory"),
    Param("device", "cpu", "torch device of the model", choices=("cpu", "cuda")),
    # Read at load: OpenVLA's prompt and action statistics are part of the loaded agent, so a change of
    # either is a restart (the public context's instruction key does not re-prompt it).
    Param("instruction", "", "an OpenVLA checkpoint's task in words, e.g. 'pick up the red block' "
          "('': not an OpenVLA checkpoint)"),
    Param("unnorm_key", "", "an OpenVLA checkpoint's dataset whose action statistics unnormalise its actions "
          "('': the only one it has)"),
)


def agent_from_params(params: dict[str, Any]) -> Agent:
    """The agent the parameters name (:func:`build_agent`; a ConfigError or InputError refuses it)."""
    return build_agent(params["model"], params["device"], instruction=params["instruction"] or None,
                       unnorm_key=params["unnorm_key"] or None)
