"""The main job (`make run`): the composed agent closes the loop with the embedded MuJoCo simulator,
with the shipped diffusion policy, SEQ then Auras on the same seeded episodes.

For each executor, two processes on a private ROS domain (localhost only): `sim_node` (frame-stepped:
the world advances one step per pipeline frame, so success does not depend on this machine's speed)
and `auras_composed` (perception, context, generation and action nodes in one process, on use_sim_time);
the world executes what the action node's safety gate lets through (auras/gated_action).
The demo listens to the decisions and the episode scores and prints, for each, success, decisions
per wall second and observation age, then the ratios. `--executors seq par:3 dec auras:4 --world
realtime` compares any set of executors through the ROS nodes on the same seeds. `--frames-demo` runs the graph on the frames
in data/demo_frames instead (no world to act in).
"""

from __future__ import annotations

import argparse
import json
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

from auras_ros.core.stats import wilson
from auras_ros.launching import node_command, private_ros_env, stop_process
from auras_ros.msg import AgentAction
from auras_ros.nodes.action_outputs import GATED_ACTION_TOPIC
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import to_seconds
from auras_ros.sim.sim_node import SCORES

REPO = Path(__file__).resolve().parents[1]
POLICY = REPO / "auras_ros" / "eval" / "checkpoints" / "diffusion"
FRAME_S = 0.05  # the task's world step: ages in sim time are whole multiples of it


@dataclass
class Run:
    mode: str
    actions: list[tuple[float, float]] = field(default_factory=list)  # (wall receipt time, age in sim s)
    summary: dict | None = None

    def row(self) -> dict:
        times = np.array([t for t, _ in self.actions])
        ages = np.array([a for _, a in self.actions]) / FRAME_S
        low, high = wilson(self.summary["successes"], self.summary["episodes"])
        return {"success_rate": self.summary["success_rate"], "episodes": self.summary["episodes"],
                "success_ci": (low, high),
                "decisions_per_s": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan"),
                "age_p50_frames": float(np.percentile(ages, 50)), "age_p99_frames": float(np.percentile(ages, 99))}


@dataclass(frozen=True)
class Executor:
    """One executor to compare: ``seq``, ``dec``, ``par:K`` (K workers) or ``auras:G`` (pp_generation G)."""

    mode: str
    degree: int = 0

    @classmethod
    def parse(cls, text: str) -> "Executor":
        mode, _, degree = text.partition(":")
        if mode not in ("seq", "dec", "par", "auras") or (mode in ("par", "auras")) != bool(degree) or (
                degree and not degree.isdigit()):
            raise argparse.ArgumentTypeError(f"executor {text!r}: expected seq, dec, par:K or auras:G")
        return cls(mode, int(degree or 0))

    @property
    def name(self) -> str:
        return {"seq": "SEQ", "dec": "DEC", "par": f"PAR({self.degree})", "auras": f"Auras (L={1 + self.degree})"}[self.mode]

    def params(self) -> dict:
        if self.mode == "auras":
            return {"mode": "auras", "pp_generation": self.degree}
        return {"mode": self.mode, "workers": self.degree} if self.mode == "par" else {"mode": self.mode}


