"""Conversions between ROS messages and the core's plain types. Validation of what arrives on a topic
lives here too, so that every node rejects bad input the same way (InputError naming the problem)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import Image

from auras_ros.core.metrics import Decision, RunMetrics
from auras_ros.core.stages import AgentOutput
from auras_ros.msg import AgentAction, PipelineStats


def to_seconds(stamp: Time | Duration) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _split(seconds: float) -> tuple[int, int]:
    total = round(seconds * 1e9)
    return total // 1_000_000_000, total % 1_000_000_000


def to_time(seconds: float) -> Time:
    sec, nanosec = _split(seconds)
    return Time(sec=sec, nanosec=nanosec)


def to_duration(seconds: float) -> Duration:
    sec, nanosec = _split(seconds)
    return Duration(sec=sec, nanosec=nanosec)


def rgb_to_image(pixels: np.ndarray, stamp: Time, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    return msg


def decision_to_action(decision: Decision, frame_id: str, source_id: int) -> AgentAction:
    """The AgentAction of ``decision``, from the generation run ``source_id`` (see ``new_source_id``)."""
    msg = AgentAction()
    msg.header.stamp = to_time(decision.decision_time)
    msg.header.frame_id = frame_id
    msg.observation_stamp = to_time(decision.observation_stamp)
    msg.observation_seq = max(decision.observation_seq, 0)
    msg.observation_age = to_duration(max(decision.age, 0.0))
    msg.request_id = decision.request_id
    msg.source_id = source_id
    msg.pipeline_slot = decision.slot
    msg.frame = decision.frame % 2**32
    msg.action = [float(v) for v in np.asarray(decision.output.action, dtype=np.float64).ravel()]
    msg.action_tokens = [int(t) for t in decision.output.tokens]
    msg.context_stamps = [to_time(s) for s in decision.context_stamps]
    return msg


def action_to_decision(msg: AgentAction, decided: float) -> Decision:
    """The decision an AgentAction carries, as a receiver sees it: ``decided`` is when it arrived."""
    output = AgentOutput(np.asarray(msg.action, dtype=np.float64), tuple(int(t) for t in msg.action_tokens))
    return Decision(msg.request_id, output, msg.observation_seq, to_seconds(msg.observation_stamp),
                    tuple(to_seconds(s) for s in msg.context_stamps), decided, msg.frame, msg.pipeline_slot)


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def metrics_to_stats(metrics: RunMetrics, *, stamp: Time, mode: str, pp_perception: int, pp_generation: int,
                     fetch_offset: int, frames: int, in_flight: int) -> PipelineStats:
    msg = PipelineStats()
    msg.header.stamp = stamp
    msg.window_s = _finite(metrics.duration)
    msg.mode = mode
    msg.pp_perception, msg.pp_generation, msg.fetch_offset = pp_perception, pp_generation, fetch_offset
    msg.frames = frames
    msg.decisions_per_s = _finite(metrics.decisions_per_s)
    msg.decision_interval_mean_s = _finite(metrics.interval_mean)
    msg.decision_interval_cv = _finite(metrics.interval_cv)
    msg.decision_interval_p99_s = _finite(metrics.interval_p99)
    msg.observation_age_p50_s = _finite(metrics.age_p50)
    msg.observation_age_p99_s = _finite(metrics.age_p99)
    names = sorted(metrics.stage_latency)
    msg.stage_names = names
    msg.stage_latency_p50_s = [_finite(metrics.stage_latency[n].p50) for n in names]
    msg.stage_latency_p99_s = [_finite(metrics.stage_latency[n].p99) for n in names]
    msg.requests_in_flight = in_flight
    msg.max_requests_in_flight = pp_perception + pp_generation
    reasons = sorted(metrics.drops)
    msg.drop_reasons = reasons
    msg.drop_counts = [int(metrics.drops[r]) for r in reasons]
    msg.cancels = int(sum(metrics.cancels.values()))
    return msg


def add_drops(counts: Counter[str], msg: PipelineStats, prefix: str = "") -> None:
    """Adds a stats window's drops to ``counts``, by ``prefix + reason``: each window counts only its own
    drops, so the sum over windows is the run's."""
    for reason, count in zip(msg.drop_reasons, msg.drop_counts, strict=False):
        counts[prefix + reason] += count
