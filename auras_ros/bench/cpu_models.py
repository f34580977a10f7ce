"""CPU benchmark of the real agent families under the core's executors (issue 4, item 5).

    python -m auras_ros.bench.cpu_models [--families diffusion ar] [--decisions 40] [--threads 1] [--json out.json]

For a small diffusion policy and a small AR VLA it runs SEQ, DEC, PAR(2), PAR(4) and the Auras pipeline
at L = 2..6 (pp_perception = 1, pp_generation = L - 1; fetch_offset 0 for diffusion and -1 for AR, as in
the paper) side by side in one process, on a wall clock, and prints decisions/s, the ratio against SEQ
measured in the same run, decision-interval CV and the observation age at actuation.

torch runs ``--threads`` intra-op threads (default 1) in every stage: DEC, PAR and Auras with
fetch_offset -1 run two stages at once, and on a small shared machine one thread per stage keeps them
from oversubscribing the cores. SEQ gets the same setting, so every row runs the same kernels.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from auras_ros.core.baselines import DecoupledRunner, ParallelRunner, SequentialRunner
from auras_ros.core.clock import WallClock
from auras_ros.core.metrics import MetricsRecorder, RunMetrics
from auras_ros.core.pipeline import AurasPipeline, PipelineConfig
from auras_ros.core.runner import Runner
from auras_ros.core.sources import PeriodicCamera
from auras_ros.core.stages import Agent

CAMERA_HZ = 10_000.0  # faster than any executor here, so every frame finds a new observation
DEFAULT_LS = (2, 3, 4, 5, 6)
MakeRunner = Callable[[Agent, PeriodicCamera, WallClock, MetricsRecorder], Runner]


@dataclass(frozen=True)
class Family:
    """One agent family: how to build a small agent and what its camera renders."""

    name: str
    build: Callable[[bool], Agent]  # tiny: bool -> agent
    render: Callable[[Agent], Callable[[int, float], Any]]
    fetch_offset: int
    describe: Callable[[Agent], str]


@dataclass(frozen=True)
class Row:
    family: str
    executor: str
    in_flight_limit: int  # L (1 for SEQ/DEC, k for PAR(k))
    decisions_per_s: float
    x_seq: float
    interval_cv: float
    age_p50_ms: float
    note: str = ""


TABLE_COLUMNS = ("family", "executor", "L", "decisions/s", "x SEQ", "interval CV", "age p50 ms")


def _images(height: int, width: int, count: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(count)]


def _diffusion_agent(tiny: bool) -> Agent:
    from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny as tiny_config

    if tiny:
        return DiffusionPolicyAgent(tiny_config(n_steps=4))
    # Small but Diffusion-Policy-shaped: 64x64 camera, a quarter-width ResNet-18, a 3-level UNet over a
    # 16-step chunk, 16 DDIM steps.
    return DiffusionPolicyAgent(
        tiny_config(image_size=(64, 64), encoder_width=16, horizon=16, down_dims=(32, 64, 128), kernel_size=5,
                    n_groups=8, step_embed_dim=32, n_steps=16, n_action_steps=8)
    )


def _diffusion_render(agent: Any) -> Callable[[int, float], Any]:
    images = _images(*agent.config.image_size)
    states = np.linspace(-1, 1, 2 * len(images)).reshape(len(images), 2)[:, : agent.config.state_dim]

    def render(seq: int, stamp: float) -> Any:
        image = images[seq % len(images)]
        return {"image": image, "state": states[seq % len(images)]} if agent.config.state_dim else image

    return render


def _diffusion_describe(agent: Any) -> str:
    c = agent.config
    return (f"image {c.image_size[0]}x{c.image_size[1]}, ResNet-18 width {c.encoder_width}, UNet {c.down_dims}, "
            f"horizon {c.horizon}, {c.n_steps} {c.sampler.upper()} steps")


def _ar_agent(tiny: bool) -> Agent:
    from auras_ros.models.ar_config import tiny_config
    from auras_ros.models.ar_vla import ARVLAAgent

    # The AR family's own small config (16 vision tokens, 6 prompt tokens, l_a = 5).
    return ARVLAAgent.from_config(tiny_config())


def _ar_render(agent: Any) -> Callable[[int, float], Any]:
    images = _images(agent.config.image_size, agent.config.image_size)
    return lambda seq, stamp: images[seq % len(images)]


def _ar_describe(agent: Any) -> str:
    c = agent.config
    return (f"{c.vision.model_type} {c.num_vision_tokens} vision tokens, {len(c.prompt_ids)} prompt tokens, "
            f"{c.lm.model_type} {c.lm.num_hidden_layers} layers x {c.lm.hidden_size}, l_a = {c.action_dims}")


FAMILIES = {
    "diffusion": Family("diffusion", _diffusion_agent, _diffusion_render, 0, _diffusion_describe),
    "ar": Family("ar", _ar_agent, _ar_render, -1, _ar_describe),
}


def executors(fetch_offset: int, ls: Sequence[int]) -> list[tuple[str, int, MakeRunner]]:
    """(name, L, factory) for every executor compared: the baselines, then Auras at each L."""
    configs: list[tuple[str, int, MakeRunner]] = [
        ("SEQ", 1, lambda a, s, c, r: SequentialRunner(a, s, c, recorder=r)),
        ("DEC", 1, lambda a, s, c, r: DecoupledRunner(a, s, c, recorder=r)),
        ("PAR(2)", 2, lambda a, s, c, r: ParallelRunner(a, s, c, 2, recorder=r)),
        ("PAR(4)", 4, lambda a, s, c, r: ParallelRunner(a, s, c, 4, recorder=r)),
    ]
    for l in ls:
        pipeline = PipelineConfig(pp_perception=1, pp_generation=l - 1, fetch_offset=fetch_offset)
        configs.append((f"Auras (1+{l - 1}, fetch {fetch_offset})", l,
                        lambda a, s, c, r, p=pipeline: AurasPipeline(a, p, s, c, recorder=r)))
    return configs


def measure(make: MakeRunner, agent: Agent, render: Callable[[int, float], Any], decisions: int,
            warmup: int) -> RunMetrics:
    clock = WallClock()
    camera = PeriodicCamera(CAMERA_HZ, render, start=clock.now())
    runner = make(agent, camera, clock, MetricsRecorder(warmup_decisions=warmup))
    try:
        return runner.run(decisions=decisions)
    finally:
        runner.close()


def bench_family(family: Family, decisions: int, ls: Sequence[int], tiny: bool,
                 log: Callable[[str], None] = lambda line: None) -> tuple[str, list[Row]]:
    agent = family.build(tiny)
    render = family.render(agent)
    measured: list[tuple[str, int, RunMetrics]] = []
    for name, limit, make in executors(family.fetch_offset, ls):
        # Warm-up covers the pipeline fill (L frames) so only steady-state intervals count.
        measured.append((name, limit, measure(make, agent, render, decisions, warmup=limit + 2)))
        log(f"  measured {family.name} {name}")
    seq_rate = measured[0][2].decisions_per_s
    rows = [Row(family.name, name, limit, m.decisions_per_s, m.decisions_per_s / seq_rate, m.interval_cv,
                m.age_p50 * 1e3) for name, limit, m in measured]
    return family.describe(agent), rows


def pending_row(family: str, reason: str) -> Row:
    return Row(family, "(pending)", 0, math.nan, math.nan, math.nan, math.nan, note=reason)


def format_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|"]
    for r in rows:
        if r.note:
            lines.append(f"| {r.family} | {r.executor}: {r.note} |" + " |" * (len(TABLE_COLUMNS) - 2))
            continue
        lines.append(f"| {r.family} | {r.executor} | {r.in_flight_limit} | {r.decisions_per_s:.1f} | {r.x_seq:.2f} "
                     f"| {r.interval_cv:.3f} | {r.age_p50_ms:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", choices=sorted(FAMILIES), default=["diffusion", "ar"])
    parser.add_argument("--decisions", type=int, default=40, help="decisions measured per configuration")
    parser.add_argument("--L", dest="ls", type=int, nargs="+", default=list(DEFAULT_LS), help="Auras in-flight limits")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (per stage)")
    parser.add_argument("--tiny", action="store_true", help="the test-sized configs (seconds; numbers meaningless)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    if args.decisions < 3 or args.threads < 1 or any(l < 2 for l in args.ls):
        parser.error("--decisions >= 3, --threads >= 1 and every --L >= 2")

    torch.set_num_threads(args.threads)
    rows: list[Row] = []
    described: dict[str, str] = {}
    for name in args.families:
        try:
            described[name], family_rows = bench_family(FAMILIES[name], args.decisions, args.ls, args.tiny,
                                                        log=lambda line: print(line, file=sys.stderr, flush=True))
        except ImportError as error:  # a family whose dependencies are not installed
            family_rows = [pending_row(name, f"not runnable here ({error})")]
        rows.extend(family_rows)

    print(f"torch {torch.__version__}, {args.threads} intra-op thread(s) per stage, {args.decisions} decisions "
          f"per row, camera {CAMERA_HZ:g} Hz")
    for name, text in described.items():
        print(f"  {name}: {text}")
    print()
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "decisions": args.decisions, "configs": described,
                       "rows": [asdict(r) for r in rows]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
