"""The action node in this process: a lifecycle node whose gate refuses stale, forged-age, non-finite and
out-of-range actions (counted), publishes the robot's own types, and stops the robot on a timeout and on
deactivation."""

from __future__ import annotations

import math
import time
from typing import Any, Iterator

import pytest
import rclpy
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from builtin_interfaces.msg import Time
from rosgraph_msgs.msg import Clock
from trajectory_msgs.msg import JointTrajectory

from auras_ros.core.chunks import ACT_ENSEMBLE_COEFF
from auras_ros.core.errors import ConfigError
from auras_ros.msg import AgentAction
from auras_ros.nodes.action_node import ActionNode
from auras_ros.nodes.action_outputs import GATED_ACTION_TOPIC
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import to_duration, to_seconds, to_time


class Bench:
    """An ActionNode and a probe node on a private domain, spun from the test thread."""

    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.probe = rclpy.create_node("gate_probe", context=self.context)
        self.executor.add_node(self.probe)
        self.actions = self.probe.create_publisher(AgentAction, "auras/action", ORDERED)
        self.node: ActionNode | None = None

    def start(self, overrides: dict[str, Any], autostart: bool | None = None) -> ActionNode:
        self.node = ActionNode(context=self.context, autostart=autostart,
                               parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        self.executor.add_node(self.node)
        return self.node

    def record(self, msg_type: type, topic: str) -> list[Any]:
        received: list[Any] = []
        self.probe.create_subscription(msg_type, topic, received.append, ORDERED)
        return received

    def send(self, action: list[float], age_s: float = 0.0, claimed_age_s: float = 0.0, request_id: int = 1) -> Time:
        """Publish an action sensed ``age_s`` ago; returns its observation stamp."""
        now = to_seconds(self.node.get_clock().now().to_msg())
        msg = AgentAction(action=action, request_id=request_id)
        msg.header.stamp = to_time(now)
        msg.header.frame_id = "base_link"
        msg.observation_stamp = to_time(now - age_s)
        msg.observation_age = to_duration(claimed_age_s)  # what the sender claims; never trusted
        self.actions.publish(msg)
        return msg.observation_stamp

    def sim_clock(self, nanoseconds: int) -> None:
        """Publish /clock and wait until the node's clock reads it (use_sim_time)."""
        self.clock.publish(Clock(clock=Time(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9)))
        assert self.spin_until(lambda: self.node.get_clock().now().nanoseconds == nanoseconds)

    def start_on_sim_clock(self, overrides: dict[str, Any], at_ns: int) -> ActionNode:
        """An action node on use_sim_time, activated once its clock reads ``at_ns``: its control timer
        then ticks exactly at ``at_ns`` + k * control_period as the test advances /clock."""
        self.clock = self.probe.create_publisher(Clock, "/clock", ORDERED)
        node = self.start({"use_sim_time": True, **overrides}, autostart=False)
        assert self.spin_until(lambda: self.connected() and self.clock.get_subscription_count() > 0)
        self.sim_clock(at_ns)
        node.start()
        return node

    def spin_until(self, done, timeout_s: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout_s  # a hang guard only (wall time: a sim clock may stand still)
        while not done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
        return done()

    def connected(self) -> bool:
        return self.actions.get_subscription_count() > 0

    def close(self) -> None:
        self.executor.shutdown()
        for node in (self.node, self.probe):
            if node is not None:
                node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def bench(ros_env: dict[str, str]) -> Iterator[Bench]:
    """On the test's own ROS domain, localhost only (ros_env)."""
    bench = Bench(int(ros_env["ROS_DOMAIN_ID"]))
    yield bench
    bench.close()


def test_bad_actions_are_refused_counted_and_never_reach_cmd_vel(bench: Bench) -> None:
    twists = bench.record(Twist, "cmd_vel")
    # Limits far above this loaded machine's delivery times: only the forged age is stale.
    node = bench.start({"index.linear.x": 0, "index.angular.z": 1, "action_timeout": 30.0, "max_observation_age": 5.0})
    assert bench.spin_until(bench.connected)
    bench.send([0.1, 0.2], age_s=10.0, claimed_age_s=0.01)  # the forged age: stamps 10 s old
    bench.send([math.nan, 0.2])
    bench.send([math.inf, 0.2])
    bench.send([3.0, 0.2])
    bench.send([0.5])  # angular.z maps element 1: too short
    bench.send([0.5, -0.5], request_id=7)  # the one good action
    assert bench.spin_until(lambda: len(twists) >= 1 and node.gate.accepted == 1)
    assert dict(node.gate.refused) == {"stale": 1, "non_finite": 2, "out_of_range": 1, "bad_length": 1}
    # The good action, repeated every control period while it is in force: nothing else.
    assert bench.spin_until(lambda: len(twists) >= 3)
    assert {(t.linear.x, t.angular.z) for t in twists} == {(0.5, -0.5)}


def test_watchdog_commands_a_stop_when_actions_stop_and_deactivate_stops_too(bench: Bench) -> None:
    twists = bench.record(TwistStamped, "cmd_vel")
    node = bench.start({"outputs": ["twist_stamped"], "index.linear.x": 0, "action_timeout": 0.3,
                        "max_observation_age": 1.0})
    assert bench.spin_until(bench.connected)
    bench.send([0.7])
    assert bench.spin_until(lambda: twists and twists[-1].twist.linear.x == 0.0)  # the watchdog's stop
    moved, repeats, stopped = twists[0], twists[1:-1], twists[-1]
    assert moved.twist.linear.x == 0.7 and stopped.twist.linear.x == 0.0
    # Until the stop, the command goes out again every control period, freshly stamped: a base
    # controller's command timeout keeps it only while the gate is alive.
    assert repeats and all(r.twist.linear.x == 0.7 for r in repeats)
    stamps = [to_seconds(t.header.stamp) for t in twists]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert moved.header.frame_id == stopped.header.frame_id == "base_link"
    # Stamped on the gate's clock: the stop left no earlier than action_timeout after the action.
    assert stamps[-1] - stamps[0] >= 0.3
    assert node.gate.timeouts == 1
    seen = len(twists)
    bench.send([0.4])
    assert bench.spin_until(lambda: len(twists) > seen)
    node.trigger_deactivate()
    assert bench.spin_until(lambda: twists[-1].twist.linear.x == 0.0)  # deactivate means stop
    stopped_at = len(twists)
    bench.send([0.9])  # inactive: nothing reaches the robot
    assert bench.spin_until(lambda: node.inactive_drops == 1)
    assert len(twists) == stopped_at


T0 = 20 * 10**9  # the sim clock's start in the tests on use_sim_time, ns
STEP = 50_000_000  # their control period, 0.05 s, in ns


def test_joint_trajectory_carries_the_chunk_rows_and_holds_the_last_played_row_on_stop(bench: Bench) -> None:
    trajectories = bench.record(JointTrajectory, "joint_trajectory")
    gated = bench.record(AgentAction, GATED_ACTION_TOPIC)
    twists = bench.record(Twist, "cmd_vel")  # one per control tick: shows each tick has run
    node = bench.start_on_sim_clock({"outputs": ["joint_trajectory", "agent_action", "twist"], "joint_names": ["a", "b"],
                                     "control_period": 0.05, "action_timeout": 0.125}, T0)
    assert bench.spin_until(lambda: all(o.publisher.get_subscription_count() for o in node.outputs))
    bench.send([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], request_id=5)  # stamped now: row k due at 20 + 0.05 k
    assert bench.spin_until(lambda: len(trajectories) == 1 and len(gated) == 1)
    plan = trajectories[0]
    # On sim time stamped 0, "start now" for joint_trajectory_controller (which may run on another clock).
    assert plan.joint_names == ["a", "b"] and plan.header.stamp == Time()
    assert [list(p.positions) for p in plan.points] == [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
    assert [to_seconds(p.time_from_start) for p in plan.points] == pytest.approx([0.05, 0.1, 0.15])
    # The rows play at the gate; the controller has them already: no new trajectory. The simulator plays
    # the chunk itself: the chunk that went out in the first period needs no renewal in it, the next does.
    assert bench.spin_until(lambda: len(twists) == 1)
    bench.sim_clock(T0 + STEP)
    assert bench.spin_until(lambda: len(twists) == 2)
    bench.sim_clock(T0 + 2 * STEP)
    assert bench.spin_until(lambda: len(twists) == 3 and len(gated) == 2)
    bench.sim_clock(T0 + 3 * STEP)  # played to its end, and 0.15 s > action_timeout after the action: stop
    assert bench.spin_until(lambda: len(trajectories) == 2 and len(gated) == 3)
    hold = trajectories[1]
    assert [list(p.positions) for p in hold.points] == [[0.5, 0.6]]  # never empty: holds the last row played
    assert gated[0].request_id == 5 and list(gated[0].action) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    # Between them one renewal of the chunk the simulator plays itself, then the stop (one row of zeros).
    assert gated[1].request_id == 5 and list(gated[1].action) == list(gated[0].action)
    assert gated[2].request_id == 5 and list(gated[2].action) == [0.0, 0.0]


def test_the_gate_plays_a_chunk_at_its_own_control_rate_then_holds_then_stops(bench: Bench) -> None:
    """No decision after the first: each control tick sends the next row, the last one holds while the
    action is fresh, then the watchdog stops. Sim time steps the ticks one by one: counts, not timings."""
    twists = bench.record(Twist, "cmd_vel")
    node = bench.start_on_sim_clock({"index.linear.x": 0, "row_width": 1, "control_period": 0.05,
                                     "action_timeout": 0.225, "max_observation_age": 1.0}, T0)
    bench.send([0.1, 0.2, 0.3, 0.4], request_id=1)  # four one-element rows, stamped now
    assert bench.spin_until(lambda: len(twists) == 1)
    for k in range(1, 6):
        bench.sim_clock(T0 + k * STEP)
        assert bench.spin_until(lambda: len(twists) == 1 + k)  # noqa: B023 - awaited here
    # Rows 0..3 one per period, row 3 held at 20.2 (0.2 s after the action: still fresh), the stop at 20.25.
    assert [t.linear.x for t in twists] == [0.1, 0.2, 0.3, 0.4, 0.4, 0.0]
    assert node.gate.accepted == 1 and node.gate.timeouts == 1


def test_time_aligned_chunk_skips_passed_rows_and_stamps_trajectory_points_at_their_target_times(
        bench: Bench) -> None:
    trajectories = bench.record(JointTrajectory, "joint_trajectory")
    node = bench.start_on_sim_clock({"outputs": ["joint_trajectory"], "joint_names": ["a"], "control_period": 0.05,
                                     "chunk_timing": "observation", "trajectory_field": "velocities"}, T0)
    assert bench.spin_until(lambda: node.outputs[0].publisher.get_subscription_count() > 0)
    msg = AgentAction(action=[0.1, 0.2, 0.3, 0.4], request_id=1)
    msg.observation_stamp = Time(sec=19, nanosec=930_000_000)  # 0.07 s old at 20.0: row 0 (until 19.98) passed
    bench.actions.publish(msg)
    assert bench.spin_until(lambda: len(trajectories) == 1)
    plan = trajectories[0]
    # Row k's target time 19.93 + 0.05 (k + 1), relative to the gate's clock when it sent them, 20.0: rows
    # 1..3 at 20.03, 20.08, 20.13 (the header stamp 0 on sim time: the controller starts it on receipt).
    assert plan.header.stamp == Time()
    assert [list(p.velocities) for p in plan.points] == [[0.2], [0.3], [0.4]]
    assert [to_seconds(p.time_from_start) for p in plan.points] == pytest.approx([0.03, 0.08, 0.13])
    assert node.gate.player.skipped_rows == 1


def test_under_ensemble_the_trajectory_carries_the_mixed_rows_the_gate_plays(bench: Bench) -> None:
    trajectories = bench.record(JointTrajectory, "joint_trajectory")
    node = bench.start_on_sim_clock({"outputs": ["joint_trajectory"], "joint_names": ["a"], "control_period": 0.05,
                                     "overlap": "ensemble", "action_timeout": 1.0, "max_observation_age": 1.0}, T0)
    assert bench.spin_until(lambda: node.outputs[0].publisher.get_subscription_count() > 0)
    bench.send([0.0, 0.1, 0.2, 0.3], request_id=1)  # rows due at 20.0, 20.05, 20.1, 20.15
    assert bench.spin_until(lambda: len(trajectories) == 1)
    bench.sim_clock(T0 + STEP)
    bench.send([0.8, 0.8, 0.8], request_id=2)  # rows due at 20.05, 20.1, 20.15: each mixes with the first's
    assert bench.spin_until(lambda: len(trajectories) == 2)
    w = math.exp(-ACT_ENSEMBLE_COEFF)
    mixed = [(old + w * 0.8) / (1 + w) for old in (0.1, 0.2, 0.3)]
    plan = trajectories[1]
    assert [p.positions[0] for p in plan.points] == pytest.approx(mixed)
    assert [to_seconds(p.time_from_start) for p in plan.points] == pytest.approx([0.05, 0.1, 0.15])


def test_on_the_system_clock_the_trajectory_is_stamped_with_the_gates_clock(bench: Bench) -> None:
    trajectories = bench.record(JointTrajectory, "joint_trajectory")
    node = bench.start({"outputs": ["joint_trajectory"], "joint_names": ["a"], "max_observation_age": 60.0,
                        "action_timeout": 60.0, "chunk_timing": "observation"})
    assert bench.spin_until(lambda: bench.connected() and node.outputs[0].publisher.get_subscription_count() > 0)
    before = node.get_clock().now().nanoseconds
    sensed = bench.send([0.1, 0.2])
    assert bench.spin_until(lambda: len(trajectories) >= 1)
    plan = trajectories[0]
    # Both sides read the system clock: the header is the gate's clock when it sent the plan (not 0), and
    # header + time_from_start is each row's absolute target time, sensed + (k + 1) periods, whatever the
    # delivery took (which shortens time_from_start by as much). Compared in integer nanoseconds within
    # 2 us: the gate computes in float seconds, and an epoch there resolves only ~0.24 us.
    nanoseconds = lambda t: t.sec * 10**9 + t.nanosec  # noqa: E731
    sent = nanoseconds(plan.header.stamp)
    assert sent >= before
    targets = [sent + nanoseconds(p.time_from_start) for p in plan.points]
    expected = [nanoseconds(sensed) + k * 50_000_000 for k in (1, 2)]
    assert all(abs(t - e) <= 2_000 for t, e in zip(targets, expected, strict=True)), (targets, expected)


def test_a_twist_mapping_wider_than_a_row_is_refused_naming_row_width(bench: Bench) -> None:
    with pytest.raises(ConfigError) as error:
        bench.start({"index.linear.y": 1, "row_width": 1})
    assert error.value.field == "action_node.row_width" and "min_length = 2" in str(error.value)


def test_an_ensemble_exponent_reaches_the_gates_player_and_a_malformed_one_is_refused(bench: Bench) -> None:
    node = bench.start({"overlap": "ensemble:-0.5"})
    assert (node.gate.player.overlap, node.gate.player.ensemble_coeff) == ("ensemble", -0.5)
    with pytest.raises(ConfigError) as error:
        bench.start({"overlap": "ensemble:fast"})
    assert error.value.field == "action_node.overlap" and "'ensemble:M'" in str(error.value)


def test_an_unknown_overlap_is_refused_in_one_line(bench: Bench) -> None:
    with pytest.raises(ConfigError) as error:
        bench.start({"overlap": "average_of_three"})
    message = str(error.value)
    assert "\n" not in message and "action_node.overlap" in message and "'average_of_three'" in message
    assert all(name in message for name in ("replace", "ensemble", "blend", "inpaint"))


def test_configure_refuses_a_gate_that_cannot_map_and_waits_without_autostart(bench: Bench) -> None:
    node = bench.start({"outputs": ["joint_trajectory"]}, autostart=False)
    assert not node.active  # a lifecycle manager would drive it
    # Out of its descriptor's range: refused at once, the old value stays.
    assert not node.set_parameters([Parameter("action_timeout", value=0.0)])[0].successful
    node.set_parameters([Parameter("joint_names", Parameter.Type.STRING_ARRAY, [])])
    with pytest.raises(ConfigError) as error:
        node.start()  # configure checks what the parameters are now
    assert not node.active and "joint_names" in str(error.value)
    node.set_parameters([Parameter("joint_names", value=["x", "y"])])
    node.start()
    assert node.active and node.gate.config.row_width == 2


def test_with_deceleration_the_stop_is_a_ramp_down(bench: Bench) -> None:
    twists = bench.record(Twist, "cmd_vel")
    bench.start({"index.linear.x": 0, "action_timeout": 0.2, "max_observation_age": 1.0, "control_period": 0.05,
                 "deceleration": 2.0})
    assert bench.spin_until(bench.connected)
    bench.send([0.8])
    assert bench.spin_until(lambda: len(twists) >= 2 and twists[-1].linear.x == 0.0)
    speeds = [t.linear.x for t in twists]
    assert speeds[0] == 0.8 and speeds[-1] == 0.0
    speeds = speeds[max(i for i, v in enumerate(speeds) if v == 0.8):]  # from the last repeat on: the ramp
    assert len(speeds) >= 4  # at least two ramp steps between (0.8 at 2.0/s in 0.05 s steps: up to 7)
    assert all(a > b for a, b in zip(speeds, speeds[1:], strict=False))  # monotonic, never back up


def test_under_sim_time_an_action_before_the_first_clock_waits_for_it(bench: Bench) -> None:
    """Its age cannot be judged on a clock that still reads 0: neither refused as stamped in the future nor
    passed unjudged, but held (the newest one, the replaced counted) and judged when /clock starts."""
    gated = bench.record(AgentAction, GATED_ACTION_TOPIC)
    clock = bench.probe.create_publisher(Clock, "/clock", ORDERED)
    node = bench.start({"use_sim_time": True, "outputs": ["agent_action"]})
    assert bench.spin_until(lambda: bench.connected() and clock.get_subscription_count() > 0
                            and node.outputs[0].publisher.get_subscription_count() > 0)
    for request_id in (1, 2):
        msg = AgentAction(action=[0.1, 0.2], request_id=request_id)
        msg.observation_stamp = to_time(5.0)
        bench.actions.publish(msg)
    assert bench.spin_until(lambda: node.before_clock_drops == 1)
    assert not gated and not node.gate.refused and node.gate.accepted == 0
    clock.publish(Clock(clock=to_time(5.05)))
    assert bench.spin_until(lambda: len(gated) == 1)
    assert gated[0].request_id == 2 and node.gate.accepted == 1 and not node.gate.refused


@pytest.mark.parametrize("jump_to", [10.0, 30.0], ids=["back", "forward"])
def test_a_clock_jump_stops_at_once(bench: Bench, jump_to: float) -> None:
    """/clock going back 10 s (a bag loop, a simulator reset) or forward beyond clock_jump_threshold:
    the command in force was judged on the old clock; a stop goes out at once, not after a timeout."""
    gated = bench.record(AgentAction, GATED_ACTION_TOPIC)
    clock = bench.probe.create_publisher(Clock, "/clock", ORDERED)
    node = bench.start({"use_sim_time": True, "outputs": ["agent_action"], "action_timeout": 60.0,
                        "max_observation_age": 60.0})
    assert bench.spin_until(lambda: bench.connected() and clock.get_subscription_count() > 0
                            and node.outputs[0].publisher.get_subscription_count() > 0)
    clock.publish(Clock(clock=to_time(20.0)))
    assert bench.spin_until(lambda: node.get_clock().now().nanoseconds == 20 * 10**9)
    bench.send([0.5, 0.5], request_id=3)
    assert bench.spin_until(lambda: len(gated) == 1)
    assert node.gate.moving and node.gate.clock_jumps == 0
    clock.publish(Clock(clock=to_time(jump_to)))
    # No timer could fire: sim time did not pass on the new clock. The stop comes from the jump itself.
    assert bench.spin_until(lambda: node.gate.clock_jumps == 1 and len(gated) == 2)
    assert list(gated[1].action) == [0.0, 0.0] and gated[1].request_id == 3
    assert not node.gate.moving and node.gate.timeouts == 0


def test_a_second_generation_run_is_refused_counted_and_named_on_diagnostics(bench: Bench) -> None:
    """Two generation nodes on auras/action: the gate takes the first run it hears; the other one's
    actions never reach the robot, are counted, and /diagnostics says ERROR naming both sources."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    twists = bench.record(Twist, "cmd_vel")
    diagnostics = bench.record(DiagnosticArray, "/diagnostics")
    node = bench.start({"index.linear.x": 0, "action_timeout": 30.0, "max_observation_age": 5.0})
    assert bench.spin_until(bench.connected)

    def send(value: float, source_id: int) -> None:
        msg = AgentAction(action=[value], request_id=1, source_id=source_id)
        msg.observation_stamp = node.get_clock().now().to_msg()
        bench.actions.publish(msg)

    send(0.5, source_id=0xA)
    assert bench.spin_until(lambda: node.gate.accepted == 1)
    for _ in range(3):
        send(-0.9, source_id=0xB)  # the impostor
    send(0.4, source_id=0xA)
    assert bench.spin_until(lambda: node.gate.accepted == 2 and node.fence.refused["second_source"] == 3)
    assert -0.9 not in {t.linear.x for t in twists}
    error = lambda: [s for a in diagnostics for s in a.status  # noqa: E731
                     if s.name == "auras_ros/action_node" and s.level == DiagnosticStatus.ERROR]
    assert bench.spin_until(error, 10.0)
    assert "0xa is taken" in error()[0].message and "0xb refused" in error()[0].message


def test_a_flood_from_the_generation_run_is_refused_beyond_the_rate_limit(bench: Bench) -> None:
    node = bench.start({"index.linear.x": 0, "action_timeout": 30.0, "max_observation_age": 5.0,
                        "max_action_rate": 1.0})
    assert bench.spin_until(bench.connected)
    arrived = lambda: node.gate.accepted + node.fence.refused["flood"]  # noqa: E731
    started = time.monotonic()
    for request_id in range(20):
        bench.send([0.1], request_id=request_id)
        assert bench.spin_until(lambda: arrived() == request_id + 1)  # noqa: B023 - awaited here
    elapsed = time.monotonic() - started
    # A token bucket of one second's worth at 1/s: the first, then one per second elapsed.
    assert node.gate.accepted <= 1 + int(elapsed) + 1
    assert node.fence.refused["flood"] >= 20 - (2 + int(elapsed))
