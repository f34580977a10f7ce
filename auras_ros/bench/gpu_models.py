"""GPU benchmark of the real agent shapes through the shipped executors, one command, time-boxed:

    python -m auras_ros.bench.gpu_models [--json PATH] [--budget-s 330] [--families ar diffusion] [--repeats 5]
    python -m auras_ros.bench.gpu_models --tiny          # the same code on CPU with tiny configs
    python -m auras_ros.bench.gpu_models --model DIR [--instruction TEXT --unnorm-key KEY]   # a checkpoint

``--model``: a checkpoint directory (any format ``build_agent`` loads: LeRobot, OpenVLA, ours) instead of
the shaped families, loaded on the GPU (OpenVLA in bf16, streamed tensor by tensor), with the load's
seconds, peak host RSS (the process's, before and after) and GPU memory reported; without a GPU it
skips in one line (``--device cpu`` runs it on the CPU, as ``bench.cpu_models --model`` does).

AR: an OpenVLA-7B-shaped agent (Llama-2-7B LM, ViT-L/14-336 tower, bf16, random weights, 576 vision
tokens + 40 prompt tokens, l_a = 7). Diffusion: a Diffusion-Policy-shaped agent (100 DDPM steps).
Every row is an executor spec run by ``core.spec.make_runner`` on a wall clock, exactly as the
generation node runs it: on CUDA the agents replay their static-shape calls as CUDA graphs (AR:
perception, the merged forward, the SEQ decode step over a StaticCache; diffusion: each denoising
iteration), each stage on its own stream. Defaults: SEQ, DEC, PAR(2), PAR(4), and Auras with
pp_perception 1 and pp_generation L - 1 (fetch_offset -1 for AR, 0 for diffusion).

Reported per row: the median [min–max] over interleaved repeats of decisions/s, its ratio to SEQ
within each repeat, decision-interval CV and p99, observation age, and the peak GPU memory. JSON goes
to ``--json`` (default $OUT/gpu_models.json when OUT is set).

``--nodes`` also runs each executor, right after its core run in the same repeat, through the composed
ROS graph users launch (``bench.composed_run``: camera, perception, context and generation nodes sharing
the same agent object, local delivery, in-process tensors), and reports its decisions/s at an action
subscriber and their ratio to the core's run of that repeat. The camera node loops over the core's own
images at twice the core's decisions/s (at most its 1000 Hz); perception runs once per generation
frame (``trigger: frame``), as the core's pipeline perceives once per frame.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from auras_ros.bench.repeats import Row, add_arguments, busy_load, check_arguments, interleaved, measure, table
from auras_ros.core.metrics import MetricsRecorder, RunMetrics
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import Agent
from auras_ros.core.stats import Spread

DEFAULT_LS = (2, 3, 4, 6)
CAMERA_HZ = 10_000.0  # faster than any executor here, so every frame finds a new observation
NODES_CAMERA_HZ = (30.0, 1000.0)  # the composed graph's camera rate: twice the core's decisions/s, within these


GRAPHS = {"auto": None, "on": True, "off": False}


def build(family: str, tiny: bool, device: str, graphs: bool | None,
          compile: bool = False) -> tuple[Agent, Callable[[int, float], Any], str]:
    """The agent, its camera's render function, and a line describing it."""
    rng = np.random.default_rng(0)
    if family == "ar":
        from auras_ros.models.ar_config import openvla_7b_shaped, tiny_config
        from auras_ros.models.ar_vla import ARVLAAgent

        config = tiny_config(device=device) if tiny else openvla_7b_shaped(device=device)
        agent = ARVLAAgent.from_config(config, graphs=graphs, compile=compile)
        images = rng.integers(0, 256, (4, config.image_size, config.image_size, 3), dtype=np.uint8)
        describe = (f"ar: {'tiny' if tiny else 'OpenVLA-7B-shaped'} (n_v={config.num_vision_tokens}, "
                    f"n_l={len(config.prompt_ids)}, l_a={config.action_dims}, {config.dtype}"
                    f"{', compiled' if compile else ''}, graphs {agent.graphs})")
        return agent, lambda seq, stamp: images[seq % len(images)], describe
    from auras_ros.models import diffusion

    config = diffusion.tiny(device=device) if tiny else diffusion.diffusion_policy_shaped(device=device, dtype="float32")
    agent = diffusion.DiffusionPolicyAgent(config, graphs=graphs)
    h, w = config.image_size
    images = rng.integers(0, 256, (4, h, w, 3), dtype=np.uint8)
    state = np.zeros(config.state_dim, dtype=np.float32)
    describe = (f"diffusion: {'tiny' if tiny else 'Diffusion-Policy-shaped'} ({config.n_steps} {config.sampler} steps, "
                f"{config.dtype}, graphs {agent.graphs})")
    return agent, lambda seq, stamp: {"image": images[seq % len(images)], "state": state}, describe


