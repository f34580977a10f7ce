"""evaluator_node: scores every AgentAction (auras/action) against the ground-truth expert action
(sim/state) at its actuation time, and reports the error against observation age.

How actions are scored: :mod:`auras_ros.sim.scoring`. ``eval/summary`` (std_msgs/String, JSON) reports
the running numbers after every ``summary_every`` scored actions; at shutdown the node writes
report.md (table), errors.png (plot) and evaluation.json into ``report_dir``. If no ground truth or no
action arrived it writes only evaluation.json with ``"ok": false`` and the reason, and says so on
stderr: never a report that looks like a result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rclpy.node import Node
from std_msgs.msg import String

from auras_ros.msg import AgentAction, SimState
from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import to_seconds
from auras_ros.nodes.runner import run_node
from auras_ros.sim import messages as m
from auras_ros.sim.scoring import ActionScorer, age_table, write_report
from auras_ros.sim.sim_node import SCORES, TICKS

PARAMS = (
    Param("report_dir", "", "write report.md, errors.png and evaluation.json here at shutdown ('': no files)"),
    Param("frame_period", 0.05, "seconds per world frame, to express ages in frames", low=1e-4, high=10.0),
    Param("summary_every", 10, "publish eval/summary after this many newly scored actions", low=1, high=10**6),
)


class EvaluatorNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("evaluator_node", **kwargs)
        self.params = declare(self, PARAMS)
        self.scorer = ActionScorer()
        self.actions = 0
        self._reported = 0
        self.summary_pub = self.create_publisher(String, "eval/summary", SCORES)
        self.create_subscription(SimState, m.STATE_TOPIC, self._on_state, TICKS)
        self.create_subscription(AgentAction, m.ACTION_TOPIC, self._on_action, ORDERED)

    def _on_state(self, msg: SimState) -> None:
        self.scorer.add_expert(to_seconds(msg.header.stamp), msg.expert_action)
        self._maybe_summarize()

    def _on_action(self, msg: AgentAction) -> None:
        self.actions += 1
        self.scorer.add_action(msg.request_id, to_seconds(msg.header.stamp), to_seconds(msg.observation_age),
                               msg.action)
        self._maybe_summarize()

    def summary(self) -> dict:
        scored = self.scorer.scored
        return {"scored": len(scored), "actions": self.actions, "ground_truth": self.scorer.samples,
                "unmatched": self.scorer.unmatched,
                "by_age": age_table(scored, self.params["frame_period"]) if scored else []}

    def _maybe_summarize(self) -> None:
        if len(self.scorer.scored) - self._reported >= self.params["summary_every"]:
            self._reported = len(self.scorer.scored)
            self.summary_pub.publish(String(data=json.dumps(self.summary(), sort_keys=True)))

    def finish(self) -> dict:
        self.scorer.flush(final=True)
        summary = self.summary()
        problems = [what for what, n in (("no ground truth on sim/state", self.scorer.samples),
                                         ("no AgentAction on auras/action", self.actions)) if n == 0]
        if problems or not self.scorer.scored:
            reason = "; ".join(problems) or "no action could be matched to ground truth at or before its stamp"
            print(f"evaluator_node: FAILED: {reason}; no report written", file=sys.stderr, flush=True)
            summary["reason"] = reason
        else:
            self.get_logger().info(f"scored {len(self.scorer.scored)} actions against the expert")
        if self.params["report_dir"]:
            meta = {"source": "auras/action vs sim/state", "unmatched": self.scorer.unmatched,
                    "ground_truth": self.scorer.samples, **({"reason": summary["reason"]} if "reason" in summary else {})}
            write_report(self.scorer.scored, Path(self.params["report_dir"]), self.params["frame_period"], meta)
        return summary

    def destroy_node(self) -> None:
        self.finish()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(EvaluatorNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
