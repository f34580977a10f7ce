"""The main job (`make run`): the composed agent closes the loop with the embedded MuJoCo simulator,
with the shipped diffusion policy, SEQ then Auras on the same seeded episodes.

For each executor and block of seeds, two processes on a private ROS domain (localhost only):
`sim_node` and `auras_composed` (perception, context, generation and action nodes in one process, on
use_sim_time); the world executes what the action node's safety gate lets through
(`auras/gated_action`), so the gate sits in every measured loop. In the frame-stepped world
(`--world frame`) the world advances one step per pipeline frame, so success does not depend on this
machine's speed; in the real-time world (`--world realtime`)
it steps in wall time, `--speed` times faster than its frame period, and a slow agent pays. Every
executor plays the same seeds; blocks of `--block` seeds run every executor back to back in a seeded
shuffled order, so all share the machine's conditions (as `eval.realtime` does). The demo prints, per
executor, success with its Wilson interval, success against the first executor with a paired
bootstrap interval, decisions per wall second and observation age. Executors use the one text form
of `core.spec` (`seq`, `dec`, `par:3`, `auras:1+4:f0:a0`, ...), each with the overlap policy its chunks
play under as `EXECUTOR@OVERLAP` (`core.spec.Row`, the rows of `eval.chunk_table`; `--overlap` for those
that name none). The overlap goes to the world's chunk player, the action node's and, for `inpaint`, the
generation node (which then guides each chunk toward the executing one); `--chunk-timing` and `--variant`
(`reverse`: the target reverses once per episode) to the world as in `eval.chunk_table`. A second table
gives each row's seams, jerk and reaction time (`eval.seams`), measured on the commands the world
executed, as `eval.chunk_table` prints them. `--frames-demo` runs the graph on the frames in
data/demo_frames instead (no world to act in).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
import yaml
from ament_index_python.packages import get_package_share_directory
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String

from auras_ros.core.chunks import TIMINGS
from auras_ros.core.spec import ExecutorSpec, Row, parse_row
from auras_ros.core.stages import chunk_rows, inpaints, samples_noise
from auras_ros.core.stats import Spread, paired_ratio_ci, percentile, rate, wilson
from auras_ros.launching import node_command, private_ros_env, stop_process
from auras_ros.msg import AgentAction
from auras_ros.nodes.action_outputs import GATED_ACTION_TOPIC
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import to_seconds
from auras_ros.sim.sim_node import SCORES
from auras_ros.core import topics
from auras_ros.eval.actuation import ROW_WIDTH
from auras_ros.eval.cli import config_argument, noise_scale_argument, overlap_argument
from auras_ros.eval.report import chunk_table
from auras_ros.eval.seams import ChunkMetrics, ChunkSummary
from auras_ros.eval.task_config import VARIANTS, TaskConfig

REPO = Path(__file__).resolve().parents[1]
POLICY = REPO / "auras_ros" / "eval" / "checkpoints" / "diffusion"
FRAME_S = TaskConfig().frame_period  # the task's world step: ages in sim time are whole multiples of it


@dataclass
class Results:
    """One executor (and overlap) over every block: episode outcomes and chunk measurements by seed, and
    its actions' rates and ages."""

    row: Row
    success: dict[int, bool] = field(default_factory=dict)
    success_frames: dict[int, int | None] = field(default_factory=dict)
    chunks: dict[int, ChunkMetrics] = field(default_factory=dict)  # the world's, of the commands it executed
    rates: list[float] = field(default_factory=list)  # decisions per wall second, one per block
    ages_frames: list[float] = field(default_factory=list)

    @property
    def spec(self) -> ExecutorSpec:
        return self.row.spec

    def add_block(self, scores: list[dict], receipts: list[float], ages_s: list[float]) -> None:
        for score in scores:
            self.success[score["seed"]] = bool(score["success"])
            self.success_frames[score["seed"]] = score.get("success_frame")
            if "chunks" in score:
                self.chunks[score["seed"]] = ChunkMetrics(**score["chunks"])
        block_rate = rate(receipts)
        if math.isfinite(block_rate):
            self.rates.append(block_rate)
        self.ages_frames += [a / FRAME_S for a in ages_s]

    @property
    def decisions_per_s(self) -> float:
        """The median over blocks (NaN with none)."""
        return Spread.of(self.rates).median

    def chunk_summary(self) -> ChunkSummary | None:
        """The chunk table's row, over the seeds in order (None when an episode came without measurements)."""
        seeds = sorted(self.success)
        if any(s not in self.chunks for s in seeds):
            return None
        return ChunkSummary.of([self.success[s] for s in seeds], [self.success_frames[s] for s in seeds],
                               [self.chunks[s] for s in seeds])


