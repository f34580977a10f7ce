"""action_node: the safety gate between generation and the robot, as a managed (lifecycle) node.

AgentActions from ``auras/action`` pass :class:`auras_ros.core.safety.SafetyGate` (age on this node's
clock from the observation stamp, finite, in range, mappable) and leave through the selected
``outputs`` (:mod:`auras_ros.nodes.action_outputs`). Each accepted action is an action chunk of rows
``row_width`` wide (0: one row), played by the gate's :class:`auras_ros.core.chunks.ChunkPlayer` at this
node's own control rate: a timer every ``control_period`` sends the row due now (rows ``chunk_period``
apart from the observation stamp or the arrival, ``chunk_timing``; overlapping chunks under
``overlap``), whether or not a new action came. Once the last chunk has played to its end the
watchdog's rules apply: a stop (or a ramp down) when nothing was accepted for ``action_timeout`` or the
command in force was decided on an observation older than ``max_observation_age``, and otherwise the
command in force again when no action arrived in the period: commands leave at a steady rate, so the
robot's own command timeout (``diff_drive_controller``'s ``cmd_vel_timeout``) stops it if this node
dies or freezes. A jump
of the node's clock (``use_sim_time``: ``/clock`` going back, a bag loop or a simulator reset, or forward
by more than ``clock_jump_threshold``) stops at once and drops the action held for the first clock.
One producer: actions come from one generation run at a time (``AgentAction.source_id``,
:class:`auras_ros.core.sources.SourceFence`): a second one is refused, counted, and an ERROR on
/diagnostics names both; more than ``max_action_rate`` actions per second are refused as a flood.

Lifecycle: configure checks the parameters and builds the gate and the outputs; activate starts
actuation (the watchdog runs, actions pass); deactivate commands a stop, then stops actuation;
cleanup drops the outputs. With ``autostart`` (default) the node configures and activates itself,
since a plain launch file cannot send lifecycle events here; a lifecycle manager sets it false and
drives ``~/change_state``. SIGINT/SIGTERM deactivate (a stop command) before exiting.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rclpy.clock import JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from auras_ros.core.chunks import TIMINGS, check_overlap, row_period
from auras_ros.core.errors import ConfigError
from auras_ros.core.safety import NO_ACTION, STOP, Command, GateConfig, SafetyGate
from auras_ros.core.sources import ADMITTED, SourceFence
from auras_ros.msg import AgentAction
from auras_ros.nodes.action_outputs import (
    OUTPUTS, TRAJECTORY_FIELDS, TWIST_FIELDS, GatedActionOutput, Output, TrajectoryOutput, TwistMapping, TwistOutput)
from auras_ros.nodes.health import ERROR, OK, WARN, Health, Status
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.managed import (
    refuse_configure, refuse_unavailable_transitions, start_if, start as start_managed)
from auras_ros.nodes.params import Param, declare, read
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_clock import clock_started
from auras_ros.nodes.ros_convert import to_seconds, to_time
from auras_ros.nodes.process import run_node
from auras_ros.core import topics

STOP_ACK_TIMEOUT_S = 1.0
DIAGNOSTICS_PERIOD_S = 1.0  # seconds between the gate's reports on /diagnostics
CONFLICT_REPORT_S = 5.0  # a second producer refused within this many seconds keeps /diagnostics at ERROR

PARAMS = (
    Param("autostart", True, "configure and activate at start (false: wait for a lifecycle manager)"),
    Param("outputs", ["twist"], "what the gated commands are published as", choices=OUTPUTS),
    Param("control_period", 0.05, "seconds between control ticks: the chunk row due now goes out, or the "
          "watchdog's hold or stop", low=0.001, high=10.0),
    Param("chunk_period", 0.0, "seconds between the rows of an action chunk, the policy's control period (0: "
          "control_period; this node has no checkpoint to read one from: give the generation node the same "
          "value, as the launch files and the demo do)", low=0.0, high=10.0),
    Param("row_width", 0, "elements per action chunk row (0: the whole action is one row; joint_trajectory: "
          "len(joint_names))", low=0, high=4096),
    Param("chunk_timing", "arrival", "row 0 of a chunk is due at the action's arrival, or at its observation "
          "stamp (time-aligned: the rows whose time passed before it arrived are skipped)", choices=TIMINGS),
    Param("overlap", "replace", "what plays while chunks overlap: the newest alone (replace; inpaint: the "
          "generation already joined it to the executing one), ACT's temporal ensembling (ensemble, or ensemble:M with "
          "its weight exponent M: ACT's 0.01 by default, negative weighs newer chunks more), a crossfade (blend), "
          "or a LeRobot aggregate function", parse=check_overlap),
    Param("action_timeout", GateConfig.action_timeout, "seconds without an accepted action before the robot "
          "is stopped", low=0.001, high=60.0),
    Param("max_observation_age", GateConfig.max_observation_age, "seconds; an action whose observation is "
          "older (on this node's clock, from its observation stamp) is refused, and the command in force "
          "stops when its observation gets older", low=0.001, high=60.0),
    Param("expected_source", 0, "source_id of the generation run whose actions this gate takes (0: the first "
          "one heard, and after source_takeover of its silence the next one)", low=0, high=2**63 - 1),
    Param("source_takeover", 0.5, "wall seconds a generation run must be silent before another one is taken",
          low=0.01, high=3600.0),
    Param("max_action_rate", 200.0, "actions per second taken from the generation run; more are refused as a "
          "flood (0: no limit)", low=0.0, high=1e6),
    Param("clock_jump_threshold", 1.0, "seconds; a forward jump of this node's clock by more (or any jump "
          "back) stops the robot at once", low=0.001, high=3600.0),
    Param("future_tolerance", 0.1, "seconds an observation stamp may lie ahead of this node's clock",
          low=0.0, high=10.0),
    Param("action_min", -1.0, "lowest accepted value of any action element", low=-1e6, high=0.0),
    Param("action_max", 1.0, "highest accepted value of any action element", low=0.0, high=1e6),
    Param("deceleration", 0.0, "action units per second of the ramp down after a timeout (0: stop at once)",
          low=0.0, high=1e6),
    Param("joint_names", ["joint_0", "joint_1"], "joint_trajectory: the joints, one action chunk column each"),
    Param("trajectory_field", "positions", "joint_trajectory: what the chunk rows are", choices=TRAJECTORY_FIELDS),
    *(Param(f"index.{f}", -1, f"action element mapped to Twist {f} (-1: always 0)", low=-1, high=1023)
      for f in TWIST_FIELDS),
    *(Param(f"scale.{f}", 1.0, f"factor applied to Twist {f}", low=-1e6, high=1e6) for f in TWIST_FIELDS),
)


def gate_config(p: dict[str, Any], mapping: TwistMapping) -> GateConfig:
    """The gate for these parameters: the outputs chosen decide what length an action needs."""
    twist = {"twist", "twist_stamped"} & set(p["outputs"])
    trajectory = "joint_trajectory" in p["outputs"]
    if {"twist", "twist_stamped"} <= set(p["outputs"]):
        # Both publish on cmd_vel, and one topic carries one type.
        raise ConfigError("action_node.outputs", p["outputs"], "at most one of 'twist' and 'twist_stamped' "
                          "(both publish on cmd_vel; Jazzy's diff_drive_controller takes twist_stamped)")
    if trajectory and not p["joint_names"]:
        raise ConfigError("action_node.joint_names", p["joint_names"], "at least one joint name")
    row_width = p["row_width"]
    if trajectory and row_width not in (0, len(p["joint_names"])):
        raise ConfigError("action_node.row_width", row_width, f"0 or len(joint_names) = {len(p['joint_names'])} "
                          "(a joint_trajectory point is one row)")
    row_width = len(p["joint_names"]) if trajectory else row_width
    try:
        # GateConfig checks the row width against the elements the Twist fields map (min_length).
        # The row period: this node has no agent, so chunk_period or its control period
        # (core.chunks.row_period's rule with no checkpoint).
        return GateConfig(action_timeout=p["action_timeout"], max_observation_age=p["max_observation_age"],
                          future_tolerance=p["future_tolerance"], action_min=p["action_min"],
                          action_max=p["action_max"], deceleration=p["deceleration"],
                          min_length=mapping.min_length if twist else 1, row_width=row_width,
                          chunk_period=row_period(p["chunk_period"], None, p["control_period"]),
                          overlap=p["overlap"], chunk_timing=p["chunk_timing"])
    except ConfigError as error:  # named as this node's parameter
        raise ConfigError(f"action_node.{error.field}", error.value, error.allowed) from None


class ActionNode(LifecycleNode):
    def __init__(self, autostart: bool | None = None, delivery: LocalDelivery | None = None, **kwargs: Any) -> None:
        """``autostart`` overrides the parameter (the composed process drives the transitions itself);
        ``delivery`` lets the composed process hand actions over without serialization."""
        super().__init__("action_node", **kwargs)
        refuse_unavailable_transitions(self)  # a bad ~/change_state request must not end the gate's process
        declare(self, PARAMS)  # a bad value stops the node here, before any transition
        self.gate: SafetyGate | None = None
        self.outputs: list[Output] = []
        self.config_error: ConfigError | None = None
        self._last_source: AgentAction | None = None
        self._watchdog = None
        self.control_period = 0.0  # set by configure
        self.inactive_drops = 0  # actions that arrived while not active
        # use_sim_time: an action that arrives before the first /clock waits for it (the newest one only;
        # those it replaced are counted), since its age cannot be judged on a clock that reads 0.
        self._before_clock: AgentAction | None = None
        self.before_clock_drops = 0
        self._clock_start = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=Duration(nanoseconds=1), min_backward=None), post_callback=self._on_clock_jump)
        self.jump_threshold = self.get_parameter("clock_jump_threshold").value
        # One producer of actions: a second generation node on the same topic is refused, not interleaved.
        self.fence = SourceFence("action_node auras/action", self.get_parameter("source_takeover").value,
                                 self.get_parameter("max_action_rate").value,
                                 self.get_parameter("expected_source").value)
        # Any jump back, or far forward: the ages of everything held were judged on a clock that is gone.
        self._clock_jumps = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=Duration(seconds=self.jump_threshold), min_backward=Duration(nanoseconds=-1),
                          on_clock_change=False), post_callback=self._on_time_jump)
        delivery = delivery if delivery is not None else LocalDelivery()
        delivery.subscription(self, AgentAction, topics.ACTION, self._on_action, ORDERED)
        # The gate's counters on /diagnostics: a supervisor sees refusals and watchdog stops.
        self.health = Health(self, self._health, DIAGNOSTICS_PERIOD_S)
        start_if(self, autostart)

    def start(self) -> None:
        """configure + activate; a ConfigError if configure refused the parameters."""
        start_managed(self)

    # -- lifecycle --------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            p = read(self, PARAMS)
            mapping = TwistMapping({f: p[f"index.{f}"] for f in TWIST_FIELDS}, {f: p[f"scale.{f}"] for f in TWIST_FIELDS})
            self.gate = SafetyGate(gate_config(p, mapping))
        except ConfigError as error:
            return refuse_configure(self, error)
        self.control_period = p["control_period"]
        makers = {"twist": lambda: TwistOutput(self, mapping, stamped=False),
                  "twist_stamped": lambda: TwistOutput(self, mapping, stamped=True),
                  "joint_trajectory": lambda: TrajectoryOutput(self, p["joint_names"], p["trajectory_field"],
                                                               self.gate.config.chunk_period),
                  "agent_action": lambda: GatedActionOutput(self)}
        self.outputs = [makers[name]() for name in dict.fromkeys(p["outputs"])]
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        # On the node's clock: with use_sim_time the control ticks (rows, watchdog) count world time.
        self._watchdog = self.create_timer(self.control_period, self._on_watchdog)
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        # Deactivate means stop: the stop goes out while the publishers still publish.
        self._destroy_watchdog()
        if self.gate is not None:
            self._send(self.gate.stop())
            for output in self.outputs:
                # A process about to exit must not take its stop command with it: wait for the readers'
                # acknowledgement (bounded: a reader that is gone acknowledges nothing).
                output.publisher.wait_for_all_acked(Duration(seconds=STOP_ACK_TIMEOUT_S))
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for output in self.outputs:
            self.destroy_lifecycle_publisher(output.publisher)
        self.outputs = []
        self.gate = None
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._watchdog is not None:
            self.on_deactivate(state)
        return TransitionCallbackReturn.SUCCESS

    def _health(self) -> Status:
        values = {**(self.gate.counts() if self.gate is not None else {}), "inactive_drops": self.inactive_drops,
                  "before_clock_drops": self.before_clock_drops,
                  **{f"source_{k}": v for k, v in self.fence.counts().items()}}
        conflict = self.fence.conflict(time.monotonic(), CONFLICT_REPORT_S)
        if conflict is not None:
            return Status(ERROR, conflict, values)
        if not self.active:
            return Status(WARN, "inactive: not actuating", values)
        return Status(OK, "actuating through the safety gate", values)

    @property
    def active(self) -> bool:
        return self._watchdog is not None

    # -- gate ---------------------------------------------------------------------------------------
    def _seconds(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_action(self, msg: AgentAction) -> None:
        if not self.active or self.gate is None:
            self.inactive_drops += 1  # not actuating: nothing may reach the robot
            return
        # Wall time: floods and a producer's silence are about this computer's time, whatever the clock.
        admitted = self.fence.admit(msg.source_id, time.monotonic())
        if admitted != ADMITTED:
            self.get_logger().warning(
                f"action {msg.request_id} of source {msg.source_id:#x} refused ({admitted}): "
                + self.fence.refusal(admitted, time.monotonic(), "actions"), throttle_duration_sec=2.0)
            return
        self._offer(msg)

    def _offer(self, msg: AgentAction) -> None:
        now = self._seconds()
        if now == 0.0 and not clock_started(self):
            if self._before_clock is not None:
                self.before_clock_drops += 1
            self._before_clock = msg
            return
        # The sender's observation_age is never read: the age is judged here, on this node's clock.
        verdict = self.gate.offer(msg.action, to_seconds(msg.observation_stamp), now)
        if isinstance(verdict, str):
            self.get_logger().warning(
                f"action {msg.request_id} refused ({verdict}): observation {now - to_seconds(msg.observation_stamp):.3f} s "
                f"old on this clock, {len(msg.action)} elements; refused so far: {dict(self.gate.refused)}",
                throttle_duration_sec=2.0)
            return
        self._last_source = msg
        self._send(verdict, now)

    def _on_clock_jump(self, _jump: TimeJump) -> None:
        if self._before_clock is not None and clock_started(self):
            held, self._before_clock = self._before_clock, None
            self._offer(held)

    def _on_time_jump(self, jump: TimeJump) -> None:
        delta = jump.delta.nanoseconds
        if self.get_clock().now().nanoseconds - delta == 0:
            return  # the clock's start (its first /clock), not a jump
        self._before_clock = None  # judged on the clock before the jump: never executed
        if self.gate is None:
            return
        stop = self.gate.clock_jumped()
        if self.active:
            self._send(stop)
        self.get_logger().warning(f"clock jumped {'back' if delta < 0 else 'forward'} {abs(delta) * 1e-9:.3f} s: "
                                  f"actions decided before it invalidated, robot stopped "
                                  f"(clock jumps so far: {self.gate.clock_jumps})", throttle_duration_sec=1.0)

    def _on_watchdog(self) -> None:
        now = self._seconds()
        command = self.gate.tick(now)
        if command is not None:
            if command.kind == STOP:
                c = self.gate.config
                why = (f"no fresh action for {c.action_timeout:g} s" if self.gate.stop_cause == NO_ACTION else
                       f"the command's observation is older than {c.max_observation_age:g} s")
                self.get_logger().warning(f"{why}: robot stopped (watchdog stops so far: {self.gate.timeouts})",
                                          throttle_duration_sec=1.0)
            self._send(command, now)

    def _send(self, command: Command, now: float | None = None) -> None:
        """To every output, stamped ``now`` (the time the gate decided it at; default: the clock now)."""
        source = self._last_source if self._last_source is not None else AgentAction()
        stamp = to_time(now) if now is not None else self.get_clock().now().to_msg()
        for output in self.outputs:
            output.send(command, source, stamp)

    def _destroy_watchdog(self) -> None:
        if self._watchdog is not None:
            self.destroy_timer(self._watchdog)
            self._watchdog = None

    def shutdown(self) -> None:
        """Stop the robot (deactivate) if actuating; for the process's exit."""
        if self.active:
            self.trigger_deactivate()


def main(args: list[str] | None = None) -> int:
    return run_node(ActionNode, args=args, before_exit=ActionNode.shutdown)


if __name__ == "__main__":
    sys.exit(main())
