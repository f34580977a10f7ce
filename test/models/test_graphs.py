"""The static-buffer paths that run as CUDA graphs on a GPU compute what the eager agents compute.

On the CPU ``graphs=True`` runs the very buffers and calls that a GPU captures (only the capture is
skipped), so these tests hold the GPU path to the eager one through the shipped executors. The
capture bookkeeping (once per thread and signature, a failed capture falling back to eager for that
call path only, counted) runs here with the capture call injected; the CUDA-only tests check that
capture itself succeeds and agrees under every executor."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest
import torch

from auras_ros.bench.repeats import measure
from auras_ros.core.clock import SimClock
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.stages import PERCEPT_KEY, GenerationStep, Observation, perceive_all
from auras_ros.models.ar_config import tiny_config
from auras_ros.models.ar_vla import ARVLAAgent
from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny
from auras_ros.models import ar_vla, diffusion
from auras_ros.models.graphs import CaptureLog, GraphedFunction
from gpu import cuda_test

SPECS = ["seq", "auras:1+2:f0:a0", "auras:1+3:f-1:a0", "auras:1+3:f0:a1.5"]
EVERY_EXECUTOR = ["seq", "dec", "par:2", "par:4", "auras:1+3:f-1:a0"]
FRAMES = 10


class Camera:
    """A new image every frame, the same sequence for every run."""

    def __init__(self, size: int) -> None:
        rng = np.random.default_rng(0)
        self.images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(3)]
        self.seq = -1

    def latest(self, now: float) -> Observation:
        self.seq += 1
        return Observation(self.seq, now, self.images[self.seq % len(self.images)])


def twins(family: str, device: str = "cpu"):
    """The same weights as an eager agent and a static-buffer (graphs) agent."""
    if family == "ar":
        eager = ARVLAAgent.from_config(tiny_config("llama", "clip", device=device), seed=3, graphs=False)
        static = ARVLAAgent(eager.config, eager.vision_tower, eager.projector, eager.lm, graphs=True)
        return eager, static, eager.config.image_size
    config = tiny(device=device, state_dim=0, sampler=family.split("-")[1], n_steps=6, train_timesteps=6)
    eager = DiffusionPolicyAgent(config, graphs=False)
    return eager, DiffusionPolicyAgent(config, eager.model, graphs=True), config.image_size[0]


def decisions(agent, spec: str, size: int) -> list[np.ndarray]:
    runner = make_runner(ExecutorSpec.parse(spec), agent, Camera(size), SimClock(), frame_period=0.05)
    try:
        return [d.output.action for _ in range(FRAMES) for d in runner.step()]
    finally:
        runner.close()


@pytest.mark.parametrize("family", ["ar", "diffusion-ddim", "diffusion-ddpm"])
def test_static_buffers_decide_what_the_eager_agent_decides(family):
    torch.set_num_threads(1)
    eager, static, size = twins(family)
    for spec in SPECS:
        expected, got = decisions(eager, spec, size), decisions(static, spec, size)
        assert len(got) == len(expected) >= FRAMES - 4, spec
        for a, b in zip(got, expected, strict=False):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5, err_msg=spec)


def test_graphed_function_keeps_one_slot_per_signature_and_returns_copies():
    calls = []

    def double(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return x * 2

    graphed = GraphedFunction(double, torch.device("cpu"), capture=None)
    a = graphed(torch.ones(2))
    b = graphed(torch.full((2,), 3.0))
    c = graphed(torch.ones(3))
    assert a.tolist() == [2.0, 2.0] and b.tolist() == [6.0, 6.0] and c.tolist() == [2.0, 2.0, 2.0]
    assert calls == [(2,), (2,), (3,)]  # eager on the CPU: every call runs, on its signature's buffer
    assert len(graphed._local.entries) == 2


class FakeCapture:
    """Stands in for cuda_graph_capture: runs the closure once (as a capture records it) and replays
    it by calling it again; raises for the call paths named in ``refuse``."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.threads: list[str] = []
        self.lock = threading.Lock()
        self.current = ""

    def __call__(self, fn, device):
        with self.lock:
            self.threads.append(threading.current_thread().name)
        if any(name in self.current for name in self.refuse):
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        fn()
        return fn


