"""sim_node: the embedded MuJoCo catch task as a ROS 2 node.

Publishes, per world frame: ``/clock`` (rosgraph_msgs/Clock, the world's sim time), ``sim/state``
(auras_ros/SimState: ground truth and the scripted expert's action) and ``camera/image_raw``
(sensor_msgs/Image rgb8 from the top camera, stamped with the frame's sim time); ``sim/score``
(std_msgs/String, JSON) at every episode's end and a summary after the last. Consumes AgentActions on
``action_topic``: ``auras/action`` straight from generation, or ``auras/gated_action``, what the safety gate
(action_node) let through, with its stop commands; how a vector maps to the task's command and how
chunks play: :mod:`auras_ros.eval.world`.

Two time modes (parameter ``mode``):
- ``frame``: frame-stepped. The world advances one step per pipeline frame: on each generation frame
  tick (``auras/frame``, std_msgs/UInt64, published by the generation node at each frame start); a tick
  that skips frames steps once per skipped frame, so sim time counts frames and every age in sim time is
  a whole number of frames. The step for frame ``n`` executes the decisions made in frames before ``n``
  (``AgentAction.frame < n``); a decision of frame ``n`` itself plays from the next step on, so the rule
  does not depend on which of the two topics arrives first. ``wait_for_action`` makes the step of frame
  ``n`` also wait for the decision of frame ``n - 1``: a strict lockstep for executors that decide every
  frame once their pipeline is full (``seq``, and ``auras`` from frame ``first_decision_frame`` = P+G-1
  on), which makes a seeded run repeat exactly: a decision never acts a frame late because it reached
  the world after the next frame's tick.
- ``realtime``: the world steps in wall time at ``speed / frame_period`` Hz (physics and camera rate);
  decisions apply at the first step after they arrive, so a slow agent pays. ``speed`` runs world
  time faster than wall time without changing a frame's dynamics, as ``eval.realtime --speed`` does.

Run the agent graph with ``use_sim_time: true`` so its stamps and ages are in the world's time.

The world plays action chunks itself, as a controller that takes a whole trajectory does: the safety
gate plays rows for its one-command outputs (Twist), but its ``agent_action`` output carries each
accepted chunk unchanged, and the world's own :class:`auras_ros.core.chunks.ChunkPlayer` (through
:class:`auras_ros.eval.actuation.ChunkExecutor`, the one the evaluations use) plays its rows one per
world step, under the ``overlap`` and ``chunk_timing`` parameters (the action node's, by the same names).
Stepping the world by frame ticks stays exact that way: which rows act in a step does not depend on when
the gate's timer fires relative to the ticks, so a seeded run repeats. Each episode's score carries the
chunk measurements of what the world executed (seams, jerk, reaction to the ``reverse`` variant's
target reversal: :mod:`auras_ros.eval.seams`).

The world's agent has a base controller's command timeout (``command_timeout``, as
``diff_drive_controller``'s ``cmd_vel_timeout``: :class:`auras_ros.core.safety.CommandTimeout`): a
command older than it by its header stamp on the world's clock is braked to zero, so the world stops
when the safety gate dies or freezes. A repeat of the command in force (same request id and action:
the gate re-sends it every control period) renews it without restarting its chunk.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String, UInt64

from auras_ros.core.chunks import TIMINGS, check_overlap
from auras_ros.core.safety import CommandTimeout
from auras_ros.eval.task_config import VARIANTS, TaskConfig
from auras_ros.msg import AgentAction, SimState
from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.qos import LATEST_RELIABLE, ORDERED, SENSOR_LATEST
from auras_ros.nodes.process import run_node
from auras_ros.nodes.ros_convert import to_seconds
from auras_ros.eval import messages as m
from auras_ros.eval.actuation import ROW_WIDTH
from auras_ros.sim.ready import ReadyEvaluators
from auras_ros.eval.world import SimFrame, SimWorld, decision

SUMMARY_ACK_TIMEOUT_S = 5.0
# Every episode's score reaches a listener that joins late.
TASK = TaskConfig()  # the task's defaults: the node's parameters start from them
SCORES = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Ticks and ground truth: reliable and deep, so no frame is lost to a burst.
TICKS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)

PARAMS = (
    Param("mode", "frame", "frame: one world step per pipeline frame tick; realtime: steps in wall time",
          choices=("frame", "realtime")),
    Param("seed", 0, "seed of the first episode; episode i plays seed + i", low=0, high=2**31 - 1),
    Param("episodes", 1, "episodes to play (0: forever)", low=0, high=10**6),
    Param("control", "agent", "agent: execute AgentActions; expert: the scripted expert drives (reference)",
          choices=("agent", "expert")),
    Param("chunk_rows", 1, "rows of an action chunk played before the last one holds", low=1, high=1024),
    Param("overlap", "replace", "how a new chunk joins the one playing (core.chunks; inpaint plays as replace: "
          "the generation node guided it; ensemble:M: ACT's ensembling with weight exponent M)", parse=check_overlap),
    Param("chunk_timing", "arrival", "row 0 of a chunk is due at its arrival, or at its observation stamp "
          "(the rows whose time passed are skipped)", choices=TIMINGS),
    Param("variant", TASK.variant, "the task: catch, or reverse (the target reverses once per episode at a "
          "seeded frame: reaction time)", choices=VARIANTS),
    Param("image_size", TASK.image_size, "camera image width and height in pixels", low=8, high=1024),
    Param("frame_period", TASK.frame_period, "sim seconds per world frame (realtime: also wall seconds)",
          low=0.001, high=10.0),
    Param("max_frames", TASK.max_frames, "episode length limit in frames", low=1, high=10**6),
    Param("hold_frames", TASK.hold_frames, "success: this many consecutive frames within the catch radius "
          "(above max_frames: episodes never succeed, they run to max_frames)", low=1, high=10**6),
    Param("speed", 1.0, "realtime: world frames per frame_period of wall time", low=0.01, high=100.0),
    Param("wait_for_action", False, "frame mode: the step of frame n waits for the decision of frame n-1"),
    Param("lockstep", False, "frame mode, for a generation node with lockstep: true: its tick n asks for "
          "frame n's observation, so the reset frame answers tick 0 and tick n steps the world to frame n "
          "(otherwise a tick announces a frame's start and the world steps past it)"),
    Param("first_decision_frame", 0, "wait_for_action: the executor's first deciding frame (its pipeline fill, "
          "in_flight - 1: 0 for seq, P+G-1 for auras:P+G); the steps before it do not wait", low=0, high=10**6),
    Param("stall_timeout", 2.0, "frame mode: wall seconds without a tick before the current frame is sent "
          "again (a lost best-effort image); 0: never", low=0.0, high=3600.0),
    Param("decision_timeout", 10.0, "frame mode with wait_for_action: wall seconds the step of frame n waits "
          "for the decision of frame n-1 before stepping without it (which ends the lockstep's exact repeat); "
          "0: for ever", low=0.0, high=3600.0),
    Param("command_timeout", 0.0, "seconds: the agent's base controller brakes to zero when its command is "
          "older than this by its header stamp on the world's clock (diff_drive_controller's cmd_vel_timeout); "
          "0: no timeout", low=0.0, high=60.0),
    Param("camera_frame_id", "camera", "frame_id of the published images"),
    Param("action_topic", m.ACTION_TOPIC, "the AgentActions executed: auras/action (raw), or the safety gate's "
          "auras/gated_action (action_node with output agent_action)"),
    Param("action_readers", 0, "start only once this many other nodes subscribe to auras/action "
          "(e.g. the evaluator), so none misses the first decisions", low=0, high=1000),
    Param("score_readers", 0, "and once this many nodes subscribe to sim/score: the process ends when its "
          "episodes are done, so a reader that has not matched by then would never get the scores",
          low=0, high=1000),
    Param("evaluators", 0, "and once this many evaluator nodes are matched with the action publisher, both "
          "ways (confirmed on eval/matched), so none misses the first decisions", low=0, high=1000),
)


class SimNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sim_node", **kwargs)
        self.params = p = declare(self, PARAMS)
        config = TaskConfig(image_size=p["image_size"], frame_period=p["frame_period"], max_frames=p["max_frames"],
                            hold_frames=p["hold_frames"], variant=p["variant"])
        self.world = SimWorld(config, p["seed"], p["episodes"], p["chunk_rows"], p["control"], p["overlap"],
                              p["chunk_timing"])
        self.clock_pub = self.create_publisher(Clock, m.CLOCK_TOPIC, LATEST_RELIABLE)
        self.state_pub = self.create_publisher(SimState, m.STATE_TOPIC, TICKS)
        self.image_pub = self.create_publisher(Image, m.IMAGE_TOPIC, SENSOR_LATEST)
        self.joints_pub = self.create_publisher(JointState, m.JOINTS_TOPIC, TICKS)
        self.score_pub = self.create_publisher(String, m.SCORE_TOPIC, SCORES)
        self.create_subscription(AgentAction, p["action_topic"], self._on_action, ORDERED)
        self.frame_mode = p["mode"] == "frame"
        if self.frame_mode:
            self.create_subscription(UInt64, m.TICK_TOPIC, self._on_tick, TICKS)
        self._pending: list[AgentAction] = []  # decisions not executed yet
        self.controller = CommandTimeout(p["command_timeout"])
        self._in_force: tuple[int, tuple[float, ...]] | None = None  # request id and action executed now
        self._ticks: list[int] = []  # frame ticks not processed yet (wait_for_action)
        self._last_tick: int | None = None
        self._last_action_frame = -1
        self.current: SimFrame | None = None
        self.frames_published = 0  # each with its camera image (a stalled frame sent again counts again)
        self.done = False
        self._evaluators = ReadyEvaluators(self)
        self.finished = threading.Event()  # all episodes played: run_node ends the process (exit 0)
        self._progress = time.monotonic()
        self.create_timer(0.05, self._watch)  # start when the graph is there; stall guard
        if not self.frame_mode:
            self.create_timer(config.frame_period / p["speed"], self._realtime_step)

    # -- publishing ----------------------------------------------------------------------------------
    def _publish(self, frame: SimFrame) -> None:
        self.current = frame
        self.frames_published += 1
        for topic, msg in m.frame_messages(m.rclpy_factory, frame, self.params["camera_frame_id"]):
            {m.CLOCK_TOPIC: self.clock_pub, m.STATE_TOPIC: self.state_pub, m.JOINTS_TOPIC: self.joints_pub,
             m.IMAGE_TOPIC: self.image_pub}[topic].publish(msg)

    def _commands(self, decisions: list[AgentAction]) -> list[SimpleNamespace]:
        """What the base controller executes of the commands that arrived since the last step (in
        arrival order, as :func:`decision` values): new ones; a repeat of the command in force only renews
        it; another action of the request in force is the safety gate's ramp or stop of it (it
        interrupts); a command already too old is ignored; and a zero command once the one in force
        times out."""
        now = self.current.stamp if self.current is not None else 0.0  # the world's clock at this step
        fresh = []
        for a in decisions:
            if not self.controller.receive(to_seconds(a.header.stamp), now):
                continue
            key = (a.request_id, tuple(a.action))
            if key != self._in_force:
                gate = self._in_force is not None and a.request_id == self._in_force[0]
                self._in_force = key
                fresh.append(decision(a.request_id, a.action, to_seconds(a.observation_stamp), interrupts=gate))
        if not fresh and self.controller.timed_out(now):
            self._in_force = None
            self.get_logger().warning(f"no command for {self.controller.timeout:g} s: the base brakes to zero "
                                      f"(command timeouts so far: {self.controller.brakes})", throttle_duration_sec=1.0)
            fresh.append(decision(0, [0.0] * ROW_WIDTH, interrupts=True))
        return fresh

    def _advance(self, decisions: list[AgentAction]) -> None:
        scored = len(self.world.scores)
        # In arrival order: the world's player takes them by request id, and on a tie (the gate's stop
        # carries the id of the action it ends) in this order, so the one that arrived last wins.
        frame = self.world.advance(self._commands(decisions))
        self._progress = time.monotonic()
        for score in self.world.scores[scored:]:
            self.get_logger().info(f"episode {score['episode']} (seed {score['seed']}): success={score['success']} "
                                   f"time to success={score['success_frame']} frames, tracking error "
                                   f"{score['tracking_error']:.3f}, {score['actions']} actions"
                                   f" ({score['earlier_episode_decisions']} sensed in an earlier episode, not executed)")
            self.score_pub.publish(m.score_message(m.rclpy_factory, score))
        if frame is not None:
            self._publish(frame)
        elif not self.done:
            self._finish()

    def _finish(self) -> None:
        self.done = True
        summary = summarize(self.world.scores)
        self.get_logger().info("all episodes done: " + json.dumps(summary, sort_keys=True))
        self.score_pub.publish(m.score_message(m.rclpy_factory, summary))
        # The work is done: the process ends (and a launch with it, its evaluator writing the report),
        # once every reader has the summary (bounded: a reader that is gone acknowledges nothing).
        self.score_pub.wait_for_all_acked(Duration(seconds=SUMMARY_ACK_TIMEOUT_S))
        self.finished.set()

    # -- inputs ---------------------------------------------------------------------------------------
    def _on_action(self, msg: AgentAction) -> None:
        self._pending.append(msg)
        self._last_action_frame = max(self._last_action_frame, msg.frame)
        if self._ticks:
            self._drain_ticks()

    def _on_tick(self, msg: UInt64) -> None:
        if self.current is None:
            return  # not started: the world has shown nothing this tick could follow
        self._ticks.append(msg.data)
        self._drain_ticks()

    def _drain_ticks(self, force: bool = False) -> None:
        while self._ticks and not self.done:
            n = self._ticks.pop(0)
            if self._last_tick is not None and n <= self._last_tick:
                continue  # a frame already stepped
            waits = self.params["wait_for_action"] and n - 1 >= self.params["first_decision_frame"]
            if waits and not force and self._last_action_frame < n - 1:
                self._ticks.insert(0, n)
                return  # the decision of frame n - 1 is still on its way
            force = False
            first = n if self._last_tick is None else self._last_tick + 1
            for k in range(first, n + 1):  # one world step per pipeline frame
                due = [a for a in self._pending if a.frame < k]
                self._pending = [a for a in self._pending if a.frame >= k]
                self._advance(due)
            self._last_tick = n

    def _realtime_step(self) -> None:
        if self.current is None or self.done:
            return
        due, self._pending = self._pending, []
        self._advance(due)

    def _watch(self) -> None:
        """Start once the graph can hear the world; re-send the current frame after a stall."""
        if self.current is None:
            # The world's clock already reads the first frame's time, so every agent node's clock has
            # started (use_sim_time) before that frame's image and actions need it.
            self.clock_pub.publish(m.clock_message(m.rclpy_factory, self.world.stamp()))
            gated = self.params["action_topic"] != m.ACTION_TOPIC
            # One reader of auras/action is this node, or the safety gate that feeds it.
            ready = self.count_subscribers(m.IMAGE_TOPIC) > 0 and (
                not self.frame_mode or self.count_publishers(m.TICK_TOPIC) > 0) and (
                self.count_subscribers(m.ACTION_TOPIC) - 1 >= self.params["action_readers"]) and (
                not gated or self.count_publishers(self.params["action_topic"]) > 0) and (
                len(self._evaluators) >= self.params["evaluators"]) and (
                self.count_subscribers(m.SCORE_TOPIC) >= self.params["score_readers"])
            if ready:
                self._publish(self.world.start())
                self._progress = time.monotonic()
                if self.params["lockstep"]:
                    # The reset frame is frame 0's observation: a tick 0 that comes after the start
                    # must not step the world, or the generation would see every frame one step late.
                    self._last_tick = 0
            return
        if not self.frame_mode or self.done:
            return
        # Waiting for a decision (ticks queued) or for a tick: a reliable decision may come late (DDS
        # repairs a lost sample after seconds), a best-effort image may be gone for good.
        timeout = self.params["decision_timeout"] if self._ticks else self.params["stall_timeout"]
        if timeout > 0 and time.monotonic() - self._progress > timeout:
            self._progress = time.monotonic()
            if self._ticks:
                self.get_logger().warning(f"no decision of frame {self._ticks[0] - 1} for {timeout:g} s: stepping without it")
                self._drain_ticks(force=True)
                return
            self.get_logger().info(f"no frame tick for {timeout:g} s: sending frame {self.current.state.frame} again")
            self._publish(self.current)

    def destroy_node(self) -> None:
        self.world.close()
        super().destroy_node()


def summarize(scores: list[dict]) -> dict:
    """The run's numbers over its episodes."""
    n = len(scores)
    times = [s["success_frame"] for s in scores if s["success_frame"] is not None]
    errors = [s["tracking_error"] for s in scores if s["tracking_error"] is not None]
    return {"summary": True, "episodes": n, "successes": sum(s["success"] for s in scores),
            "success_rate": sum(s["success"] for s in scores) / n if n else math.nan,
            "mean_time_to_success_frames": sum(times) / len(times) if times else None,
            "mean_tracking_error": sum(errors) / len(errors) if errors else None,
            "earlier_episode_decisions": sum(s.get("earlier_episode_decisions", 0) for s in scores)}


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
