"""Evaluation results: per-episode records, their summary per executor, and their JSON form.

Every result names its executor by the canonical text of :class:`auras_ros.core.spec.ExecutorSpec`
(``seq``, ``par:3``, ``auras:1+5:f0:a0``), the same text the CLIs take and the tables print.
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from auras_ros.core.spec import ExecutorSpec
from auras_ros.eval.files import write_text_atomically
from auras_ros.eval.seams import ChunkMetrics, ChunkSummary
from auras_ros.core.stats import bootstrap_mean_ci, cv, mean, paired_ratio_ci, percentile, wilson


@dataclass(frozen=True)
class Machine:
    """The machine an evaluation ran on, recorded when its runs ended: whatever a report says about the
    machine (cores, load, torch, device) is read from here, so it is true of the run that made the data."""

    cpus: int  # os.cpu_count()
    cpus_usable: int  # the CPUs this process was allowed to run on (its affinity)
    load_avg: tuple[float, float, float]  # 1, 5 and 15 min load averages when the runs ended
    torch_version: str  # '' where torch is not installed
    device: str  # where the model ran ('cpu', 'cuda:0 (NVIDIA H200)'); '' where no model ran here
    cpu_model: str = ""

    @classmethod
    def now(cls, device: str) -> Machine:
        """This machine as it is now; ``device``: where the model ran (see :func:`device_of`)."""
        cpus = os.cpu_count() or 0
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
        load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan, math.nan, math.nan)
        return cls(cpus, usable, tuple(load), _version("torch"), device, _cpu_model())


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def _cpu_model() -> str:
    """The CPU's name: /proc/cpuinfo's on Linux (platform.processor() is often empty there)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor()


def device_of(agent: object) -> str:
    """Where ``agent`` runs: its torch device (with the GPU's name), or 'cpu' for an agent without one."""
    device = str(getattr(agent, "device", "cpu"))
    if device.startswith("cuda"):
        import torch  # only here: a CUDA agent has loaded it already

        return f"{device} ({torch.cuda.get_device_name(device)})"
    return device


@dataclass
class EpisodeResult:
    """One seeded episode of one executor. Ages and intervals are in world frames in both time modes
    (real time: wall seconds divided by the world's frame period)."""

    seed: int
    success: bool
    frames: int
    success_frame: int | None
    tracking_error: float
    decisions: int
    ages_frames: list[float]  # observation age at actuation, per decision
    intervals_frames: list[float]  # between consecutive decisions
    actions: list[list[float]] = field(default_factory=list)


@dataclass
class ConfigResult:
    """One executor over every episode: success against SEQ on the same seeds, ages, throughput."""

    spec: str  # ExecutorSpec text form
    episodes: int
    success_rate: float
    success_ci: tuple[float, float]
    ratio_to_seq: float
    ratio_ci: tuple[float, float]
    decisions_per_frame: float
    age_p50_frames: float
    age_p99_frames: float
    age_p50_s: float
    age_p99_s: float
    interval_cv: float
    mean_time_to_success: float  # frames, over successful episodes
    tracking_error: float
    decisions_per_s: float = math.nan  # wall clock, measured
    throughput_vs_seq: float = math.nan
    successes: list[bool] = field(default_factory=list)
    ages_frames: list[float] = field(default_factory=list)

    @property
    def executor(self) -> ExecutorSpec:
        return ExecutorSpec.parse(self.spec)

    @property
    def name(self) -> str:
        return self.spec

    @property
    def kind(self) -> str:
        return self.executor.kind

    @property
    def in_flight(self) -> int:
        return self.executor.in_flight


@dataclass
class Evaluation:
    """A frame-stepped evaluation: every executor on the same seeds, SEQ first."""

    policy: str
    task: dict
    seeds: list[int]
    chunk_rows: int
    threads: int
    results: list[ConfigResult]
    machine: Machine | None = None  # None in JSON written before machines were recorded
    chunk_timing: str = "arrival"  # eval.actuation.TIMINGS: where each chunk's rows start


@dataclass
class RealTimeEpisode:
    episode: EpisodeResult
    wall_s: float
    overruns: int  # world ticks the renderer could not keep
    chunks: ChunkMetrics | None = None  # seams, jerk and reaction of the played commands


@dataclass
class RealTimeResult:
    config: ConfigResult  # success, % of SEQ, ages (world frames and wall s), interval CV
    decisions_per_s: float
    decisions_per_s_ci: tuple[float, float]
    decisions_vs_seq: float  # paired: mean over seeds of (ours / SEQ) decisions/s
    overruns_per_episode: float
    wall_s: float
    per_episode_decisions_per_s: list[float] = field(default_factory=list)
    chunks: ChunkSummary | None = None  # seams, jerk, reaction (None in JSON written before they were measured)


@dataclass
class RealTimeEvaluation:
    policy: str
    task: dict
    speed: float
    world_period_s: float
    seq_latency_ms: dict
    seeds: list[int]
    chunk_rows: int
    threads: int
    results: list[RealTimeResult]
    machine: Machine | None = None  # None in JSON written before machines were recorded
    chunk_timing: str = "arrival"  # eval.actuation.TIMINGS: where each chunk's rows start
    overlap: str = "replace"  # core.chunks.OVERLAPS: how a new chunk joins the one playing


