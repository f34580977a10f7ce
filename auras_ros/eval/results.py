"""Evaluation results: per-episode records, their summary per executor, and their JSON form.

Every result names its executor by the canonical text of :class:`auras_ros.core.spec.ExecutorSpec`
(``seq``, ``par:3``, ``auras:1+5:f0:a0``), the same text the CLIs take and the tables print.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stats import bootstrap_mean_ci, cv, mean, paired_ratio_ci, percentile, wilson


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
    execute_rows: int
    threads: int
    results: list[ConfigResult]


@dataclass
class RealTimeEpisode:
    episode: EpisodeResult
    wall_s: float
    overruns: int  # world ticks the renderer could not keep


@dataclass
class RealTimeResult:
    config: ConfigResult  # success, % of SEQ, ages (world frames and wall s), interval CV
    decisions_per_s: float
    decisions_per_s_ci: tuple[float, float]
    decisions_vs_seq: float  # paired: mean over seeds of (ours / SEQ) decisions/s
    overruns_per_episode: float
    wall_s: float
    per_episode_decisions_per_s: list[float] = field(default_factory=list)


@dataclass
class RealTimeEvaluation:
    policy: str
    task: dict
    speed: float
    world_period_s: float
    seq_latency_ms: dict
    seeds: list[int]
    execute_rows: int
    threads: int
    results: list[RealTimeResult]


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
    config.throughput_vs_seq = mean([a / b for a, b in zip(rates, seq_rates) if b > 0])
    return RealTimeResult(config, config.decisions_per_s, bootstrap_mean_ci(rates), config.throughput_vs_seq,
                          mean([r.overruns for r in runs]), mean([r.wall_s for r in runs]), rates)


def headline(evaluation: Evaluation, min_ratio: float = 1.0) -> ConfigResult | None:
    """The Auras configuration with the most wall throughput among those keeping ≥ min_ratio of SEQ."""
    ok = [r for r in evaluation.results if r.kind == "auras" and r.ratio_to_seq >= min_ratio]
    return max(ok, key=lambda r: r.decisions_per_s if not math.isnan(r.decisions_per_s) else r.decisions_per_frame,
               default=None)


def write_json(path: Path, evaluation: Any) -> None:
    """An evaluation (any of the dataclasses above) as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(evaluation), indent=1))


def _config_result(data: dict) -> ConfigResult:
    return ConfigResult(**{**data, "success_ci": tuple(data["success_ci"]), "ratio_ci": tuple(data["ratio_ci"])})


def load_evaluation(path: Path) -> Evaluation:
    """An :class:`Evaluation` back from the JSON that :func:`write_json` wrote."""
    data = json.loads(Path(path).read_text())
    return Evaluation(**{**data, "results": [_config_result(r) for r in data["results"]]})


def load_realtime(path: Path) -> RealTimeEvaluation:
    """A :class:`RealTimeEvaluation` back from the JSON that :func:`write_json` wrote."""
    data = json.loads(Path(path).read_text())
    results = [RealTimeResult(**{**r, "config": _config_result(r["config"]),
                                 "decisions_per_s_ci": tuple(r["decisions_per_s_ci"])}) for r in data["results"]]
    return RealTimeEvaluation(**{**data, "results": results})
