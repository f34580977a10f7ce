"""Timed replay of a bag (issue #18 item 4): the bag's camera in wall time, the executors in wall time,
each decision's chunk played time-aligned, and the commands a robot would have played measured.

    python -m auras_ros.eval.bag_eval BAG --timed [--speed 3] [--overlap replace] [--chunk-timing observation] \\
        --executors seq async auras:1+4:f0:a0 auras:1+4:f0:a0@ensemble auras:1+4:f0:a0@inpaint [--repeats 3] \\
        [--noise-scale 0]

``--noise-scale S`` sets the diffusion agent's noise scale for every row (:func:`auras_ros.core.stages.set_noise_scale`:
0 = deterministic sampling, no sampling variance between consecutive chunks; refused other than 1 for an
agent that samples no noise).

**Time.** The run's clock is a :class:`ScaledClock` in the bag's log time that advances ``speed`` bag
seconds per wall second (as :class:`~auras_ros.eval.realtime_world.RealTimeWorld`'s ``speed``). A
:class:`TimedCamera` thread releases camera message k when that clock reaches its log time, in the
agent's input form (:class:`~auras_ros.eval.bag_source.BagSource`, the stepped replay's source), and the
executor runs on the same clock as fast as it can on the newest frame, each frame handed once
(:class:`~auras_ros.core.pacing.FreshObservations`, the real-time world's source): a slow agent falls
behind and skips frames. Ages are bag seconds (the stepped replay's unit).

**Commands.** Each decision's chunk joins a :class:`~auras_ros.eval.actuation.ChunkExecutor` (the
evaluations' time-aligned player, rows one camera period apart, under ``overlap`` and ``timing``) the
moment it leaves; at every camera message the command due then is recorded, so there is one played
command per replayed frame, and the seams and jerk (:mod:`auras_ros.eval.seams`) read that trace.
Where the bag has a reference, each played command (after the first chunk) is compared with it at its
frame's stamp: what the robot would have done then against what it did.

**Open loop.** The bag's world does not respond to the commands, so there is no success, time to success
or reaction time here: those need the closed loop (``eval.chunk_table``). Episode resets inside the bag
jump the reference and the commands alike for every row.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from auras_ros.core.errors import ConfigError, positive_int
from auras_ros.core.inpaint import InpaintConfig
from auras_ros.core.inputs import InputSpec
from auras_ros.core.metrics import Decision, MetricsRecorder
from auras_ros.core.pacing import FreshObservations
from auras_ros.core.runner import RunnerThread
from auras_ros.core.spec import Row, make_runner, parse_row
from auras_ros.core.stages import Agent, Observation, chunk_rows, inpaints, reset_episode, set_noise_scale
from auras_ros.core.stats import Spread, percentile, rate
from auras_ros.eval.actuation import ROW_WIDTH, ChunkExecutor, ClockedChunks
from auras_ros.eval.bag import BagInfo, TopicMap, check_bag
from auras_ros.eval.bag_source import BagSource, Refusals
from auras_ros.eval.files import write_failed, write_text_atomically
from auras_ros.eval.report import machine_sentence, markdown_table
from auras_ros.eval.results import Machine, device_of
from auras_ros.eval.scoring import ActionRecord, ReferenceSeries, observation_age
from auras_ros.eval.seams import ChunkMetrics, seam_jumps

OPEN_LOOP_NOTE = ("Open loop: the bag's world does not respond to the commands, so there is no success, time to "
                  "success or reaction column (the closed loop: python -m auras_ros.eval.chunk_table).")


def check_speed(speed: float) -> float:
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not (math.isfinite(speed) and speed > 0):
        raise ConfigError("--speed", speed, "a finite factor > 0 (bag seconds per wall second)")
    return float(speed)


class ScaledClock:
    """The bag's log time running at ``speed`` bag seconds per wall second from ``start``; waits sleep."""

    simulated = False

    def __init__(self, start: float, speed: float) -> None:
        self.start = float(start)
        self.speed = check_speed(speed)
        self._wall0 = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._wall0) * self.speed

    def wall_until(self, t: float) -> float:
        """Wall seconds until the clock reads ``t`` (<= 0: passed)."""
        return (t - self.now()) / self.speed

    def wait_until(self, t: float) -> None:
        delay = self.wall_until(t)
        if delay > 0:
            time.sleep(delay)


