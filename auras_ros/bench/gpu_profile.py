"""Where an Auras frame of the AR agent goes on a GPU, and what FP8 projections buy and cost:

    python -m auras_ros.bench.gpu_profile [--json PATH] [--inputs 8] [--calls 30]
    python -m auras_ros.bench.gpu_profile --tiny       # the same code on CPU with a tiny config

On the OpenVLA-7B-shaped agent (bf16, CUDA graphs, random weights) it times, each as the median of
``--calls`` synchronised calls of the shipped agent methods: perception of one image, one merged
generation frame (``generate`` over all l_a positions: the Auras frame's GPU work), both at once from
two threads (as the pipeline overlaps them on their two streams), and the Auras frame itself as the
shipped runner paces it (``auras:1+3:f-1:a0``, ``--decisions`` decisions). The frame minus the
overlapped pair is time the GPU waits on the host. It also reports the merged forward's matrix work
against a bf16 GEMM of the same shape and against the dense bf16 rate of a large GEMM (the roofline).

Then the LM's projections are swapped for FP8 linears (``models.fp8``) and the same times are taken,
with the accuracy cost: over ``--inputs`` seeded images, how many of the SEQ path's action tokens
(greedy KV-cache decode) change against bf16, and by how many bins. JSON to ``--json`` (default
$OUT/gpu_profile.json when OUT is set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from auras_ros.bench.repeats import measure
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import PERCEPT_KEY, GenerationStep, Observation, perceive_all
from auras_ros.models.ar_config import ARConfig, openvla_7b_shaped, tiny_config
from auras_ros.models.ar_vla import ACTION_TOKENS_KEY, ARVLAAgent

AURAS = "auras:1+3:f-1:a0"


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


def together(a: Callable[[], Any], b: Callable[[], Any]) -> Callable[[], None]:
    """Both calls at once from two threads, as the pipeline's perception and generation run."""

    def run() -> None:
        other = threading.Thread(target=a)
        other.start()
        b()
        other.join()

    return run


def merged_frame(agent: ARVLAAgent, percept: torch.Tensor) -> Callable[[], Any]:
    """One merged generation frame serving every action position (the graphs path's one shape)."""
    l_a = agent.config.action_dims
    context = {PERCEPT_KEY: percept, ACTION_TOKENS_KEY: agent.initial_action_tokens()}
    steps = [GenerationStep(0, None, 0, l_a)]
    return lambda: agent.generate(context, steps)


def linear_flops(agent: ARVLAAgent, tokens: int) -> float:
    """Multiply-adds x 2 of the LM's projections over ``tokens`` tokens (attention scores excluded)."""
    params = sum(m.in_features * m.out_features for m in agent.lm.base_model.modules() if hasattr(m, "in_features"))
    return 2.0 * params * tokens


def gemm_tflops(m: int, k: int, n: int, dtype: torch.dtype, device: torch.device, calls: int) -> float:
    a = torch.randn(m, k, device=device, dtype=dtype)
    b = torch.randn(k, n, device=device, dtype=dtype)
    ms = median_ms(lambda: a @ b, calls, device)
    return 2.0 * m * k * n / (ms * 1e-3) / 1e12


def seq_tokens(agent: ARVLAAgent, percepts: Sequence[torch.Tensor]) -> list[tuple[int, ...]]:
    return [agent.generate_request(p, rid).tokens for rid, p in enumerate(percepts)]


def token_changes(reference: list[tuple[int, ...]], other: list[tuple[int, ...]], bins: Any) -> dict[str, float]:
    ref, got = np.array(reference), np.array(other)
    bin_of = {int(t): i for i, t in enumerate(bins.token_ids)}
    ref_bins = np.vectorize(bin_of.get)(ref)
    got_bins = np.vectorize(bin_of.get)(got)
    return {"tokens_changed": float((ref != got).mean()), "decisions_changed": float((ref != got).any(axis=1).mean()),
            "mean_abs_bin_change": float(np.abs(ref_bins - got_bins).mean()),
            "max_abs_bin_change": int(np.abs(ref_bins - got_bins).max())}


