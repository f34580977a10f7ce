"""context_node: holds the public context — timestamped world state with a staleness policy per key —
and publishes it as ContextState whenever a key changes, plus /diagnostics once a second.

One producer per key (:class:`auras_ros.core.sources.SourceFence`): a key's percepts come from one
perception run (``Percept.source_id``); another one is refused while that one is alive, counted, and
/diagnostics says ERROR naming both; more than ``max_write_rate`` writes per second of a key are refused
as a flood. Changes of a ``cancels_in_flight`` key (an instruction) are coalesced to at most one per
``change_interval`` (the newest lands), so a stream of changes cannot cancel every request."""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType, JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from auras_ros.core.cpu_costs import CpuLedger
from auras_ros.core.context import (ContextRead, PublicContext, SourceOrder, StaleContextError, Verdict,
                                     max_age_to_seconds)
from auras_ros.core.errors import InputError
from auras_ros.core.sources import ADMITTED, Coalescer, SourceFence, new_source_id
from auras_ros.msg import ContextEntry, ContextState, Percept
from auras_ros.nodes.context_keys import FUTURE_TOLERANCE, ContextKey, declare_context_keys
from auras_ros.nodes.health import ERROR, OK, Health, Status
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.payload import PayloadCodec, transport_params
from auras_ros.nodes.qos import LATCHED, LATEST_RELIABLE, ORDERED
from auras_ros.nodes.ros_clock import RosClock
from auras_ros.nodes.ros_convert import to_duration, to_seconds, to_time
from auras_ros.nodes.process import run_node
from auras_ros.core import topics

VERDICTS = {Verdict.FRESH: ContextEntry.VERDICT_FRESH, Verdict.STALE_HELD: ContextEntry.VERDICT_STALE,
            Verdict.DROPPED: ContextEntry.VERDICT_REJECTED, Verdict.WAIT_TIMEOUT: ContextEntry.VERDICT_REJECTED,
            Verdict.MISSING: ContextEntry.VERDICT_MISSING}
CONFLICT_REPORT_S = 5.0  # a second producer refused within this many seconds keeps /diagnostics at ERROR
COALESCE_CHECK_S = 0.02  # wall seconds between checks for a held change that is due
MESSAGE_TYPES = {"percept": Percept, "string": String, "joint_state": JointState}

PARAMS = (
    FUTURE_TOLERANCE,
    Param("diagnostics_period", 1.0, "seconds between /diagnostics reports", low=0.1, high=3600.0),
    Param("source_takeover", 0.5, "wall seconds a key's perception run must be silent before another run is taken",
          low=0.01, high=3600.0),
    Param("max_write_rate", 200.0, "writes per second taken per key; more are refused as a flood (0: no limit)",
          low=0.0, high=1e6),
    Param("change_interval", 0.5, "wall seconds: a cancels_in_flight key (an instruction) changes at most once "
          "per interval, the newest change held until then (0: every change at once)", low=0.0, high=3600.0),
    *transport_params(),
)