class TimedCamera:
    """The bag's camera on a :class:`ScaledClock`: a thread releases each camera message at its log time
    (``source.latest(log time)``, so refused images keep the previous frame) after calling ``on_tick()``
    for that frame. A :class:`~auras_ros.core.pacing.NewerObservations` for FreshObservations.
    ``late``: frames released more than one period after their time (this machine could not keep up)."""

    def __init__(self, source: BagSource, log_times: Sequence[float], clock: ScaledClock, period: float,
                 on_tick: Callable[[], None], frames: int | None = None) -> None:
        self._source = source
        self._times = sorted(log_times)[:frames]
        self._clock = clock
        self._period = period
        self._on_tick = on_tick
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._done = False
        self._latest: Observation | None = None
        self._thread = threading.Thread(target=self._loop, name="timed-camera", daemon=True)
        self.frames = 0
        self.late = 0

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        try:
            for t in self._times:
                if self._stop.wait(max(self._clock.wall_until(t), 0.0)):
                    break
                with self._lock:
                    self._on_tick()
                    observation = self._source.latest(t)
                    if observation is not None and (self._latest is None or observation.seq > self._latest.seq):
                        self._latest = observation
                        self._new.notify_all()
                    self.frames += 1
                if self._clock.now() > t + self._period:
                    self.late += 1
        finally:
            with self._lock:
                self._done = True
                self._new.notify_all()

    def latest(self, now: float) -> Observation | None:
        return self._latest

    def wait_newer(self, seq: int, timeout: float) -> bool:
        with self._new:
            return self._new.wait_for(lambda: self._done or (self._latest is not None and self._latest.seq > seq),
                                      timeout)

    @property
    def done(self) -> bool:
        return self._done

    def join(self) -> None:
        self._thread.join()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def played_errors(reference: ReferenceSeries, stamps: Sequence[float], commands: Sequence[np.ndarray],
                  sources: Sequence[int | None]) -> list[float]:
    """Per played command (from the first chunk on): the norm of ``scale * command - reference`` over the
    dimensions with a reference at the frame's stamp (:meth:`ReferenceSeries.at`)."""
    errors = []
    for stamp, command, source in zip(stamps, commands, sources, strict=True):
        if source is None:
            continue
        diffs = [scale * command[dim] - found[0]
                 for dim, (path, scale) in enumerate(zip(reference.fields, reference.scale, strict=True))
                 if path and dim < len(command) and (found := reference.at(dim, stamp)) is not None]
        if diffs:
            errors.append(float(np.linalg.norm(diffs)))
    return errors


@dataclass
class TimedRun:
    """One row's replay of the bag in wall time."""

    frames: int  # camera messages released (= played commands)
    late: int  # of them released more than a period late
    records: list[ActionRecord]
    commands: list[np.ndarray]
    sources: list[int | None]
    metrics: ChunkMetrics
    seams: list[float]  # |Δcommand| at every seam
    errors: list[float]  # played command vs reference per frame (empty without a reference)
    skipped_rows: int  # chunk rows whose time had passed when their chunk arrived
    refusals: Refusals = field(default_factory=Refusals)
    drops: dict[str, int] = field(default_factory=dict)

    @property
    def decisions_per_s(self) -> float:
        return rate(sorted(r.wall for r in self.records))

    def age_ms(self, q: float) -> float:
        return percentile([1000 * r.age for r in self.records], q)


