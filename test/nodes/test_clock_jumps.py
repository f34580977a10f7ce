"""/clock going back (a bag loop, a simulator reset) under use_sim_time: the context node clears what it
holds (sensed in a future that will not come) and takes the source's observations on the new timeline,
and so does the generation node's replica. The gate's stop at the jump: test_action_node.py."""

from __future__ import annotations

import torch
from rosgraph_msgs.msg import Clock

from auras_ros.msg import ContextEntry, ContextState, Percept
from auras_ros.nodes.context_node import ContextNode
from auras_ros.nodes.generation_node import GenerationNode
from auras_ros.nodes.qos import LATCHED, LATEST_RELIABLE
from auras_ros.nodes.ros_convert import to_time
from node_graph import Graph


def _percept(stamp: float, seq: int) -> Percept:
    msg = Percept(key="percept", observation_seq=seq, source_id=0xA)
    msg.header.stamp = to_time(stamp)
    msg.tensor.dtype = "float32"
    return msg


def test_the_context_is_cleared_when_the_clock_goes_back(graph: Graph) -> None:
    context = graph.add(ContextNode, {"use_sim_time": True})
    source = graph.probe("bag_loop")
    percepts = source.create_publisher(Percept, "auras/percept", LATEST_RELIABLE)
    clock = source.create_publisher(Clock, "/clock", LATEST_RELIABLE)
    assert graph.spin_until(lambda: percepts.get_subscription_count() > 0 and clock.get_subscription_count() > 0)
    assert graph.spin_until(lambda: context.get_clock().now().nanoseconds == 20 * 10**9,
                            each=lambda: clock.publish(Clock(clock=to_time(20.0))))
    percepts.publish(_percept(20.0, seq=100))
    assert graph.spin_until(lambda: context.writes["percept"] == 1)
    clock.publish(Clock(clock=to_time(10.0)))  # 10 s back
    assert graph.spin_until(lambda: context.clock_jumps == 1)
    assert context.public_context.history("percept") == ()  # nothing from the abandoned future is served
    # The same source from the top of the loop: taken, not refused as going backwards.
    percepts.publish(_percept(10.0, seq=1))
    assert graph.spin_until(lambda: context.writes["percept"] == 2)
    assert context.public_context.history("percept")[-1].seq == 1 and not context.rejected


def test_the_generation_replica_takes_the_new_timeline_after_the_clock_goes_back(graph: Graph) -> None:
    generation = graph.add(GenerationNode, {"use_sim_time": True, "stats_period": 3600.0})
    source = graph.probe("context_loop")
    states = source.create_publisher(ContextState, "auras/context", LATCHED)
    clock = source.create_publisher(Clock, "/clock", LATEST_RELIABLE)
    assert graph.spin_until(lambda: states.get_subscription_count() > 0 and clock.get_subscription_count() > 0)
    width = generation.agent.config.generation_width

    def state(stamp: float, seq: int) -> ContextState:
        entry = ContextEntry(key="percept", observation_seq=seq, source_id=0xA, verdict=ContextEntry.VERDICT_FRESH)
        entry.stamp = to_time(stamp)
        generation.codec.encode(torch.zeros(width), entry.value)
        return ContextState(entries=[entry])

    for now, seq in ((20.0, 100), (10.0, 1)):  # the second after /clock went 10 s back
        assert graph.spin_until(lambda: generation.get_clock().now().nanoseconds == int(now * 1e9),  # noqa: B023
                                each=lambda: clock.publish(Clock(clock=to_time(now))))  # noqa: B023
        states.publish(state(now, seq))
        assert graph.spin_until(lambda: generation.percepts.latest(now).seq == seq  # noqa: B023
                                if generation.percepts.latest(now) else False)
    assert "bad_origin:percept" not in generation.recorder.summary().drops
