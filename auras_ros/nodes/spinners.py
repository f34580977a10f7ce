"""Executor threading for nodes that share one process: one single-threaded executor per node, each
spinning in a thread of its own, so each stage's callbacks run beside the others'.

Why not one MultiThreadedExecutor with a callback group per stage: with rclpy 7.1.6 (Jazzy), measured
here with the composed graph (camera at 20 Hz, synthetic model), the MultiThreadedExecutor's spin
loop kept one core busy re-checking entities whose callback group was busy, starving every other
callback: the camera published 29 of 120 frames in 6 s and an action's observation age reached
0.8 s p50. One executor per node ran the same graph at 121/120 frames with a 7 ms p50 age, and used
a third of the CPU. Within a node, callbacks run one at a time, so local delivery
(nodes/local_delivery.py) may run a message as a task of the node's executor; its inline
subscriptions run in the publisher's thread instead, under a lock of the subscribing node's.

The arrangement is chosen by ``python -m auras_ros.bench.ros_overhead`` (the README records the
numbers): ``events`` (an rclpy.experimental.EventsExecutor per node: event-driven, no wait-set rebuild
per callback), ``single`` (rclpy's SingleThreadedExecutor per node) or ``events-shared`` (one
EventsExecutor thread for every node: a message hop is a task in the same thread instead of waking
another, while the generation node's frame clock still computes in a thread of its own, beside
perception).
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

from rclpy.executors import SingleThreadedExecutor
from rclpy.experimental import EventsExecutor
from rclpy.node import Node

from auras_ros.core.errors import ConfigError, one_of
from auras_ros.nodes.health import end_node

# rclpy executors, called spinners here: "executor" is the Auras executor spec (core.spec).
SPINNERS = {"events": EventsExecutor, "single": SingleThreadedExecutor, "events-shared": EventsExecutor}
DEFAULT_SPINNER = "events"


class NodeSpinners:
    def __init__(self, nodes: Sequence[Node], context: Any = None, spinner: str = DEFAULT_SPINNER) -> None:
        if spinner not in SPINNERS:
            raise ConfigError("spinner", spinner, one_of(tuple(SPINNERS)))
        self._stop = threading.Event()
        groups = [list(nodes)] if spinner == "events-shared" else [[node] for node in nodes]
        self.executors = []
        for group in groups:
            rclpy_executor = SPINNERS[spinner](context=context)
            for node in group:
                rclpy_executor.add_node(node)
            self.executors.append(rclpy_executor)
        self.threads = [threading.Thread(target=self._spin, args=(group, rclpy_executor), name=f"spin-{group[0].get_name()}",
                                         daemon=True)
                        for group, rclpy_executor in zip(groups, self.executors, strict=False)]

    def _spin(self, group: list[Node], executor: Any) -> None:
        while not self._stop.is_set():
            try:
                executor.spin_once(timeout_sec=0.1)
            except Exception as error:  # noqa: BLE001 - else this thread would end silently, the process still up
                # Which node's callback raised is unknown when nodes share an executor: all of them end.
                for node in group:
                    end_node(node, f"a callback raised {error!r}", error)
                return

    def start(self) -> "NodeSpinners":
        for thread in self.threads:
            thread.start()
        return self

    def shutdown(self) -> None:
        """Stop spinning once each node's running callback has finished, then release the executors."""
        self._stop.set()
        for thread in self.threads:
            if thread.is_alive():
                thread.join()
        for executor in self.executors:
            executor.shutdown()
