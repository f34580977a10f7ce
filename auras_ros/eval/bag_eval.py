"""Open-loop evaluation of executors on any robot's bag, ROS-free: the core executors run over the bag's
camera frames, frame-stepped, and every action is scored against the recorded reference (a bag without
one still reports decisions/s, ages and the actions).

    python -m auras_ros.eval.bag_eval BAG --topic-map config/topic_map_mobile_base.yaml \
        --model synthetic --executors seq auras:1+2 --report DIR

**Frames.** The pipeline clock is a :class:`SimClock` in the bag's log time (the replay's /clock) with
one frame per camera interval (``--frame-period``, default the camera's median interval). A frame admits
the newest camera image logged by its end, when its decisions leave (images that arrive within one
frame supersede each other, as on a robot), so a decision carries the log time of the newest image
admitted, as in the stepped replay through the nodes; after the last image the executors run until
their in-flight requests are done. So a run depends only on the bag, the model and the executor: two
runs give identical actions.

**Inputs.** Each image is decoded (:mod:`auras_ros.transport.images`) and put into the agent's input
form (:func:`auras_ros.models.inputs.observation_data`, the perception node's code: its trained size,
resize rule, channel order, and the robot state by joint name when it takes one). What cannot be is
refused, counted by reason, and named when a run decides nothing.

**Age** (:func:`auras_ros.eval.scoring.observation_age`, the evaluator node's too): the decision's time
on that log-time clock minus the observation's header stamp, so a bag whose header stamps lag its log
times shows the lag in the ages, here and through the nodes alike.

**Scoring** (shared with ``evaluator_node``, :mod:`auras_ros.eval.scoring`): each action against the
reference at its observation stamp. Decisions per second are wall time on this machine (decoding the
bag's images included); ages are in bag time. Several executors run on the same bag in one command and
are printed side by side (Markdown, and with ``--report`` also errors.png and evaluation.json).

**Timed** (``--timed [--speed S] [--overlap O] [--chunk-timing T]``, :mod:`auras_ros.eval.bag_timed`): the
camera released in wall time at its log times, the executors in wall time, each decision's chunk played
time-aligned, and the played commands' seams, jerk and error against the reference per
``EXECUTOR@OVERLAP`` row (open loop: no success or reaction).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from auras_ros.core.chunks import TIMINGS
from auras_ros.core.clock import SimClock
from auras_ros.core.errors import ConfigError, InputError, positive_int
from auras_ros.core.inputs import InputSpec, RobotInputs, check_robot_inputs, input_spec
from auras_ros.core.metrics import Decision
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.stats import percentile, rate, rate_text
from auras_ros.core.stages import Agent, reset_episode
from auras_ros.eval.actuation import ROW_WIDTH
from auras_ros.eval.bag import SIM_TOPIC_MAP, BagInfo, TopicMap, check_bag
from auras_ros.eval.bag_source import BagSource, Refusals
from auras_ros.eval.cli import overlap_argument
from auras_ros.eval import bag_timed
from auras_ros.eval.files import write_failed, write_text_atomically
from auras_ros.eval.report import bag_markdown, write_bag_report
from auras_ros.eval.results import Machine, device_of
from auras_ros.eval.scoring import (ActionRecord, ActionScorer, BagEvaluation, ReferenceInfo,
                                   ScoredAction, actions_digest, observation_age, score_run)


def input_totals(info: BagInfo) -> dict[str, int]:
    """How many inputs of each kind the bag holds, to say "all 8 images" or "3 of 8 states"."""
    return {"images": info.images, "states": info.counts.get(info.state, 0) if info.state else 0}


@dataclass
class ExecutorRun:
    """One executor over the whole bag."""

    scored: list[ScoredAction]  # empty without a reference
    records: list[ActionRecord]  # every action, scored or not
    unmatched: int  # actions decided before any reference sample
    digest: str  # of the actions themselves (:func:`actions_digest`)
    frames: int
    refusals: Refusals = field(default_factory=Refusals)  # inputs refused before the agent
    drops: dict[str, int] = field(default_factory=dict)  # the runner's own counts (e.g. bad_input in perception)
    fault: str = ""  # the last input the agent's perception refused, where the runner keeps it
    rates: list[float] = field(default_factory=list)  # decisions/s (wall) of each repeat

    def cause(self, info: BagInfo) -> str:
        """Why this run decided nothing, from what was counted on the way."""
        causes = [self.refusals.describe(input_totals(info))] if self.refusals.counts else []
        dropped = {k: n for k, n in self.drops.items() if not k.startswith(("no_observation", "no_new_observation"))}
        if dropped:
            causes.append("dropped in the pipeline: " + ", ".join(f"{k} x{n}" for k, n in sorted(dropped.items())))
        if self.fault:
            causes.append(f"last refused by the agent: {self.fault}")
        return "; ".join(causes) or f"no decision in {self.frames} frames and nothing refused or dropped"


def run_executor(info: BagInfo, agent: Agent, spec: ExecutorSpec, frame_period: float,
                 inputs: InputSpec | None = None) -> ExecutorRun:
    """One executor over the whole bag, its observations in the agent's input form (``inputs``: default
    the agent's own); its actions (scored when the bag has a reference), refusals and action digest.

    Frame k ends at the log time of the k-th image (the clock starts one frame before the first): a
    frame's decisions carry the bag time of the newest image it admitted, as in the stepped replay,
    where /clock stands at that image's log time while the graph decides (compute takes no bag time)."""
    source = BagSource(info, inputs if inputs is not None else input_spec(agent), lead=frame_period)
    reset_episode(agent)  # each run is an episode: the next executor or repeat sees none of this one's frames
    clock = SimClock(start=min(info.camera_log_times) - frame_period)
    records: list[ActionRecord] = []
    scorer = ActionScorer(info.reference) if info.reference is not None else None

    def on_decision(decision: Decision) -> None:
        action = np.asarray(decision.output.action, dtype=np.float64).ravel()
        record = ActionRecord(decision.request_id, decision.observation_stamp, decision.decision_time,
                              observation_age(decision.observation_stamp, decision.decision_time),
                              time.perf_counter(), tuple(float(v) for v in action))
        records.append(record)
        if scorer is not None:
            scorer.add_action(record)

    runner = make_runner(spec, agent, source, clock, frame_period=frame_period, on_decision=on_decision)
    try:
        while not source.exhausted:
            runner.step()
        for _ in range(spec.in_flight + 1):  # let the requests in flight at the bag's end finish
            runner.step()
    finally:
        runner.close()
    # The pipeline keeps the last observation perception refused (the sequential runners only count it).
    last = getattr(runner, "last_error", None)
    fault = str(last) if last is not None else ""
    run = ExecutorRun([], records, 0, actions_digest(records), runner.frame, source.refusals,
                      dict(runner.recorder.summary().drops), fault)
    if scorer is not None:
        scorer.flush(final=True)
        run.scored, run.unmatched = scorer.scored, scorer.unmatched
    return run


