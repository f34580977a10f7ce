"""The generation node's ``overlap`` parameter: ``inpaint`` guides each request's chunk toward the one
executing (core.inpaint, the runner's InpaintConfig with the chunk row period). Configure refuses it in
one line for an agent that does not inpaint (the synthetic agent); with the tiny diffusion agent the node
configures, decides, and conditions its next requests on the chunk it published."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rclpy.parameter import Parameter

from auras_ros.core.errors import ConfigError
from auras_ros.core.inpaint import MASKS, InpaintConfig
from auras_ros.msg import ContextEntry, ContextState
from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny
from auras_ros.nodes.generation_node import GenerationNode
from node_graph import Graph
from test_generation_lifecycle import _context_source

CHUNK_PERIOD = 0.05


def refused_for_the_synthetic_agent(graph: Graph, field: str, *overrides: Parameter) -> GenerationNode:
    """A generation node of the synthetic agent that refuses to configure, in one line naming ``field``
    and the agent; it stays inactive, without a runner."""
    generation = GenerationNode(context=graph.context, autostart=False, parameter_overrides=[
        *overrides, Parameter("stats_period", value=3600.0)])
    graph.nodes.append(generation)  # destroyed with the graph
    with pytest.raises(ConfigError) as error:
        generation.start()
    message = str(error.value)
    assert error.value.field == field and "SyntheticAgent" in message and "\n" not in message, message
    assert not generation.active and generation.runner is None
    return generation


def test_inpaint_is_refused_for_an_agent_that_does_not_inpaint(graph: Graph) -> None:
    generation = refused_for_the_synthetic_agent(graph, "overlap", Parameter("overlap", value="inpaint"),
                                                 Parameter("chunk_period", value=CHUNK_PERIOD))
    # The other overlaps are the action node's business: the same node configures with them.
    generation.set_parameters([Parameter("overlap", value="ensemble")])
    generation.start()
    assert generation.active and generation.runner.executing is None
    generation.trigger_deactivate()


def _percept(generation: GenerationNode, seq: int) -> ContextState:
    """A well-formed diffusion percept (its conditioning vector), stamped now."""
    entry = ContextEntry(key="percept", observation_seq=seq, verdict=ContextEntry.VERDICT_FRESH)
    entry.stamp = generation.get_clock().now().to_msg()
    generation.codec.encode(torch.zeros(generation.agent.config.cond_dim), entry.value)
    return ContextState(entries=[entry])


def test_inpaint_with_the_diffusion_agent_configures_decides_and_follows_its_chunks(graph: Graph) -> None:
    agent = DiffusionPolicyAgent(tiny(n_steps=2, train_timesteps=2))
    generation = graph.add(GenerationNode, {"overlap": "inpaint", "chunk_period": CHUNK_PERIOD, "executor": "seq",
                                            "stats_period": 3600.0}, agent=agent)
    assert generation.active and generation.runner.executing is not None
    assert generation.runner.executing.config.period == CHUNK_PERIOD
    assert generation.runner.inpaint_for(0.0) is None  # nothing executing yet: plain sampling
    states, actions = _context_source(graph, generation)
    states.publish(_percept(generation, 1))
    assert graph.spin_until(lambda: len(actions) >= 1)
    # The next request is conditioned on the chunk this node published (it executes when that one arrives).
    inpaint = generation.runner.inpaint_for(generation.clock.now())
    assert inpaint is not None
    np.testing.assert_array_equal(inpaint.chunk.action, np.asarray(actions[0].action, dtype=np.float64))
    states.publish(_percept(generation, 2))
    assert graph.spin_until(lambda: any(a.observation_seq == 2 for a in actions))
    assert all(np.isfinite(a.action).all() for a in actions)


def test_inpaint_mask_guidance_and_method_reach_the_runner(graph: Graph) -> None:
    agent = DiffusionPolicyAgent(tiny(n_steps=2, train_timesteps=2))
    generation = graph.add(GenerationNode, {"overlap": "inpaint", "chunk_period": CHUNK_PERIOD, "executor": "seq",
                                            "inpaint_mask": "rtc", "inpaint_max_guidance": 2.5,
                                            "inpaint_method": "vjp", "stats_period": 3600.0}, agent=agent)
    assert generation.runner.executing.config == InpaintConfig(CHUNK_PERIOD, max_guidance=2.5, method="vjp",
                                                               mask="rtc")


def test_an_unknown_inpaint_mask_is_refused_in_one_line_naming_the_masks(graph: Graph) -> None:
    with pytest.raises(ConfigError) as error:
        GenerationNode(context=graph.context, autostart=False, parameter_overrides=[
            Parameter("overlap", value="inpaint"), Parameter("chunk_period", value=CHUNK_PERIOD),
            Parameter("inpaint_mask", value="suffix"), Parameter("stats_period", value=3600.0)],
            agent=DiffusionPolicyAgent(tiny(n_steps=2, train_timesteps=2)))
    message = str(error.value)
    assert error.value.field == "generation_node.inpaint_mask" and "'suffix'" in message and "\n" not in message
    assert all(repr(mask) in message for mask in MASKS)


def test_noise_scale_is_refused_for_an_agent_that_samples_no_noise(graph: Graph) -> None:
    """``noise_scale`` (core.stages.set_noise_scale) other than 1: refused in one line at configure for the
    synthetic agent; set on a diffusion agent at configure."""
    generation = refused_for_the_synthetic_agent(graph, "noise_scale", Parameter("noise_scale", value=0.0))
    generation.set_parameters([Parameter("noise_scale", value=1.0)])  # as trained: nothing to change
    generation.start()
    assert generation.active
    generation.trigger_deactivate()


def test_noise_scale_reaches_the_diffusion_agent_at_configure(graph: Graph) -> None:
    agent = DiffusionPolicyAgent(tiny(n_steps=2, train_timesteps=2))
    generation = graph.add(GenerationNode, {"noise_scale": 0.0, "executor": "seq", "stats_period": 3600.0},
                           agent=agent)
    assert generation.active and agent.noise_scale == 0.0
    assert not agent.init_request(5).sample.any()
