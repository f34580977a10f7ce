"""The ``wait`` staleness policy at the generation node never blocks the thread that could end the wait,
and never holds up a shutdown: with a minute's ``wait_timeout`` the node still decides once fresh
percepts arrive after a stale one, and SIGINT ends it long before the timeout, whichever key it waits on."""

from __future__ import annotations

import signal

import torch

from reliability_graph import NodeProcesses, Probe, drops
from test_bad_input import WIDTH, GenerationUnderTest

WAIT_TIMEOUT_S = 60.0  # the longest the parameter allows; a shutdown that waited it out would fail below


def _interrupt_exits_before_the_wait_timeout(generation: GenerationUnderTest, graph: NodeProcesses) -> None:
    generation.proc.send_signal(signal.SIGINT)
    # Within the wait_timeout at all: a process still blocked in the wait would run past it.
    assert generation.proc.wait(timeout=WAIT_TIMEOUT_S / 2) == 0, graph.output()


def test_a_stale_percept_under_wait_does_not_stop_fresh_ones_and_shutdown_is_prompt(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        generation = GenerationUnderTest(graph, probe, **{"percept.policy": "wait", "percept.max_age": 1.0,
                                                          "percept.wait_timeout": WAIT_TIMEOUT_S})
        generation.send(torch.zeros(WIDTH), age_s=30.0)
        # The stale percept was waited on without blocking: the wait ended at once, counted.
        assert generation.wait(lambda: drops(generation.stats)["wait_timeout:percept"] >= 1), graph.output()
        assert generation.acts_on_a_good_percept(), graph.output()
        _interrupt_exits_before_the_wait_timeout(generation, graph)


def test_a_wait_on_a_key_no_one_sends_does_not_hold_up_shutdown(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        generation = GenerationUnderTest(graph, probe, **{
            "keys": "[percept,instruction]", "instruction.policy": "wait", "instruction.required": False,
            "instruction.wait_timeout": WAIT_TIMEOUT_S})
        frames = len(generation.stats)
        generation.send(torch.zeros(WIDTH))
        # A frame now waits for an instruction that never comes (its requests in flight); the node's
        # other threads go on (stats keep coming), and no action leaves without the instruction.
        assert generation.wait(lambda: len(generation.stats) > frames + 1), graph.output()
        assert generation.actions == []
        _interrupt_exits_before_the_wait_timeout(generation, graph)