def run_episodes(executor_spec: Executor, args: argparse.Namespace, env: dict[str, str], workdir: Path) -> Run:
    mode = executor_spec.mode
    tag = f"{mode}{executor_spec.degree}"
    agent_params, sim_params = workdir / f"{tag}_agent.yaml", workdir / f"{tag}_sim.yaml"
    frame_world = args.world == "frame"
    agent = {"model": str(args.model), **executor_spec.params(), "transport": "in_process",
             "use_sim_time": True, "frame_period": 0.0, "stats_period": 3600.0,
             "state_topic": "joint_states",  # the policy also takes the agent's position
             # In a frame-stepped world frame t reads O_t, as in the paper's frame-stepped runs.
             "lockstep": frame_world, "fetch_offset": 0 if frame_world else -1}
    sim = {"mode": args.world, "seed": args.seed, "episodes": args.episodes, "control": "agent",
           "wait_for_action": False, "action_readers": 1, "action_topic": GATED_ACTION_TOPIC}
    # Keyed by node name too: config/auras.yaml's node-specific entries would beat a wildcard one.
    # The world executes what the safety gate (action_node) lets through, so the gate sits in the loop.
    gate = {"/action_node": {"ros__parameters": {"outputs": ["agent_action"], "use_sim_time": True}}}
    agent_params.write_text(yaml.safe_dump({"/**": {"ros__parameters": agent},
                                            "/generation_node": {"ros__parameters": dict(agent)}, **gate}))
    sim_params.write_text(yaml.safe_dump({"/**": {"ros__parameters": sim}}))
    config = str(Path(get_package_share_directory("auras_ros"), "config", "auras.yaml"))
    commands = [node_command("auras_ros", "sim_node", name="sim_node", params_files=[str(sim_params)])]
    if args.distributed:
        # One process per stage; tensors cross processes in shared memory.
        agent_params.write_text(yaml.safe_dump({**{key: {"ros__parameters": {**agent, "transport": "shm"}}
                                                   for key in ("/**", "/generation_node")}, **gate}))
        commands += [node_command("auras_ros", exe, name=exe, params_files=[config, str(agent_params)])
                     for exe in ("perception_node", "context_node", "generation_node", "action_node")]
    else:
        commands.append(node_command("auras_ros", "auras_composed", params_files=[config, str(agent_params)],
                                     arguments=["--no-camera"]))
    run = Run(executor_spec.name)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("demo_listener", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def on_action(msg: AgentAction) -> None:
        run.actions.append((time.monotonic(), to_seconds(msg.observation_age)))

    def on_score(msg: String) -> None:
        score = json.loads(msg.data)
        if score.get("summary"):
            run.summary = score
        else:
            print(f"  [{run.mode}] episode {score.get('seed', '?')}: "
                  f"{'success' if score.get('success') else 'no success'}", flush=True)

    node.create_subscription(AgentAction, "auras/action", on_action, ORDERED)
    node.create_subscription(String, "sim/score", on_score, SCORES)
    logs = [open(workdir / f"{tag}_{i}.log", "w") for i in range(len(commands))]
    procs = [subprocess.Popen(c, env=env, stdout=log, stderr=subprocess.STDOUT) for c, log in zip(commands, logs)]
    try:
        deadline = time.monotonic() + args.timeout  # a hang guard
        while run.summary is None and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            executor.spin_once(timeout_sec=0.1)
    finally:
        codes = [stop_process(p, grace_s=5.0) for p in procs]
        for log in logs:
            log.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    if run.summary is None or not run.actions:
        output = "\n".join((workdir / f"{tag}_{i}.log").read_text()[-3000:] for i in range(len(commands)))
        raise SystemExit(f"demo: the {mode} run did not finish (exit codes {codes}); the nodes said:\n{output}")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=POLICY, help="policy checkpoint directory")
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--seed", type=int, default=100, help="seed of the first episode (the same for all)")
    parser.add_argument("--executors", type=Executor.parse, nargs="+", default=[Executor("seq"), Executor("auras", 4)],
                        help="seq, dec, par:K, auras:G (the first is the baseline of the ratios)")
    parser.add_argument("--world", choices=("frame", "realtime"), default="frame",
                        help="frame: one world step per pipeline frame; realtime: the world steps in wall time")
    parser.add_argument("--distributed", action="store_true",
                        help="perception, context and generation as separate processes (shared memory)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per executor before giving up")
    parser.add_argument("--frames-demo", action="store_true", help="the graph on data/demo_frames instead")
    args, rest = parser.parse_known_args(argv)
    if args.frames_demo:
        from auras_ros import frames_demo
        return frames_demo.main(rest)
    if args.world == "frame" and any(e.mode in ("dec", "par") for e in args.executors):
        parser.error("dec and par run their own threads, not frames: compare them with --world realtime")
    names = ", ".join(e.name for e in args.executors)
    layout = "distributed" if args.distributed else "composed"
    print(f"closed loop: {args.model.name} policy, {args.episodes} episodes from seed {args.seed}, "
          f"{args.world} world, through the ROS nodes ({layout}): {names}", flush=True)
    with private_ros_env() as env, tempfile.TemporaryDirectory() as tmp:
        rows = [(e.name, run_episodes(e, args, env, Path(tmp)).row()) for e in args.executors]
    base = rows[0][1]
    print()
    print(f"| {'executor':<14} | {'success':>7} | {'95% CI':>11} | {'% of ' + rows[0][0]:>10} | {'decisions/s':>11} | {'x ' + rows[0][0]:>8} "
          f"| {'age p50 (frames)':>16} | {'age p99 (frames)':>16} |")
    print(f"|{'-' * 16}|{'-' * 9}|{'-' * 13}|{'-' * 12}|{'-' * 13}|{'-' * 10}|{'-' * 18}|{'-' * 18}|")
    for name, r in rows:
        share = r["success_rate"] / base["success_rate"] if base["success_rate"] else float("nan")
        ci = f"{r['success_ci'][0]:.2f}–{r['success_ci'][1]:.2f}"
        print(f"| {name:<14} | {r['success_rate']:>7.0%} | {ci:>11} | {share:>10.0%} | {r['decisions_per_s']:>11.1f} | "
              f"{r['decisions_per_s'] / base['decisions_per_s']:>8.2f} | {r['age_p50_frames']:>16.1f} | "
              f"{r['age_p99_frames']:>16.1f} |")
    for name, r in rows[1:]:
        share = r["success_rate"] / base["success_rate"] if base["success_rate"] else float("nan")
        print(f"\n{name} / {rows[0][0]}: {share:.0%} of {rows[0][0]}'s success at "
              f"{r['decisions_per_s'] / base['decisions_per_s']:.2f}x decisions per second (wall time, this machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