def agent_params(row: Row, args: argparse.Namespace) -> dict:
    frame_world = args.world == "frame"
    return {"model": str(args.model), "executor": str(row.spec), "transport": "shm" if args.distributed else "in_process",
            "use_sim_time": True, "frame_period": 0.0, "stats_period": 3600.0,
            "state_topic": topics.JOINT_STATES,  # the policy also takes the agent's position
            # In a frame-stepped world each frame waits for its own observation, as in the paper.
            "lockstep": frame_world, "frame_per_percept": args.frame_per_percept, "trigger": args.trigger,
            # The world plays one chunk row per frame: ASYNC paces its requests by the rows left of its last
            # chunk, inpaint times its guidance by them. One overlap for the graph (the generation node guides
            # its chunks under inpaint). The gate knows each action is a chunk of rows (row_width): it is the
            # policy's plan for its rows' times, so the watchdog judges the chunk's end, not its first row (with
            # the whole action as one row, SEQ's commands outlived max_observation_age between two decisions
            # and the gate stopped the robot mid-chunk, which the core's world never does). The chunk timing is
            # the world's alone (the gate keeps `arrival`): observation timing there would refuse as late every
            # action older than its chunk.
            "chunk_period": FRAME_S, "overlap": row.played, "row_width": 0 if args.chunk_rows == 1 else ROW_WIDTH,
            # The generation node sets it on its agent (core.stages.set_noise_scale).
            "noise_scale": args.noise_scale}


def sim_params(row: Row, seed: int, episodes: int, args: argparse.Namespace) -> dict:
    """The simulator node's parameters for episodes ``seed`` .. ``seed + episodes - 1`` of one executor: it
    executes what the safety gate (action_node) lets through, so the gate sits in the loop."""
    frame_world = args.world == "frame"
    return {"mode": args.world, "seed": seed, "episodes": episodes, "control": "agent", "speed": args.speed,
            # Strict lockstep for the executors that decide every frame once full: a seeded run repeats exactly.
            "lockstep": frame_world, "wait_for_action": frame_world and row.spec.kind in ("seq", "auras"),
            "first_decision_frame": row.spec.in_flight - 1, "chunk_rows": args.chunk_rows,
            "overlap": row.played, "chunk_timing": args.chunk_timing, "variant": args.variant,
            "action_topic": GATED_ACTION_TOPIC}


