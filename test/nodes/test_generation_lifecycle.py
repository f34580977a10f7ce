"""The generation node as a managed (lifecycle) node, in this process on a private domain: deactivated it
publishes no action whatever percepts arrive (the requests it held are cancelled, counted), activated again
it decides on new percepts; configure refuses a bad executor with a ConfigError naming it; a lifecycle
manager drives the node's own process through ~/change_state."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.parameter import Parameter

from auras_ros.core.errors import ConfigError
from auras_ros.launching import node_command
from auras_ros.msg import AgentAction, ContextEntry, ContextState
from auras_ros.nodes.generation_node import DEACTIVATED, INACTIVE, GenerationNode
from auras_ros.nodes.qos import LATCHED, ORDERED
from node_graph import Graph, Listener, Processes


def _state(generation: GenerationNode, seq: int) -> ContextState:
    """A fresh, well-formed percept for ``generation``'s agent, stamped now."""
    entry = ContextEntry(key="percept", observation_seq=seq, verdict=ContextEntry.VERDICT_FRESH)
    entry.stamp = generation.get_clock().now().to_msg()
    generation.codec.encode(torch.zeros(generation.agent.config.generation_width), entry.value)
    return ContextState(entries=[entry])


def _context_source(graph: Graph, generation: GenerationNode) -> tuple[Any, list[AgentAction]]:
    """A probe in place of the context node: its ContextState publisher, and the actions it receives."""
    source = graph.probe("context_source")
    states = source.create_publisher(ContextState, "auras/context", LATCHED)
    actions: list[AgentAction] = []
    source.create_subscription(AgentAction, "auras/action", actions.append, ORDERED)
    assert graph.spin_until(lambda: states.get_subscription_count() > 0
                            and generation.actions.get_subscription_count() > 0)
    return states, actions


def _turn_away(graph: Graph, generation: GenerationNode, states: Any, seqs: tuple[int, ...]) -> None:
    """Percepts for an inactive node: each arrives and is turned away (one at a time: the topic keeps
    the latest only); the timeout only guards against a hang."""
    for seq in seqs:
        turned_away = generation.recorder.summary().drops.get(INACTIVE, 0) + 1
        states.publish(_state(generation, seq))
        assert graph.spin_until(lambda: generation.recorder.summary().drops.get(INACTIVE, 0) == turned_away)


def test_deactivate_stops_the_actions_and_activate_resumes_them(graph: Graph) -> None:
    # Lockstep: one frame per percept, so the pipeline (L = 1 + 3) holds requests while no percept comes.
    generation = graph.add(GenerationNode, {"stats_period": 3600.0, "executor": "auras:1+3:f0:a0", "lockstep": True})
    states, actions = _context_source(graph, generation)

    def feed_until_decided(first: int) -> None:
        """One percept per frame (seq first, first + 1, ...) until the pipeline decides, then its action
        arrives, decided on the freshest of them (the public context)."""
        decided, seq = generation.recorder.decisions_recorded, first
        while generation.recorder.decisions_recorded == decided:
            assert seq < first + 8, "no decision within twice the pipeline's L frames"
            frame = generation.runner.frame
            states.publish(_state(generation, seq))
            assert graph.spin_until(lambda: generation.runner.frame > frame)
            seq += 1
        assert graph.spin_until(lambda: any(a.observation_seq >= first for a in actions))

    feed_until_decided(1)
    generation.trigger_deactivate()
    assert not generation.active
    held = generation.runner.in_flight  # admitted, undecided: the next activation's first frame cancels them
    frames = generation.runner.frame
    assert held > 0

    _turn_away(graph, generation, states, (20, 21, 22))
    assert generation.runner.frame == frames  # no frame ran
    assert all(a.observation_seq < 20 for a in actions)  # no action, and none from the inactive time later

    generation.trigger_activate()
    assert generation.active
    feed_until_decided(30)
    assert all(a.observation_seq < 20 or a.observation_seq >= 30 for a in actions)
    assert generation.recorder.summary().cancels == {DEACTIVATED: held}  # the held requests never finished


