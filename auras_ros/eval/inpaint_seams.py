"""Seam discontinuity with and without ``inpaint``, offline, on the shipped diffusion checkpoint.

    python -m auras_ros.eval.inpaint_seams [--seeds 3] [--observations 10] [--betas 5 10 20 50]

Observations come from expert-driven episodes of the catch task (on the policy's training
distribution). For each observation n, the executing chunk is the policy's plain chunk for n; the new
chunk is generated from observation n + s (s rows later) with d rows of delay, plainly and with
``inpaint`` (:mod:`auras_ros.core.inpaint`). Under time-aligned execution the new chunk takes over at
its row d, right after the executing chunk's row s + d - 1 played, so the seam is
``max |new[d] - executing[s + d - 1]|``; ``step`` is what the executing chunk itself would have done
there (``max |executing[s + d] - executing[s + d - 1]|``), and ``prefix`` how far the new chunk's
first d rows are from the executing chunk's rows at the same times.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from auras_ros.core.inpaint import ExecutingChunk, Inpaint, InpaintConfig
from auras_ros.core.stages import Observation, perceive_all
from auras_ros.eval.policies import load_policy
from auras_ros.eval.task import CatchTask
from auras_ros.models.diffusion import DiffusionPolicyAgent

CASES = ((1, 1), (2, 2), (4, 1), (4, 2))  # (s, d): SEQ-like (s = d) and Diffusion Policy's replan every 4 rows


def expert_observations(task: CatchTask, seed: int, frames: int) -> list[Observation]:
    task.reset(seed)
    observations = [task.observation()]
    for _ in range(frames):
        task.step(task.expert_action())
        observations.append(task.observation())
    return observations


def seams(agent: DiffusionPolicyAgent, observations: list[Observation], starts: range, s: int, d: int,
          betas: list[float], period: float) -> dict[str, list[float]]:
    horizon, width = agent.config.chunk_shape
    out: dict[str, list[float]] = {"step": [], "plain": [], **{f"b{b:g}": [] for b in betas},
                                   **{f"prefix b{b:g}": [] for b in betas}}
    for n in starts:
        old, new = observations[n], observations[n + s]
        executing = agent.generate_request(perceive_all(agent, old), 2 * n).action.reshape(horizon, width)
        percept = perceive_all(agent, new)
        plain = agent.generate_request(percept, 2 * n + 1).action.reshape(horizon, width)
        last = executing[s + d - 1]
        out["step"].append(float(np.abs(executing[s + d] - last).max()))
        out["plain"].append(float(np.abs(plain[d] - last).max()))
        for beta in betas:
            inpaint = Inpaint(ExecutingChunk(executing.reshape(-1), old.stamp), new.stamp, d * period,
                              InpaintConfig(period, beta))
            guided = agent.generate_request(percept, 2 * n + 1, inpaint=inpaint).action.reshape(horizon, width)
            out[f"b{beta:g}"].append(float(np.abs(guided[d] - last).max()))
            out[f"prefix b{beta:g}"].append(float(np.abs(guided[:d] - executing[s:s + d]).max()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--observations", type=int, default=10, help="observations per seed (every 3rd frame)")
    parser.add_argument("--betas", type=float, nargs="+", default=[5.0, 10.0, 20.0, 50.0])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    agent = load_policy("diffusion", None)
    assert isinstance(agent, DiffusionPolicyAgent)
    task = CatchTask()
    period = task.config.frame_period
    starts = range(0, 3 * args.observations, 3)
    print(f"shipped diffusion checkpoint, {args.seeds} seeds x {args.observations} observations, row period "
          f"{period} s; max |delta| over the 2 action dims, mean [max] over the observations")
    columns = ["step", "plain", *[f"b{b:g}" for b in args.betas], *[f"prefix b{b:g}" for b in args.betas]]
    print("| s | d | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    try:
        per_seed = {seed: expert_observations(task, 100 + seed, starts.stop + 4) for seed in range(args.seeds)}
        for s, d in CASES:
            total: dict[str, list[float]] = {c: [] for c in columns}
            for observations in per_seed.values():
                for key, values in seams(agent, observations, starts, s, d, args.betas, period).items():
                    total[key] += values
            cells = [f"{np.mean(total[c]):.3f} [{np.max(total[c]):.3f}]" for c in columns]
            print(f"| {s} | {d} | " + " | ".join(cells) + " |")
    finally:
        task.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
