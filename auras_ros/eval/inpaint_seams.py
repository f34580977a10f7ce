"""Seam discontinuity with and without ``inpaint``, offline, on the shipped diffusion checkpoint.

    python -m auras_ros.eval.inpaint_seams [--seeds 3] [--observations 10] [--betas 5 10 20 50]

Observations come from expert-driven episodes of the catch task (on the policy's training
distribution). For each observation n, the executing chunk is the policy's plain chunk for n; the new
chunk is generated from observation n + s (s rows later), plainly and with ``inpaint``
(:mod:`auras_ros.core.inpaint`) under each mask (``rtc`` at each β, ``prefix``, the default), its
decision arriving ``ARRIVAL`` of a row after the start of its row d (d = 0: within one row period, as
most of Auras's do). The controller plays rows on ticks of the stamps' grid, as the real-time world
does: the first tick after the arrival plays the new row d + 1, right after the executing chunk's row
s + d, so the seam is ``|new[d + 1] - executing[s + d]|`` (Euclidean, as :mod:`auras_ros.eval.seams`);
``step`` is what the executing chunk itself would have done there (``|executing[s + d + 1] -
executing[s + d]|``); ``frozen`` how far the new chunk's first d rows are from the executing chunk's
rows at the same times (max over elements; – for d = 0); ``late`` how far the guided chunk's rows from
d + 3 on are from the plain chunk's (0: as responsive to the new observation as plain sampling).
Offline seams do not show the closed loop's cost: see :mod:`auras_ros.core.inpaint` for why ``rtc`` is
not the default.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from auras_ros.core.inpaint import MASKS, ExecutingChunk, Inpaint, InpaintConfig
from auras_ros.core.stages import Observation, perceive_all
from auras_ros.eval.policies import load_policy
from auras_ros.eval.task import CatchTask
from auras_ros.models.diffusion import DiffusionPolicyAgent

# (s, d): Auras's (d = 0, s = 1 at its last generation frame and up to 4 at its first), SEQ-like (s = d)
# and Diffusion Policy's replan every 4 rows.
CASES = ((1, 0), (2, 0), (4, 0), (1, 1), (2, 2), (4, 1))
ARRIVAL = 0.75  # of a row period after the start of row d: the real-time world's typical Auras decision


def expert_observations(task: CatchTask, seed: int, frames: int) -> list[Observation]:
    task.reset(seed)
    observations = [task.observation()]
    for _ in range(frames):
        task.step(task.expert_action())
        observations.append(task.observation())
    return observations


def columns(betas: list[float]) -> list[str]:
    """rtc at each β, prefix (the default mask) at the default β: seam, then frozen, then late."""
    guided = [*(f"rtc b{b:g}" for b in betas), "prefix"]
    return ["step", "plain", *guided, *(f"frozen {g}" for g in guided), *(f"late {g}" for g in guided)]


def seams(agent: DiffusionPolicyAgent, observations: list[Observation], starts: range, s: int, d: int,
          betas: list[float], period: float) -> dict[str, list[float]]:
    horizon, width = agent.config.chunk_shape
    out: dict[str, list[float]] = {c: [] for c in columns(betas)}
    configs = {**{f"rtc b{b:g}": InpaintConfig(period, b, mask="rtc") for b in betas},
               "prefix": InpaintConfig(period, mask="prefix")}
    assert set(MASKS) == {c.mask for c in configs.values()}
    for n in starts:
        old, new = observations[n], observations[n + s]
        executing = agent.generate_request(perceive_all(agent, old), 2 * n).action.reshape(horizon, width)
        percept = perceive_all(agent, new)
        plain = agent.generate_request(percept, 2 * n + 1).action.reshape(horizon, width)
        last = executing[s + d]
        out["step"].append(float(np.linalg.norm(executing[s + d + 1] - last)))
        out["plain"].append(float(np.linalg.norm(plain[d + 1] - last)))
        for name, config in configs.items():
            inpaint = Inpaint(ExecutingChunk(executing.reshape(-1), old.stamp), new.stamp, (d + ARRIVAL) * period,
                              config)
            assert inpaint.delay_rows == d
            guided = agent.generate_request(percept, 2 * n + 1, inpaint=inpaint).action.reshape(horizon, width)
            out[name].append(float(np.linalg.norm(guided[d + 1] - last)))
            out[f"frozen {name}"].append(float(np.abs(guided[:d] - executing[s:s + d]).max()) if d else float("nan"))
            out[f"late {name}"].append(float(np.linalg.norm(guided[d + 3:] - plain[d + 3:], axis=1).mean()))
    return out


def cell(values: list[float]) -> str:
    return "–" if np.isnan(values).all() else f"{np.mean(values):.3f} [{np.max(values):.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--observations", type=int, default=10, help="observations per seed (every 3rd frame)")
    parser.add_argument("--betas", type=float, nargs="+", default=[5.0, 10.0, 20.0, 50.0],
                        help="β of the rtc mask's columns (prefix runs at the default β)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    agent = load_policy("diffusion", None)
    assert isinstance(agent, DiffusionPolicyAgent)
    task = CatchTask()
    period = task.config.frame_period
    starts = range(0, 3 * args.observations, 3)
    print(f"shipped diffusion checkpoint, {args.seeds} seeds x {args.observations} observations, row period "
          f"{period} s, decisions {ARRIVAL} row after their row d starts; mean [max] over the observations")
    names = columns(args.betas)
    print("| s | d | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    try:
        per_seed = {seed: expert_observations(task, 100 + seed, starts.stop + 6) for seed in range(args.seeds)}
        for s, d in CASES:
            total: dict[str, list[float]] = {c: [] for c in names}
            for observations in per_seed.values():
                for key, values in seams(agent, observations, starts, s, d, args.betas, period).items():
                    total[key] += values
            print(f"| {s} | {d} | " + " | ".join(cell(total[c]) for c in names) + " |", flush=True)
    finally:
        task.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
