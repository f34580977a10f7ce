"""generation_node: owns the frame clock and runs generation under controlled pipeline parallelism.

Percepts arrive through the context node's ContextState; each frame the executor admits the newest
one as a request and runs every in-flight request's generation stage in one merged call reading the
freshest public context (mode ``auras``), or one of the baselines (``seq``, ``dec``, ``par``) over the
same agent, so the same launch compares them. Publishes AgentAction per decision, PipelineStats
periodically, and a frame tick for a frame-triggered perception node.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable

import torch
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from std_msgs.msg import UInt64

from auras_ros.core.baselines import DecoupledRunner, ParallelRunner, SequentialRunner
from auras_ros.core.context import PublicContext, SourceOrder
from auras_ros.core.errors import InputError
from auras_ros.core.external import ExternalPerception
from auras_ros.core.metrics import Decision, MetricsRecorder
from auras_ros.core.pipeline import AurasPipeline, PipelineConfig
from auras_ros.core.runner import Runner
from auras_ros.core.sources import LatestObservation
from auras_ros.core.stages import PERCEPT_KEY, Observation
from auras_ros.models.factory import build_agent, percept_from_tensor
from auras_ros.models.inputs import check_finite
from auras_ros.msg import AgentAction, ContextEntry, ContextState, PipelineStats
from auras_ros.nodes.context_keys import declare_context_keys
from auras_ros.nodes.health import OK, WARN, Health, Status
from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.payload import PayloadCodec, transport_params
from auras_ros.nodes.qos import LATCHED, LATEST_RELIABLE, ORDERED
from auras_ros.nodes.ros_clock import RosClock
from auras_ros.nodes.ros_convert import decision_to_action, metrics_to_stats, to_seconds
from auras_ros.nodes.runner import run_node
from auras_ros.transport import PayloadUnavailable

MODES = ("auras", "seq", "dec", "par")

PARAMS = (
    Param("model", "synthetic", "agent preset (synthetic, diffusion-tiny, ar-tiny) or local checkpoint directory"),
    Param("device", "cpu", "torch device of the model", choices=("cpu", "cuda")),
    Param("mode", "auras", "executor: the Auras pipeline or a baseline", choices=MODES),
    Param("pp_generation", 2, "pipeline degree of generation: frames a request spends in generation", low=1, high=64),
    Param("fetch_offset", -1, "generation reads the context of frame t + fetch_offset", choices=(0, -1)),
    Param("alpha", 0.0, "skew of generation iterations towards later (fresher) stages", low=-10.0, high=10.0),
    Param("context_mode", "public", "public context (Auras) or each request's own percept (naive pipelining)",
          choices=("public", "private")),
    Param("frame_period", 0.0, "seconds per frame on the node's clock; 0: as fast as the slowest stage allows",
          low=0.0, high=10.0),
    Param("workers", 2, "PAR: requests run by independent workers", low=1, high=64),
    Param("lockstep", False, "frame-stepped worlds: after each frame tick, wait for the percept of the "
          "observation that tick produced before running the frame (frame_period 0 only)"),
    Param("action_frame_id", "base_link", "frame_id of the published actions"),
    Param("stats_period", 1.0, "seconds between PipelineStats reports", low=0.1, high=3600.0),
    Param("future_tolerance", 0.05, "seconds a sensor stamp may lie ahead of this node's clock", low=0.0, high=60.0),
    *transport_params(),
)


class GenerationNode(Node):
    def __init__(self, agent: Any = None, registry: Any = None,
                 on_stats: Callable[[PipelineStats], None] | None = None, **kwargs: Any) -> None:
        super().__init__("generation_node", **kwargs)
        self._on_stats = on_stats
        self.params = declare(self, PARAMS)
        keys = declare_context_keys(self)
        self.agent = agent if agent is not None else build_agent(self.params["model"], self.params["device"])
        self.codec = PayloadCodec(self.params, registry)
        self.clock = RosClock(self)
        self.public_context = PublicContext([k.spec for k in keys], self.clock)
        self.percepts = LatestObservation()
        self.recorder = MetricsRecorder()  # windows for PipelineStats
        self.run_recorder = MetricsRecorder(warmup_decisions=5)  # the whole run, for a final summary
        self.pipeline_config = PipelineConfig(1, self.params["pp_generation"], self.params["fetch_offset"],
                                              self.params["alpha"], None, self.params["context_mode"])
        self.runner = self._make_runner()
        self.spans: list[tuple[float, float]] = []  # (start, end) of each frame's generation, for overlap checks
        self._last_seen: dict[str, tuple[int, float]] = {}
        self._orders = {key: SourceOrder(self.params["future_tolerance"]) for key in self.public_context.keys}
        self.in_flight_max = 0

        # Callback groups named for what they protect: the frame clock (the executor's state), the
        # public-context replica, and the periodic reports.
        self.frame_group = MutuallyExclusiveCallbackGroup()
        self.context_group = MutuallyExclusiveCallbackGroup()
        self.stats_group = MutuallyExclusiveCallbackGroup()
        self.actions = self.create_publisher(AgentAction, "auras/action", ORDERED)
        self.stats = self.create_publisher(PipelineStats, "auras/pipeline_stats", ORDERED)
        self.ticks = self.create_publisher(UInt64, "auras/frame", LATEST_RELIABLE)
        self.create_subscription(ContextState, "auras/context", self._on_context, LATCHED,
                                 callback_group=self.context_group)
        self.create_timer(self.params["stats_period"], self._publish_stats, callback_group=self.stats_group)
        self.health = Health(self, self._health, self.params["stats_period"], callback_group=self.stats_group)
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._running.set()
        if self.params["mode"] in ("dec", "par"):
            # Their workers are threads of their own: uncontrolled by construction.
            self._thread = threading.Thread(target=self._run_threaded, name="generation-baseline", daemon=True)
            self._thread.start()
        elif self.params["frame_period"] > 0:
            self.create_timer(self.params["frame_period"], self._frame, callback_group=self.frame_group)
        else:
            self._thread = threading.Thread(target=self._run_frames, name="frame-clock", daemon=True)
            self._thread.start()

    def _make_runner(self) -> Runner:
        agent = ExternalPerception(self.agent)
        common = dict(recorder=self.recorder, on_decision=self._publish_decision)
        mode = self.params["mode"]
        if mode == "auras":
            return AurasPipeline(agent, self.pipeline_config, self.percepts, self.clock, context=self.public_context, **common)
        if mode == "seq":
            return SequentialRunner(agent, self.percepts, self.clock, **common)
        if mode == "dec":
            return DecoupledRunner(agent, self.percepts, self.clock, **common)
        return ParallelRunner(agent, self.percepts, self.clock, self.params["workers"], **common)

    # -- the frame clock -----------------------------------------------------------------------------
    def _frame(self, tick: bool = True) -> None:
        if self.health.failed.is_set():
            return  # the process is on its way out (nodes/health.py)
        if tick:
            self.ticks.publish(UInt64(data=self.runner.frame))
        started = time.perf_counter()
        self.runner.guarded_step()
        self._check_faults()
        if isinstance(self.runner, AurasPipeline):
            self.in_flight_max = max(self.in_flight_max, self.runner.in_flight)
        self.spans.append((started, time.perf_counter()))
        del self.spans[:-1000]

    def _run_frames(self) -> None:
        """As fast as the slowest stage allows; a frame with nothing in flight waits for a new percept.

        In lockstep with a frame-stepped world, each frame's tick makes the world render the frame's
        observation; the frame runs once its percept arrived, so generation in frame t reads O_t as in
        the paper (fetch_offset 0) and the decision acts one frame later.
        """
        admitted = self.percepts.version
        while self._running.is_set() and not self.health.failed.is_set():
            if self.params["lockstep"]:
                self.ticks.publish(UInt64(data=self.runner.frame))
                if not self.percepts.wait_newer(admitted, timeout=0.5):
                    continue  # the tick or the image was lost: ask again
            else:
                idle = not isinstance(self.runner, AurasPipeline) or self.runner.in_flight == 0
                if idle and not self.percepts.wait_newer(admitted, timeout=0.1):
                    continue
            admitted = self.percepts.version
            self._frame(tick=not self.params["lockstep"])

    def _run_threaded(self) -> None:
        self.runner.run_guarded(decisions=sys.maxsize)
        self._check_faults()

    def _check_faults(self) -> None:
        """A fault already counted at the frame boundary: log it (throttled); give up when it repeats."""
        faults = self.runner.faults
        if faults.consecutive:
            self.get_logger().error(f"frame failed ({faults.last_reason}): {faults.last_error!r}",
                                    throttle_duration_sec=2.0)
        if faults.fatal:
            self.health.fatal(f"{faults.consecutive} frames failed with no decision between: {faults.last_error!r}")
            self._running.clear()

    def _health(self) -> Status:
        faults = self.runner.faults
        values = {"frames": self.runner.frame, **faults.counts}
        if faults.consecutive:
            return Status(WARN, f"last frame failed: {faults.last_reason}", values)
        return Status(OK, "generating", values)

    def _publish_decision(self, decision: Decision) -> None:
        self.run_recorder.decision(decision)
        self.actions.publish(decision_to_action(decision, self.params["action_frame_id"]))

    # -- the public-context replica ------------------------------------------------------------------
    def _on_context(self, msg: ContextState) -> None:
        for entry in msg.entries:
            if entry.verdict == ContextEntry.VERDICT_MISSING:
                continue
            stamp, seq = to_seconds(entry.stamp), entry.observation_seq
            if self._last_seen.get(entry.key) == (seq, stamp) or entry.key not in self.public_context.keys:
                continue
            self._last_seen[entry.key] = (seq, stamp)
            if entry.verdict == ContextEntry.VERDICT_REJECTED:
                # The context node's policy forbids its use (too old): it forwards no value, which
                # is not a bad payload; generation goes on with what it has and its own policy.
                self.recorder.drop(f"context_rejected:{entry.key}")
                continue
            try:
                self._orders[entry.key].admit(entry.source_id, seq, stamp, self.clock.now(), f"generation_node {entry.key!r}")
            except InputError as error:
                self.recorder.drop(f"bad_origin:{entry.key}")
                self.get_logger().warning(f"rejected context entry {entry.key!r}: {error}", throttle_duration_sec=2.0)
                continue
            try:
                value = self.codec.decode(entry.value)
                if isinstance(value, torch.Tensor):
                    check_finite(value, f"context value {entry.key!r}", "generation_node")
            except (InputError, PayloadUnavailable) as error:
                self.recorder.drop(f"bad_payload:{entry.key}")
                self.get_logger().warning(f"rejected context entry {entry.key!r}: {error}", throttle_duration_sec=2.0)
                continue
            if entry.key == PERCEPT_KEY:
                # The executor admits it at its next frame and writes it into that frame's slot.
                self.percepts.push(Observation(seq, stamp, percept_from_tensor(self.agent, value)))
            else:
                self.public_context.write(entry.key, value, stamp=stamp, seq=seq)

    # -- reports and shutdown ------------------------------------------------------------------------
    def _publish_stats(self) -> None:
        metrics = self.recorder.take_window()
        in_flight = self.runner.in_flight if isinstance(self.runner, AurasPipeline) else metrics.in_flight_max
        stats = metrics_to_stats(
            metrics, stamp=self.get_clock().now().to_msg(), mode=self.params["mode"], pp_perception=1,
            pp_generation=self.params["pp_generation"], fetch_offset=self.params["fetch_offset"],
            frames=self.runner.frame, in_flight=in_flight)
        self.stats.publish(stats)
        if self._on_stats is not None:
            self._on_stats(stats)

    def stop(self) -> None:
        """End the frame clock and the executor's threads; in-flight work finishes first."""
        self._running.clear()
        self.runner.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def destroy_node(self) -> None:
        self.stop()
        self.runner.close()
        self.codec.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(GenerationNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
