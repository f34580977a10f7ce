"""Executor threading for nodes that share one process: one SingleThreadedExecutor per node, each
spinning in a thread of its own, so each stage's callbacks run beside the others'.

Why not one MultiThreadedExecutor with a callback group per stage: with rclpy 7.1.6 (Jazzy), measured
here with the composed graph (camera at 20 Hz, synthetic model), the MultiThreadedExecutor's spin
loop kept one core busy re-checking entities whose callback group was busy, starving every other
callback: the camera published 29 of 120 frames in 6 s and an action's observation age reached
0.8 s p50. One executor per node ran the same graph at 121/120 frames with a 7 ms p50 age, and used
a third of the CPU. Within a node, callbacks still run one at a time, as in a MutuallyExclusive group.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from auras_ros.nodes.health import end_node


class NodeSpinners:
    def __init__(self, nodes: Sequence[Node], context: Any = None) -> None:
        self._stop = threading.Event()
        self.executors = []
        for node in nodes:
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            self.executors.append(executor)
        self.threads = [threading.Thread(target=self._spin, args=(node, executor), name=f"spin-{node.get_name()}",
                                         daemon=True)
                        for node, executor in zip(nodes, self.executors)]

    def _spin(self, node: Node, executor: SingleThreadedExecutor) -> None:
        while not self._stop.is_set():
            try:
                executor.spin_once(timeout_sec=0.1)
            except Exception as error:  # noqa: BLE001 - else this thread would end silently, the process still up
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
