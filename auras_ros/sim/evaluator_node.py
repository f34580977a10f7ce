"""evaluator_node: scores every AgentAction (auras/action) against what the robot did at the action's
observation stamp, and reports error per dimension and against observation age, decisions per second
and observation age p50/p99.

The reference comes from the replayed bag itself (``bag`` + ``topic_map``: the topic and one field per
action index, read ROS-free with :mod:`auras_ros.eval.bag`, so it needs no topic of its own on the graph
and the bag's /cmd_vel never collides with the robot's), or, without a bag, live from the simulator's
``sim/state`` (the expert's action). How actions are scored: :mod:`auras_ros.eval.scoring`, the code
``python -m auras_ros.eval.bag_eval`` uses too.

``eval/summary`` (std_msgs/String, JSON) reports the running numbers after every ``summary_every`` scored
actions; at shutdown the node writes report.md, errors.png and evaluation.json into ``report_dir``. If no
reference or no action arrived it writes only evaluation.json with ``"ok": false`` and the reason, and
says so on stderr: never a report that looks like a result.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import String

from auras_ros.msg import AgentAction, PipelineStats, SimState
from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import add_drops, to_seconds
from auras_ros.nodes.process import run_node
from auras_ros.eval import messages as m
from auras_ros.nodes.eval_ready import POLL_S, READY, READY_TOPIC
from auras_ros.eval.bag import SIM_STATE, SIM_TOPIC_MAP, TopicMap, check_bag, field_value
from auras_ros.eval.report import write_bag_report
from auras_ros.eval.results import Machine
from auras_ros.core.stats import percentile, rate, rate_text
from auras_ros.eval.scoring import (ActionRecord, ActionScorer, BagEvaluation, ReferenceInfo, ReferenceSeries,
                                   actions_digest, observation_age, score_run, summarize)
from auras_ros.sim.sim_node import SCORES, TICKS
from auras_ros.core import topics
from auras_ros.eval.task_config import TaskConfig

PARAMS = (
    Param("bag", "", "the replayed bag, whose reference topic the actions are scored against "
          "('': the live simulator's sim/state)"),
    Param("topic_map", "", "YAML topic map naming the reference and its fields ('': the simulator's)"),
    Param("report_dir", "", "write report.md, errors.png and evaluation.json here at shutdown ('': no files)"),
    Param("frame_period", 0.0, "seconds per frame, to express ages in frames (0: the bag camera's median "
          "interval, or 0.05 s live)", low=0.0, high=10.0),
    Param("label", "graph", "the run's name in the report (e.g. the executor)"),
    Param("summary_every", 10, "publish eval/summary after this many newly scored actions", low=1, high=10**6),
)
LIVE_FRAME_PERIOD = TaskConfig().frame_period  # the simulator's default world frame


class EvaluatorNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("evaluator_node", **kwargs)
        self.params = p = declare(self, PARAMS)
        topic_map = TopicMap.load(p["topic_map"]) if p["topic_map"] else SIM_TOPIC_MAP
        self.frame_period = p["frame_period"] or LIVE_FRAME_PERIOD
        # A bag whose topic map names no reference (a camera alone) is still evaluated: decisions/s, ages
        # and the actions, the score columns empty.
        self.scoring = bool(topic_map.reference) or not p["bag"]
        if p["bag"]:
            info = check_bag(p["bag"], topic_map, need_reference=self.scoring)  # BagError: refuses to start
            self.reference = info.reference or ReferenceSeries("", "", (), ())
            self.frame_period = p["frame_period"] or info.frame_period
        else:
            self.reference = ReferenceSeries(m.STATE_TOPIC, SIM_STATE, topic_map.reference_fields, topic_map.scale)
            self.create_subscription(SimState, m.STATE_TOPIC, self._on_state, TICKS)
        self.scorer = ActionScorer(self.reference)
        self.actions = 0
        # What perception refused or lost, by reason, to name the cause when no action comes.
        self.perception_drops: Counter[str] = Counter()
        self.create_subscription(PipelineStats, topics.PERCEPTION_STATS, self._on_perception_stats, ORDERED)
        self._reported = 0
        self.summary_pub = self.create_publisher(String, topics.EVAL_SUMMARY, SCORES)
        self.action_sub = self.create_subscription(AgentAction, m.ACTION_TOPIC, self._on_action, ORDERED)
        # The reader half of readiness (nodes/eval_ready.py): announced once this subscription has matched
        # an action publisher (a reader drops data from writers it has not matched); the action publisher's
        # node confirms the writer half, and the sources start on that confirmation.
        self.ready_pub = self.create_publisher(String, READY_TOPIC, READY)
        # On the steady clock: under use_sim_time the bag's /clock only starts once the player does.
        self._ready_timer = self.create_timer(POLL_S, self._announce_ready, clock=Clock(clock_type=ClockType.STEADY_TIME))
        if self.scoring:
            self.get_logger().info(f"scoring auras/action against {self.reference.topic} ({self.reference.samples} "
                                   f"samples so far), fields {list(self.reference.fields)}")
        else:
            self.get_logger().info("no reference topic in the topic map: auras/action is counted (decisions/s, "
                                   "ages, digest), not scored")

    def _announce_ready(self) -> None:
        # Matched, not merely in the graph: this participant lists a publisher about 1 ms before it pairs it.
        if self.action_sub.get_publisher_count() > 0:  # graph changes wake no callback: poll
            self.ready_pub.publish(String(data=self.get_fully_qualified_name()))
            self._ready_timer.cancel()

    def _on_state(self, msg: SimState) -> None:
        self.reference.add(to_seconds(msg.header.stamp), [field_value(msg, path) for path in self.reference.fields])
        self.scorer.flush()
        self._maybe_summarize()

    def _on_perception_stats(self, msg: PipelineStats) -> None:
        add_drops(self.perception_drops, msg)

    def _on_action(self, msg: AgentAction) -> None:
        self.actions += 1
        observed, decided = to_seconds(msg.observation_stamp), to_seconds(msg.header.stamp)
        # The age from the two stamps (the one definition bag_eval uses), not the sender's clamped field.
        self.scorer.add_action(ActionRecord(msg.request_id, observed, decided, observation_age(observed, decided),
                                            time.monotonic(), tuple(msg.action)))
        self._maybe_summarize()

    def summary(self) -> dict:
        records = self.scorer.records
        ids = [r.request_id for r in records]
        summary = {"actions": self.actions, "actions_digest": actions_digest(records),
                   # Request ids count up from 0: the ones never seen were lost before this node.
                   "actions_missed": max(ids) + 1 - len(set(ids)) if ids else 0,
                   "reference_samples": self.reference.samples, "unmatched": self.scorer.unmatched,
                   **asdict(summarize(self.scorer.scored, self.reference, self.frame_period))}
        if not self.scoring:  # no score: rate and ages of every action received
            ages = [r.age for r in records]
            summary.update(decisions_per_s=rate(sorted(r.wall for r in records)), age_p50_s=percentile(ages, 50),
                           age_p99_s=percentile(ages, 99))
        return summary

    def _maybe_summarize(self) -> None:
        if len(self.scorer.scored) - self._reported >= self.params["summary_every"]:
            self._reported = len(self.scorer.scored)
            self.summary_pub.publish(String(data=json.dumps(self.summary(), sort_keys=True)))

    def finish(self) -> dict:
        self.scorer.flush(final=True)
        summary = self.summary()
        problems = [what for what, n in ((f"no reference on {self.reference.topic}", self.reference.samples or not self.scoring),
                                         (self._no_action(), self.actions)) if n == 0]
        if summary["actions_missed"]:
            self.get_logger().warning(f"{summary['actions_missed']} actions (by request id) never arrived: "
                                      "the report leaves them out")
        if not problems and not self.scoring:
            summary["reason"] = "no reference topic in the topic map: the actions were not scored"
            self.get_logger().info(
                f"{self.actions} actions, not scored (no reference topic in the topic map): decisions/s "
                f"{rate_text(summary['decisions_per_s'], self.actions)}, age p50 {summary['age_p50_s'] * 1000:.1f} ms, "
                f"p99 {summary['age_p99_s'] * 1000:.1f} ms")
        elif problems or not self.scorer.scored:
            reason = "; ".join(problems) or "no action could be matched to a reference at or before its observation"
            print(f"evaluator_node: FAILED: {reason}; no report written", file=sys.stderr, flush=True)
            summary["reason"] = reason
        else:
            self.get_logger().info(f"scored {len(self.scorer.scored)} actions against {self.reference.topic}")
        if self.params["report_dir"]:
            write_bag_report(self.evaluation(summary), Path(self.params["report_dir"]))
        return summary

    def _no_action(self) -> str:
        """Why no AgentAction came, as far as perception's stats tell (refusals and losses by reason)."""
        drops = {k: n for k, n in self.perception_drops.items() if n}
        if not drops:
            return "no AgentAction on auras/action"
        return ("no AgentAction on auras/action; perception dropped " +
                ", ".join(f"{reason} x{n}" for reason, n in sorted(drops.items(), key=lambda kv: -kv[1])))

    def evaluation(self, summary: dict) -> BagEvaluation:
        """Everything scored so far as the report's evaluation; ``summary``: :meth:`finish`'s."""
        run = score_run(self.scorer.scored, self.scorer.unmatched, self.reference, self.frame_period)
        if not self.scoring:  # the score columns stay empty; rate and ages are of every action
            run.decisions_per_s, run.age_p50_s, run.age_p99_s = (summary[k] for k in ("decisions_per_s", "age_p50_s",
                                                                                     "age_p99_s"))
        # No model runs in this process, so no device: the facts are of the machine the scoring ran on.
        return BagEvaluation(f"auras/action vs {self.params['bag'] or 'the live simulator'}", self.frame_period,
                             ReferenceInfo.of(self.reference), {self.params["label"]: run},
                             actions_received=self.actions, actions_missed=summary["actions_missed"],
                             actions_digest=summary["actions_digest"], reason=summary.get("reason"),
                             machine=Machine.now(device=""))

    def destroy_node(self) -> None:
        self.finish()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(EvaluatorNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
