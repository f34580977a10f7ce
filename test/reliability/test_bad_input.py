"""No silent death, no quiet loss: the real node processes get percepts of the wrong dtype or shape,
stale ones under the ``error`` policy, absurd sequence numbers and stamps, forwarded stale entries;
each is counted under its reason and actions keep coming. A node that can no longer work says ERROR
on /diagnostics and exits non-zero. The context node's ``wait`` policy never blocks its thread."""

from __future__ import annotations

import time
from typing import Any

import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from builtin_interfaces.msg import Time
from std_msgs.msg import String

from auras_ros.msg import AgentAction, ContextEntry, ContextState, Percept, PipelineStats
from auras_ros.nodes.health import FATAL_EXIT
from auras_ros.nodes.qos import LATCHED, LATEST_RELIABLE, ORDERED
from reliability_graph import NodeProcesses, Probe, context_state, drops, inline_codec, now_stamp

WIDTH = 1024  # the synthetic model's generation width: what a good percept holds
YEAR_2038 = Time(sec=2**31 - 1)  # the farthest stamp a message can carry


class GenerationUnderTest:
    """A generation_node process, fed ContextState by the probe, its actions and stats recorded."""

    def __init__(self, graph: NodeProcesses, probe: Probe, **params: Any) -> None:
        self.probe = probe
        self.codec = inline_codec()
        self.actions: list[AgentAction] = probe.record(AgentAction, "auras/action", ORDERED)
        self.stats: list[PipelineStats] = probe.record(PipelineStats, "auras/pipeline_stats", ORDERED)
        self.diagnostics: list[DiagnosticArray] = probe.record(DiagnosticArray, "/diagnostics", ORDERED)
        self.states = probe.node.create_publisher(ContextState, "auras/context", LATCHED)
        self.proc = graph.start("generation_node", stats_period=0.5, **params)
        self.seq = 0
        assert probe.spin_until(lambda: self.states.get_subscription_count() > 0, [self.proc])
        # A stats window published before the node's stats publisher matched the probe is lost, and
        # with it the drops it counted: wait for the first window before sending anything.
        assert probe.spin_until(lambda: self.stats, [self.proc])

    def send(self, tensor: torch.Tensor | None, age_s: float = 0.0, **fields: Any) -> None:
        self.seq += 1
        fields = {"stamp": now_stamp(self.probe, -age_s), "seq": self.seq, **fields}
        self.states.publish(context_state(self.codec, tensor, **fields))

    def wait(self, done) -> bool:
        return self.probe.spin_until(done, [self.proc])

    def acts_on_a_good_percept(self) -> bool:
        """A fresh, well-formed percept still leads to an action (the frame clock lives)."""
        seen = len(self.actions)
        self.send(torch.zeros(WIDTH))
        return self.wait(lambda: len(self.actions) > seen) and self.actions[-1].observation_seq == self.seq


def _faults(stats: list[PipelineStats]) -> int:
    """Percepts refused at intake (bad_payload) or failing in the frame (frame_error, bad_input)."""
    return sum(n for reason, n in drops(stats).items()
               if reason.startswith(("bad_payload:percept", "frame_error:", "bad_input:")))


