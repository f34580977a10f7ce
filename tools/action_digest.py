"""A digest of every action of seeded frame-stepped episodes, per executor: two commits that print the
same digests decide the same actions (a refactor's "no behaviour change", shown rather than claimed).

    tools/setup_env.sh python tools/action_digest.py auras_ros/eval/checkpoints/diffusion
    git worktree add /tmp/before <commit>; cd /tmp/before
    PYTHONPATH=/tmp/before /work/main/.venv/bin/python tools/action_digest.py <checkpoint>

Runs in-process on the CPU, one torch thread; the frame-stepped world does not depend on the machine.
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np
import torch

from auras_ros.core.spec import ExecutorSpec
from auras_ros.eval import episodes
from auras_ros.eval.task import CatchTask
from auras_ros.models.factory import build_agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="agent preset or checkpoint directory")
    parser.add_argument("--seeds", type=int, nargs=2, default=(100, 106), metavar=("FIRST", "END"))
    parser.add_argument("--rows", type=int, default=4, help="rows of each chunk played")
    parser.add_argument("--executors", nargs="+", default=["seq", "auras:1+4:f0:a0", "auras:1+2:f-1:a1"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = build_agent(args.model)
    task = CatchTask()
    for text in args.executors:
        digest, count = hashlib.sha256(), 0
        for seed in range(*args.seeds):
            # Positional: the rows argument's name changed (execute_rows -> chunk_rows) across commits.
            run = episodes.run_episode(agent, ExecutorSpec.parse(text), task, seed, args.rows, keep_actions=True)
            digest.update(np.asarray(run.actions, dtype=np.float64).tobytes())
            count += len(run.actions)
        print(f"{text:20s} {count:5d} actions  sha256 {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