def evaluate(bag: Path, topic_map: TopicMap, agent: Agent, specs: list[ExecutorSpec], frame_period: float | None = None,
             inputs: InputSpec | None = None, repeats: int = 1) -> tuple[BagInfo, float, dict[str, ExecutorRun]]:
    """Every executor on the bag, ``repeats`` times interleaved (so they share the machine's load alike).
    The first repeat is kept (scored when the topic map names a reference); each run's decisions/s is
    kept in ``rates``; a repeat that decides differently (it never should: frame-stepped) raises
    RuntimeError."""
    info = check_bag(bag, topic_map, need_reference=bool(topic_map.reference))
    period = frame_period if frame_period is not None else info.frame_period
    runs: dict[str, ExecutorRun] = {}
    for _ in range(repeats):
        for spec in specs:
            run = run_executor(info, agent, spec, period, inputs)
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


TRACE_ROWS = 10  # actions per executor printed without a reference (all of them go to actions.csv)


def trace_lines(runs: dict[str, ExecutorRun], rows: int = TRACE_ROWS) -> list[str]:
    """What a bag without a reference still shows: decisions/s, ages and the first actions of each run."""
    lines = ["| executor | decisions | decisions/s | age p50 ms | age p99 ms | actions digest |", "|---|---|---|---|---|---|"]
    for name, run in runs.items():
        ages = [r.age * 1000 for r in run.records]
        cells = [f"{percentile(ages, q):.1f}" if ages else "–" for q in (50, 99)]
        lines.append(f"| {name} | {len(run.records)} | {rate_text(run.rates[0], len(run.records))} | "
                     f"{' | '.join(cells)} | {run.digest} |")
    for name, run in runs.items():
        lines += ["", f"{name}: first {min(rows, len(run.records))} of {len(run.records)} actions "
                  "(request, observation stamp s, decision stamp s, age ms, action)"]
        lines += [f"  {r.request_id} {r.observation_stamp:.6f} {r.decision_stamp:.6f} {r.age * 1000:.1f} "
                  f"[{', '.join(f'{v:.4g}' for v in r.action[:8])}{', ...' if len(r.action) > 8 else ''}]"
                  for r in sorted(run.records, key=lambda r: r.request_id)[:rows]]
    return lines


