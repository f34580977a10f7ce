"""Publishes one sample of each auras_ros interface once a subscriber matched, then waits for acks."""

from __future__ import annotations

import sys
from functools import partial

from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks, QoSPublisherMatchedInfo
from rclpy.node import Node

from auras_ros.nodes.roundtrip_samples import ROUNDTRIP_QOS, declare_roundtrip_parameters
from auras_ros.nodes.process import run_node, spin_until


class RoundtripTalker(Node):
    def __init__(self) -> None:
        super().__init__("roundtrip_talker")
        self.samples, self.timeout_s = declare_roundtrip_parameters(self)
        self.unmatched = set(self.samples)
        self.pubs = {
            name: self.create_publisher(
                sample.msg_type,
                sample.topic,
                ROUNDTRIP_QOS,
                event_callbacks=PublisherEventCallbacks(matched=partial(self._on_matched, name)),
            )
            for name, sample in self.samples.items()
        }

    def _on_matched(self, name: str, info: QoSPublisherMatchedInfo) -> None:
        # Publish on the first match, so the talker's exit can wait for that reader's ack.
        if info.current_count > 0 and name in self.unmatched:
            self.unmatched.discard(name)
            self.pubs[name].publish(self.samples[name].make())
            print(f"[roundtrip_talker] sent {name} on {self.samples[name].topic}", flush=True)

    def run(self) -> int:
        if not spin_until(self, lambda: not self.unmatched, self.timeout_s):
            topics = [self.samples[n].topic for n in sorted(self.unmatched)]
            print(f"[roundtrip_talker] FAILED: no subscriber matched {topics} within {self.timeout_s} s", flush=True)
            return 1
        for name, pub in self.pubs.items():
            if not pub.wait_for_all_acked(Duration(seconds=self.timeout_s)):
                print(f"[roundtrip_talker] FAILED: {name} was not acknowledged within {self.timeout_s} s", flush=True)
                return 1
        return 0


def main(args: list[str] | None = None) -> int:
    return run_node(RoundtripTalker, RoundtripTalker.run, args)


if __name__ == "__main__":
    sys.exit(main())