def run_timed(info: BagInfo, agent: Agent, row: Row, inputs: InputSpec, period: float, speed: float,
              timing: str, width: int, frames: int | None = None) -> TimedRun:
    """``row`` over the bag's camera (its first ``frames`` messages; default all) released in wall time
    at ``speed``; chunk rows ``period`` bag seconds apart (the camera's period)."""
    source = BagSource(info, inputs)
    reset_episode(agent)
    clock = ScaledClock(min(info.camera_log_times) - period, speed)
    # The commands played at the camera rate: one per camera frame, the chunk each came from in
    # played.sources. Decisions after the last frame are not played (nor kept).
    played = ClockedChunks(ChunkExecutor(chunk_rows(agent), period, row.played, timing, width), clock.now)
    commands: list[np.ndarray] = []
    camera = TimedCamera(source, info.camera_log_times, clock, period, lambda: commands.append(played.on_tick()),
                         frames)
    records: list[ActionRecord] = []

    def on_decision(decision: Decision) -> None:
        if played.on_decision(decision) is not None:
            records.append(ActionRecord(decision.request_id, decision.observation_stamp, decision.decision_time,
                                        observation_age(decision.observation_stamp, decision.decision_time),
                                        time.perf_counter(), tuple(float(v) for v in np.ravel(decision.output.action))))

    inpaint = InpaintConfig(period) if row.played == "inpaint" else None
    runner = make_runner(row.spec, agent, FreshObservations(camera, timeout=2 * period / speed), clock,
                         recorder=MetricsRecorder(), on_decision=on_decision, chunk_rows=chunk_rows(agent),
                         chunk_period=period, inpaint=inpaint)
    driver = RunnerThread(runner, f"timed-{row.spec.name}", on_error=camera.stop)
    camera.start()
    driver.start()
    camera.join()
    played.close()
    driver.finish()
    sources = played.sources
    # Each tick's image stamp: the camera messages in log-time order, as the camera released them.
    stamps = [stamp for _, stamp in sorted(zip(info.camera_log_times, info.camera_stamps, strict=True))]
    stamps = stamps[:len(commands)]
    return TimedRun(camera.frames, camera.late, records, commands, sources,
                    ChunkMetrics.of(commands, sources, period), seam_jumps(commands, sources),
                    played_errors(info.reference, stamps, commands, sources) if info.reference is not None else [],
                    played.skipped_rows, source.refusals, dict(runner.recorder.summary().drops))


WARMUP_FRAMES = 20  # an unmeasured start of each row: thread pools, first calls, merged batch shapes


def evaluate_timed(info: BagInfo, agent: Agent, rows: Sequence[Row], inputs: InputSpec, period: float, speed: float,
                   timing: str, width: int, repeats: int = 1, warmup: bool = True, order_seed: int = 0,
                   progress: Callable[[str], None] | None = None) -> dict[str, list[TimedRun]]:
    """Every row over the whole bag ``repeats`` times, each repeat's rows in a seeded shuffled order (so
    the rows share the machine's conditions); after a short unmeasured warm-up of each row."""
    if warmup:
        for row in rows:
            run_timed(info, agent, row, inputs, period, speed, timing, width, frames=WARMUP_FRAMES)
    runs: dict[str, list[TimedRun]] = {row.label: [] for row in rows}
    order = np.random.default_rng(order_seed)
    for repeat in range(repeats):
        for i in order.permutation(len(rows)):
            run = run_timed(info, agent, rows[i], inputs, period, speed, timing, width)
            runs[rows[i].label].append(run)
            if progress is not None:
                progress(f"repeat {repeat + 1}/{repeats} {rows[i].label}: {len(run.records)} decisions, "
                         f"{run.metrics.seams} seams, {run.late} late frames")
    return runs


def _spread(values: Sequence[float], digits: int) -> str:
    s = Spread.of(values)
    if not s.repeats:
        return "–"
    if s.repeats == 1:
        return f"{s.median:.{digits}f}"
    return f"{s.median:.{digits}f} [{s.low:.{digits}f}–{s.high:.{digits}f}]"


def timed_table(runs: dict[str, list[TimedRun]], reference: bool) -> str:
    """One line per row: each cell the median [min–max] over the repeats of that repeat's value."""
    head = ["executor @ overlap", "frames", "decisions", "decisions/s (wall)", "age p50 ms", "age p99 ms", "seams",
            "seam ‖Δ‖ p50", "seam ‖Δ‖ p99", "seam ‖Δ‖ max", "jerk p99 (1/s³)", "skipped rows", "late frames"]
    head += ["played error mean"] if reference else []
    lines = []
    for label, repeats in runs.items():
        cells = [label, _spread([r.frames for r in repeats], 0), _spread([len(r.records) for r in repeats], 0),
                 _spread([r.decisions_per_s for r in repeats], 1), _spread([r.age_ms(50) for r in repeats], 1),
                 _spread([r.age_ms(99) for r in repeats], 1), _spread([r.metrics.seams for r in repeats], 0),
                 _spread([percentile(r.seams, 50) for r in repeats], 3),
                 _spread([percentile(r.seams, 99) for r in repeats], 3),
                 _spread([r.metrics.seam_max for r in repeats], 3), _spread([r.metrics.jerk_p99 for r in repeats], 0),
                 _spread([r.skipped_rows for r in repeats], 0), _spread([r.late for r in repeats], 0)]
        if reference:
            cells.append(_spread([float(np.mean(r.errors)) if r.errors else math.nan for r in repeats], 3))
        lines.append(cells)
    return markdown_table(head, lines)