def build_model(model: str, device: str, instruction: str | None, unnorm_key: str | None,
                dtype: str | None = None) -> tuple[Agent, Callable[[int, float], Any], str]:
    """A checkpoint directory's agent (``build_agent``), its camera and a line describing it with what the
    load cost: seconds, the process's peak host RSS before and after (a 7B checkpoint in bf16 must not
    pass through an fp32 or a second host copy), and the GPU memory it holds."""
    from auras_ros.bench.cpu_models import model_describe, model_render
    from auras_ros.models.factory import build_agent

    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    started = time.perf_counter()
    agent = build_agent(model, device, instruction=instruction, unnorm_key=unnorm_key, dtype=dtype)
    seconds = time.perf_counter() - started
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    gpu = f", GPU {torch.cuda.memory_allocated(device) / 2**30:.2f} GiB" if torch.device(device).type == "cuda" else ""
    # The dtypes the weights really are in (the load's claim, read back from the modules).
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for m in vars(agent).values()
                     if isinstance(m, torch.nn.Module) for p in m.parameters()})
    describe = (f"{model_describe(model, agent)}; weights {'/'.join(dtypes) or 'n/a'}; load {seconds:.1f} s, "
                f"peak host RSS {peak_before:.2f} -> {peak_after:.2f} GiB{gpu}")
    return agent, model_render(agent), describe


def default_executors(family: str, ls: Sequence[int]) -> list[ExecutorSpec]:
    fetch = -1 if family == "ar" else 0
    texts = ["seq", "dec", "par:2", "par:4"] + [f"auras:1+{L - 1}:f{fetch}:a0" for L in ls]
    return [ExecutorSpec.parse(text) for text in texts]


class ThroughNodes:
    """Runs an executor through the composed ROS graph with the core's agent and images (see module doc)."""

    def __init__(self, agent: Agent, render: Callable[[int, float], Any], folder: Path, domain_id: int) -> None:
        from auras_ros.bench.composed_run import write_frames

        samples = [render(seq, 0.0) for seq in range(4)]
        images = [s["image"] if isinstance(s, dict) else s for s in samples]
        self.state_dim = len(samples[0]["state"]) if isinstance(samples[0], dict) else 0
        self.frames = write_frames(folder, images)
        self.agent = agent
        self.domain_id = domain_id

    def run(self, spec: ExecutorSpec, decisions: int, core_rate: float) -> RunMetrics:
        from auras_ros.bench.composed_run import STATE_TOPIC, run_composed
        from auras_ros.nodes.ros_convert import action_to_decision

        low, high = NODES_CAMERA_HZ
        camera_hz = min(high, max(low, 2 * core_rate)) if math.isfinite(core_rate) else low
        params = {"executor": spec.name, "transport": "in_process", "source": str(self.frames),
                  "rate_hz": camera_hz, "trigger": "frame", "stats_period": 3600.0,
                  "state_topic": STATE_TOPIC if self.state_dim else ""}
        warmup = spec.in_flight + 2
        arrivals = run_composed(self.agent, params, decisions + warmup, 10 * (decisions + warmup) / camera_hz + 60,
                                self.domain_id, state_dim=self.state_dim)
        recorder = MetricsRecorder(warmup_decisions=warmup)  # the same warm-up as the core's run
        for arrival in arrivals:
            recorder.decision(action_to_decision(arrival.action, arrival.time))
        return recorder.summary()


