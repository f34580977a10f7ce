"""Open-loop evaluation of executors on any robot's bag, ROS-free: the core executors run over the bag's
camera frames, frame-stepped, and every action is scored against the recorded reference.

    python -m auras_ros.eval.bag_eval BAG --topic-map config/topic_map_mobile_base.yaml \
        --model synthetic --executors seq auras:1+2 --report DIR

**Frames.** The pipeline clock is a :class:`SimClock` in bag time with one frame per camera interval
(``--frame-period``, default the camera's median interval). At each frame start the executor sees the
newest camera image sensed at or before that time (images that arrive within one frame supersede each
other, as on a robot); after the last image the executors run until their in-flight requests are done.
So a run depends only on the bag, the model and the executor: two runs give identical actions.

**Scoring** (shared with ``evaluator_node``, :mod:`auras_ros.eval.scoring`): each action against the
reference at its observation stamp. Decisions per second are wall time on this machine (decoding the
bag's images included); ages are in bag time. Several executors run on the same bag in one command and
are printed side by side (Markdown, and with ``--report`` also errors.png and evaluation.json).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from auras_ros.core.clock import SimClock
from auras_ros.core.errors import ConfigError, InputError, positive_int
from auras_ros.core.metrics import Decision
from auras_ros.core.sources import StampedHistory
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.stats import rate
from auras_ros.core.stages import Agent, Observation
from auras_ros.eval.bag import SIM_TOPIC_MAP, BagFrame, BagInfo, TopicMap, camera_frames, check_bag, state_samples
from auras_ros.eval.report import bag_markdown, write_bag_report
from auras_ros.eval.results import Machine, device_of
from auras_ros.eval.scoring import (STAMP_TOLERANCE, ActionRecord, ActionScorer, BagEvaluation, ReferenceInfo,
                                   ScoredAction, actions_digest, score_run)


class BagSource:
    """The bag's camera as an ObservationSource: ``latest(now)`` is the newest image sensed at or before
    ``now``; with ``join_state`` joined with the robot state sensed at its stamp (else the newest before),
    as the perception node's ``state_topic`` does, for policies that take one."""

    def __init__(self, info: BagInfo, join_state: bool = False) -> None:
        self._frames: Iterator[BagFrame] = camera_frames(info)
        self._next: BagFrame | None = next(self._frames, None)
        self._latest: Observation | None = None
        self._states: StampedHistory | None = None
        if join_state:
            if not info.state:
                raise ConfigError("--join-state", True, "a topic map that names the robot's state topic")
            self._states = StampedHistory(max(len(info.camera_stamps), 1))
            for stamp, position in state_samples(info):
                self._states.add(stamp, position)

    @property
    def exhausted(self) -> bool:
        return self._next is None

    def latest(self, now: float) -> Observation | None:
        while self._next is not None and self._next.stamp <= now + STAMP_TOLERANCE:
            frame = self._next
            self._latest = Observation(frame.index, frame.stamp, self._data(frame))
            self._next = next(self._frames, None)
        return self._latest

    def _data(self, frame: BagFrame) -> Any:
        if self._states is None:
            return frame.pixels
        found = self._states.at(frame.stamp)
        return {"image": frame.pixels, "state": found[0] if found is not None else None}


@dataclass
class ExecutorRun:
    """One executor over the whole bag."""

    scored: list[ScoredAction]
    records: list[ActionRecord]  # every action, scored or not
    unmatched: int  # actions decided before any reference sample
    digest: str  # of the actions themselves (:func:`actions_digest`)
    frames: int
    rates: list[float] = field(default_factory=list)  # decisions/s (wall) of each repeat


def run_executor(info: BagInfo, agent: Agent, spec: ExecutorSpec, frame_period: float,
                 join_state: bool = False) -> ExecutorRun:
    """One executor over the whole bag; its scored actions, unmatched count and action digest."""
    source = BagSource(info, join_state)
    clock = SimClock(start=min(info.camera_stamps))
    scorer = ActionScorer(info.reference)

    def on_decision(decision: Decision) -> None:
        action = np.asarray(decision.output.action, dtype=np.float64).ravel()
        scorer.add_action(ActionRecord(decision.request_id, decision.observation_stamp, decision.decision_time,
                                       decision.age, time.perf_counter(), tuple(float(v) for v in action)))

    runner = make_runner(spec, agent, source, clock, frame_period=frame_period, on_decision=on_decision)
    try:
        while not source.exhausted:
            runner.step()
        for _ in range(spec.in_flight + 1):  # let the requests in flight at the bag's end finish
            runner.step()
    finally:
        runner.close()
    scorer.flush(final=True)
    return ExecutorRun(scorer.scored, scorer.records, scorer.unmatched, actions_digest(scorer.records), runner.frame)


