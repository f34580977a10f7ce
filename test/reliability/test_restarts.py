"""Restarts recover: SIGKILL one node of the distributed graph, start it again, and actions come back,
whatever sequence numbers the old node had reached (a new run of a source restarts the ordering)."""

from __future__ import annotations

import time
from typing import Any, Callable

from auras_ros.msg import AgentAction, ContextState, Percept
from auras_ros.nodes.qos import LATCHED, LATEST_RELIABLE, ORDERED
from node_graph import DEMO_FRAMES
from reliability_graph import NodeProcesses, Probe

GRAPH = ("camera_node", "perception_node", "context_node", "generation_node")


def _first(messages: list, times: list[float], new: Callable[[Any], bool]) -> float:
    return next((t for m, t in zip(messages, times, strict=False) if new(m)), float("nan"))


def test_each_killed_and_restarted_node_brings_actions_back(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        action_times: list[float] = []
        actions: list[AgentAction] = probe.record(AgentAction, "auras/action", ORDERED, action_times)
        # The first message of each restarted node: a percept of a new source, a context snapshot
        # numbered from 1 again, a first action (the time to actions is printed, not asserted).
        percept_times: list[float] = []
        percepts = probe.record(Percept, "auras/percept", LATEST_RELIABLE, percept_times)
        context_times: list[float] = []
        contexts = probe.record(ContextState, "auras/context", LATCHED, context_times)
        for executable in GRAPH:
            graph.start(executable, source=str(DEMO_FRAMES), rate_hz=60.0) if executable == "camera_node" \
                else graph.start(executable)
        running = lambda: list(graph.procs.values())  # noqa: E731 - the current processes, after restarts too
        # A seq the new perception node takes seconds to reach, beyond the percepts it may lose while
        # the other nodes discover it.
        assert probe.spin_until(lambda: actions and actions[-1].observation_seq >= 300, running()), graph.output()

        old_source, old_version = None, None
        for victim in ("perception_node", "context_node", "generation_node"):
            seen = len(actions)
            highest_seq = max(a.observation_seq for a in actions)
            # What the old nodes last said (the probe may not have heard a restarted node yet).
            old_source = percepts[-1].source_id if percepts else old_source
            old_version = contexts[-1].version if contexts else old_version
            for received in (percepts, percept_times, contexts, context_times):
                received.clear()
            restarted_at = time.monotonic()
            graph.restart(victim)
            if victim == "perception_node":
                # The new node numbers its images from 1 again: its percepts must be acted on at once,
                # not once their seq passes the old node's (which blacked generation out for seconds).
                resumed = lambda a: a.observation_seq < highest_seq  # noqa: E731
            else:
                resumed = lambda a: True  # noqa: E731
            back = lambda: any(map(resumed, actions[seen:-10]))  # noqa: E731 - and 10 more since
            assert probe.spin_until(back, running()), (
                f"{victim}: {len(actions) - seen} actions after restart, seqs "
                f"{[a.observation_seq for a in actions[seen:]][-30:]}, highest before {highest_seq}\n{graph.output()}")
            first_message = {
                "perception_node": _first(percepts, percept_times, lambda m: m.source_id != old_source),
                "context_node": _first(contexts, context_times, lambda m: old_version is not None and m.version < old_version),
                "generation_node": action_times[seen]}[victim]
            first_action = _first(actions[seen:], action_times[seen:], resumed)
            print(f"{victim}: first message {first_message - restarted_at:.2f} s after the restart "
                  f"(process start), first action on it {first_action - first_message:.3f} s later")
        codes = graph.close()
    assert codes == [0] * len(GRAPH), graph.output()