def summarize(spec: ExecutorSpec, results: Sequence[EpisodeResult], seq: Sequence[EpisodeResult] | None,
              period: float) -> ConfigResult:
    """One executor's episodes against SEQ's on the same seeds; ``period``: seconds per world frame."""
    successes = [r.success for r in results]
    n, k = len(results), sum(successes)
    ages = [a for r in results for a in r.ages_frames]
    intervals = [i for r in results for i in r.intervals_frames]
    seq_rate = mean([r.success for r in seq]) if seq else math.nan
    success_rate = k / n if n else math.nan
    return ConfigResult(
        spec=spec.name, episodes=n, success_rate=success_rate, success_ci=wilson(k, n),
        ratio_to_seq=success_rate / seq_rate if seq_rate else math.nan,
        ratio_ci=paired_ratio_ci(successes, [r.success for r in seq]) if seq else (math.nan, math.nan),
        decisions_per_frame=sum(r.decisions for r in results) / max(1, sum(r.frames for r in results)),
        age_p50_frames=percentile(ages, 50), age_p99_frames=percentile(ages, 99),
        age_p50_s=percentile(ages, 50) * period, age_p99_s=percentile(ages, 99) * period,
        interval_cv=cv(intervals),
        mean_time_to_success=mean([r.success_frame for r in results if r.success_frame is not None]),
        tracking_error=mean([r.tracking_error for r in results]),
        successes=successes, ages_frames=ages,
    )


def summarize_realtime(spec: ExecutorSpec, runs: Sequence[RealTimeEpisode], seq: Sequence[RealTimeEpisode],
                       period: float) -> RealTimeResult:
    """One executor's real-time episodes against SEQ's on the same seeds (in the same order):
    decisions/s is the mean of per-episode rates, x SEQ the mean of per-seed ratios."""
    config = summarize(spec, [r.episode for r in runs], [r.episode for r in seq], period)
    rates = [r.episode.decisions / r.wall_s for r in runs]
    seq_rates = [r.episode.decisions / r.wall_s for r in seq]
    config.decisions_per_s = mean(rates)
    config.throughput_vs_seq = mean([a / b for a, b in zip(rates, seq_rates, strict=False) if b > 0])
    return RealTimeResult(config, config.decisions_per_s, bootstrap_mean_ci(rates), config.throughput_vs_seq,
                          mean([r.overruns for r in runs]), mean([r.wall_s for r in runs]), rates,
                          chunk_summary(runs))


def chunk_summary(runs: Sequence[RealTimeEpisode]) -> ChunkSummary | None:
    """The chunk measurements of ``runs`` (None when an episode was not measured)."""
    metrics = [r.chunks for r in runs]
    if any(m is None for m in metrics):
        return None
    return ChunkSummary.of([r.episode.success for r in runs], [r.episode.success_frame for r in runs],
                           [m for m in metrics if m is not None])


def headline(evaluation: Evaluation, min_ratio: float = 1.0) -> ConfigResult | None:
    """The Auras configuration with the most wall throughput among those keeping ≥ min_ratio of SEQ."""
    ok = [r for r in evaluation.results if r.kind == "auras" and r.ratio_to_seq >= min_ratio]
    return max(ok, key=lambda r: r.decisions_per_s if not math.isnan(r.decisions_per_s) else r.decisions_per_frame,
               default=None)


def write_json(path: Path, evaluation: Any, strict: bool = False) -> None:
    """An evaluation (any dataclass) as indented JSON, creating the folder. ``strict``: for files other
    tools read and nothing loads back, strict JSON (NaN and infinity, a statistic of nothing, become
    null) with sorted keys; otherwise NaN stays NaN, so the load functions below get it back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(evaluation)
    write_text_atomically(path, json.dumps(_strict(data), indent=1, sort_keys=True) if strict else json.dumps(data, indent=1))


def _strict(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _config_result(data: dict) -> ConfigResult:
    return ConfigResult(**{**data, "success_ci": tuple(data["success_ci"]), "ratio_ci": tuple(data["ratio_ci"])})


def _machine(data: dict | None) -> Machine | None:
    return None if data is None else Machine(**{**data, "load_avg": tuple(data["load_avg"])})


def load_evaluation(path: Path) -> Evaluation:
    """An :class:`Evaluation` back from the JSON that :func:`write_json` wrote."""
    data = json.loads(Path(path).read_text())
    return Evaluation(**{**data, "results": [_config_result(r) for r in data["results"]],
                         "machine": _machine(data.get("machine"))})


def _chunk_summary(data: dict | None) -> ChunkSummary | None:
    return None if data is None else ChunkSummary(**{**data, "success_ci": tuple(data["success_ci"])})


def load_realtime(path: Path) -> RealTimeEvaluation:
    """A :class:`RealTimeEvaluation` back from the JSON that :func:`write_json` wrote."""
    data = json.loads(Path(path).read_text())
    results = [RealTimeResult(**{**r, "config": _config_result(r["config"]),
                                 "decisions_per_s_ci": tuple(r["decisions_per_s_ci"]),
                                 "chunks": _chunk_summary(r.get("chunks"))}) for r in data["results"]]
    return RealTimeEvaluation(**{**data, "results": results, "machine": _machine(data.get("machine"))})