def profile(agent: ARVLAAgent, images: Sequence[np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    device = agent.device
    image = torch.from_numpy(images[0])
    percept = perceive_all(agent, Observation(0, 0.0, images[0]))
    perceive = lambda: agent.perceive(image, 0, 1)  # noqa: E731
    generate = merged_frame(agent, percept)
    out: dict[str, Any] = {
        "perception_ms": median_ms(perceive, args.calls, device),
        "merged_frame_ms": median_ms(generate, args.calls, device),
        "overlapped_pair_ms": median_ms(together(perceive, generate), args.calls, device),
    }
    metrics = measure(ExecutorSpec.parse(AURAS), agent, lambda seq, stamp: images[seq % len(images)],
                      args.decisions, camera_hz=10_000.0)
    out["auras_decisions_per_s"] = metrics.decisions_per_s
    out["auras_frame_ms"] = 1e3 / metrics.decisions_per_s
    out["host_wait_ms"] = out["auras_frame_ms"] - out["overlapped_pair_ms"]
    tokens = agent.config.context_length + agent.config.action_dims - 1
    out["merged_tokens"] = tokens
    out["merged_linear_tflop"] = linear_flops(agent, tokens) / 1e12
    out["merged_achieved_tflops"] = out["merged_linear_tflop"] / (out["merged_frame_ms"] * 1e-3)
    return out


def build(args: argparse.Namespace, device: str) -> tuple[ARConfig, ARVLAAgent]:
    config = tiny_config(device=device, dtype="bfloat16") if args.tiny else openvla_7b_shaped(device=device)
    return config, ARVLAAgent.from_config(config, graphs=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny config (runs on CPU in seconds)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--inputs", type=int, default=8, help="seeded images for the token comparison")
    parser.add_argument("--calls", type=int, default=30, help="timed calls per measurement")
    parser.add_argument("--decisions", type=int, default=60, help="decisions of the Auras run")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(1)
    start = time.perf_counter()
    config, agent = build(args, str(device))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (config.image_size, config.image_size, 3), dtype=np.uint8) for _ in range(args.inputs)]
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch": torch.__version__,
        "tiny": args.tiny, "attention": {"lm": agent.lm.config._attn_implementation,
                                         "vision": agent.vision_tower.config._attn_implementation},
    }
    print(json.dumps(result), flush=True)
    lm = agent.lm.config
    tokens = config.context_length + config.action_dims - 1
    result["gemm_tflops"] = {
        "mlp_shape": gemm_tflops(tokens, int(lm.hidden_size), int(lm.intermediate_size), agent.dtype, device, args.calls),
        "attn_proj_shape": gemm_tflops(tokens, int(lm.hidden_size), int(lm.hidden_size), agent.dtype, device, args.calls),
        "large_8192": gemm_tflops(8192, 8192, 8192, agent.dtype, device, 5) if device.type == "cuda" else float("nan"),
    }
    print("bf16 GEMM TFLOP/s:", json.dumps(result["gemm_tflops"]), flush=True)
    percepts = [perceive_all(agent, Observation(i, 0.0, img)) for i, img in enumerate(images)]
    reference = seq_tokens(agent, percepts)
    result["bf16"] = profile(agent, images, args)
    print("bf16:", json.dumps(result["bf16"]), flush=True)
    result["bf16_graph_captures"] = agent.graph_log.summary()
    # The same weights, the LM's projections now FP8 (in place: the bf16 agent is not used after this).
    fp8 = ARVLAAgent(config, agent.vision_tower, agent.projector, agent.lm, graphs=True, fp8=True)
    del agent
    if device.type == "cuda":
        torch.cuda.empty_cache()
    result["fp8"] = profile(fp8, images, args)
    result["fp8"].update(token_changes(reference, seq_tokens(fp8, percepts), fp8.bins))
    result["fp8_graph_captures"] = fp8.graph_log.summary()
    print("fp8:", json.dumps(result["fp8"]), flush=True)
    result["fp8_x_bf16_decisions_per_s"] = result["fp8"]["auras_decisions_per_s"] / result["bf16"]["auras_decisions_per_s"]
    result["seconds"] = time.perf_counter() - start
    print(f"FP8 / bf16 Auras decisions/s: {result['fp8_x_bf16_decisions_per_s']:.2f}; "
          f"tokens changed {100 * result['fp8']['tokens_changed']:.1f}%")
    path = args.json or (os.path.join(os.environ["OUT"], "gpu_profile.json") if os.environ.get("OUT") else None)
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1, default=float)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