def test_percepts_of_the_wrong_dtype_or_shape_are_counted_and_actions_keep_coming(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        generation = GenerationUnderTest(graph, probe)
        assert generation.acts_on_a_good_percept(), graph.output()
        for bad in (torch.zeros(WIDTH, dtype=torch.float64), torch.zeros(7)):  # the two
            counted = _faults(generation.stats)
            generation.send(bad)
            assert generation.wait(lambda: _faults(generation.stats) > counted), (bad.dtype, bad.shape, graph.output())
            assert generation.acts_on_a_good_percept(), (bad.dtype, bad.shape, graph.output())
        assert generation.proc.poll() is None


def test_stale_reads_under_the_error_policy_are_counted_and_generation_goes_on(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        generation = GenerationUnderTest(graph, probe, **{"percept.policy": "error", "percept.max_age": 0.5})
        for n, age in enumerate((30.0, 29.0), start=1):  # sensed long ago, in order
            generation.send(torch.zeros(WIDTH), age_s=age)
            assert generation.wait(lambda: drops(generation.stats)["stale_error:percept"] >= n), graph.output()
        assert generation.acts_on_a_good_percept(), graph.output()


def test_absurd_seq_and_stamps_are_refused_and_do_not_stall_generation(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        generation = GenerationUnderTest(graph, probe)
        absurd = [{"seq": 2**63}, {"seq": 2**64 - 1}, {"stamp": YEAR_2038}]
        for n, fields in enumerate(absurd, start=1):
            generation.send(torch.zeros(WIDTH), **fields)
            assert generation.wait(lambda: drops(generation.stats)["bad_origin:percept"] >= n), (fields, graph.output())
        assert generation.actions == []
        generation.seq = 0  # numbering starts low again: nothing absurd was taken as the new maximum
        assert generation.acts_on_a_good_percept(), graph.output()


def test_a_forwarded_stale_entry_is_counted_as_such_not_as_a_bad_payload(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        generation = GenerationUnderTest(graph, probe)
        generation.send(None, verdict=ContextEntry.VERDICT_REJECTED)  # what the context node sends: no value
        assert generation.wait(lambda: drops(generation.stats)["context_rejected:percept"] == 1), graph.output()
        assert drops(generation.stats)["bad_payload:percept"] == 0
        assert generation.acts_on_a_good_percept(), graph.output()


def test_a_generation_node_that_can_no_longer_work_says_error_and_exits_non_zero(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        generation = GenerationUnderTest(graph, probe, **{"percept.policy": "error", "percept.max_age": 0.5})
        # Every percept is stale: every frame fails, no decision ever leaves.
        first_sent = time.monotonic()
        probe.spin_until(lambda: generation.proc.poll() is not None,
                         each=lambda: generation.send(torch.zeros(WIDTH), age_s=30.0))
        assert generation.proc.wait(timeout=30) == FATAL_EXIT, graph.output()
        print(f"exited {FATAL_EXIT} {time.monotonic() - first_sent:.2f} s after the first of "
              f"{generation.seq} stale percepts")
        errors = [s for a in generation.diagnostics for s in a.status
                  if s.name == "auras_ros/generation_node" and s.level == DiagnosticStatus.ERROR]
        assert errors and "stale" in errors[-1].message, (generation.diagnostics, graph.output())
        assert "Traceback" not in graph.output()


def test_the_wait_policy_never_blocks_the_context_node(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        snapshots: list[ContextState] = probe.record(ContextState, "auras/context", LATCHED)
        percepts = probe.node.create_publisher(Percept, "auras/percept", LATEST_RELIABLE)
        instructions = probe.node.create_publisher(String, "auras/instruction", ORDERED)
        # A stale percept under 'wait' with a minute's timeout: had the snapshot waited, each of the
        # instructions below would take a minute to show.
        proc = graph.start("context_node", **{"percept.policy": "wait", "percept.max_age": 0.1,
                                              "percept.wait_timeout": 60.0})
        assert probe.spin_until(lambda: percepts.get_subscription_count() and instructions.get_subscription_count(),
                                [proc])
        stale = Percept(key="percept", observation_seq=1, source_id=1)
        stale.header.stamp = now_stamp(probe, -30.0)
        stale.tensor.dtype = "float32"
        # Sent until it shows (a repeat is refused as not new): a message sent the moment this side
        # matched can be lost while the context node's side of the match is still forming.
        assert probe.spin_until(lambda: len(snapshots) >= 1, [proc], each=lambda: percepts.publish(stale)), \
            graph.output()

        def send_instructions() -> None:
            for n in range(5):
                instructions.publish(String(data=f"instruction {n}"))

        assert probe.spin_until(lambda: any(e.key == "instruction" and bytes(e.value.data) == b"instruction 4"
                                            for s in snapshots for e in s.entries), [proc], timeout_s=50.0,
                                each=send_instructions)
        percept = next(e for e in snapshots[-1].entries if e.key == "percept")
        assert percept.verdict == ContextEntry.VERDICT_REJECTED and percept.source_id == 1
