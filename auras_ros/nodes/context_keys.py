"""The world-state keys of the public context, declared from parameters (shared by the context node and
the generation node's replica, so both judge staleness the same way)."""

from __future__ import annotations

from dataclasses import dataclass

from rclpy.node import Node

from auras_ros.core.context import KeySpec, Policy, max_age_from_seconds
from auras_ros.core.stages import PERCEPT_KEY
from auras_ros.nodes.params import Param, declare
from auras_ros.core import topics

KEY_TYPES = ("percept", "string", "joint_state")
DEFAULT_TOPICS = {"percept": topics.PERCEPT, "string": topics.INSTRUCTION, "joint_state": topics.JOINT_STATES}

# Above a few clock steps: under use_sim_time (simulator, bag replay) a message stamped at the newest
# /clock can reach a node before its own /clock subscription has taken that step, and an observation
# refused for it would be lost. Absurd stamps (a clock years ahead) stay refused.
FUTURE_TOLERANCE = Param("future_tolerance", 0.5, "seconds a sensor stamp may lie ahead of this node's clock",
                         low=0.0, high=60.0)


@dataclass(frozen=True)
class ContextKey:
    spec: KeySpec
    type: str  # one of KEY_TYPES: which message type its topic carries
    topic: str
    required: bool  # the graph cannot decide without it: missing is an ERROR on /diagnostics, else WARN


def declare_context_keys(node: Node) -> list[ContextKey]:
    names = declare(node, [Param("keys", [PERCEPT_KEY], "public-context keys (each configured under <key>.*)")])["keys"]
    keys = []
    for name in names:
        default_type = "percept" if name == PERCEPT_KEY else "string"
        values = declare(node, [
            Param(f"{name}.type", default_type, "message type of the key's topic", choices=KEY_TYPES),
            Param(f"{name}.topic", "", "topic the key is read from (empty: the type's default)"),
            Param(f"{name}.max_age", 0.0, "seconds of sensor time after which the value is stale (0: never)",
                  low=0.0, high=1e9),
            Param(f"{name}.policy", Policy.HOLD.value, "what a stale read does",
                  choices=tuple(p.value for p in Policy)),
            Param(f"{name}.wait_timeout", 0.1, "seconds a 'wait' read blocks at most", low=0.0, high=60.0),
            Param(f"{name}.cancels_in_flight", False, "a changed value cancels in-flight requests"),
            Param(f"{name}.required", True, "the graph cannot decide without a value: missing is an ERROR on "
                  "/diagnostics (false: a WARN, e.g. an instruction no one has sent yet)"),
        ])
        max_age = max_age_from_seconds(values[f"{name}.max_age"])
        spec = KeySpec(name, max_age, Policy(values[f"{name}.policy"]), values[f"{name}.wait_timeout"],
                       values[f"{name}.cancels_in_flight"])
        kind = values[f"{name}.type"]
        keys.append(ContextKey(spec, kind, values[f"{name}.topic"] or DEFAULT_TOPICS[kind], values[f"{name}.required"]))
    return keys
