"""The generation node as a managed (lifecycle) node, in this process on a private domain: deactivated it
publishes no action whatever percepts arrive (the requests it held are cancelled, counted), activated again
it decides on new percepts; configure refuses a bad executor with a ConfigError naming it."""

from __future__ import annotations

import pytest
import torch
from rclpy.parameter import Parameter

from auras_ros.core.errors import ConfigError
from auras_ros.msg import AgentAction, ContextEntry, ContextState
from auras_ros.nodes.generation_node import DEACTIVATED, INACTIVE, GenerationNode
from auras_ros.nodes.qos import LATCHED, ORDERED
from conftest import Graph


def _state(generation: GenerationNode, seq: int) -> ContextState:
    """A fresh, well-formed percept for ``generation``'s agent, stamped now."""
    entry = ContextEntry(key="percept", observation_seq=seq, verdict=ContextEntry.VERDICT_FRESH)
    entry.stamp = generation.get_clock().now().to_msg()
    generation.codec.encode(torch.zeros(generation.agent.config.generation_width), entry.value)
    return ContextState(entries=[entry])


def test_deactivate_stops_the_actions_and_activate_resumes_them(graph: Graph) -> None:
    # Lockstep: one frame per percept, so the pipeline (L = 1 + 3) holds requests while no percept comes.
    generation = graph.add(GenerationNode, {"stats_period": 3600.0, "pp_generation": 3, "lockstep": True})
    source = graph.probe("context_source")
    states = source.create_publisher(ContextState, "auras/context", LATCHED)
    actions: list[AgentAction] = []
    source.create_subscription(AgentAction, "auras/action", actions.append, ORDERED)
    assert graph.spin_until(lambda: states.get_subscription_count() > 0 and generation.actions.get_subscription_count() > 0)

    def feed_until_decided(first: int) -> None:
        """One percept per frame (seq first, first + 1, ...) until the pipeline decides, then its action
        arrives, decided on the freshest of them (the public context)."""
        decided, seq = generation.recorder.decisions_recorded, first
        while generation.recorder.decisions_recorded == decided:
            assert seq < first + 8, "no decision within twice the pipeline's L frames"
            frame = generation.runner.frame
            states.publish(_state(generation, seq))
            assert graph.spin_until(lambda: generation.runner.frame > frame)
            seq += 1
        assert graph.spin_until(lambda: any(a.observation_seq >= first for a in actions))

    feed_until_decided(1)
    generation.trigger_deactivate()
    assert not generation.active
    held = generation.runner.in_flight  # admitted, undecided: the next activation's first frame cancels them
    frames = generation.runner.frame
    assert held > 0

    for turned_away, seq in enumerate((20, 21, 22), start=1):
        states.publish(_state(generation, seq))
        # It arrived and was turned away (one at a time: the topic keeps the latest only).
        assert graph.spin_until(lambda: generation.recorder.summary().drops.get(INACTIVE, 0) == turned_away)
    assert generation.runner.frame == frames  # no frame ran
    assert all(a.observation_seq < 20 for a in actions)  # no action, and none from the inactive time later

    generation.trigger_activate()
    assert generation.active
    feed_until_decided(30)
    assert all(a.observation_seq < 20 or a.observation_seq >= 30 for a in actions)
    assert generation.recorder.summary().cancels == {DEACTIVATED: held}  # the held requests never finished


def test_configure_refuses_a_bad_executor_and_names_it(graph: Graph) -> None:
    generation = GenerationNode(context=graph.context, autostart=False,
                                parameter_overrides=[Parameter("executor", value="auras:x")])
    graph.nodes.append(generation)  # destroyed with the graph
    assert not generation.active and generation.runner is None  # waits for a lifecycle manager
    with pytest.raises(ConfigError) as error:
        generation.start()
    assert error.value.field == "executor" and error.value.value == "auras:x"
    assert not generation.active and generation.runner is None
    generation.set_parameters([Parameter("executor", value="auras:1+2")])
    generation.start()  # configure reads the parameters as they are now
    assert generation.active and str(generation.spec) == "auras:1+2:f0:a0"
