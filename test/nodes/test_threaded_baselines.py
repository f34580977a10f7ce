"""DEC and PAR through the generation node decide at most once per percept, as in the core's real-time
runs: each worker takes a percept no other took, and with no new percept no new decision."""

from __future__ import annotations

import pytest

from auras_ros.nodes.generation_node import GenerationNode
from node_graph import Graph
from test_generation_lifecycle import _context_source, _state

PERCEPTS = 5
NO_OBSERVATION = "no_observation"  # what a worker counts when it found no new percept in its wait


@pytest.mark.parametrize("executor", ["dec", "par:3"])
def test_a_threaded_baseline_decides_at_most_once_per_percept(graph: Graph, executor: str) -> None:
    generation = graph.add(GenerationNode, {"stats_period": 3600.0, "executor": executor})
    states, actions = _context_source(graph, generation)
    assert str(generation.spec) == executor

    def idle_waits() -> int:
        return generation.recorder.summary().drops.get(NO_OBSERVATION, 0)

    for seq in range(1, PERCEPTS + 1):
        states.publish(_state(generation, seq))
        assert graph.spin_until(lambda: generation.percepts.version == seq)  # one at a time: KEEP_LAST 1
        assert graph.spin_until(lambda: any(a.observation_seq == seq for a in actions))
    # Every worker has since looked for a new percept and found none (PAR: each of them; DEC: its
    # perception thread): had it re-read an old one, it would have decided on it again meanwhile.
    waited = idle_waits()
    assert graph.spin_until(lambda: idle_waits() >= waited + generation.spec.workers)
    decided = generation.recorder.decisions_recorded
    assert graph.spin_until(lambda: len(actions) == decided)  # every decision that left has arrived

    seqs = [a.observation_seq for a in actions]
    assert len(seqs) <= PERCEPTS and len(set(seqs)) == len(seqs)
    assert set(seqs) == set(range(1, PERCEPTS + 1))