def evaluate(bag: Path, topic_map: TopicMap, agent: Agent, specs: list[ExecutorSpec], frame_period: float | None = None,
             join_state: bool = False, repeats: int = 1) -> tuple[BagInfo, float, dict[str, ExecutorRun]]:
    """Every executor on the bag, ``repeats`` times interleaved (so they share the machine's load alike).
    The first repeat is scored; each run's decisions/s is kept in ``rates``; a repeat that decides
    differently (it never should: frame-stepped) raises RuntimeError."""
    info = check_bag(bag, topic_map, need_reference=True)
    period = frame_period if frame_period is not None else info.frame_period
    runs: dict[str, ExecutorRun] = {}
    for _ in range(repeats):
        for spec in specs:
            run = run_executor(info, agent, spec, period, join_state)
            first = runs.setdefault(spec.name, run)
            if run.digest != first.digest:
                raise RuntimeError(f"{spec.name} decided differently on a repeat of {bag}: {run.digest} != {first.digest}")
            first.rates.append(rate(sorted(r.wall for r in run.records)))
    return info, period, runs


def bag_evaluation(bag: Path, info: BagInfo, period: float, runs: dict[str, ExecutorRun], model: str,
                   machine: Machine) -> BagEvaluation:
    """The report's form of :func:`evaluate`'s runs: the first repeat scored, every repeat's rate."""
    scored = {name: score_run(run.scored, run.unmatched, info.reference, period, run.rates)
              for name, run in runs.items()}
    return BagEvaluation(f"bag_eval on {bag}", period, ReferenceInfo.of(info.reference), scored, model=model,
                         bad_images=len(info.bad_images), machine=machine)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="rosbag2 directory (mcap or sqlite3)")
    parser.add_argument("--topic-map", type=Path, help="YAML topic map (default: the simulator's topics)")
    parser.add_argument("--model", default="synthetic", help="agent preset or local checkpoint directory")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--executors", nargs="+", default=["seq", "auras:1+2"], help="executor specs, e.g. seq auras:1+5:f0")
    parser.add_argument("--frame-period", type=float, help="seconds per frame (default: the camera's median interval)")
    parser.add_argument("--join-state", action="store_true",
                        help="join the topic map's state to each image (policies that take the robot state)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the executors this many times, interleaved: decisions/s as median [min–max]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: each stage's thread on a core)")
    parser.add_argument("--report", type=Path, help="write report.md, errors.png and evaluation.json here")
    args = parser.parse_args(argv)
    try:
        topic_map = TopicMap.load(args.topic_map) if args.topic_map else SIM_TOPIC_MAP
        specs = [ExecutorSpec.parse(text) for text in args.executors]
        if args.frame_period is not None and not args.frame_period > 0:
            raise ConfigError("--frame-period", args.frame_period, "seconds > 0")
        for name in ("threads", "repeats"):
            positive_int(f"--{name}", getattr(args, name))
        torch.set_num_threads(args.threads)
        from auras_ros.models.factory import build_agent
        agent = build_agent(args.model, args.device)
        info, period, runs = evaluate(args.bag, topic_map, agent, specs, args.frame_period, args.join_state,
                                      args.repeats)
    except (ConfigError, InputError) as error:
        print(f"bag_eval: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"bag_eval: FAILED: {error}", file=sys.stderr)
        return 1
    skipped = f", {len(info.bad_images)} undecodable images skipped" if info.bad_images else ""
    print(f"bag {args.bag}: {info.images} images on {info.camera} ({info.camera_type}){skipped}; frame "
          f"{period * 1000:g} ms; model {args.model}")
    evaluation = bag_evaluation(args.bag, info, period, runs, args.model, Machine.now(device_of(agent)))
    for name, run in runs.items():
        print(f"  [{name}] {len(run.scored)} actions scored, {run.unmatched} before any reference, "
              f"{run.frames} frames, actions digest {run.digest}")
    if not evaluation.ok:
        print("bag_eval: FAILED: an executor's actions could not be matched to the reference", file=sys.stderr)
        return 1
    print(bag_markdown(evaluation))
    if args.report:
        print(f"report: {write_bag_report(evaluation, args.report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