def write_trace(runs: dict[str, ExecutorRun], directory: Path) -> Path:
    """actions.csv: every action of every run (executor, request, stamps, age, action values)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "actions.csv"
    lines = ["executor,request_id,observation_stamp,decision_stamp,age_s,action"]
    lines += [f"{name},{r.request_id},{r.observation_stamp:.9f},{r.decision_stamp:.9f},{r.age:.9f},"
              f"{' '.join(repr(v) for v in r.action)}" for name, run in runs.items() for r in run.records]
    write_text_atomically(path, "\n".join(lines) + "\n")
    return path


def failures(info: BagInfo, runs: dict[str, ExecutorRun]) -> list[str]:
    """One line per run that failed, naming its cause: no decision (what was refused or dropped), or,
    against a reference, no action that could be matched to it."""
    lines = []
    for name, run in runs.items():
        if not run.records:
            lines.append(f"{name} made no decision: {run.cause(info)}")
        elif info.reference is not None and not run.scored:
            lines.append(f"{name}: all {len(run.records)} actions were decided on observations before the first "
                         f"{info.reference.topic} sample, none could be scored")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="rosbag2 directory (mcap or sqlite3)")
    parser.add_argument("--topic-map", type=Path, help="YAML topic map (default: the simulator's topics)")
    parser.add_argument("--model", default="synthetic", help="agent preset or local checkpoint directory")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--executors", nargs="+", default=["seq", "auras:1+2"], help="executor specs, e.g. seq auras:1+5:f0")
    parser.add_argument("--frame-period", type=float, help="seconds per frame (default: the camera's median interval)")
    parser.add_argument("--state-joints", nargs="+", default=[],
                        help="the robot state's joints by name, in the model's order (default: the model's own, "
                             "else the JointState positions in message order)")
    parser.add_argument("--camera-key", default="",
                        help="which of the checkpoint's cameras the bag's camera topic shows (e.g. "
                             "observation.images.wrist; a checkpoint naming another is refused)")
    parser.add_argument("--instruction", help="an OpenVLA checkpoint's task in words")
    parser.add_argument("--unnorm-key", help="an OpenVLA checkpoint's dataset whose statistics unnormalise its actions")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the executors this many times, interleaved: decisions/s as median [min–max]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: each stage's thread on a core)")
    parser.add_argument("--report", type=Path, help="write report.md, errors.png and evaluation.json here "
                        "(without a reference: actions.csv; --timed: report.md)")
    timed = parser.add_argument_group("timed replay (auras_ros.eval.bag_timed): the camera and the executors in "
                                      "wall time, chunks played time-aligned, seams and jerk of the played commands")
    timed.add_argument("--timed", action="store_true", help="replay in wall time instead of frame-stepped; "
                       "--executors then takes EXECUTOR[@OVERLAP] rows")
    timed.add_argument("--speed", type=float, help="bag seconds per wall second (default 1)")
    timed.add_argument("--overlap", type=overlap_argument, help="the overlap of rows that name none (default replace)")
    timed.add_argument("--chunk-timing", choices=TIMINGS, help="observation (default): row k due k periods after "
                       "its observation, late rows skipped; arrival: row 0 plays on arrival")
    timed.add_argument("--row-width", type=int, help=f"elements per chunk row (default {ROW_WIDTH}, the "
                       "simulator's (vx, vy))")
    timed.add_argument("--noise-scale", type=float, help="scale of a diffusion agent's initial noise x_T (and DDPM's "
                       "per-step noise): 1 (default) = as trained, 0 = deterministic (core.stages.set_noise_scale)")
    args = parser.parse_args(argv)
    try:
        topic_map = TopicMap.load(args.topic_map) if args.topic_map else SIM_TOPIC_MAP
        timed_only = {f"--{name.replace('_', '-')}": getattr(args, name)
                      for name in ("speed", "overlap", "chunk_timing", "row_width", "noise_scale") if getattr(args, name) is not None}
        if timed_only and not args.timed:
            option, value = next(iter(timed_only.items()))
            raise ConfigError(option, value, "an option of the timed replay: add --timed")
        # Timed: EXECUTOR[@OVERLAP] rows; stepped: executor specs (no chunk is played there).
        rows = bag_timed.timed_rows(args) if args.timed else []
        specs = [] if args.timed else [ExecutorSpec.parse(text) for text in args.executors]
        if args.frame_period is not None and not args.frame_period > 0:
            raise ConfigError("--frame-period", args.frame_period, "seconds > 0")
        for name in ("threads", "repeats"):
            positive_int(f"--{name}", getattr(args, name))
        torch.set_num_threads(args.threads)
        from auras_ros.models.factory import build_agent
        agent = build_agent(args.model, args.device, instruction=args.instruction, unnorm_key=args.unnorm_key)
        check_robot_inputs(input_spec(agent), RobotInputs(topic_map.camera, args.camera_key, topic_map.state,
                                                          len(args.state_joints) or None), args.model)
        inputs = input_spec(agent).with_joints(args.state_joints)
        if args.timed:
            return bag_timed.main_timed(args, argv, topic_map, agent, inputs, rows)
        info, period, runs = evaluate(args.bag, topic_map, agent, specs, args.frame_period, inputs, args.repeats)
    except (ConfigError, InputError) as error:
        print(f"bag_eval: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"bag_eval: FAILED: {error}", file=sys.stderr)
        return 1
    skipped = f", {len(info.bad_images)} undecodable images skipped" if info.bad_images else ""
    size = f"{inputs.size[0]}x{inputs.size[1]} (HxW, {inputs.resize})" if inputs.size else "as decoded"
    print(f"bag {args.bag}: {info.images} images on {info.camera} ({info.camera_type}){skipped}; frame "
          f"{period * 1000:g} ms; header stamps lag log time by {info.stamp_lag * 1000:.1f} ms (ages include it); "
          f"model {args.model}, images {size}")
    for name, run in runs.items():
        refused = f", refused: {run.refusals.describe(input_totals(info))}" if run.refusals.counts else ""
        scored = (f", {len(run.scored)} scored, {run.unmatched} before any reference" if info.reference is not None
                  else "")
        print(f"  [{name}] {len(run.records)} actions{scored}, {run.frames} frames, actions digest {run.digest}{refused}")
    failed = failures(info, runs)
    for line in failed:
        print(f"bag_eval: FAILED: {line}", file=sys.stderr)
    if info.reference is None:
        print(f"no reference topic in {args.topic_map or 'the topic map'}: the score columns are empty, only "
              "decisions/s, ages and the actions are reported")
        print("\n".join(trace_lines(runs)))
        if args.report:
            try:
                print(f"actions: {write_trace(runs, args.report)}")
            except OSError as error:  # a full disk: one line, no partial file
                return write_failed("bag_eval", error)
        return 1 if failed else 0
    if failed:
        return 1
    evaluation = bag_evaluation(args.bag, info, period, runs, args.model, Machine.now(device_of(agent)))
    print(bag_markdown(evaluation))
    if args.report:
        try:
            print(f"report: {write_bag_report(evaluation, args.report)}")
        except OSError as error:  # a full disk: one line, no partial file
            return write_failed("bag_eval", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