def test_capture_once_per_thread_and_signature_and_a_failed_capture_stays_eager():
    log, capture = CaptureLog(), FakeCapture()
    graphed = GraphedFunction(lambda x: x + 1, torch.device("cpu"), capture, log, "plus one")
    for _ in range(3):
        assert graphed(torch.zeros(2)).tolist() == [1.0, 1.0]
    worker = threading.Thread(target=lambda: [graphed(torch.zeros(2)) for _ in range(3)], name="worker")
    worker.start()
    worker.join()
    assert capture.threads == ["MainThread", "worker"] and log.captured == 2 and log.fallbacks == []

    capture.current, capture.refuse = "broken", ("broken",)
    broken = GraphedFunction(lambda x: x * 3, torch.device("cpu"), capture, log, "broken")
    assert [broken(torch.ones(1)).item() for _ in range(3)] == [3.0, 3.0, 3.0]  # eager from then on
    assert capture.threads.count("MainThread") == 2  # one failed attempt, never retried
    assert [(f.call, f.thread) for f in log.fallbacks] == [("broken", "MainThread")]
    assert "operation not permitted" in log.fallbacks[0].error
    assert log.summary().startswith("2 captured, 1 fell back to eager: broken (RuntimeError")
    assert graphed(torch.zeros(2)).tolist() == [1.0, 1.0]  # the other call path keeps its graph


def test_a_capture_that_raises_leaves_no_half_made_entry():
    class Boom(Exception):
        pass

    def capture(fn, device):
        raise Boom("out of memory while capturing")

    graphed = GraphedFunction(lambda x: x, torch.device("cpu"), capture, CaptureLog(), "f")
    graphed(torch.ones(1))
    (entry,) = graphed._local.entries.values()
    assert entry.call.replay is None and entry.call.error == "Boom: out of memory while capturing"


def inject(monkeypatch, capture: FakeCapture) -> None:
    """Every agent built after this captures with ``capture`` (on the CPU)."""
    for module in (ar_vla, diffusion):
        monkeypatch.setattr(module, "capture_for", lambda device, graphs: capture if graphs else None)


def wall_run(agent, spec: str, render) -> int:
    """The bench's wall-clock run of the shipped runner (DEC, PAR and Auras in their own threads)."""
    return measure(ExecutorSpec.parse(spec), agent, render, decisions=6, camera_hz=1000.0).decisions


@pytest.mark.parametrize("family", ["ar", "diffusion-ddim"])
def test_every_executor_captures_once_per_thread_in_its_threads(family, monkeypatch):
    torch.set_num_threads(1)
    capture = FakeCapture()
    inject(monkeypatch, capture)
    _, static, size = twins(family)
    camera = Camera(size)
    captures, main_thread = 0, 0
    for spec in EVERY_EXECUTOR:
        capture.threads.clear()
        assert wall_run(static, spec, lambda seq, t: camera.images[seq % 3]) >= 6, spec
        # Each thread captures each call path and signature once (AR: perception, merged forward,
        # SEQ decode step; diffusion: a denoising iteration per batch size, at most 3 in flight).
        per_thread = {t: capture.threads.count(t) for t in capture.threads}
        assert max(per_thread.values(), default=0) <= 3, (spec, per_thread)
        if spec.startswith("par:"):
            assert {t for t in per_thread if t.startswith("par-")} == {f"par-{k}" for k in range(int(spec[4:]))}
        captures += len(capture.threads)
        main_thread += capture.threads.count("MainThread")
    # The main thread (SEQ, then DEC's generation) kept its graphs from run to run.
    assert main_thread <= 3
    assert captures > 0 and static.graph_log.fallbacks == [] and static.graph_log.captured == captures


@pytest.mark.parametrize("family", ["ar", "diffusion-ddim"])
def test_a_refused_capture_falls_back_for_that_path_only(family, monkeypatch):
    torch.set_num_threads(1)
    capture = FakeCapture(refuse=("",))  # every capture refused: the agent still decides, all eager
    inject(monkeypatch, capture)
    eager, static, size = twins(family)
    capture.current = "any"
    expected, got = decisions(eager, "par:2", size), decisions(static, "par:2", size)
    for a, b in zip(got, expected, strict=False):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    assert static.graph_log.captured == 0 and len(static.graph_log.fallbacks) == len(capture.threads) > 0


