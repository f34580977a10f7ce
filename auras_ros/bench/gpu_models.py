"""GPU benchmark of the real agent shapes (issue 4, item 6), one command, time-boxed:

    python -m auras_ros.bench.gpu_models [--json PATH] [--budget-s 330] [--families ar diffusion]
    python -m auras_ros.bench.gpu_models --tiny          # the same code on CPU with tiny configs

AR: an OpenVLA-7B-shaped agent (Llama-2-7B LM, ViT-L/14-336 tower, bf16, random weights, 576 vision
tokens + 40 prompt tokens, l_a = 7). Diffusion: a Diffusion-Policy-shaped agent (100 DDPM steps), when
``auras_ros.models.diffusion`` is there. Rows, all measured in this run on this device:

- SEQ: perception then prefill + KV-cache decode, eager (DynamicCache).
- SEQ-graph: the same with a StaticCache, perception and the decode step as CUDA graphs.
- DEC: a perception thread keeps the newest percept; a generation thread runs whole requests on it.
- PAR(k): k worker threads, each with its own CUDA stream, each running whole requests.
- Auras(L): pp_perception = 1, pp_generation = L − 1. AR: fetch_offset = −1, two streams (perception of
  frame t on stream A, merged generation over frame t−1's percept on stream B), each a CUDA graph; one
  merged forward per frame serves every in-flight request. Diffusion: fetch_offset = 0 through the
  Agent protocol (agent.generate batches all in-flight requests).

Reported per row: decisions/s, ratio to the best SEQ, decision-interval CV, peak GPU memory, and for
Auras the frame time against the bound max(stage). JSON goes to ``--json`` (default $OUT/gpu_models.json
when OUT is set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from auras_ros.core.partition import stage_ranges
from auras_ros.core.stages import PERCEPT_KEY, Agent, GenerationStep, Observation, perceive_all
from auras_ros.models.ar_config import openvla_7b_shaped, tiny_config
from auras_ros.models.ar_static import FrameGraphs, StaticDecoder
from auras_ros.models.ar_vla import ARVLAAgent

DEFAULT_LS = (2, 3, 4, 6)


@dataclass
class Row:
    family: str
    executor: str
    decisions_per_s: float = float("nan")
    x_best_seq: float = float("nan")
    interval_cv: float = float("nan")
    peak_gpu_gb: float = float("nan")
    frame_ms: float = float("nan")
    bound_ms: float = float("nan")
    decisions: int = 0
    note: str = ""


@dataclass
class Bench:
    """Shared run state: device, the global deadline, and what has been measured."""

    device: torch.device
    deadline: float
    config_s: float
    decisions: int
    rows: list[Row] = field(default_factory=list)
    stage_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def run(self, family: str, executor: str, fn: Callable[[float], tuple[list[float], dict[str, Any]]]) -> Row:
        """Run one configuration with its own time cap; OOM or an error becomes a note, not a crash."""
        row = Row(family, executor)
        if self.left() < min(self.config_s, 10.0):
            row.note = "skipped: time budget spent"
            self.rows.append(row)
            return row
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        cap = min(self.config_s, self.left() - 5.0)
        try:
            stamps, extra = fn(time.perf_counter() + cap)
            rate, cv = rate_and_cv(stamps)
            row.decisions_per_s, row.interval_cv, row.decisions = rate, cv, len(stamps)
            for key, value in extra.items():
                setattr(row, key, value)
        except torch.cuda.OutOfMemoryError:
            row.note = "OOM"
        except Exception as exc:  # a bench row must not take the others down
            row.note = f"error: {type(exc).__name__}: {exc}"[:200]
        finally:
            self.sync()
        if self.cuda:
            row.peak_gpu_gb = torch.cuda.max_memory_allocated(self.device) / 2**30
        self.rows.append(row)
        print(f"  {executor:<14} {row.decisions_per_s:8.2f} /s  cv {row.interval_cv:.3f}  {row.note}", flush=True)
        return row


def rate_and_cv(stamps: Sequence[float]) -> tuple[float, float]:
    """Decisions per second and interval CV from completion times (the first decision opens the window)."""
    if len(stamps) < 3:
        return float("nan"), float("nan")
    intervals = np.diff(np.asarray(stamps))
    return float(1.0 / intervals.mean()), float(intervals.std() / intervals.mean())


def time_ms(bench: Bench, fn: Callable[[], Any], iters: int, warmup: int = 2) -> float:
    """Mean milliseconds per call: CUDA events on the GPU, the wall clock on the CPU."""
    for _ in range(warmup):
        fn()
    bench.sync()
    if bench.cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / iters
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) * 1000.0 / iters


def stream_context(stream: Any) -> Any:
    return torch.cuda.stream(stream) if stream is not None else _Null()


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


# ---- executors over the Agent protocol (both families) -------------------------------------------

ObservationOf = Callable[[int], Observation]


def run_seq(bench: Bench, agent: Agent, obs: ObservationOf, stop: float) -> list[float]:
    stamps = []
    for i in range(bench.decisions):
        agent.generate_request(perceive_all(agent, obs(i)), i)
        stamps.append(time.perf_counter())
        if time.perf_counter() > stop:
            break
    return stamps


def run_dec(bench: Bench, agent: Agent, obs: ObservationOf, stop: float) -> list[float]:
    """Perception and generation uncoordinated: generation always takes the newest percept."""
    latest: list[Any] = [perceive_all(agent, obs(0))]
    done = threading.Event()

    def perception_loop() -> None:
        i = 1
        while not done.is_set():
            latest[0] = perceive_all(agent, obs(i))
            i += 1

    thread = threading.Thread(target=perception_loop, daemon=True)
    thread.start()
    stamps = []
    stream = torch.cuda.Stream(bench.device) if bench.cuda else None
    try:
        with torch.inference_mode(), stream_context(stream):
            for i in range(bench.decisions):
                agent.generate_request(latest[0], i)
                stamps.append(time.perf_counter())
                if time.perf_counter() > stop:
                    break
    finally:
        done.set()
        thread.join()
    return stamps


def run_par(bench: Bench, agent: Agent, obs: ObservationOf, stop: float, workers: int) -> list[float]:
    """k workers, each with its own stream, each running whole requests (no shared context)."""
    lock = threading.Lock()
    stamps: list[float] = []
    counter = [0]

    def worker() -> None:
        stream = torch.cuda.Stream(bench.device) if bench.cuda else None
        with torch.inference_mode(), stream_context(stream):
            while True:
                with lock:
                    i = counter[0]
                    counter[0] += 1
                if i >= bench.decisions or time.perf_counter() > stop:
                    return
                agent.generate_request(perceive_all(agent, obs(i)), i)
                with lock:
                    stamps.append(time.perf_counter())

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(stamps)


def run_auras_protocol(bench: Bench, agent: Agent, obs: ObservationOf, stop: float, L: int, fetch_offset: int) -> list[float]:
    """The frame loop through the Agent protocol: pp_perception = 1, pp_generation = L − 1. With
    fetch_offset −1, perception of frame t runs in a helper thread while generation reads frame t−1."""
    ranges = stage_ranges(agent.generation_iterations, L - 1)
    context: dict[str, Any] = {}
    in_flight: list[list[Any]] = []  # [request_id, state, stage]
    stamps: list[float] = []
    pool = ThreadPoolExecutor(1) if fetch_offset == -1 else None
    frame = 0
    try:
        while len(stamps) < bench.decisions and time.perf_counter() < stop:
            pending = pool.submit(perceive_all, agent, obs(frame)) if pool else None
            if pool is None:
                context[PERCEPT_KEY] = perceive_all(agent, obs(frame))
                in_flight.append([frame, agent.init_request(frame), 0])
            if PERCEPT_KEY in context and in_flight:
                steps = [GenerationStep(r, s, *ranges[k]) for r, s, k in in_flight]
                result = agent.generate(context, steps)
                context.update(result.context_writes)
                for entry, state in zip(in_flight, result.states):
                    entry[1], entry[2] = state, entry[2] + 1
                for entry in [e for e in in_flight if e[2] == len(ranges)]:
                    agent.finish(entry[1])
                    stamps.append(time.perf_counter())
                    in_flight.remove(entry)
            if pending is not None:
                context[PERCEPT_KEY] = pending.result()
                in_flight.append([frame, agent.init_request(frame), 0])
            frame += 1
    finally:
        if pool:
            pool.shutdown()
    return stamps


# ---- the AR agent with CUDA graphs -------------------------------------------------------------

def run_auras_graphs(bench: Bench, graphs: FrameGraphs, images: torch.Tensor, stop: float, L: int) -> tuple[list[float], float]:
    """Auras for the AR agent: frame t runs perception of observation t on stream A and the merged
    forward over observation t−1's percept (fetch_offset −1) on stream B, then a frame barrier.
    Every frame refreshes all l_a positions: with pp_generation = L − 1 stages the in-flight requests
    cover them all, and a request leaves after L frames with its snapshot of X_A."""
    agent = graphs.agent
    stream_a, stream_b = agent.perception_stream, agent.generation_stream
    copied = torch.cuda.Event() if bench.cuda else None
    host_tokens = torch.zeros(agent.config.action_dims, dtype=torch.long, pin_memory=bench.cuda)
    stamps: list[float] = []
    frame_start = time.perf_counter()
    frames = 0
    with torch.inference_mode():
        while len(stamps) < bench.decisions and time.perf_counter() < stop:
            with stream_context(stream_b):
                graphs.gen_in.copy_(graphs.percept)  # frame t−1's percept, before A overwrites it
                if copied is not None:
                    copied.record(stream_b)
            with stream_context(stream_a):
                if copied is not None:
                    stream_a.wait_event(copied)
                graphs.image.copy_(images[frames % len(images)], non_blocking=True)
                graphs.perception()
            with stream_context(stream_b):
                graphs.merged()
                host_tokens.copy_(graphs.x_a, non_blocking=True)
            bench.sync()  # the frame barrier
            frames += 1
            if frames >= L:  # pipeline full: one request leaves per frame
                agent.finish(host_tokens.clone())
                stamps.append(time.perf_counter())
    frame_ms = (time.perf_counter() - frame_start) * 1000.0 / max(frames, 1)
    return stamps, frame_ms


def run_seq_graph(bench: Bench, graphs: FrameGraphs, decoder: StaticDecoder, images: torch.Tensor, stop: float) -> list[float]:
    stamps = []
    with torch.inference_mode():
        for i in range(bench.decisions):
            graphs.image.copy_(images[i % len(images)], non_blocking=True)
            graphs.perception()
            graphs.agent.finish(decoder.decode(graphs.percept))
            stamps.append(time.perf_counter())
            if time.perf_counter() > stop:
                break
    return stamps


def bench_ar(bench: Bench, tiny: bool, ls: Sequence[int]) -> None:
    family = "ar"
    t0 = time.perf_counter()
    device = str(bench.device)
    config = tiny_config(device=device) if tiny else openvla_7b_shaped(device=device)
    agent = ARVLAAgent.from_config(config)
    bench.sync()
    bench.notes.append(f"ar: built {'tiny' if tiny else 'OpenVLA-7B-shaped'} agent in {time.perf_counter() - t0:.1f} s "
                       f"(n_v={config.num_vision_tokens}, n_l={len(config.prompt_ids)}, l_a={config.action_dims}, {config.dtype})")
    print(bench.notes[-1], flush=True)
    size = config.image_size
    rng = np.random.default_rng(0)
    host_images = rng.integers(0, 256, (4, size, size, 3), dtype=np.uint8)
    images = torch.from_numpy(host_images)
    images = images.pin_memory() if bench.cuda else images
    obs = lambda i: Observation(i, 0.0, {"image": host_images[i % len(host_images)]})

    graphs = FrameGraphs(agent, use_graphs=bench.cuda)
    if graphs.errors():
        bench.notes.append("ar: " + graphs.errors())
    graphs_eager = FrameGraphs(agent, use_graphs=False)
    decoder = StaticDecoder(agent, use_cuda_graph=bench.cuda)
    percept = perceive_all(agent, obs(0))
    graphs.gen_in.copy_(percept)
    graphs_eager.gen_in.copy_(percept)
    iters = 5 if tiny else 10
    with torch.inference_mode():
        stages = {
            "perception_eager": time_ms(bench, graphs_eager.perception, iters),
            "perception_graph": time_ms(bench, graphs.perception, iters),
            "merged_forward_eager": time_ms(bench, graphs_eager.merged, iters),
            "merged_forward_graph": time_ms(bench, graphs.merged, iters),
            "seq_request_eager": time_ms(bench, lambda: agent.finish(agent.kv_cache_decode(percept)), max(2, iters // 2)),
            "seq_request_static_graph": time_ms(bench, lambda: agent.finish(decoder.decode(percept)), max(2, iters // 2)),
        }
    if decoder.step is not None and decoder.step.error:
        bench.notes.append(f"ar: SEQ decode-step graph failed ({decoder.step.error})")
    bench.stage_ms[family] = stages
    print("  stage ms: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()), flush=True)
    bound = max(stages["perception_graph"], stages["merged_forward_graph"])

    seq = bench.run(family, "SEQ", lambda stop: (run_seq(bench, agent, obs, stop), {}))
    seq_graph = bench.run(family, "SEQ-graph", lambda stop: (run_seq_graph(bench, graphs, decoder, images, stop), {}))
    best_seq = np.nanmax([seq.decisions_per_s, seq_graph.decisions_per_s, 0.0])
    bench.run(family, "DEC", lambda stop: (run_dec(bench, agent, obs, stop), {}))
    for k in (2, 4):
        bench.run(family, f"PAR({k})", lambda stop, k=k: (run_par(bench, agent, obs, stop, k), {}))
    for L in ls:
        def auras(stop: float, L: int = L) -> tuple[list[float], dict[str, Any]]:
            stamps, frame_ms = run_auras_graphs(bench, graphs, images, stop, L)
            return stamps, {"frame_ms": frame_ms, "bound_ms": bound}
        bench.run(family, f"Auras(L={L})", auras)
    if ls:
        L = ls[len(ls) // 2]
        bench.run(family, f"Auras-eager(L={L})", lambda stop: (run_auras_protocol(bench, agent, obs, stop, L, -1), {}))
    for row in bench.rows:
        if row.family == family and best_seq > 0:
            row.x_best_seq = row.decisions_per_s / best_seq
    del graphs, graphs_eager, decoder, agent
    if bench.cuda:
        torch.cuda.empty_cache()


def bench_diffusion(bench: Bench, tiny: bool, ls: Sequence[int]) -> None:
    try:
        from auras_ros.models import diffusion
    except ImportError as exc:
        bench.notes.append(f"diffusion: skipped (auras_ros.models.diffusion not importable: {exc})")
        return
    family = "diffusion"
    t0 = time.perf_counter()
    dtype = "float32"
    config = diffusion.tiny(device=str(bench.device)) if tiny else diffusion.diffusion_policy_shaped(device=str(bench.device), dtype=dtype)
    agent = diffusion.DiffusionPolicyAgent(config)
    bench.sync()
    bench.notes.append(f"diffusion: built {'tiny' if tiny else 'Diffusion-Policy-shaped'} agent in {time.perf_counter() - t0:.1f} s "
                       f"({config.n_steps} denoising steps, {config.dtype})")
    print(bench.notes[-1], flush=True)
    h, w = config.image_size
    rng = np.random.default_rng(0)
    host_images = rng.integers(0, 256, (4, h, w, 3), dtype=np.uint8)
    state = np.zeros(config.state_dim, dtype=np.float32)
    obs = lambda i: Observation(i, 0.0, {"image": host_images[i % len(host_images)], "state": state})
    percept = perceive_all(agent, obs(0))
    with torch.inference_mode():
        stages = {
            "perception_eager": time_ms(bench, lambda: perceive_all(agent, obs(0)), 5),
            "seq_request_eager": time_ms(bench, lambda: agent.generate_request(percept, 0), 2, warmup=1),
        }
    bench.stage_ms[family] = stages
    print("  stage ms: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()), flush=True)
    seq = bench.run(family, "SEQ", lambda stop: (run_seq(bench, agent, obs, stop), {}))
    bench.run(family, "DEC", lambda stop: (run_dec(bench, agent, obs, stop), {}))
    for k in (2, 4):
        bench.run(family, f"PAR({k})", lambda stop, k=k: (run_par(bench, agent, obs, stop, k), {}))
    for L in ls:
        bench.run(family, f"Auras(L={L})", lambda stop, L=L: (run_auras_protocol(bench, agent, obs, stop, L, 0), {}))
    for row in bench.rows:
        if row.family == family and seq.decisions_per_s > 0:
            row.x_best_seq = row.decisions_per_s / seq.decisions_per_s


def print_table(bench: Bench) -> None:
    print(f"\n{'family':<10} {'executor':<18} {'dec/s':>8} {'x SEQ*':>7} {'CV':>6} {'peak GB':>8} {'frame ms':>9} {'bound ms':>9}  note")
    for r in bench.rows:
        print(f"{r.family:<10} {r.executor:<18} {r.decisions_per_s:8.2f} {r.x_best_seq:7.2f} {r.interval_cv:6.3f} "
              f"{r.peak_gpu_gb:8.2f} {r.frame_ms:9.2f} {r.bound_ms:9.2f}  {r.note}")
    print("x SEQ*: against the best SEQ row of the family (SEQ-graph included) from this run.")
    for family, stages in bench.stage_ms.items():
        print(f"{family} stage ms: " + ", ".join(f"{k}={v:.2f}" for k, v in stages.items()))
    for note in bench.notes:
        print("note:", note)


def main(argv: Sequence[str] | None = None) -> int:
    start = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny configs (runs on CPU in seconds)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--families", nargs="+", default=["ar", "diffusion"], choices=["ar", "diffusion"])
    parser.add_argument("--ls", nargs="+", type=int, default=list(DEFAULT_LS), help="Auras in-flight limits L")
    parser.add_argument("--decisions", type=int, default=None, help="decisions per configuration")
    parser.add_argument("--budget-s", type=float, default=330.0, help="whole run, build included")
    parser.add_argument("--config-s", type=float, default=None, help="cap per configuration")
    parser.add_argument("--json", default=None, help="default: $OUT/gpu_models.json when OUT is set")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        # DEC, PAR and Auras run stages in several threads: one intra-op thread each keeps a small
        # machine from oversubscribing its cores (SEQ gets the same setting).
        torch.set_num_threads(1)
    if any(L < 2 for L in args.ls):
        parser.error("--ls: L must be >= 2 (pp_perception = 1, pp_generation = L - 1)")
    bench = Bench(
        device=device, deadline=start + args.budget_s, config_s=args.config_s or (8.0 if args.tiny else 20.0),
        decisions=args.decisions or (8 if args.tiny else 40),
    )
    import transformers

    header = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "transformers": transformers.__version__, "tiny": args.tiny,
    }
    print(json.dumps(header), flush=True)
    if device.type != "cuda":
        bench.notes.append("cpu: no CUDA graphs or streams; the *_graph stages and SEQ-graph/Auras rows run eagerly")
    for family in args.families:
        if bench.left() < 20:
            bench.notes.append(f"{family}: skipped, time budget spent")
            continue
        try:
            (bench_ar if family == "ar" else bench_diffusion)(bench, args.tiny, args.ls)
        except torch.cuda.OutOfMemoryError:
            bench.notes.append(f"{family}: OOM while building or timing stages")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print_table(bench)
    path = args.json or (os.path.join(os.environ["OUT"], "gpu_models.json") if os.environ.get("OUT") else None)
    if path:
        report = dict(header, seconds=time.perf_counter() - start, rows=[asdict(r) for r in bench.rows],
                      stage_ms=bench.stage_ms, notes=bench.notes)
        with open(path, "w") as f:
            json.dump(report, f, indent=1, default=float)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
