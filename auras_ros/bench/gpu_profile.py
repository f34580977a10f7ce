"""Where an Auras frame of the AR agent goes on a GPU, and what each speed lever buys and costs:

    python -m auras_ros.bench.gpu_profile [--variants plain compiled] [--json PATH]
    python -m auras_ros.bench.gpu_profile --tiny       # the same code on CPU with a tiny config

For each ``--variants`` choice (the plain agent, and the agent with its merged forward compiled) the
OpenVLA-7B-shaped agent (bf16, CUDA graphs, random weights, seed 0: the same weights every time) is
built and timed, each time the median of ``--calls``
synchronised calls of the shipped agent methods: perception of one image; one merged generation frame
(``generate`` over all l_a positions: the Auras frame's GPU work); both at once from two standing
threads, as the pipeline overlaps them on their two streams; and the Auras frame as the shipped runner
paces it (``auras:1+3:f-1:a0``). The frame minus the overlapped pair is time the GPU waits on the
host. One eager merged forward (not for ``compiled``) is split by CUDA events around the LM's modules into projections
(GEMMs), attention core, MLP activation, norms and residuals, and the rest; its projection work is
set against bf16 GEMMs of the same shapes and a large GEMM (the dense bf16 roofline).

Accuracy: over ``--inputs`` seeded images, how many of the SEQ path's action tokens (prefill and
greedy decode) differ from the first choice's (``plain``: today's path), and by how many bins. JSON to
``--json`` (default $OUT/gpu_profile.json when OUT is set).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import queue
import statistics
import sys
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Sequence

import numpy as np
import torch

from auras_ros.bench.repeats import measure
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import PERCEPT_KEY, GenerationStep, Observation, perceive_all
from auras_ros.models.ar_config import openvla_7b_shaped, tiny_config
from auras_ros.models.ar_vla import ACTION_TOKENS_KEY, ARVLAAgent

AURAS = "auras:1+3:f-1:a0"
VARIANTS: dict[str, dict[str, Any]] = {"plain": {}, "compiled": {"compile": True}}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], Any], calls: int, device: torch.device, warmup: int = 3) -> float:
    """Median wall time of one call, the device idle before and drained after each."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


