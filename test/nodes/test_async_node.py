"""The generation node runs the peers' ASYNC executor (core.async_runner) from its ``executor``
parameter: configure refuses it without a chunk row period, naming ``chunk_period``; with one it
decides at once on its first percept and then waits for the rows of that chunk to run low."""

from __future__ import annotations

import pytest
from rclpy.parameter import Parameter

from auras_ros.core.async_runner import AsyncRunner
from auras_ros.core.errors import ConfigError
from auras_ros.core.workload import SyntheticAgent
from auras_ros.nodes.generation_node import GenerationNode
from node_graph import Graph
from test_generation_lifecycle import _context_source, _state


def test_async_needs_a_chunk_period_and_then_decides_on_its_first_percept(graph: Graph) -> None:
    generation = GenerationNode(context=graph.context, autostart=False, parameter_overrides=[
        Parameter("executor", value="async"), Parameter("stats_period", value=3600.0)])
    graph.nodes.append(generation)  # destroyed with the graph
    with pytest.raises(ConfigError) as error:
        generation.start()
    assert error.value.field == "chunk_period" and "async:0.5:weighted_average" in str(error.value)
    assert not generation.active and generation.runner is None

    # Rows long enough that the first chunk never runs low within the test: one decision, no second.
    generation.set_parameters([Parameter("chunk_period", value=10.0)])
    generation.start()
    assert generation.active and isinstance(generation.runner, AsyncRunner)
    assert (generation.runner.chunk_period, str(generation.spec)) == (10.0, "async:0.5:weighted_average")
    states, actions = _context_source(graph, generation)
    states.publish(_state(generation, 1))
    assert graph.spin_until(lambda: any(a.observation_seq == 1 for a in actions))
    frame = generation.runner.frame
    states.publish(_state(generation, 2))
    assert graph.spin_until(lambda: generation.runner.frame > frame)  # a frame ran on the new percept...
    # ...and did not request: the synthetic agent's chunk is 1 row, not begun for 10 s, so 1/1 > 0.5 left.
    assert generation.recorder.decisions_recorded == 1
    generation.trigger_deactivate()


class ChunkAgent(SyntheticAgent):
    """States its chunk's row period, as a checkpoint would."""

    chunk_period = 0.02


def test_the_checkpoints_row_period_comes_before_the_frame_period(graph: Graph) -> None:
    """core.chunks.row_period's rule, as make_runner and the action node read it: chunk_period, else the
    checkpoint's, else frame_period."""
    generation = GenerationNode(agent=ChunkAgent(), context=graph.context, autostart=False, parameter_overrides=[
        Parameter("executor", value="async"), Parameter("frame_period", value=0.05),
        Parameter("stats_period", value=3600.0)])
    graph.nodes.append(generation)
    generation.start()
    assert generation.runner.chunk_period == 0.02
    generation.trigger_deactivate()
    generation.trigger_cleanup()
    generation.set_parameters([Parameter("chunk_period", value=0.1)])
    generation.start()
    assert generation.runner.chunk_period == 0.1  # an explicit one wins
    generation.trigger_deactivate()