class ContextNode(Node):
    def __init__(self, registry: Any = None, delivery: LocalDelivery | None = None, cpu: CpuLedger | None = None,
                 **kwargs: Any) -> None:
        """``cpu``: the ledger of CPU per hop (core/cpu_costs.py) this node adds to; the composed process's
        nodes share one."""
        super().__init__("context_node", **kwargs)
        self.cpu = cpu if cpu is not None else CpuLedger()
        self.params = declare(self, PARAMS)
        self.keys = declare_context_keys(self)
        self.clock = RosClock(self)
        self.public_context = PublicContext([k.spec for k in self.keys], self.clock)
        self.codec = PayloadCodec(self.params, registry)
        self.rejected: Counter[str] = Counter()
        self.stale_reads: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.version = 0
        self.source_id = new_source_id()  # the run of the values this node senses itself (text, joints)
        self._orders = self._new_orders()
        self._sources: dict[str, int] = {}  # key -> source_id of its newest entry
        p = self.params
        self._fences = {k.spec.key: SourceFence(f"context_node key {k.spec.key!r} on {k.topic}", p["source_takeover"],
                                                p["max_write_rate"]) for k in self.keys}
        self._coalescers = {k.spec.key: Coalescer(p["change_interval"]) for k in self.keys if k.spec.cancels_in_flight}
        self.context_group = MutuallyExclusiveCallbackGroup()  # the context writes and snapshots, in its executor
        # The same, for writes delivered in the publisher's thread (a same-process perception node).
        self._context_lock = threading.Lock()
        delivery = delivery if delivery is not None else LocalDelivery()
        self.publisher = delivery.publisher(self, ContextState, topics.CONTEXT, LATCHED)
        self.diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", ORDERED)
        for key in self.keys:
            delivery.subscription(self, MESSAGE_TYPES[key.type], key.topic,
                                  lambda msg, key=key: self._on_message(key, msg), LATEST_RELIABLE,
                                  callback_group=self.context_group, inline=True)
        self.create_timer(self.params["diagnostics_period"], self._publish_diagnostics,
                          callback_group=self.context_group)
        self.health = Health(self, self._health, self.params["diagnostics_period"], callback_group=self.context_group)
        if self._coalescers:
            # Wall time: a held change must land even while a simulated clock stands still.
            self.create_timer(COALESCE_CHECK_S, self._release_held, callback_group=self.context_group,
                              clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.clock_jumps = 0
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1), on_clock_change=False),
            post_callback=self._on_clock_back)

    def _new_orders(self) -> dict[str, SourceOrder]:
        """Each key's source ordering from scratch (at start; a clock jump back starts a new timeline)."""
        return {k.spec.key: SourceOrder(self.params["future_tolerance"]) for k in self.keys}
    def _on_clock_back(self, jump: TimeJump) -> None:
        """The clock went back (a bag loop, a simulator reset): every value held was sensed in a future
        that will not come, and would read as fresh for as long as the jump; each source's order starts
        again on the new timeline."""
        with self._context_lock:
            self.clock_jumps += 1
            for key in self.keys:
                self.public_context.clear(key.spec.key)
            self._orders = self._new_orders()
            self._sources.clear()
            self.version += 1
            self.publisher.publish(self._snapshot())
        self.get_logger().warning(f"clock jumped back {-jump.delta.nanoseconds * 1e-9:.3f} s: the public context "
                                  f"was cleared (clock jumps so far: {self.clock_jumps})", throttle_duration_sec=1.0)

    def _on_message(self, key: ContextKey, msg: Any) -> None:
        with self.cpu.hop(f"context update ({key.type})"), self._context_lock:
            coalescer = self._coalescers.get(key.spec.key)
            for item in coalescer.offer(msg, time.monotonic()) if coalescer is not None else (msg,):
                self._write(key, item)

    def _release_held(self) -> None:
        with self._context_lock:
            for key in self.keys:
                coalescer = self._coalescers.get(key.spec.key)
                for item in coalescer.due(time.monotonic()) if coalescer is not None else ():
                    self._write(key, item)

    def _write(self, key: ContextKey, msg: Any) -> None:
        where = f"context_node key {key.spec.key!r} on {key.topic}"
        try:
            value, stamp, seq, source = self._value_of(key, msg, where)
            fence = self._fences[key.spec.key]
            admitted = fence.admit(source, time.monotonic())
            if admitted != ADMITTED:
                self.rejected[f"{key.spec.key}:{admitted}"] += 1
                self.get_logger().warning(f"{where}: refused ({admitted}) a write of source {source:#x}: "
                                          + fence.refusal(admitted, time.monotonic(), "writes"), throttle_duration_sec=2.0)
                return
            if self._orders[key.spec.key].admit(source, seq, stamp, self.clock.now(), where):
                self.get_logger().info(f"{where}: a new source run (restarted publisher), ordering restarts",
                                       throttle_duration_sec=2.0)
        except InputError as error:
            self.rejected[f"{key.spec.key}:{error.what}"] += 1
            self.get_logger().warning(f"rejected: {error}", throttle_duration_sec=2.0)
            return
        self.public_context.write(key.spec.key, value, stamp=stamp, seq=seq)
        self._sources[key.spec.key] = source
        self.writes[key.spec.key] += 1
        self.version += 1
        self.publisher.publish(self._snapshot())

    def _value_of(self, key: ContextKey, msg: Any, where: str) -> tuple[Any, float, int, int]:
        if key.type == "percept":
            if msg.key != key.spec.key:
                raise InputError("percept key", where, repr(key.spec.key), msg.key)
            # Forwarded as it came (a handle stays a handle): the context node never needs the tensor.
            return msg.tensor, to_seconds(msg.header.stamp), msg.observation_seq, msg.source_id
        if key.type == "joint_state":
            positions = [float(p) for p in msg.position]
            if not all(math.isfinite(p) for p in positions):
                raise InputError("joint positions", where, "finite numbers", positions)
            return positions, to_seconds(msg.header.stamp), self.writes[key.spec.key], self.source_id
        # Plain text carries no header: it is sensed when it arrives.
        return msg.data, self.clock.now(), self.writes[key.spec.key], self.source_id

    def _read(self, key: str) -> ContextRead:
        try:
            read = self.public_context.read(key, block=False)  # a wait policy blocks generation, never this thread
        except StaleContextError:
            history = self.public_context.history(key)
            read = ContextRead(key, None, self.clock.now() - history[-1].stamp, Verdict.DROPPED)
        if read.stale and read.verdict is not Verdict.MISSING:
            self.stale_reads[key] += 1
        return read

    def _snapshot(self) -> ContextState:
        now = self.clock.now()  # once: every entry's age against the same instant
        msg = ContextState()
        msg.header.stamp = to_time(now)
        msg.frame = self.public_context.frame
        msg.version = self.version
        for key in self.keys:
            read = self._read(key.spec.key)
            entry = ContextEntry()
            entry.key = key.spec.key
            entry.policy = key.spec.policy.value
            entry.verdict = VERDICTS[read.verdict]
            entry.max_age = to_duration(max_age_to_seconds(key.spec.max_age))
            latest = self.public_context.history(key.spec.key)
            if latest:
                entry.stamp = to_time(latest[-1].stamp)
                entry.observation_seq = latest[-1].seq
                entry.source_id = self._sources[key.spec.key]
                entry.age = to_duration(max(now - latest[-1].stamp, 0.0))
            if read.entry is not None:
                value = read.entry.value
                if key.type == "percept":
                    entry.value = value
                else:
                    self.codec.encode(value if isinstance(value, str) else _as_tensor(value), entry.value)
            msg.entries.append(entry)
        return msg

    def _publish_diagnostics(self) -> None:
        with self._context_lock:
            array = self._diagnostics()
        self.diagnostics.publish(array)

    def _diagnostics(self) -> DiagnosticArray:
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        for key in self.keys:
            read = self._read(key.spec.key)
            status = DiagnosticStatus(name=f"auras_ros/context/{key.spec.key}", hardware_id=self.get_name())
            optional_missing = read.verdict == Verdict.MISSING and not key.required
            status.level = {Verdict.FRESH: DiagnosticStatus.OK, Verdict.STALE_HELD: DiagnosticStatus.WARN}.get(
                read.verdict, DiagnosticStatus.WARN if optional_missing else DiagnosticStatus.ERROR)
            status.message = read.verdict.value
            status.values = [KeyValue(key=k, value=str(v)) for k, v in (
                ("age_s", "none" if read.age is None else f"{read.age:.6f}"), ("max_age_s", key.spec.max_age),
                ("policy", key.spec.policy.value), ("writes", self.writes[key.spec.key]),
                ("stale_reads", self.stale_reads[key.spec.key]),
                ("rejected", sum(n for r, n in self.rejected.items() if r.startswith(f"{key.spec.key}:"))))]
            array.status.append(status)
        return array

    def _health(self) -> Status:
        with self._context_lock:
            values = {"writes": sum(self.writes.values()), "rejected": sum(self.rejected.values()),
                      "coalesced": sum(c.coalesced for c in self._coalescers.values())}
            conflicts = [c for c in (f.conflict(time.monotonic(), CONFLICT_REPORT_S) for f in self._fences.values()) if c]
            if conflicts:
                return Status(ERROR, "; ".join(conflicts), values)
            return Status(OK, "holding the public context", values)

    def destroy_node(self) -> None:
        self.codec.close()
        super().destroy_node()


def _as_tensor(value: Any) -> Any:
    import torch
    return torch.as_tensor(value, dtype=torch.float64)


def main(args: list[str] | None = None) -> int:
    return run_node(ContextNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