# ---- the command line (python -m auras_ros.eval.bag_eval BAG --timed ...) ----------------------------

def timed_rows(args: argparse.Namespace) -> list[Row]:
    """``--executors`` as ``EXECUTOR[@OVERLAP]`` rows (``--overlap`` where none is named), the timed
    options checked (ConfigError naming the first bad one)."""
    check_speed(args.speed if args.speed is not None else 1.0)
    if args.row_width is not None:
        positive_int("--row-width", args.row_width)
    rows = [parse_row(text, args.overlap or "replace") for text in args.executors]
    labels = [row.label for row in rows]
    if len(set(labels)) != len(labels):
        raise ConfigError("--executors", args.executors, "each EXECUTOR@OVERLAP row once")
    return rows


def main_timed(args: argparse.Namespace, argv: list[str] | None, topic_map: TopicMap, agent: Agent,
               inputs: InputSpec, rows: list[Row]) -> int:
    """bag_eval's ``--timed`` run: every row over the bag, the table printed (and written to ``--report``)."""
    for row in rows:
        if row.played == "inpaint" and not inpaints(agent):
            raise ConfigError("--executors", str(row), f"a row the agent can play: {args.model} does not inpaint "
                              "(core.stages.inpaints)")
    noise_scale = args.noise_scale if args.noise_scale is not None else 1.0
    set_noise_scale(agent, noise_scale)  # ConfigError: not a finite number >= 0, or an agent that samples no noise
    speed = args.speed if args.speed is not None else 1.0
    timing = args.chunk_timing or "observation"
    width = args.row_width or ROW_WIDTH
    info = check_bag(args.bag, topic_map, need_reference=bool(topic_map.reference))
    period = args.frame_period if args.frame_period is not None else info.frame_period
    started = time.monotonic()
    runs = evaluate_timed(info, agent, rows, inputs, period, speed, timing, width, args.repeats,
                          progress=lambda line: print(line, file=sys.stderr, flush=True))
    command = shlex.join(["python", "-m", "auras_ros.eval.bag_eval", *(argv if argv is not None else sys.argv[1:])])
    reference = info.reference is not None
    text = "\n".join([
        f"# Timed bag replay: {args.bag}", "",
        f"Command: `{command}`", "",
        f"{info.images} images on {info.camera}, camera period {1000 * period:g} ms (bag time), replayed at speed "
        f"{speed:g} ({1000 * period / speed:.1f} ms wall a frame); model {args.model}, {chunk_rows(agent)} chunk "
        f"rows of {width} played a camera period apart, chunk timing `{timing}`"
        f"{f', noise scale {noise_scale:g}' if noise_scale != 1.0 else ''}. "
        f"{machine_sentence(Machine.now(device_of(agent)), args.threads)} Wall time of the run: "
        f"{(time.monotonic() - started) / 60:.1f} min.", "",
        f"Each cell: the median [min–max] over {args.repeats} interleaved repeat(s) of that repeat's value. Ages in "
        "bag ms; seams = |Δcommand| where the played command comes from a newer chunk; jerk = |third difference| / "
        "period³ of the played commands; skipped rows: chunk rows whose time had passed when their chunk "
        "arrived; late frames: camera frames this machine released more than a period late"
        + ("; played error: |scale × command − reference| at each frame's stamp, from the first chunk on "
           f"(reference {info.reference.topic})." if reference else "; no reference topic: no error column."),
        "", OPEN_LOOP_NOTE, "",
        timed_table(runs, reference), ""])
    print(text)
    if args.report:
        try:
            args.report.mkdir(parents=True, exist_ok=True)
            write_text_atomically(args.report / "report.md", text)
        except OSError as error:  # a full disk: one line, no partial file
            return write_failed("bag_eval", error)
        print(f"report: {args.report / 'report.md'}")
    silent = [label for label, repeats in runs.items() if not any(r.records for r in repeats)]
    for label in silent:
        print(f"bag_eval: FAILED: {label} made no decision in the timed replay", file=sys.stderr)
    return 1 if silent else 0