@cuda_test
@pytest.mark.parametrize("family", ["ar", "diffusion-ddim", "diffusion-ddpm"])
def test_cuda_graphs_under_every_executor_with_worker_threads(family):
    """The failure this guards against: PAR's workers captured at once and a capture met another
    thread's work ("operation not permitted when stream is capturing"), poisoning the process."""
    _, static, size = twins(family, device="cuda")
    camera = Camera(size)
    for spec in EVERY_EXECUTOR:
        assert wall_run(static, spec, lambda seq, t: camera.images[seq % 3]) >= 6, spec
    assert static.graph_log.fallbacks == [], static.graph_log.summary()
    assert static.graph_log.captured >= 4  # at least SEQ's thread and PAR(4)'s workers


CAPTURE_FAILS = """
import threading, torch
from auras_ros.models.graphs import CaptureLog, GraphedFunction, cuda_graph_capture
device = torch.device("cuda")
log = CaptureLog()
syncs = GraphedFunction(lambda x: x * float(x.sum().item()), device, cuda_graph_capture, log, "host sync")
plain = GraphedFunction(lambda x: x + 1, device, cuda_graph_capture, log, "plus one")
x = torch.ones(4, device=device)
stop = threading.Event()
def busy():  # another thread syncing with the host all along, as a PAR worker reading its actions
    while not stop.is_set():
        torch.ones(64, device=device).sum().item()
other = threading.Thread(target=busy)
other.start()
try:
    for _ in range(3):
        assert syncs(x).tolist() == [4.0] * 4
        assert plain(x).tolist() == [2.0] * 4
finally:
    stop.set()
    other.join()
assert torch.cuda.current_stream() == torch.cuda.default_stream()  # the thread's stream was restored
big = torch.randn(4096, 4096, device=device)  # the allocator is healthy
assert torch.isfinite(big @ big).all().item()
print(log.summary())
"""


@cuda_test
def test_a_failed_cuda_capture_falls_back_and_the_process_stays_healthy_and_exits_cleanly():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CAPTURE_FAILS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]  # no abort at exit (it was 134)
    assert done.stdout.startswith("1 captured, 1 fell back to eager: host sync"), done.stdout


@cuda_test
@pytest.mark.parametrize("family", ["ar", "diffusion-ddim"])
def test_cuda_graphs_capture_and_agree(family):
    eager, static, size = twins(family, device="cuda")
    for spec in SPECS[:2]:
        expected, got = decisions(eager, spec, size), decisions(static, spec, size)
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=False):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4, err_msg=spec)
    assert static.graph_log.fallbacks == [] and static.graph_log.captured > 0


def test_diagnostics_count_captures_and_name_a_fallback():
    from auras_ros.nodes.health import OK, WARN, Status, with_graph_captures

    class Agent:
        graph_log = CaptureLog()

    status = Status(OK, "generating", {"frames": 3})
    assert with_graph_captures(status, object()) == status  # an agent without graphs: unchanged
    Agent.graph_log.record("merged generation", None)
    healthy = with_graph_captures(status, Agent())
    assert healthy.level == OK and healthy.values == {"frames": 3, "cuda graphs captured": 1, "cuda graph fallbacks": 0}
    Agent.graph_log.record("SEQ decode step", "RuntimeError: operation not permitted when stream is capturing")
    degraded = with_graph_captures(status, Agent())
    assert degraded.level == WARN and "SEQ decode step (RuntimeError" in degraded.message
    assert degraded.values["cuda graph fallbacks"] == 1


class WeakReplay:
    """A replay the test can watch die."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self) -> None:
        self.fn()


def test_a_threads_captured_calls_go_with_the_thread_without_the_garbage_collector(monkeypatch):
    """Graphs freed by the cyclic collector would be destroyed at any moment, in any thread, even
    inside another thread's capture (which that invalidates): none of ours may need it."""
    replays: list[weakref.ref] = []

    def capture(fn, device):
        replay = WeakReplay(fn)
        replays.append(weakref.ref(replay))
        return replay

    monkeypatch.setattr(ar_vla, "capture_for", lambda device, graphs: capture if graphs else None)
    agent = ARVLAAgent.from_config(tiny_config(), seed=1, graphs=True)
    image = Camera(agent.config.image_size).images[0]

    def decide() -> None:  # perception, the merged forward and the SEQ decode step, all captured
        percept = perceive_all(agent, Observation(0, 0.0, image))
        agent.generate_request(percept, 0)
        agent.generate({PERCEPT_KEY: percept}, [GenerationStep(0, None, 0, agent.config.action_dims)])

    gc.disable()
    try:
        worker = threading.Thread(target=decide)
        worker.start()
        worker.join()
        assert len(replays) == 3 and all(r() is None for r in replays)
    finally:
        gc.enable()
