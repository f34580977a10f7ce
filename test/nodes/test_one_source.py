"""One source per role at the context node: a key's percepts come from one perception run (a second
one is refused, counted and named on /diagnostics as an ERROR), a flood is refused beyond the rate
limit, and instruction changes faster than change_interval are coalesced to the newest. The generation
node takes each context key from one source too. (The gate's case: test_action_node.py.)"""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from std_msgs.msg import String

import torch

from auras_ros.msg import AgentAction, ContextEntry, ContextState, Percept
from auras_ros.nodes.context_node import ContextNode
from auras_ros.nodes.generation_node import GenerationNode
from auras_ros.nodes.qos import LATCHED, LATEST_RELIABLE, ORDERED
from auras_ros.nodes.ros_convert import to_time
from node_graph import Graph


def _percept(stamp: float, seq: int, source_id: int) -> Percept:
    msg = Percept(key="percept", observation_seq=seq, source_id=source_id)
    msg.header.stamp = to_time(stamp)
    msg.tensor.dtype = "float32"
    return msg


def test_a_second_perception_run_is_refused_counted_and_named_on_diagnostics(graph: Graph) -> None:
    context = graph.add(ContextNode, {"diagnostics_period": 0.2})
    source = graph.probe("percept_sources")
    percepts = source.create_publisher(Percept, "auras/percept", LATEST_RELIABLE)
    diagnostics: list[DiagnosticArray] = []
    source.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, ORDERED)
    assert graph.spin_until(lambda: percepts.get_subscription_count() > 0)
    now = context.get_clock().now().nanoseconds * 1e-9
    percepts.publish(_percept(now, 1, source_id=0xA))
    assert graph.spin_until(lambda: context.writes["percept"] == 1)
    percepts.publish(_percept(now, 1, source_id=0xB))  # an impostor with the same key
    assert graph.spin_until(lambda: context.rejected["percept:second_source"] == 1)
    percepts.publish(_percept(now, 2, source_id=0xA))
    assert graph.spin_until(lambda: context.writes["percept"] == 2)
    assert context.rejected["percept:second_source"] == 1

    def errors() -> list[DiagnosticStatus]:
        return [s for a in list(diagnostics) for s in a.status
                if s.name == "auras_ros/context_node" and s.level == DiagnosticStatus.ERROR]

    assert graph.spin_until(errors, 10.0)
    assert "0xa is taken" in errors()[0].message and "0xb refused" in errors()[0].message


def test_a_percept_flood_is_refused_beyond_the_rate_limit(graph: Graph) -> None:
    context = graph.add(ContextNode, {"max_write_rate": 1.0})
    source = graph.probe("percept_flood")
    percepts = source.create_publisher(Percept, "auras/percept", LATEST_RELIABLE)
    assert graph.spin_until(lambda: percepts.get_subscription_count() > 0)
    arrived = lambda: context.writes["percept"] + context.rejected["percept:flood"]  # noqa: E731
    started = time.monotonic()
    for seq in range(20):
        percepts.publish(_percept(context.get_clock().now().nanoseconds * 1e-9, seq, source_id=0xA))
        assert graph.spin_until(lambda: arrived() == seq + 1)  # noqa: B023 - awaited here
    elapsed = time.monotonic() - started
    # One second's worth at 1/s, then one per second elapsed.
    assert context.writes["percept"] <= 2 + int(elapsed)
    assert context.rejected["percept:flood"] >= 20 - (2 + int(elapsed))


def test_instruction_changes_faster_than_the_interval_are_coalesced_to_the_newest(graph: Graph) -> None:
    context = graph.add(ContextNode, {"keys": ["percept", "instruction"], "instruction.type": "string",
                                      "instruction.cancels_in_flight": True, "instruction.required": False,
                                      "change_interval": 5.0})
    source = graph.probe("instructor")
    instructions = source.create_publisher(String, "auras/instruction", ORDERED)
    assert graph.spin_until(lambda: instructions.get_subscription_count() > 0)
    coalescer = context._coalescers["instruction"]
    instructions.publish(String(data="go left"))
    assert graph.spin_until(lambda: context.writes["instruction"] == 1)
    instructions.publish(String(data="go right"))
    assert graph.spin_until(lambda: coalescer.holding)
    for k, text in enumerate(("go up", "go down"), start=1):
        instructions.publish(String(data=text))
        assert graph.spin_until(lambda: coalescer.coalesced == k)  # noqa: B023 - awaited here
    assert context.writes["instruction"] == 1  # within the interval nothing more landed
    # The newest lands once the interval has run: one change, not three cancels.
    assert graph.spin_until(lambda: context.writes["instruction"] == 2, 30.0)
    assert context.public_context.history("instruction")[-1].value == "go down"
    assert coalescer.coalesced == 2


def test_generation_takes_a_context_key_from_one_source(graph: Graph) -> None:
    generation = graph.add(GenerationNode, {"stats_period": 3600.0, "frame_period": 0.01})
    source = graph.probe("context_sources")
    states = source.create_publisher(ContextState, "auras/context", LATCHED)
    actions: list[AgentAction] = []
    source.create_subscription(AgentAction, "auras/action", actions.append, ORDERED)
    assert graph.spin_until(lambda: states.get_subscription_count() > 0)
    width = generation.agent.config.generation_width

    def state(seq: int, source_id: int) -> ContextState:
        entry = ContextEntry(key="percept", observation_seq=seq, source_id=source_id,
                             verdict=ContextEntry.VERDICT_FRESH)
        entry.stamp = generation.get_clock().now().to_msg()
        generation.codec.encode(torch.zeros(width), entry.value)
        return ContextState(entries=[entry])

    drops = lambda: generation.recorder.summary().drops  # noqa: E731
    states.publish(state(1, source_id=0xA))
    assert graph.spin_until(lambda: len(actions) >= 1)
    states.publish(state(2, source_id=0xB))
    assert graph.spin_until(lambda: drops().get("second_source:percept", 0) == 1)
    assert all(a.observation_seq == 1 for a in actions)  # the impostor's percept was never decided on
    assert generation._health().level == DiagnosticStatus.ERROR
    assert "0xa is taken" in generation._health().message and "0xb refused" in generation._health().message
