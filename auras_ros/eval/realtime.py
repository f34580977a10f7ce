"""Real-time closed-loop evaluation: the world runs in wall time and a slow agent pays.

    python -m auras_ros.eval.realtime --policy diffusion --speed 3 --episodes 30 [--executors ...] [--json F]
        [--overlap replace|ensemble|blend|...] [--variant catch|reverse] [--noise-scale S]

How an episode runs: :mod:`auras_ros.eval.episodes`. **World speed**: ``speed`` scales world time
against wall time without changing the per-frame dynamics (the policies were trained frame-stepped
at ``frame_period``). It is chosen from SEQ's measured decision latency on this machine so that SEQ's
latency spans several world frames, where staleness costs success.

**Pairing**: every seed runs every executor back to back, in a seeded shuffled order, so SEQ and each
executor share the machine's conditions. Success's ratio to SEQ has a paired bootstrap interval,
decisions/s a per-episode bootstrap interval.

**Chunks**: ``--overlap`` is how a new chunk joins the one playing (:func:`auras_ros.core.chunks.parse_overlap`),
``--variant reverse`` the task with a sudden target reversal; a second table gives every executor's
seams, jerk and reaction time (:mod:`auras_ros.eval.seams`). ``python -m auras_ros.eval.chunk_table``
runs executor × overlap rows against each other.

**Noise**: ``--noise-scale S`` scales the diffusion agent's initial noise x_T (and DDPM's per-step noise)
for every request (:func:`auras_ros.core.stages.set_noise_scale`: 0 = deterministic sampling, which removes
the sampling variance between consecutive chunks; why, and the lead's measurement, there).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.errors import ConfigError
from auras_ros.core.stages import chunk_rows, set_noise_scale
from auras_ros.eval.actuation import TIMINGS
from auras_ros.eval.cli import executor_argument, noise_scale_argument, overlap_argument
from auras_ros.eval.episodes import evaluate_realtime
from auras_ros.eval.files import write_failed
from auras_ros.eval.policies import add_policy_arguments, load_policy
from auras_ros.eval.report import chunk_table, realtime_table
from auras_ros.eval.results import Machine, device_of, write_json
from auras_ros.eval.task_config import VARIANTS, TaskConfig

DEFAULT_EXECUTORS = ("seq", "dec", "par:2", "par:3", "auras:1+5:f0:a0", "auras:1+5:f0:a1", "auras:1+2:f0:a0")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Real-time closed-loop SEQ/DEC/PAR/Auras evaluation.")
    add_policy_arguments(parser)
    parser.add_argument("--executors", type=executor_argument, nargs="+",
                        default=[ExecutorSpec.parse(text) for text in DEFAULT_EXECUTORS],
                        help="executor specs (seq, dec:G, par:K, auras:P+G:fO:aA[:private]); SEQ always runs")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument("--speed", type=float, default=3.0, help="world seconds per wall second")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk-timing", choices=TIMINGS, default="arrival",
                        help="arrival: each chunk's rows play from the step its decision arrives in; observation: "
                             "row k is due k frames after its observation was sensed (late rows skipped)")
    parser.add_argument("--overlap", type=overlap_argument, default="replace",
                        help="how a new chunk joins the one playing (core.chunks)")
    parser.add_argument("--variant", choices=VARIANTS, default="catch",
                        help="reverse: the target reverses at a seeded frame (reaction time is measured)")
    parser.add_argument("--noise-scale", type=noise_scale_argument, default=1.0,
                        help="scale of the diffusion agent's initial noise x_T (and DDPM's per-step noise): "
                             "1 = as trained, 0 = deterministic (core.stages.set_noise_scale)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    agent = load_policy(args.policy, args.checkpoint)
    try:
        set_noise_scale(agent, args.noise_scale)
    except ConfigError as error:  # an agent that samples no noise, at a scale other than 1
        parser.error(f"--noise-scale: {error}")
    evaluation = evaluate_realtime(agent, args.policy, args.executors, args.episodes, chunk_rows(agent), args.speed,
                                   replace(TaskConfig(), variant=args.variant), seed0=args.seed,
                                   timing=args.chunk_timing, overlap=args.overlap)
    evaluation.machine = Machine.now(device_of(agent))  # as the runs end: the report's machine facts
    lat = evaluation.seq_latency_ms
    print(f"SEQ decision latency on this machine: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms; "
          f"world frame {1000 * evaluation.world_period_s:.1f} ms wall (speed {args.speed:g})")
    print(realtime_table(evaluation))
    noise = f", noise scale {args.noise_scale:g}" if args.noise_scale != 1.0 else ""
    print(f"\nChunks (overlap {args.overlap}, task variant {args.variant}{noise}):")
    print(chunk_table([(r.config.name, r.chunks) for r in evaluation.results if r.chunks is not None]))
    if args.json:
        try:
            write_json(args.json, evaluation)
        except OSError as error:  # a full disk: one line, no partial file
            return write_failed("realtime", error)
        print(f"wrote {args.json}; the report (python -m auras_ros.eval.report) renders it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
