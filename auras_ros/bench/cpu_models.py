"""CPU benchmark of the real agent families under the shipped executors.

    python -m auras_ros.bench.cpu_models [--families diffusion ar] [--decisions 40] [--repeats 5] [--threads 1]
                                         [--executors ...] [--load N] [--json out.json]
    python -m auras_ros.bench.cpu_models --model /path/to/checkpoint [...]   # a loaded checkpoint instead
        [--instruction 'pick up the block' --unnorm-key bridge_orig]      # an OpenVLA one

For a small diffusion policy and a small AR VLA it runs SEQ, DEC, PAR(2), PAR(4) and the Auras
pipeline at L = 2..6 (pp_perception = 1, pp_generation = L - 1; fetch_offset 0 for diffusion and -1
for AR, as in the paper) through ``core.spec.make_runner`` on a wall clock, in interleaved repeats,
and prints the median [min–max] of decisions/s, the ratio to SEQ within each repeat,
decision-interval CV and p99, and the observation age at actuation.

torch runs ``--threads`` intra-op threads (default 1) in every stage: DEC, PAR and Auras with
fetch_offset -1 run two stages at once, and on a small shared machine one thread per stage keeps them
from oversubscribing the cores. SEQ gets the same setting, so every row runs the same kernels.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from auras_ros.bench.repeats import Row, add_arguments, busy_load, check_arguments, interleaved, measure, table
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import Agent

CAMERA_HZ = 10_000.0  # faster than any executor here, so every frame finds a new observation
DEFAULT_LS = (2, 3, 4, 5, 6)


@dataclass(frozen=True)
class Family:
    """One agent family: how to build a small agent and what its camera renders."""

    name: str
    build: Callable[[bool], Agent]  # tiny: bool -> agent
    render: Callable[[Agent], Callable[[int, float], Any]]
    fetch_offset: int
    describe: Callable[[Agent], str]


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


def model_render(agent: Agent) -> Callable[[int, float], Any]:
    """A camera for a loaded checkpoint: images of the size its input spec declares (96x96 when it takes
    any), with a robot state when it takes one."""
    from auras_ros.core.inputs import input_spec
    from auras_ros.core.stages import state_size

    spec = input_spec(agent)
    images = _images(*(spec.size or (96, 96)))
    states = np.linspace(-1, 1, state_size(agent), dtype=np.float32)
    if not state_size(agent):
        return lambda seq, stamp: images[seq % len(images)]
    return lambda seq, stamp: {spec.image_key: images[seq % len(images)], spec.state_key: states}


def model_describe(model: str, agent: Agent) -> str:
    from auras_ros.core.inputs import input_spec
    from auras_ros.core.stages import chunk_rows, state_size

    return (f"{model}: {type(agent).__name__}, {agent.generation_iterations} generation iterations, "
            f"{chunk_rows(agent)} chunk rows, input {input_spec(agent).size}, state {state_size(agent)}")


def _model_family(model: str, instruction: str | None = None, unnorm_key: str | None = None) -> Family:
    """A checkpoint directory (any format ``build_agent`` loads; an OpenVLA one with its instruction and
    unnorm_key) as the one family to measure."""
    from auras_ros.models.factory import build_agent

    return Family("model", lambda tiny: build_agent(model, instruction=instruction, unnorm_key=unnorm_key),
                  model_render, 0, lambda agent: model_describe(model, agent))


FAMILIES = {
    "diffusion": Family("diffusion", _diffusion_agent, _diffusion_render, 0, _diffusion_describe),
    "ar": Family("ar", _ar_agent, _ar_render, -1, _ar_describe),
}


def default_executors(fetch_offset: int, ls: Sequence[int]) -> list[ExecutorSpec]:
    """The baselines, then Auras at each L (pp_perception 1, pp_generation L - 1)."""
    texts = ["seq", "dec", "par:2", "par:4"] + [f"auras:1+{L - 1}:f{fetch_offset}:a0" for L in ls]
    return [ExecutorSpec.parse(text) for text in texts]


def bench_family(family: Family, specs: Sequence[ExecutorSpec] | None, ls: Sequence[int], decisions: int,
                 repeats: int, tiny: bool, log: Callable[[str], None] = lambda line: None) -> tuple[str, list[Row]]:
    agent = family.build(tiny)
    render = family.render(agent)
    specs = specs or default_executors(family.fetch_offset, ls)
    rows = interleaved(specs, repeats, lambda spec: measure(spec, agent, render, decisions, CAMERA_HZ),
                       log=lambda line: log(f"{family.name}{line}"))
    for row in rows:
        row.extra["family"] = family.name
    return family.describe(agent), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", choices=sorted(FAMILIES), default=["diffusion", "ar"])
    parser.add_argument("--L", dest="ls", type=int, nargs="+", default=list(DEFAULT_LS),
                        help="Auras in-flight limits of the default executors")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (per stage)")
    parser.add_argument("--tiny", action="store_true", help="the test-sized configs (seconds; numbers meaningless)")
    parser.add_argument("--model", help="a checkpoint directory (e.g. a LeRobot pretrained_model/) measured instead of --families")
    parser.add_argument("--instruction", help="--model of OpenVLA: the task in words")
    parser.add_argument("--unnorm-key", help="--model of OpenVLA: the dataset whose statistics unnormalise its actions")
    add_arguments(parser, decisions=40)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    if args.threads < 1 or any(L < 2 for L in args.ls):
        parser.error("--threads >= 1 and every --L >= 2")

    torch.set_num_threads(args.threads)
    rows: list[Row] = []
    described: dict[str, str] = {}
    with busy_load(args.load, args.load_nice):
        families = ([_model_family(args.model, args.instruction, args.unnorm_key)] if args.model
                    else [FAMILIES[name] for name in args.families])
        for family in families:
            described[family.name], family_rows = bench_family(family, args.executors, args.ls, args.decisions,
                                                       args.repeats, args.tiny,
                                                       log=lambda line: print(line, file=sys.stderr, flush=True))
            rows.extend(family_rows)
    print(f"torch {torch.__version__}, {args.threads} intra-op thread(s) per stage, {args.repeats} interleaved "
          f"repeats of {args.decisions} decisions per row, camera {CAMERA_HZ:g} Hz, competing busy processes: {args.load}")
    for name, text in described.items():
        print(f"  {name}: {text}")
    print()
    print(table(rows, lead=["family"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "decisions": args.decisions, "repeats": args.repeats, "load": args.load,
                       "configs": described,
                       "rows": [row.summary() for row in rows]},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
