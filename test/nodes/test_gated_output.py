"""The gate's agent_action output: a receiver that plays chunks itself gets each accepted chunk, and a
renewal (a row or a hold) only in a control period in which no chunk went out."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time

from auras_ros.core.safety import ACCEPTED, REPEAT, ROW, STOP, Command
from auras_ros.msg import AgentAction
from auras_ros.nodes.action_outputs import GatedActionOutput


class Recorder:
    def __init__(self) -> None:
        self.sent: list[AgentAction] = []

    def publish(self, msg: AgentAction) -> None:
        self.sent.append(msg)


class StubNode:
    def __init__(self) -> None:
        self.publisher = Recorder()

    def create_lifecycle_publisher(self, *args: object) -> Recorder:
        return self.publisher


def test_a_row_right_after_an_accepted_chunk_is_not_sent_again() -> None:
    node = StubNode()
    output = GatedActionOutput(node)
    source = AgentAction(action=[0.1, 0.1, 0.2, 0.2], request_id=7)
    row = np.array([0.1, 0.1])
    output.send(Command(row, ACCEPTED), source, Time(sec=1))
    output.send(Command(np.array([0.2, 0.2]), ROW), source, Time(sec=2))  # same period: the chunk just went out
    assert len(node.publisher.sent) == 1
    output.send(Command(np.array([0.2, 0.2]), ROW), source, Time(sec=3))  # the next tick renews it
    output.send(Command(np.array([0.2, 0.2]), REPEAT), source, Time(sec=4))
    assert [m.header.stamp.sec for m in node.publisher.sent] == [0, 3, 4]
    # A renewal carries the chunk unchanged (the receiver plays it); a stop carries the command.
    assert list(node.publisher.sent[1].action) == [0.1, 0.1, 0.2, 0.2]
    output.send(Command(row, ACCEPTED), source, Time(sec=5))
    output.send(Command(np.zeros(2), STOP), source, Time(sec=6))  # never skipped
    assert list(node.publisher.sent[-1].action) == [0.0, 0.0]
