"""Receives one sample of each auras_ros interface, checks it equals the sent one, prints it."""

from __future__ import annotations

import sys
from functools import partial
from typing import Any

from rclpy.node import Node

from auras_ros.nodes.roundtrip_samples import ROUNDTRIP_QOS, declare_roundtrip_parameters
from auras_ros.nodes.process import run_node, spin_until


class RoundtripListener(Node):
    def __init__(self) -> None:
        super().__init__("roundtrip_listener")
        self.samples, self.timeout_s = declare_roundtrip_parameters(self)
        self.pending = set(self.samples)
        self.mismatched: list[str] = []
        for name, sample in self.samples.items():
            self.create_subscription(sample.msg_type, sample.topic, partial(self._on_message, name), ROUNDTRIP_QOS)

    def _on_message(self, name: str, msg: Any) -> None:
        if name not in self.pending:
            return
        self.pending.discard(name)
        sample = self.samples[name]
        same = msg == sample.make()
        if not same:
            self.mismatched.append(name)
        verdict = "equals the sent sample" if same else "DIFFERS from the sent sample"
        print(f"[roundtrip_listener] received {name} on {sample.topic}: {sample.describe(msg)} ({verdict})", flush=True)

    def run(self) -> int:
        if not spin_until(self, lambda: not self.pending, self.timeout_s):
            print(f"[roundtrip_listener] FAILED: nothing arrived for {sorted(self.pending)} within {self.timeout_s} s",
                  flush=True)
            return 1
        if self.mismatched:
            print(f"[roundtrip_listener] FAILED: {self.mismatched} arrived changed", flush=True)
            return 1
        print(f"[roundtrip_listener] all {len(self.samples)} interfaces arrived intact", flush=True)
        return 0


def main(args: list[str] | None = None) -> int:
    return run_node(RoundtripListener, RoundtripListener.run, args)


if __name__ == "__main__":
    sys.exit(main())