def run_block(row: Row, seed: int, episodes: int, args: argparse.Namespace, env: dict[str, str],
              workdir: Path) -> tuple[list[dict], list[float], list[float]]:
    """Episodes ``seed`` .. ``seed + episodes - 1`` of one executor; their scores, and each action's
    wall receipt time and observation age (sim seconds)."""
    tag = f"{row}_{seed}".replace(":", "_").replace("+", "p").replace("@", "_")
    agent_file, sim_file = workdir / f"{tag}_agent.yaml", workdir / f"{tag}_sim.yaml"
    agent = agent_params(row, args)
    # After config/auras.yaml, whose entries are all /** too, so these win. The world executes what the
    # safety gate (action_node) lets through, so the gate sits in the loop.
    agent_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": {**agent, "outputs": ["agent_action"]}}}))
    sim_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
        **sim_params(row, seed, episodes, args), "action_readers": 1, "score_readers": 1}}}))
    config = str(Path(get_package_share_directory("auras_ros"), "config", "auras.yaml"))
    commands = [node_command("auras_ros", "sim_node", name="sim_node", params_files=[str(sim_file)])]
    if args.distributed:
        commands += [node_command("auras_ros", exe, name=exe, params_files=[config, str(agent_file)])
                     for exe in ("perception_node", "context_node", "generation_node", "action_node")]
    else:
        commands.append(node_command("auras_ros", "auras_composed", params_files=[config, str(agent_file)],
                                     arguments=["--no-camera"]))
    scores: list[dict] = []
    receipts: list[float] = []
    ages: list[float] = []
    finished: list[dict] = []
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("demo_listener", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def on_action(msg: AgentAction) -> None:
        receipts.append(time.monotonic())
        ages.append(to_seconds(msg.observation_age))

    def on_score(msg: String) -> None:
        score = json.loads(msg.data)
        (finished if score.get("summary") else scores).append(score)

    node.create_subscription(AgentAction, topics.ACTION, on_action, ORDERED)
    node.create_subscription(String, topics.SIM_SCORE, on_score, SCORES)
    logs = [open(workdir / f"{tag}_{i}.log", "w") for i in range(len(commands))]
    procs = [subprocess.Popen(c, env=env, stdout=log, stderr=subprocess.STDOUT) for c, log in zip(commands, logs, strict=False)]
    try:
        deadline = time.monotonic() + args.timeout  # a hang guard
        while not finished and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            executor.spin_once(timeout_sec=0.1)
    finally:
        codes = [stop_process(p, grace_s=5.0) for p in procs]
        for log in logs:
            log.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    if not finished or len(scores) != episodes:
        output = "\n".join((workdir / f"{tag}_{i}.log").read_text()[-3000:] for i in range(len(commands)))
        raise SystemExit(f"demo: {row} on seeds {seed}..{seed + episodes - 1} did not finish "
                         f"(exit codes {codes}); the nodes said:\n{output}")
    return scores, receipts, ages


def evaluate(rows: list[Row], args: argparse.Namespace) -> list[Results]:
    results = [Results(row) for row in rows]
    order = random.Random(args.seed)
    with private_ros_env() as env, tempfile.TemporaryDirectory() as tmp:
        env["OMP_NUM_THREADS"] = str(args.threads)  # the node processes' torch
        for first in range(args.seed, args.seed + args.episodes, args.block):
            count = min(args.block, args.seed + args.episodes - first)
            for result in order.sample(results, len(results)):
                scores, receipts, ages = run_block(result.row, first, count, args, env, Path(tmp))
                result.add_block(scores, receipts, ages)
                print(f"  {str(result.row):<22} seeds {first}..{first + count - 1}: "
                      f"{sum(s['success'] for s in scores)}/{count} successes", flush=True)
    return results


def success_ratio(result: Results, base: Results, seeds: list[int]) -> float:
    """Success on ``seeds`` relative to the baseline's on the same seeds (NaN when it never succeeded)."""
    theirs = [base.success[s] for s in seeds]
    return float(np.mean([result.success[s] for s in seeds]) / np.mean(theirs)) if any(theirs) else float("nan")


def report(results: list[Results]) -> None:
    base = results[0]
    seeds = sorted(base.success)
    print(f"\n| {'executor':<22} | {'success':>7} | {'95% CI':>11} | {'vs ' + str(base.row):>12} | {'paired 95% CI':>13} "
          f"| {'frames to success':>17} | {'decisions/s':>11} | {'age p50 (frames)':>16} | {'age p99 (frames)':>16} |")
    print(f"|{'-' * 24}|{'-' * 9}|{'-' * 13}|{'-' * 14}|{'-' * 15}|{'-' * 19}|{'-' * 13}|{'-' * 18}|{'-' * 18}|")
    for r in results:
        ours, theirs = [r.success[s] for s in seeds], [base.success[s] for s in seeds]
        low, high = wilson(sum(ours), len(ours))
        ratio = success_ratio(r, base, seeds)
        ratio_low, ratio_high = paired_ratio_ci(ours, theirs)
        frames = [f for f in r.success_frames.values() if f is not None]
        # A ratio to a baseline that never succeeded is undefined: said so, not printed as nan%.
        ratio_text = f"{ratio:.0%}" if math.isfinite(ratio) else "n/a"
        ci_text = f"{ratio_low:.2f}–{ratio_high:.2f}" if math.isfinite(ratio_low) else "n/a"
        frames_text = f"{np.mean(frames):.1f}" if frames else "n/a"
        print(f"| {str(r.row):<22} | {np.mean(ours):>7.0%} | {f'{low:.2f}–{high:.2f}':>11} | {ratio_text:>12} | "
              f"{ci_text:>13} | {frames_text:>17} | "
              f"{r.decisions_per_s:>11.1f} | {percentile(r.ages_frames, 50):>16.1f} | {percentile(r.ages_frames, 99):>16.1f} |")
    summaries = [(r.row.label, summary) for r in results if (summary := r.chunk_summary()) is not None]
    if summaries:
        print("\nChunks as the world executed them (auras_ros/eval/seams.py, as eval.chunk_table prints them):\n")
        print(chunk_table(summaries))
    for r in results[1:]:
        share = success_ratio(r, base, seeds)
        share_text = f"{share:.0%} of {base.row}'s success" if math.isfinite(share) else \
            f"success {np.mean([r.success[s] for s in seeds]):.0%} ({base.row} none)"
        print(f"\n{r.row} / {base.row}: {share_text} at "
              f"{r.decisions_per_s / base.decisions_per_s:.2f}x "
              f"decisions per second (wall time, this machine)")


@dataclass(frozen=True)
class PolicyFacts:
    """What the demo reads of the policy in its own process before the graph runs it."""

    chunk_rows: int  # rows per chunk it was trained to play: the world plays as many, as the core's evaluations do
    inpaints: bool  # whether it can guide its chunks toward the executing one (overlap inpaint)
    samples_noise: bool  # whether its generation starts from sampled noise (--noise-scale other than 1)
    seq_latency_ms: dict  # SEQ's decision latency on this machine now, as eval.realtime measures it


def policy_facts(model: Path, threads: int) -> PolicyFacts:
    import torch

    from auras_ros.eval.episodes import measure_seq_latency
    from auras_ros.eval.task import CatchTask
    from auras_ros.models.factory import build_agent
    torch.set_num_threads(threads)
    agent, task = build_agent(str(model)), CatchTask()
    try:
        frames = [task.reset(seed).data for seed in range(4)]
    finally:
        task.close()
    return PolicyFacts(chunk_rows(agent), inpaints(agent), samples_noise(agent), measure_seq_latency(agent, frames))


def machine_line(facts: PolicyFacts, threads: int) -> str:
    """The machine's own speed beside its table: a reader compares decisions/s across machines by it."""
    from auras_ros.eval.report import machine_sentence
    from auras_ros.eval.results import Machine
    latency = facts.seq_latency_ms
    return (f"{machine_sentence(Machine.now('cpu'), threads)} SEQ decision latency in-process on this machine: "
            f"p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms.")


def _checked_row(text: str) -> str:
    parse_row(text)
    return text


executor_arg = config_argument(_checked_row)
"""An ``EXECUTOR[@OVERLAP]`` row, checked here; read into a :class:`Row` once ``--overlap`` is known."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=POLICY, help="policy checkpoint directory")
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--seed", type=int, default=100, help="seed of the first episode (the same for all)")
    parser.add_argument("--executors", type=executor_arg, nargs="+", default=["seq", "auras:1+4"],
                        help="executors in the core.spec text form: seq, dec[:G], par:K, auras:P+G[:fO][:aA]"
                             "[:private], async[:T[:AGG]], each optionally @OVERLAP (auras:1+4@ensemble: its "
                             "chunks play under that overlap; the first is the baseline of the ratios)")
    parser.add_argument("--overlap", type=overlap_argument, default="replace",
                        help="the overlap of the executors that name none (core.chunks; inpaint: the generation "
                             "node guides each chunk toward the executing one; async plays its own aggregate)")
    parser.add_argument("--chunk-timing", choices=TIMINGS, default="arrival",
                        help="row 0 of a chunk is due at its arrival in the world, or at its observation stamp "
                             "(late rows skipped; eval.chunk_table's default)")
    parser.add_argument("--variant", choices=VARIANTS, default="catch",
                        help="the task: catch, or reverse (the target reverses once per episode: reaction time)")
    parser.add_argument("--world", choices=("frame", "realtime"), default="frame",
                        help="frame: one world step per pipeline frame; realtime: the world steps in wall time")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="realtime world: world frames per 50 ms of wall time (3: three times as fast)")
    parser.add_argument("--frames-back-to-back", dest="frame_per_percept", action="store_false",
                        help="realtime world: frames run back to back while requests are in flight instead of "
                             "one frame per new percept (generation_node.frame_per_percept false)")
    parser.add_argument("--trigger", choices=("image", "frame"), default="image",
                        help="perception_node.trigger: perceive every camera image, or once per generation frame tick")
    parser.add_argument("--block", type=int, default=3,
                        help="seeds per process start; every block runs each executor in a shuffled order")
    parser.add_argument("--distributed", action="store_true",
                        help="perception, context and generation as separate processes (shared memory)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads of every node process (eval.realtime's default too: two on a "
                             "2-core machine with perception and generation in parallel stall each other)")
    parser.add_argument("--chunk-rows", type=int, default=None,
                        help="rows of each action chunk the world plays before the next decision (default: the "
                             "policy's own, as eval.closed_loop and eval.realtime play it)")
    parser.add_argument("--noise-scale", type=noise_scale_argument, default=1.0,
                        help="generation_node.noise_scale: scale of the diffusion policy's initial noise x_T (and "
                             "DDPM's per-step noise); 1 = as trained, 0 = deterministic (core.stages.set_noise_scale)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per block before giving up")
    parser.add_argument("--frames-demo", action="store_true", help="the graph on data/demo_frames instead")
    return parser


def checked(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """The demo's arguments, refused through ``parser`` where they cannot work together."""
    args.rows = [parse_row(text, args.overlap) for text in args.executors]
    if len(set(args.rows)) < len(args.rows):
        parser.error(f"--executors names a row twice: {' '.join(map(str, args.rows))}")
    if args.world == "frame" and any(r.spec.kind in ("dec", "par") for r in args.rows):
        parser.error("dec and par run their own threads, not frames: compare them with --world realtime")
    if args.world == "frame" and args.speed != 1.0:
        parser.error("--speed is for the realtime world: the frame-stepped world has no wall-time speed")
    if args.episodes < 1 or args.block < 1:
        parser.error("--episodes and --block must be >= 1")
    if args.chunk_rows is not None and args.chunk_rows < 1:
        parser.error("--chunk-rows must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.frames_demo:
        from auras_ros import frames_demo
        return frames_demo.main(rest)
    args = checked(parser, args)
    facts = policy_facts(args.model, args.threads)
    if not facts.inpaints and any(r.played == "inpaint" for r in args.rows):
        # The generation node would refuse to configure: said here, before any process starts.
        parser.error(f"overlap inpaint: the policy {args.model} does not inpaint its chunks (core.stages.inpaints)")
    if not facts.samples_noise and args.noise_scale != 1.0:
        parser.error(f"--noise-scale {args.noise_scale:g}: the policy {args.model} samples no noise "
                     "(core.stages.samples_noise)")
    if args.chunk_rows is None:
        args.chunk_rows = facts.chunk_rows
    layout = "distributed" if args.distributed else "composed"
    speed = f" at speed {args.speed:g}" if args.world == "realtime" else ""
    noise = f", noise scale {args.noise_scale:g}" if args.noise_scale != 1.0 else ""
    print(f"closed loop: {args.model.name} policy, {args.episodes} episodes from seed {args.seed}, "
          f"{args.world} world{speed}, task {args.variant}, {args.chunk_rows} rows per chunk (timing "
          f"{args.chunk_timing}){noise}, through the ROS nodes ({layout}): {', '.join(str(r) for r in args.rows)}",
          flush=True)
    report(evaluate(args.rows, args))
    print(machine_line(facts, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