def bench_family(family: str, args: argparse.Namespace, device: torch.device, deadline: float,
                 notes: list[str], nodes_dir: Path | None = None, domain_id: int = 0) -> list[Row]:
    if family == "model":
        agent, render, describe = build_model(args.model, str(device), args.instruction, args.unnorm_key, args.dtype)
    else:
        agent, render, describe = build(family, args.tiny, str(device), GRAPHS[args.graphs], args.compile)
    notes.append(describe)
    print(describe, flush=True)
    peak: dict[str, float] = {}
    failed: dict[str, str] = {}
    graph = ThroughNodes(agent, render, nodes_dir / family, domain_id) if nodes_dir is not None else None
    through_nodes: dict[str, list[RunMetrics]] = {}
    nodes_x_core: dict[str, list[float]] = {}

    def run(spec: ExecutorSpec) -> RunMetrics:
        """One run; an OOM or an error becomes a note on its row (NaN), never the end of the bench."""
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            metrics = measure(spec, agent, render, args.decisions, CAMERA_HZ)
            if graph is not None:
                nodes = graph.run(spec, args.decisions, metrics.decisions_per_s)
                through_nodes.setdefault(spec.name, []).append(nodes)
                nodes_x_core.setdefault(spec.name, []).append(nodes.decisions_per_s / metrics.decisions_per_s)
                print(f"{family}  ... through the nodes {nodes.decisions_per_s:.1f} decisions/s", file=sys.stderr,
                      flush=True)
        except Exception as exc:  # noqa: BLE001 - e.g. torch.cuda.OutOfMemoryError at PAR(4) with a 7B model: a note
            failed[spec.name] = f"{type(exc).__name__}: {exc}"[:200]
            metrics = MetricsRecorder().summary()
        if device.type == "cuda":
            peak[spec.name] = max(peak.get(spec.name, 0.0), torch.cuda.max_memory_allocated(device) / 2**30)
        return metrics

    rows = interleaved(args.executors or default_executors(family, args.ls), args.repeats, run,
                       log=lambda line: print(f"{family}{line}", file=sys.stderr, flush=True), deadline=deadline)
    for row in rows:
        row.extra.update(family=family, peak_gpu_gb=round(peak.get(row.executor, float("nan")), 2),
                         note=failed.get(row.executor, ""))
        if graph is not None:
            runs = through_nodes.get(row.executor, [])
            row.extra.update(nodes_decisions_per_s=vars(Spread.of([m.decisions_per_s for m in runs])),
                             nodes_age_p50_ms=vars(Spread.of([1e3 * m.age_p50 for m in runs])),
                             nodes_x_core=vars(Spread.of(nodes_x_core.get(row.executor, []))))
    stages = rows[0].runs[-1].stage_latency  # SEQ: one request's perception and generation
    notes.append(f"{family} SEQ stage p50 ms: " + ", ".join(f"{k} {1e3 * v.p50:.2f}" for k, v in stages.items()))
    log = getattr(agent, "graph_log", None)
    if log is not None and (log.captured or log.fallbacks):
        notes.append(f"{family} CUDA graphs: {log.summary()}")
    return rows  # the agent goes with this frame: the caller then frees its GPU memory


@contextlib.contextmanager
def ros_graph(wanted: bool) -> Iterator[tuple[Path | None, int]]:
    """For --nodes: a folder for the camera's frames and a private ROS domain (loopback only)."""
    if not wanted:
        yield None, 0
        return
    from auras_ros.launching import private_ros_env

    with private_ros_env() as env, tempfile.TemporaryDirectory() as folder:
        yield Path(folder), int(env["ROS_DOMAIN_ID"])