@pytest.mark.parametrize("mode", ["dec", "par"])
def test_a_threaded_baseline_stops_and_resumes_on_new_percepts_only(graph: Graph, mode: str) -> None:
    generation = graph.add(GenerationNode, {"stats_period": 3600.0, "executor": mode if mode == "dec" else "par:2"})
    states, actions = _context_source(graph, generation)

    def published_count() -> int:
        """Decisions that left (what workers finished during the deactivation is a cancel, not a decision)."""
        return generation.recorder.decisions_recorded

    states.publish(_state(generation, 1))
    assert graph.spin_until(lambda: any(a.observation_seq == 1 for a in actions))
    generation.trigger_deactivate()  # its workers end
    published = published_count()
    _turn_away(graph, generation, states, (2,))
    assert graph.spin_until(lambda: len(actions) == published)  # every action published has arrived
    assert published_count() == published  # nothing decided while inactive

    generation.trigger_activate()
    states.publish(_state(generation, 3))
    assert graph.spin_until(lambda: any(a.observation_seq == 3 for a in actions))
    # In publication order: nothing from before the stop (PAR re-reads its latest percept) and nothing
    # turned away came after it.
    assert {a.observation_seq for a in actions[published:]} == {3}
    ids = [a.request_id for a in actions]
    assert len(set(ids)) == len(ids)  # the new runner numbers on: no request id repeats


def test_configure_refuses_a_bad_executor_and_names_it(graph: Graph) -> None:
    generation = GenerationNode(context=graph.context, autostart=False,
                                parameter_overrides=[Parameter("executor", value="auras:x")])
    graph.nodes.append(generation)  # destroyed with the graph
    assert not generation.active and generation.runner is None  # waits for a lifecycle manager
    with pytest.raises(ConfigError) as error:
        generation.start()
    assert error.value.field == "executor" and error.value.value == "auras:x"
    assert not generation.active and generation.runner is None
    generation.set_parameters([Parameter("executor", value="auras:1+2")])
    generation.start()  # configure reads the parameters as they are now
    assert generation.active and str(generation.spec) == "auras:1+2:f0:a0"
    generation.trigger_deactivate()
    generation.trigger_cleanup()  # drops the model, the executor and the public context
    assert generation.runner is None and generation.agent is None
    generation.set_parameters([Parameter("executor", value="seq")])
    generation.start()
    assert generation.active and generation.spec.kind == "seq" and generation.agent is not None


def _answer(listener: Listener, client: Any, request: Any, processes: Processes, attempts: int = 1) -> Any:
    """The server's reply; with attempts > 1 the request is sent again while unanswered, for the first
    request only: DDS matches a service's request and reply topics separately, so a server can be ready
    before its replies reach this client, and a request sent in between is never answered."""
    for _ in range(attempts):
        future = client.call_async(request)
        if listener.spin_until(future.done, 60.0 if attempts == 1 else 2.0, processes.procs):
            return future.result()
        client.remove_pending_request(future)
    raise AssertionError(f"{client.srv_name} never answered\n{processes.output()}")


def test_a_lifecycle_manager_drives_the_node_process_through_change_state(listener: Listener, ros_env,
                                                                          tmp_path) -> None:
    command = node_command("auras_ros", "generation_node", name="generation_node") + ["-p", "autostart:=false"]
    with Processes([command], ros_env, tmp_path) as process:
        change = listener.node.create_client(ChangeState, "/generation_node/change_state")
        get = listener.node.create_client(GetState, "/generation_node/get_state")
        assert listener.spin_until(lambda: change.service_is_ready() and get.service_is_ready(), 60.0,
                                   process.procs), process.output()
        # autostart false: it waits unconfigured, and refuses to activate so (a request safe to repeat).
        assert _answer(listener, get, GetState.Request(), process, attempts=30).current_state.label == "unconfigured"
        activate = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVATE))
        assert not _answer(listener, change, activate, process, attempts=30).success
        for transition, label in ((Transition.TRANSITION_CONFIGURE, "inactive"),
                                  (Transition.TRANSITION_ACTIVATE, "active"),
                                  (Transition.TRANSITION_DEACTIVATE, "inactive"),
                                  (Transition.TRANSITION_CLEANUP, "unconfigured")):
            assert _answer(listener, change, ChangeState.Request(transition=Transition(id=transition)), process).success
            assert _answer(listener, get, GetState.Request(), process).current_state.label == label
        codes, output = process.stop(grace_s=30.0)
        assert codes == [0], output
