"""One fixed sample of each auras_ros interface, shared by the roundtrip talker, listener and tests.

The samples are deterministic (fixed stamps and payloads), so a receiver can check that what
arrived equals what was sent, field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from builtin_interfaces.msg import Duration, Time
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from auras_ros.msg import (
    AgentAction,
    ContextEntry,
    ContextState,
    Percept,
    PipelineStats,
    TensorPayload,
)

_SENSOR_STAMP = Time(sec=1_700_000_000, nanosec=250_000_000)
_DECISION_STAMP = Time(sec=1_700_000_000, nanosec=400_000_000)


def inline_tensor(shape: list[int], fill: int) -> TensorPayload:
    """A float32 tensor of `shape` carried inline, bytes counting up from `fill`."""
    nbytes = 4
    for dim in shape:
        nbytes *= dim
    data = [(fill + i) % 256 for i in range(nbytes)]
    return TensorPayload(
        dtype="float32",
        shape=shape,
        transport=TensorPayload.INLINE,
        data=data,
        nbytes=nbytes,
    )


def percept() -> Percept:
    return Percept(
        header=Header(stamp=_SENSOR_STAMP, frame_id="camera_color_optical_frame"),
        observation_seq=7,
        key="vision",
        frame=3,
        perception_latency=Duration(sec=0, nanosec=12_500_000),
        tensor=inline_tensor([1, 4, 8], fill=1),
    )


def context_state() -> ContextState:
    vision = ContextEntry(
        key="vision",
        stamp=_SENSOR_STAMP,
        observation_seq=7,
        age=Duration(sec=0, nanosec=50_000_000),
        max_age=Duration(sec=0, nanosec=100_000_000),
        policy="max_age",
        verdict=ContextEntry.VERDICT_FRESH,
        value=inline_tensor([1, 4, 8], fill=1),
    )
    instruction = ContextEntry(
        key="instruction",
        stamp=Time(sec=1_699_999_990, nanosec=0),
        observation_seq=1,
        age=Duration(sec=10, nanosec=300_000_000),
        policy="latest",
        verdict=ContextEntry.VERDICT_STALE,
        value=TensorPayload(
            dtype="int64",
            shape=[5],
            transport=TensorPayload.SHM,
            shm_name="auras_instruction",
            shm_offset=4096,
            nbytes=40,
        ),
    )
    joints = ContextEntry(key="joint_states", policy="max_age", verdict=ContextEntry.VERDICT_MISSING)
    return ContextState(
        header=Header(stamp=Time(sec=1_700_000_000, nanosec=300_000_000)),
        frame=4,
        version=12,
        entries=[vision, instruction, joints],
    )


def agent_action() -> AgentAction:
    return AgentAction(
        header=Header(stamp=_DECISION_STAMP, frame_id="base_link"),
        observation_stamp=_SENSOR_STAMP,
        observation_seq=7,
        observation_age=Duration(sec=0, nanosec=150_000_000),
        request_id=42,
        source_id=0x5EED_0F_A11CE5,
        pipeline_slot=1,
        frame=5,
        action=[0.01, -0.02, 0.03, 0.0, 0.1, -0.1, 1.0],
        action_tokens=[31872, 31744, 31900, 31850, 31799, 31801, 31744],
        context_stamps=[_SENSOR_STAMP, Time(sec=1_700_000_000, nanosec=283_333_333)],
    )


def pipeline_stats() -> PipelineStats:
    return PipelineStats(
        header=Header(stamp=_DECISION_STAMP),
        window_s=5.0,
        mode="auras",
        pp_perception=1,
        pp_generation=2,
        fetch_offset=-1,
        frames=150,
        decisions=148,
        decisions_per_s=29.6,
        decision_interval_mean_s=0.0338,
        decision_interval_cv=0.05,
        decision_interval_p99_s=0.041,
        observation_age_p50_s=0.09,
        observation_age_p99_s=0.12,
        stage_names=["vision_encoder", "projector", "decode"],
        stage_latency_p50_s=[0.011, 0.002, 0.030],
        stage_latency_p99_s=[0.015, 0.003, 0.036],
        requests_in_flight=3,
        max_requests_in_flight=3,
        drop_reasons=["stale", "queue_full"],
        drop_counts=[2, 0],
        cancels=1,
    )


@dataclass(frozen=True)
class Sample:
    """How one interface travels in the roundtrip: its topic, type and reference message."""

    topic: str
    msg_type: type
    make: Callable[[], Any]
    describe: Callable[[Any], str]


def _describe_tensor(t: TensorPayload) -> str:
    transport = {TensorPayload.INLINE: "inline", TensorPayload.SHM: "shm", TensorPayload.IN_PROCESS: "in-process"}
    shape = "x".join(str(d) for d in t.shape)
    return f"{t.dtype}[{shape}] {transport.get(t.transport, '?')} {t.nbytes} B"


SAMPLES: dict[str, Sample] = {
    "Percept": Sample(
        "/auras/percept",
        Percept,
        percept,
        lambda m: f"key={m.key} seq={m.observation_seq} frame={m.frame} tensor={_describe_tensor(m.tensor)}",
    ),
    "ContextState": Sample(
        "/auras/context",
        ContextState,
        context_state,
        lambda m: f"frame={m.frame} version={m.version} keys={[e.key for e in m.entries]}",
    ),
    "AgentAction": Sample(
        "/auras/action",
        AgentAction,
        agent_action,
        lambda m: f"request={m.request_id} slot={m.pipeline_slot} action={list(m.action)} "
        f"observation_age={m.observation_age.sec + m.observation_age.nanosec * 1e-9:.3f}s",
    ),
    "PipelineStats": Sample(
        "/auras/pipeline_stats",
        PipelineStats,
        pipeline_stats,
        lambda m: f"mode={m.mode} L={m.max_requests_in_flight} decisions/s={m.decisions_per_s} "
        f"stages={list(m.stage_names)}",
    ),
}

# Reliable and transient-local: a sample published before the listener's reader matched still
# reaches it, and the talker can wait until every reader acknowledged it.
ROUNDTRIP_QOS = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def declare_roundtrip_parameters(node: Node) -> tuple[dict[str, Sample], float]:
    """Declare the talker's and listener's shared parameters; return (samples, timeout_s)."""
    names: list[str] = node.declare_parameter("interfaces", list(SAMPLES)).value
    timeout_s: float = node.declare_parameter("timeout_s", 20.0).value
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        raise ValueError(f"unknown interfaces {unknown}; known: {list(SAMPLES)}")
    return {n: SAMPLES[n] for n in names}, timeout_s