def nodes_table(rows: Sequence[Row]) -> str:
    """Markdown: each executor's decisions/s on the core and through the composed nodes, and their ratio."""
    lines = ["| family | executor | core decisions/s | nodes decisions/s | nodes / core | nodes age p50 ms |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        cells = [row.extra["family"], row.executor, str(row.spread(lambda m: m.decisions_per_s)),
                 *(str(Spread(**row.extra[k])) for k in ("nodes_decisions_per_s", "nodes_x_core", "nodes_age_p50_ms"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    start = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny configs (runs on CPU in seconds)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--families", nargs="+", default=["ar", "diffusion"], choices=["ar", "diffusion"])
    parser.add_argument("--ls", nargs="+", type=int, default=list(DEFAULT_LS), help="Auras in-flight limits L")
    parser.add_argument("--graphs", choices=sorted(GRAPHS), default="auto",
                        help="static-shape calls (CUDA graphs on a GPU); auto: on with CUDA. 'on' on the CPU runs "
                             "the same buffers eagerly")
    parser.add_argument("--compile", action="store_true", help="AR: the merged forward compiled (ARVLAAgent's compile)")
    parser.add_argument("--model", help="a checkpoint directory measured instead of --families (module doc)")
    parser.add_argument("--instruction", help="--model of OpenVLA: the task in words")
    parser.add_argument("--unnorm-key", help="--model of OpenVLA: the dataset whose statistics unnormalise its actions")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                        help="--model of OpenVLA: the weights' dtype (default: float32 on the CPU, bfloat16 elsewhere)")
    parser.add_argument("--load-only", action="store_true",
                        help="--model: load it, print the load's seconds and peak host RSS, and stop (the check that "
                             "a 7B checkpoint loads without an fp32 copy, on the CPU too: --device cpu --dtype bfloat16)")
    parser.add_argument("--budget-s", type=float, default=330.0, help="no new repeat starts after this (s)")
    parser.add_argument("--nodes", action="store_true",
                        help="also run every executor through the composed ROS graph (decisions/s against the core)")
    add_arguments(parser, decisions=40)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    if any(L < 2 for L in args.ls):
        parser.error("--ls: L must be >= 2 (pp_perception = 1, pp_generation = L - 1)")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.model and device.type != "cuda" and args.device is None:
        print(f"gpu_models: no CUDA device: --model {args.model} skipped (bench.cpu_models --model measures it on "
              "the CPU; --device cpu runs this script there)", flush=True)
        return 0
    if device.type == "cpu":
        # DEC, PAR and Auras run stages in several threads: one intra-op thread each keeps a small
        # machine from oversubscribing its cores (SEQ gets the same setting).
        torch.set_num_threads(1)
    if args.load_only:
        if not args.model:
            parser.error("--load-only needs --model")
        print(build_model(args.model, str(device), args.instruction, args.unnorm_key, args.dtype)[2], flush=True)
        return 0
    import transformers

    header = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "transformers": transformers.__version__, "tiny": args.tiny,
              "repeats": args.repeats, "decisions": args.decisions, "load": args.load}
    print(json.dumps(header), flush=True)
    notes: list[str] = []
    rows: list[Row] = []
    deadline = start + args.budget_s
    with busy_load(args.load, args.load_nice), ros_graph(args.nodes) as (nodes_dir, domain_id):
        for family in ["model"] if args.model else args.families:
            rows += bench_family(family, args, device, deadline, notes, nodes_dir, domain_id)
            if device.type == "cuda":
                torch.cuda.empty_cache()  # the family's agent is gone: the next one gets its memory
    print()
    print(table(rows, lead=["family"]))
    if args.nodes:
        print()
        print(nodes_table(rows))
    for row in rows:
        if row.extra["note"]:
            print(f"note: {row.extra['family']} {row.executor}: {row.extra['note']}")
    if device.type == "cuda":
        print("peak GPU GB: " + ", ".join(f"{r.extra['family']} {r.executor} {r.extra['peak_gpu_gb']}" for r in rows))
    for note in notes:
        print("note:", note)
    path = args.json or (os.path.join(os.environ["OUT"], "gpu_models.json") if os.environ.get("OUT") else None)
    if path:
        with open(path, "w") as f:
            json.dump(dict(header, seconds=time.perf_counter() - start, rows=[r.summary() for r in rows], notes=notes),
                      f, indent=1, default=float)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