class Beside:
    """A standing thread that runs ``work`` whenever asked, as the pipeline's perception thread does
    (a new thread per call would capture new CUDA graphs every time)."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.asks: queue.Queue[bool] = queue.Queue()
        self.done: queue.Queue[bool] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="beside", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while self.asks.get():
            self.work()
            self.done.put(True)

    def together(self, other: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            self.asks.put(True)
            other()
            self.done.get()

        return run

    def close(self) -> None:
        self.asks.put(False)
        self.thread.join()


def merged_frame(agent: ARVLAAgent, percept: torch.Tensor) -> Callable[[], Any]:
    """One merged generation frame serving every action position (the graphs path's one shape)."""
    l_a = agent.config.action_dims
    context = {PERCEPT_KEY: percept, ACTION_TOKENS_KEY: agent.initial_action_tokens()}
    steps = [GenerationStep(0, None, 0, l_a)]
    return lambda: agent.generate(context, steps)


def projection_flops(agent: ARVLAAgent, tokens: int) -> float:
    """Multiply-adds x 2 of the LM's projections over ``tokens`` tokens (attention scores excluded)."""
    return 2.0 * tokens * sum(m.in_features * m.out_features for name, m in agent.lm.base_model.named_modules()
                              if name.endswith("_proj"))


def gemm_tflops(m: int, k: int, n: int, dtype: torch.dtype, device: torch.device, calls: int) -> float:
    """A GEMM's rate, timed as 20 back-to-back calls so that launch and sync do not count."""
    a = torch.randn(m, k, device=device, dtype=dtype)
    b = torch.randn(k, n, device=device, dtype=dtype)

    def twenty() -> None:
        for _ in range(20):
            a @ b

    return 20 * 2.0 * m * k * n / (median_ms(twenty, calls, device) * 1e-3) / 1e12


class Marks:
    """Elapsed time between points of a forward: CUDA events on a GPU, the wall clock on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def ms(self, start: Any, end: Any) -> float:
        return start.elapsed_time(end) if self.cuda else 1e3 * (end - start)


def module_kind(name: str) -> str | None:
    if name.endswith("_proj"):
        return "projections"
    if name.endswith(".self_attn"):
        return "attention"
    if name.endswith(".mlp"):
        return "mlp"
    if name.count(".") == 1 and name.startswith("layers."):
        return "layer"
    return None


def breakdown(agent: ARVLAAgent, percept: torch.Tensor, calls: int) -> dict[str, float]:
    """ms per part of one eager merged forward (median over ``calls``), by CUDA events around modules."""
    marks = Marks(agent.device)
    spans: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    open_marks: dict[int, Any] = {}
    hooks = []
    for name, module in agent.lm.base_model.named_modules():
        kind = module_kind(name)
        if kind is None:
            continue
        hooks.append(module.register_forward_pre_hook(lambda m, args: open_marks.__setitem__(id(m), marks.mark())))
        hooks.append(module.register_forward_hook(
            lambda m, args, out, kind=kind: spans[kind].append((open_marks.pop(id(m)), marks.mark()))))
    x_a = agent.initial_action_tokens()
    runs: dict[str, list[float]] = defaultdict(list)
    try:
        with torch.inference_mode():
            for _ in range(calls + 1):
                spans.clear()
                sync(agent.device)
                start = marks.mark()
                agent.merged_action_tokens(percept, x_a, agent.config.action_dims)
                end = marks.mark()
                sync(agent.device)
                total = {kind: sum(marks.ms(a, b) for a, b in pairs) for kind, pairs in spans.items()}
                runs["whole forward"].append(marks.ms(start, end))
                runs["projections (GEMMs)"].append(total["projections"])
                runs["attention core"].append(total["attention"] - share(spans, "projections", "attention", marks))
                runs["MLP activation"].append(total["mlp"] - share(spans, "projections", "mlp", marks))
                runs["norms and residuals"].append(total["layer"] - total["attention"] - total["mlp"])
                runs["outside the layers"].append(runs["whole forward"][-1] - total["layer"])
    finally:
        for hook in hooks:
            hook.remove()
    return {kind: statistics.median(values[1:]) for kind, values in runs.items()}


def share(spans: dict[str, list[tuple[Any, Any]]], inner: str, outer: str, marks: Marks) -> float:
    """Time of the ``inner`` spans that lie inside ``outer`` spans (projections inside attention or MLP).
    Spans run in order on one stream, so an inner span is inside the outer span it starts after."""
    total = 0.0
    for a, b in spans[outer]:
        for c, d in spans[inner]:
            if marks.ms(a, c) >= 0 and marks.ms(d, b) >= 0:
                total += marks.ms(c, d)
    return total


def profile(agent: ARVLAAgent, images: Sequence[np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    device = agent.device
    image = torch.from_numpy(images[0])
    percept = perceive_all(agent, Observation(0, 0.0, images[0]))
    generate = merged_frame(agent, percept)
    perception = Beside(lambda: agent.perceive(image, 0, 1))
    try:
        out: dict[str, Any] = {
            "perception_ms": median_ms(perception.together(lambda: None), args.calls, device),
            "merged_frame_ms": median_ms(generate, args.calls, device),
            "overlapped_pair_ms": median_ms(perception.together(generate), args.calls, device),
        }
    finally:
        perception.close()
    metrics = measure(ExecutorSpec.parse(AURAS), agent, lambda seq, stamp: images[seq % len(images)],
                      args.decisions, camera_hz=10_000.0)
    out["auras_decisions_per_s"] = metrics.decisions_per_s
    out["auras_frame_ms"] = 1e3 / metrics.decisions_per_s
    out["host_wait_ms"] = out["auras_frame_ms"] - out["overlapped_pair_ms"]
    tokens = agent.config.context_length + agent.config.action_dims - 1
    out["merged_tokens"] = tokens
    out["projection_tflop"] = projection_flops(agent, tokens) / 1e12
    out["merged_frame_tflops"] = out["projection_tflop"] / (out["merged_frame_ms"] * 1e-3)
    if not agent.compiled:  # hooks inside a compiled forward would recompile it
        out["eager_forward_ms"] = breakdown(agent, percept, max(3, args.calls // 5))
    out["graph_captures"] = agent.graph_log.summary()
    return out


def seq_tokens(agent: ARVLAAgent, percepts: Sequence[torch.Tensor]) -> list[tuple[int, ...]]:
    return [agent.generate_request(p, rid).tokens for rid, p in enumerate(percepts)]


def token_changes(reference: list[tuple[int, ...]], other: list[tuple[int, ...]], agent: ARVLAAgent) -> dict[str, float]:
    ref, got = np.array(reference), np.array(other)
    bin_of = np.vectorize({int(t): i for i, t in enumerate(agent.bins.token_ids)}.get)
    moved = np.abs(bin_of(ref) - bin_of(got))
    return {"tokens_changed": float((ref != got).mean()), "decisions_changed": float((ref != got).any(axis=1).mean()),
            "mean_abs_bin_change": float(moved.mean()), "max_abs_bin_change": int(moved.max())}


def gemm_rates(agent: ARVLAAgent, tokens: int, calls: int) -> dict[str, float]:
    lm, device, dtype = agent.lm.config, agent.device, agent.dtype
    d, i = int(lm.hidden_size), int(lm.intermediate_size)
    rates = {f"{tokens}x{d}x{n}": gemm_tflops(tokens, d, n, dtype, device, calls) for n in (d, 3 * d, 2 * i)}
    rates[f"{tokens}x{i}x{d}"] = gemm_tflops(tokens, i, d, dtype, device, calls)
    if device.type == "cuda":
        rates["8192x8192x8192"] = gemm_tflops(8192, 8192, 8192, dtype, device, 3)
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny config (runs on CPU in seconds)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="the agents to profile; the first is the reference for token changes")
    parser.add_argument("--inputs", type=int, default=8, help="seeded images for the token comparison")
    parser.add_argument("--calls", type=int, default=30, help="timed calls per measurement")
    parser.add_argument("--decisions", type=int, default=60, help="decisions of the Auras run")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(1)
    start = time.perf_counter()
    config = tiny_config(device=str(device), dtype="bfloat16") if args.tiny else openvla_7b_shaped(device=str(device))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (config.image_size, config.image_size, 3), dtype=np.uint8) for _ in range(args.inputs)]
    tokens = config.context_length + config.action_dims - 1
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                              "torch": torch.__version__, "tiny": args.tiny, "merged_tokens": tokens, "variants": {}}
    reference: list[tuple[int, ...]] | None = None
    for choice in args.variants:
        # Each choice over the same weights (seed 0); the previous agent is freed below first.
        agent = ARVLAAgent.from_config(config, seed=0, graphs=True, **VARIANTS[choice])
        if "gemm_tflops" not in result:
            result["attention"] = {"lm": agent.lm.config._attn_implementation,
                                   "vision": agent.vision_tower.config._attn_implementation}
            result["gemm_tflops"] = gemm_rates(agent, tokens, args.calls)
            print(json.dumps(result), flush=True)
        percepts = [perceive_all(agent, Observation(i, 0.0, img)) for i, img in enumerate(images)]
        row = profile(agent, images, args)
        chosen = seq_tokens(agent, percepts)
        reference = reference if reference is not None else chosen
        row.update(token_changes(reference, chosen, agent))
        result["variants"][choice] = row
        print(f"{choice}:", json.dumps(row), flush=True)
        del agent, percepts
        gc.collect()  # the agent and its graphed calls refer to each other
        if device.type == "cuda":
            torch.cuda.empty_cache()
    first = result["variants"][args.variants[0]]["auras_decisions_per_s"]
    for choice, row in result["variants"].items():
        print(f"{choice}: Auras {row['auras_decisions_per_s']:.1f} decisions/s ({row['auras_decisions_per_s'] / first:.2f}x "
              f"{args.variants[0]}), merged frame {row['merged_frame_ms']:.2f} ms, "
              f"tokens changed {100 * row['tokens_changed']:.1f}%")
    result["seconds"] = time.perf_counter() - start
    path = args.json or (os.path.join(os.environ["OUT"], "gpu_profile.json") if os.environ.get("OUT") else None)
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1, default=float)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
