"""Frame-stepped closed-loop evaluation: SEQ, DEC, PAR and Auras on the same seeded episodes.

    python -m auras_ros.eval.closed_loop --policy diffusion|ar --episodes N [--executors seq par:3 auras:1+5:f0:a0 ...] [--report DIR]

How an episode runs: :mod:`auras_ros.eval.episodes`; the tables and plots: :mod:`auras_ros.eval.report`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import chunk_rows
from auras_ros.eval.actuation import TIMINGS
from auras_ros.eval.episodes import evaluate
from auras_ros.eval.files import write_failed
from auras_ros.eval.policies import add_policy_arguments, load_policy
from auras_ros.eval.report import headline_sentence, table, write_report
from auras_ros.eval.results import Machine, device_of, write_json
from auras_ros.eval.cli import executor_argument

# The shipped results' grid: the baselines, then Auras at pp_perception 1 and 2, both fetch offsets.
DEFAULT_EXECUTORS = {
    "diffusion": ["seq", "dec:2", "par:2", "par:3", "par:4"]
                 + [f"auras:{p}+{g}:f{f}:a0" for p in (1, 2) for g in (2, 5) for f in (0, -1)],
    "ar": ["seq", "dec:2", "par:2", "par:3", "par:4"]
          + [f"auras:{p}+{g}:f{f}:a0" for p in (1, 2) for g in (2, 4, 8) for f in (0, -1)],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Closed-loop SEQ/DEC/PAR/Auras evaluation in the MuJoCo task.")
    add_policy_arguments(parser)
    parser.add_argument("--executors", type=executor_argument, nargs="+", default=None,
                        help="executor specs (seq, dec:G, par:K, auras:P+G:fO:aA[:private], async[:T[:AGG]]: its chunks "
                             "play under its own aggregate); SEQ always runs; "
                             "default: the shipped results' grid")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument("--wall-decisions", type=int, default=40, help="0 skips the wall-clock throughput runs")
    parser.add_argument("--wall-repeats", type=int, default=3, help="interleaved repeats of each throughput run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk-timing", choices=TIMINGS, default="arrival",
                        help="arrival: each chunk's rows play from the step its decision arrives in; observation: "
                             "row k is due k frames after its observation was sensed (late rows skipped)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None, help="write the Markdown report with plots here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    agent = load_policy(args.policy, args.checkpoint)
    specs = args.executors or [ExecutorSpec.parse(text) for text in DEFAULT_EXECUTORS[args.policy]]
    evaluation = evaluate(agent, args.policy, specs, args.episodes, chunk_rows(agent), seed0=args.seed,
                          wall_decisions=args.wall_decisions, wall_repeats=args.wall_repeats, timing=args.chunk_timing)
    evaluation.machine = Machine.now(device_of(agent))  # as the runs end: the report's machine facts
    print(table(evaluation))
    print(f"\nheadline: {headline_sentence(evaluation)}")
    try:
        if args.json:
            write_json(args.json, evaluation)
        if args.report:
            print(f"report: {write_report(evaluation, args.report)}")
    except OSError as error:  # a full disk: one line, no partial file
        return write_failed("closed_loop", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
