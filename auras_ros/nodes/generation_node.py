"""generation_node: owns the frame clock and runs generation under controlled pipeline parallelism.

Percepts arrive through the context node's ContextState; each frame the executor admits the newest
one as a request and runs every in-flight request's generation stage in one merged call reading the
freshest public context (``auras``), or one of the baselines (``seq``, ``dec``, ``par``) over the
same agent, so the same launch compares them. The executor is a ``core.spec.ExecutorSpec``: the
``executor`` parameter in its text form (the one way to choose it, as in every launch file).
Perception ran in the perception node; an admitted percept still passes ``pp_perception`` frame
slots before the public context holds it, so every degree keeps the core's schedule. Publishes
AgentAction per decision, PipelineStats periodically, and a frame tick for a frame-triggered perception
node.

A managed (lifecycle) node, as the action node: configure checks the parameters and loads the model,
the executor and the public context (a ConfigError refuses the transition); activate starts the frame
clock; deactivate stops it, drops the requests in flight (counted as cancels) and publishes no action
more, which is generation's stop: the action node's watchdog then commands the robot's stop;
cleanup drops what configure built. With ``autostart`` (default) the node configures and activates
itself; a lifecycle manager sets it false and drives ``~/change_state``.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable

import torch
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_msgs.msg import UInt64

from auras_ros.core.chunks import check_overlap, row_period
from auras_ros.core.context import PublicContext, SourceOrder
from auras_ros.core.cpu_costs import CpuLedger
from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.external import ExternalPerception
from auras_ros.core.inpaint import (DEFAULT_MASK, DEFAULT_MAX_GUIDANCE, DEFAULT_METHOD, GUIDANCE_METHODS, MASKS,
                                    InpaintConfig)
from auras_ros.core.metrics import Decision, MetricsRecorder
from auras_ros.core.pacing import FreshArrivals, Pacer, Pacing
from auras_ros.core.recent import RecentDecisions
from auras_ros.core.runner import Runner
from auras_ros.core.sources import ADMITTED, LatestObservation, SourceFence, new_source_id
from auras_ros.core.spec import DEFAULT_EXECUTOR, TEXT_FORMS, ExecutorSpec, make_runner
from auras_ros.core.stages import PERCEPT_KEY, Observation, inpaints, set_noise_scale
from auras_ros.models.inputs import check_finite
from auras_ros.msg import AgentAction, ContextEntry, ContextState, PipelineStats
from auras_ros.nodes.agent_params import AGENT_PARAMS, agent_from_params
from auras_ros.nodes.context_keys import FUTURE_TOLERANCE, declare_context_keys
from auras_ros.nodes.eval_ready import MatchedEvaluators
from auras_ros.nodes.health import ERROR, OK, WARN, Health, Status, with_graph_captures
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.managed import (
    refuse_configure, refuse_unavailable_transitions, start_if, start as start_managed)
from auras_ros.nodes.params import MAX_NAME, Param, declare, read
from auras_ros.nodes.payload import PayloadCodec, transport_params
from auras_ros.nodes.qos import LATCHED, LATEST_RELIABLE, ORDERED
from auras_ros.nodes.ros_clock import RosClock
from auras_ros.nodes.ros_convert import decision_to_action, metrics_to_stats, to_seconds
from auras_ros.nodes.process import run_node
from auras_ros.transport import PayloadUnavailable
from auras_ros.core import topics

THREADED = ("dec", "par")  # executors whose workers run in threads of their own, not on the frame clock
DEACTIVATED = "deactivated"  # cancel reason of the requests a deactivation drops
INACTIVE = "inactive"  # drop reason of the context states that arrive while not generating
UNKNOWN_KEY = "unknown_context_key"  # drop reason of context entries under a key this node does not read
SOURCE_TAKEOVER_S = 0.5  # wall seconds a key's source must be silent before another one is taken
CONFLICT_REPORT_S = 5.0  # a second source refused within this many seconds keeps /diagnostics at ERROR

PARAMS = (
    Param("autostart", True, "configure and activate at start (false: wait for a lifecycle manager)"),
    *AGENT_PARAMS,
    Param("executor", DEFAULT_EXECUTOR, f"the executor in its text form, {TEXT_FORMS}: its pipeline degrees "
          "pp_perception+pp_generation, fetch offset and alpha skew, or a baseline"),
    Param("frame_period", 0.0, "seconds per frame on the node's clock; 0: as fast as the slowest stage allows",
          low=0.0, high=10.0),
    Param("chunk_period", 0.0, "async executor and overlap inpaint: seconds between an action chunk's rows, as "
          "the action node plays them: give both nodes the same value (0: the checkpoint's if it states one, else "
          "frame_period if > 0; with neither, both are refused)", low=0.0, high=10.0),
    Param("overlap", "replace", "the overlap policy the action node plays this node's chunks under (its `overlap`); "
          "inpaint: each request's chunk is guided toward the one executing when it arrives (core.inpaint; rows "
          "chunk_period apart, else the checkpoint's or frame_period), refused for an agent that does not inpaint; "
          "the others change nothing here", parse=check_overlap),
    Param("inpaint_mask", DEFAULT_MASK, "overlap inpaint: which rows are guided: prefix (RTC's soft mask behind the "
          "rows that pass during generation; none when none passes, as plain sampling) or rtc (RTC's soft mask at "
          "every delay: smaller seams, slower reaction; core.inpaint)", choices=MASKS),
    Param("inpaint_max_guidance", DEFAULT_MAX_GUIDANCE, "overlap inpaint: beta, the clip on RTC's guidance weight "
          "(lower: the new chunk follows the executing one less closely)", low=0.0, high=1e6),
    Param("inpaint_method", DEFAULT_METHOD, "overlap inpaint: x0_blend (each step's clean estimate moved toward the "
          "executing chunk by the mask, a plain step's cost) or vjp (RTC's vector-Jacobian guidance, about twice "
          "a step's cost on the CPU)", choices=GUIDANCE_METHODS),
    # Generation's own setting of the agent (perception samples nothing), read at configure.
    Param("noise_scale", 1.0, "scale of a diffusion agent's initial noise x_T and DDPM's per-step noise (1: as "
          "trained; 0: deterministic, no sampling variance between consecutive chunks, smaller seams; "
          "core.stages.set_noise_scale), refused other than 1 for an agent that samples no noise", low=0.0),
    Param("lockstep", False, "frame-stepped worlds: after each frame tick, wait for the percept of the "
          "observation that tick produced before running the frame (frame_period 0 only)"),
    Param("frame_per_percept", True, "real time: every frame waits for a new percept (at most "
          f"{Pacing.percept_wait_s:g} s) even while requests are in flight, so each frame admits a fresh observation "
          "and requests advance one stage per camera frame, as in the paper and the core's real-time runs; "
          "false: frames run back to back while requests are in flight (measured worse: README)"),
    Param("action_frame_id", "base_link", "frame_id of the published actions", max_length=MAX_NAME),
    Param("stats_period", 1.0, "seconds between PipelineStats reports", low=0.1, high=3600.0),
    FUTURE_TOLERANCE,
    *transport_params(),
)


def executor_spec(params: dict[str, Any]) -> ExecutorSpec:
    return ExecutorSpec.parse(params["executor"])


def chunk_period(params: dict[str, Any], agent: Any) -> float | None:
    """The seconds between chunk rows that ASYNC paces its requests and inpaint times its guidance by,
    by ``core.chunks.row_period``'s rule: ``chunk_period``, else the checkpoint's, else ``frame_period``
    (None: none of them; what needs one refuses)."""
    return row_period(params["chunk_period"], getattr(agent, "chunk_period", None), params["frame_period"])


def inpaint_config(params: dict[str, Any], agent: Any) -> InpaintConfig | None:
    """The ``inpaint`` overlap's conditioning (None for the other overlaps); ConfigError for an agent
    that can not guide its chunks, or with no row period to time them by."""
    if params["overlap"] != "inpaint":
        return None
    if not inpaints(agent):
        raise ConfigError("overlap", "inpaint", "an agent that inpaints its chunks (the diffusion "
                          f"policies), not {type(agent).__name__}: choose another overlap")
    period = chunk_period(params, agent)
    if period is None:
        raise ConfigError("chunk_period", 0.0, "the seconds between an action chunk's rows for overlap inpaint "
                          "(or a checkpoint that states its own, or a frame_period > 0)")
    return InpaintConfig(period, max_guidance=params["inpaint_max_guidance"], method=params["inpaint_method"],
                         mask=params["inpaint_mask"])


GENERATION_FRAME = "generation frame"  # the CPU ledger's hop of one frame of the frame clock


class GenerationNode(LifecycleNode):
    def __init__(self, agent: Any = None, registry: Any = None, delivery: LocalDelivery | None = None,
                 on_stats: Callable[[PipelineStats], None] | None = None, autostart: bool | None = None,
                 cpu: CpuLedger | None = None, **kwargs: Any) -> None:
        """``agent`` skips loading one at configure (the composed process shares its own); ``autostart``
        overrides the parameter (the composed process drives the transitions itself); ``cpu``: the ledger
        of CPU per hop (core/cpu_costs.py) this node adds to, one for all the composed process's nodes."""
        super().__init__("generation_node", **kwargs)
        self.cpu = cpu if cpu is not None else CpuLedger()
        refuse_unavailable_transitions(self)
        self._on_stats = on_stats
        self._given_agent = agent
        self._registry = registry
        self.params = declare(self, PARAMS)  # a bad value stops the node here, before any transition
        self._keys = declare_context_keys(self)
        self.clock = RosClock(self)
        self.recorder = MetricsRecorder()  # windows for PipelineStats, over every activation
        self.source_id = new_source_id()  # in every action: the gate takes actions from one generation run
        self.run = RecentDecisions()  # bounded: the run's totals and its newest decisions, for a final summary
        self.config_error: ConfigError | InputError | None = None
        self._truncated_reported = 0  # shm reads refused for truncation, as of the last health report
        # Built by configure, dropped by cleanup.
        self.spec: ExecutorSpec | None = None
        self.agent: Any = None
        self.codec: PayloadCodec | None = None
        self.public_context: PublicContext | None = None
        self.percepts: LatestObservation | None = None  # what the runner admits requests from
        self.runner: Runner | None = None
        self._last_seen: dict[str, tuple[int, float]] = {}
        self._orders: dict[str, SourceOrder] = {}
        self._fences: dict[str, SourceFence] = {}
        # The frame clock, while active: a thread, or a timer (frame_period > 0).
        self._active = threading.Event()
        self._frame_lock = threading.Lock()  # a frame and the deactivation never overlap
        self._replica_lock = threading.Lock()  # the public-context replica: updates, configure, cleanup
        self._thread: threading.Thread | None = None
        self._frame_timer: Any = None
        # /clock going back (a bag loop, a simulator reset): the replica's order starts again on the new
        # timeline. Requests in flight finish; the gate refuses their actions (stamped ahead of its clock).
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1), on_clock_change=False),
            post_callback=self._on_clock_back)

        # Callback groups named for what they protect: the frame clock (the executor's state), the
        # public-context replica, and the periodic reports.
        self.frame_group = MutuallyExclusiveCallbackGroup()
        self.context_group = MutuallyExclusiveCallbackGroup()
        self.stats_group = MutuallyExclusiveCallbackGroup()
        delivery = delivery if delivery is not None else LocalDelivery()
        self.actions = delivery.publisher(self, AgentAction, topics.ACTION, ORDERED)
        self.stats = delivery.publisher(self, PipelineStats, topics.PIPELINE_STATS, ORDERED)
        self.ticks = delivery.publisher(self, UInt64, topics.FRAME, LATEST_RELIABLE)
        # Only this process sees which readers its action writer matched: it confirms the evaluators'.
        self.evaluators = MatchedEvaluators(self, self.actions.publisher)
        # Inline: the replica takes a same-process context node's state in that node's thread (no executor
        # hop on the way to the frame clock); _replica_lock guards it against configure and cleanup.
        delivery.subscription(self, ContextState, topics.CONTEXT, self._on_context, LATCHED,
                              callback_group=self.context_group, inline=True)
        self.create_timer(self.params["stats_period"], self._publish_stats, callback_group=self.stats_group)
        self.health = Health(self, self._health, self.params["stats_period"], callback_group=self.stats_group)
        start_if(self, autostart)

    def start(self) -> None:
        """configure + activate; a ConfigError (or InputError: the model) if configure refused."""
        start_managed(self)

    # -- lifecycle --------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            params = read(self, PARAMS)
            spec = executor_spec(params)
            agent = self._given_agent
            if agent is None:
                agent = agent_from_params(params)
            set_noise_scale(agent, params["noise_scale"])
            public_context = PublicContext([k.spec for k in self._keys], self.clock)
            codec = PayloadCodec(params, self._registry)
            percepts, runner = self._make_runner(spec, agent, public_context, params)
        except (ConfigError, InputError) as error:
            return refuse_configure(self, error)
        self.params, self.spec, self.agent, self.public_context = params, spec, agent, public_context
        self.percepts, self.runner = percepts, runner
        self.codec = codec
        self._last_seen = {}
        self._orders = self._new_orders(params["future_tolerance"], public_context.keys)
        # One producer per key: entries of a second source (a second context or perception node) refused.
        self._fences = {key: SourceFence(f"generation_node context key {key!r}", SOURCE_TAKEOVER_S, 0.0)
                        for key in public_context.keys}
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        self._active.set()
        if self.params["frame_period"] > 0 and self.spec.kind not in THREADED:
            self._frame_timer = self.create_timer(self.params["frame_period"], self._frame,
                                                  callback_group=self.frame_group)
        else:  # the core paces the frames (DEC and PAR: their workers run in threads of their own)
            self._thread = threading.Thread(target=self._run_frames, name="frame-clock", daemon=True)
            self._thread.start()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_frame_clock()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_frame_clock()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    @property
    def active(self) -> bool:
        return self._active.is_set()

    def _make_runner(self, spec: ExecutorSpec, agent: Any, public_context: PublicContext,
                     params: dict[str, Any]) -> tuple[LatestObservation, Runner]:
        """A runner and the percept source it reads, new: it decides on percepts that arrive from now on
        only (PAR would re-read a percept from before, any runner would admit one as new). The frame
        clock's pacer admits each percept once; DEC's and PAR's threads take theirs unpaced, so they read
        through FreshArrivals: at most one decision per percept, as in the core's real-time runs."""
        percepts = LatestObservation()
        source = FreshArrivals(percepts, Pacing.percept_wait_s) if spec.kind in THREADED else percepts
        return percepts, make_runner(spec, ExternalPerception(agent, spec.pp_perception), source, self.clock,
                                     recorder=self.recorder, on_decision=self._publish_decision,
                                     context=public_context, chunk_period=chunk_period(params, agent),
                                     inpaint=inpaint_config(params, agent))

    def _stop_frame_clock(self) -> None:
        """Deactivation: no decision leaves from here on, and the requests in flight are dropped.

        Generation's stop is publishing nothing more: the action node's watchdog then commands the
        robot's stop once ``action_timeout`` passes without a fresh action.
        """
        self._active.clear()  # a decision still finishing is dropped at _publish_decision, counted
        if self.runner is not None:
            self.runner.wake()  # a frame waiting on a 'wait' key sees the stop now, not after wait_timeout
        if self._frame_timer is not None:
            self.destroy_timer(self._frame_timer)
            self._frame_timer = None
        if self.runner is not None and self.spec.kind in THREADED:
            self.runner.stop()  # their workers end after the request in hand
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._frame_lock:
            pass  # a frame the timer started before it was destroyed has ended
        if self.runner is None:
            return
        if self.spec.kind in THREADED:
            # A stopped DEC/PAR runner stays stopped (core Runner.stop): the next activation runs a new one.
            stopped = self.runner
            stopped.close()
            self.percepts, self.runner = self._make_runner(self.spec, self.agent, self.public_context, self.params)
            self.runner.continue_request_ids(stopped)
        else:
            # Requests held across frames must not finish on observations from before the stop: the
            # pipeline drops them, counted as cancels, before the next activation's first frame admits one.
            self.runner.cancel_in_flight(DEACTIVATED)

    def _release(self) -> None:
        """Drop what configure built (a model given to the node stays its owner's)."""
        with self._replica_lock:  # no replica update is using them
            if self.runner is not None:
                self.runner.close()
            if self.codec is not None:
                self.codec.close()
            self.runner, self.percepts, self.codec, self.public_context, self.spec = None, None, None, None, None
            self.agent = None
            self._orders = {}
            self._fences = {}

    @staticmethod
    def _new_orders(future_tolerance: float, keys: Any) -> dict[str, SourceOrder]:
        """Each key's source ordering from scratch (configure; a clock jump back starts a new timeline)."""
        return {key: SourceOrder(future_tolerance) for key in keys}

    # -- the frame clock -----------------------------------------------------------------------------
    def _frame(self) -> None:
        """One frame of the fixed-period timer (frame_period > 0)."""
        with self._frame_lock:
            if self._stopping():
                return
            with self.cpu.hop(GENERATION_FRAME):
                self.ticks.publish(UInt64(data=self.runner.frame))
                self.runner.guarded_step()
            self._after_frame()

    def _run_frames(self) -> None:
        """The frame clock's thread: the core runs and paces the frames (``core.pacing``: lockstep with
        a frame-stepped world, one frame per percept in real time) until deactivation."""
        pacing = Pacing(lockstep=self.params["lockstep"], per_percept=self.params["frame_per_percept"])
        pacer = Pacer(pacing, self.percepts, tick=lambda frame: self.ticks.publish(UInt64(data=frame)))
        mark = [time.thread_time()]

        def after_frame() -> None:
            # This thread's CPU since the last frame ended: pacing, the tick, the step and its decisions'
            # publication (no hop of the ledger runs inside it).
            now = time.thread_time()
            self.cpu.add(GENERATION_FRAME, now - mark[0])
            mark[0] = now
            self._after_frame()

        self.runner.run_until(self._stopping, pacer, after_frame)
        self._check_faults()

    def _stopping(self) -> bool:
        """The process is on its way out (nodes/health.py), or the node was deactivated."""
        return self.health.failed.is_set() or not self.active

    def _after_frame(self) -> None:
        self._check_faults()
        self.run.in_flight(self.runner.in_flight)

    def _check_faults(self) -> None:
        """A fault already counted at the frame boundary: log it (throttled); give up when it repeats."""
        faults = self.runner.faults
        if faults.consecutive:
            self.get_logger().error(f"frame failed ({faults.last_reason}): {faults.last_error!r}",
                                    throttle_duration_sec=2.0)
        if faults.fatal:
            # The frame loops end on it; the process exits (nodes/health.py).
            self.health.fatal(f"{faults.consecutive} frames failed with no decision between: {faults.last_error!r}")

    def _health(self) -> Status:
        if self.runner is None:
            return Status(WARN, "unconfigured: no model loaded, not generating")
        faults = self.runner.faults
        values = {"frames": self.runner.frame, **faults.counts}
        # Reads refused because another process truncated the segment under them (transport/shm.py).
        truncated = self.codec.truncated_reads if self.codec is not None else 0
        values["shm_truncated"] = truncated
        conflicts = [c for c in (f.conflict(time.monotonic(), CONFLICT_REPORT_S) for f in self._fences.values()) if c]
        if conflicts:
            return Status(ERROR, "; ".join(conflicts), values)
        if not self.active:
            return Status(WARN, "inactive: not generating", values)
        if truncated > self._truncated_reported:
            self._truncated_reported = truncated
            return Status(WARN, f"refused reads of a truncated shared-memory segment ({truncated} so far)", values)
        if faults.consecutive:
            return Status(WARN, f"last frame failed: {faults.last_reason}", values)
        return with_graph_captures(Status(OK, "generating", values), self.agent)

    def _publish_decision(self, decision: Decision) -> bool:
        if not self.active:
            # Finished while the node was being deactivated (a frame or a DEC/PAR worker in progress):
            # a cancel, not a decision.
            self.recorder.cancel(DEACTIVATED)
            return False
        self.run.decision(decision)
        self.actions.publish(decision_to_action(decision, self.params["action_frame_id"], self.source_id))
        return True

    # -- the public-context replica ------------------------------------------------------------------
    def _on_clock_back(self, _jump: TimeJump) -> None:
        with self._replica_lock:
            if self._orders:
                self._orders = self._new_orders(self.params["future_tolerance"], self._orders)
            self._last_seen = {}

    def _on_context(self, msg: ContextState) -> None:
        with self.cpu.hop("context intake (generation)"), self._replica_lock:
            self._update_replica(msg)

    def _update_replica(self, msg: ContextState) -> None:
        if not self.active:
            # Not generating: the replica waits. Nothing is marked seen, so the context node's next
            # ContextState, which carries every key, brings them all in after activation.
            self.recorder.drop(INACTIVE)
            return
        for entry in msg.entries:
            if entry.verdict == ContextEntry.VERDICT_MISSING:
                continue
            if entry.key not in self.public_context.keys:
                # One reason for every unknown name: a sender of random keys must not grow the counters.
                self.recorder.drop(UNKNOWN_KEY)
                self.get_logger().warning(f"context entry of unknown key {entry.key[:MAX_NAME]!r} skipped (this node "
                                          f"reads {sorted(self.public_context.keys)})", throttle_duration_sec=2.0)
                continue
            stamp, seq = to_seconds(entry.stamp), entry.observation_seq
            if self._last_seen.get(entry.key) == (seq, stamp):
                continue
            self._last_seen[entry.key] = (seq, stamp)
            if entry.verdict == ContextEntry.VERDICT_REJECTED:
                # The context node's policy forbids its use (too old): it forwards no value, which
                # is not a bad payload; generation goes on with what it has and its own policy.
                self.recorder.drop(f"context_rejected:{entry.key}")
                continue
            fence = self._fences[entry.key]
            admitted = fence.admit(entry.source_id, time.monotonic())
            if admitted != ADMITTED:
                self.recorder.drop(f"{admitted}:{entry.key}")
                self.get_logger().warning(f"rejected context entry {entry.key!r} of source {entry.source_id:#x} "
                                          f"({admitted}): " + fence.refusal(admitted, time.monotonic(), "entries"),
                                          throttle_duration_sec=2.0)
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
                if entry.key == PERCEPT_KEY:
                    # The agent's own check of dtype and shape: a wrong percept is refused here, never
                    # reaching a frame.
                    value = self.agent.percept_from_tensor(value)
            except (InputError, PayloadUnavailable) as error:
                self.recorder.drop(f"bad_payload:{entry.key}")
                self.get_logger().warning(f"rejected context entry {entry.key!r}: {error}", throttle_duration_sec=2.0)
                continue
            if entry.key == PERCEPT_KEY:
                # The executor admits it at its next frame and writes it into that frame's slot.
                self.percepts.push(Observation(seq, stamp, value))
            else:
                self.public_context.write(entry.key, value, stamp=stamp, seq=seq)

    # -- reports and shutdown ------------------------------------------------------------------------
    def _publish_stats(self) -> None:
        if self.runner is None:
            return  # unconfigured: no executor to report on
        metrics = self.recorder.take_window()
        in_flight = self.runner.in_flight or metrics.in_flight_max
        spec = self.spec
        stats = metrics_to_stats(
            metrics, stamp=self.get_clock().now().to_msg(), mode=spec.kind, pp_perception=spec.pp_perception,
            pp_generation=spec.pp_generation if spec.kind == "auras" else spec.in_flight - 1,
            fetch_offset=spec.fetch_offset, frames=self.runner.frame, in_flight=in_flight)
        self.stats.publish(stats)
        if self._on_stats is not None:
            self._on_stats(stats)

    def stop(self) -> None:
        """Deactivate if active: the frame clock and the executor's threads end; for the process's exit."""
        if self.active:
            self.trigger_deactivate()

    def destroy_node(self) -> None:
        self.stop()
        self._release()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(GenerationNode, args=args, before_exit=GenerationNode.stop)


if __name__ == "__main__":
    sys.exit(main())
