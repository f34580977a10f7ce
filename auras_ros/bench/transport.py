"""One hop of a tensor between two ROS 2 processes: inline bytes vs shared memory, side by side.

    python -m auras_ros.bench.transport [--count 200] [--rate 50] [--shape 576 4096] [--json]

For each transport, a publisher process and a subscriber process on a private ROS_DOMAIN_ID
(localhost discovery) exchange auras_ros/Percept messages carrying a bfloat16 tensor
(576x4096 = 4.7 MB by default: LLaVA-style vision tokens). Latency runs from before pack() in the
publisher to after unpack() in the subscriber (a tensor in its hands), on CLOCK_MONOTONIC, which
both processes share; the stamp travels in header.stamp. With shm, DDS carries only the small
payload message. Both cases run under config/fastdds_shm_profile.xml (Fast DDS's own shared-memory
transport with a 32 MB segment), so inline is measured at its best on one host. The subscriber
checks every tensor bit for bit and counts overwritten slots as drops.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch

from auras_ros.transport import PayloadUnavailable, TRANSPORTS, make_transport
from auras_ros.transport.payload import TRANSPORT_NAMES

TOPIC = "/auras_bench/tensor"
_WARMUP = 10
_REPO = Path(__file__).resolve().parents[2]


def profile_path() -> str:
    """The Fast DDS profile of this source tree, else the installed one."""
    local = _REPO / "config" / "fastdds_shm_profile.xml"
    if local.exists():
        return str(local)
    from ament_index_python.packages import get_package_share_directory

    return os.path.join(get_package_share_directory("auras_ros"), "config", "fastdds_shm_profile.xml")


def sample_tensor(shape: tuple[int, ...], seq: int) -> torch.Tensor:
    """The tensor of message seq: fixed random values with seq written into the first element's bits."""
    tensor = torch.randn(shape, generator=torch.Generator().manual_seed(0)).bfloat16()
    return mark(tensor, seq)


def mark(tensor: torch.Tensor, seq: int) -> torch.Tensor:
    tensor.reshape(-1).view(torch.int16)[0] = seq % 32768
    return tensor


def _qos():
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)


def publisher(transports: list[str], shape: tuple[int, ...], rate_hz: float, slot_count: int) -> int:
    """Publish at rate_hz until SIGINT, cycling through the given transports message by message."""
    from rclpy.node import Node

    from auras_ros.msg import Percept
    from auras_ros.nodes.process import run_node

    tensor = sample_tensor(shape, 0)
    nbytes = tensor.numel() * tensor.element_size()

    class TensorPublisher(Node):
        def __init__(self) -> None:
            super().__init__("transport_bench_pub")
            self.transports = [make_transport(t, slot_count=slot_count, slot_bytes=nbytes) for t in transports]
            self.pub = self.create_publisher(Percept, TOPIC, _qos())
            self.seq = 0
            self.timer = self.create_timer(1.0 / rate_hz, self.tick)

        def tick(self) -> None:
            if self.pub.get_subscription_count() == 0:
                return
            msg = Percept()
            msg.observation_seq = self.seq
            msg.key = "vision"
            mark(tensor, self.seq)
            start = time.monotonic_ns()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(start, 1_000_000_000)
            self.transports[self.seq % len(self.transports)].pack(tensor, msg.tensor)
            self.pub.publish(msg)
            self.seq += 1

        def destroy_node(self) -> None:
            for t in self.transports:
                t.close()
            super().destroy_node()

    return run_node(TensorPublisher)


def subscriber(count: int, shape: tuple[int, ...], timeout_s: float, out: str) -> int:
    """Receive count messages after a warm-up; write latencies per transport, drops and mismatches to out."""
    from rclpy.node import Node

    from auras_ros.msg import Percept
    from auras_ros.nodes.process import run_node, spin_until

    expected = sample_tensor(shape, 0)

    class TensorSubscriber(Node):
        def __init__(self) -> None:
            super().__init__("transport_bench_sub")
            self.reader = make_transport("inline")  # unpack follows each payload's own transport
            self.seen = 0
            self.latency_ms: dict[str, list[float]] = {}
            self.unpack_ms: dict[str, list[float]] = {}
            self.drops: dict[str, int] = {}
            self.mismatches = 0
            self.create_subscription(Percept, TOPIC, self.on_percept, _qos())

        def on_percept(self, msg: Percept) -> None:
            kind = TRANSPORT_NAMES.get(msg.tensor.transport, str(msg.tensor.transport))
            begin = time.monotonic_ns()
            try:
                tensor = self.reader.unpack(msg.tensor)
            except PayloadUnavailable:
                # Warm-up drops do not count: a reliable reader's backlog at discovery arrives late.
                if self.seen >= _WARMUP:
                    self.drops[kind] = self.drops.get(kind, 0) + 1
                return
            end = time.monotonic_ns()
            self.seen += 1
            if self.seen <= _WARMUP:
                return
            sent = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            self.latency_ms.setdefault(kind, []).append((end - sent) / 1e6)
            self.unpack_ms.setdefault(kind, []).append((end - begin) / 1e6)
            mark(expected, msg.observation_seq)
            if not torch.equal(tensor.view(torch.int16), expected.view(torch.int16)):
                self.mismatches += 1

        def done(self) -> bool:
            return self.seen >= count + _WARMUP

        def destroy_node(self) -> None:
            self.reader.close()
            super().destroy_node()

    def work(node: TensorSubscriber) -> int:
        finished = spin_until(node, node.done, timeout_s)
        Path(out).write_text(json.dumps({
            "received": node.seen - min(node.seen, _WARMUP), "latency_ms": node.latency_ms,
            "unpack_ms": node.unpack_ms, "drops": node.drops, "mismatches": node.mismatches}))
        return 0 if finished else 1

    return run_node(TensorSubscriber, work)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run_hop(transports: list[str], count: int, shape: tuple[int, ...], rate_hz: float,
            slot_count: int = 4, timeout_s: float = 60.0) -> dict:
    """Start subscriber and publisher processes on a private domain; return the subscriber's report.

    The publisher cycles through `transports`; the report's dicts are keyed by transport name.
    """
    from auras_ros.launching import private_ros_env, stop_process

    common = ["--shape", *map(str, shape)]
    with tempfile.TemporaryDirectory() as tmp, private_ros_env() as env:
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = profile_path()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH")) if p)
        out = os.path.join(tmp, "report.json")
        me = [sys.executable, "-m", "auras_ros.bench.transport"]
        sub = subprocess.Popen([*me, "--role", "sub", "--count", str(count), "--timeout", str(timeout_s),
                                "--out", out, *common], env=env)
        pub = subprocess.Popen([*me, "--role", "pub", "--transport", ",".join(transports), "--rate", str(rate_hz),
                                "--slots", str(slot_count), *common], env=env)
        try:
            try:
                sub_rc = sub.wait(timeout=timeout_s + 30)
            except subprocess.TimeoutExpired:
                sub_rc = None
        finally:
            pub_rc = stop_process(pub)
            sub_rc = stop_process(sub) if sub_rc is None else sub_rc
        report = json.loads(Path(out).read_text()) if os.path.exists(out) else {}
    report.update(subscriber_rc=sub_rc, publisher_rc=pub_rc)
    return report


def summarize(transport: str, report: dict) -> dict:
    lat = report.get("latency_ms", {}).get(transport, [])
    unpack = report.get("unpack_ms", {}).get(transport, [])
    row = {"transport": transport, "received": len(lat), "drops": report.get("drops", {}).get(transport, 0),
           "mismatches": report.get("mismatches"), "ok": report.get("subscriber_rc") == 0}
    if lat:
        row.update(p50_ms=percentile(lat, 50), p99_ms=percentile(lat, 99), max_ms=max(lat),
                   unpack_p50_ms=percentile(unpack, 50))
    return row


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="messages measured per transport (after 10 warm-up)")
    parser.add_argument("--rate", type=float, default=50.0, help="publish rate, Hz")
    parser.add_argument("--shape", type=int, nargs="+", default=[576, 4096], help="bfloat16 tensor shape")
    parser.add_argument("--slots", type=int, default=4, help="shared-memory pool slots")
    parser.add_argument("--transports", default="inline,shm", help="compared side by side, comma-separated")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    # The two roles this command starts as child processes.
    parser.add_argument("--role", choices=("pub", "sub"), help=argparse.SUPPRESS)
    parser.add_argument("--transport", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape = tuple(args.shape)
    if args.role == "pub":
        return publisher(args.transport.split(","), shape, args.rate, args.slots)
    if args.role == "sub":
        return subscriber(args.count, shape, args.timeout, args.out)

    transports = args.transports.split(",")
    for t in transports:
        if t not in TRANSPORTS or t == "in_process":
            parser.error(f"--transports: {t!r} is not one of inline, shm (in_process needs one process)")
    nbytes = 2 * int(torch.tensor(shape).prod())
    rows = [summarize(t, run_hop([t], args.count, shape, args.rate, args.slots)) for t in transports]
    if args.json:
        print(json.dumps({"shape": list(shape), "dtype": "bfloat16", "nbytes": nbytes, "rate_hz": args.rate,
                          "fastdds_profile": profile_path(), "rows": rows}, indent=2))
    else:
        print(f"one hop, bfloat16 {list(shape)} ({nbytes / 1e6:.1f} MB), {args.count} messages at {args.rate:g} Hz, "
              "pack→publish→unpack, Fast DDS SHM profile")
        print(f"{'transport':<10} {'recv':>5} {'drops':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'unpack p50':>10}")
        for r in rows:
            if "p50_ms" in r:
                print(f"{r['transport']:<10} {r['received']:>5} {r['drops']:>5} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                      f"{r['max_ms']:>8.2f} {r['unpack_p50_ms']:>10.2f}")
            else:
                print(f"{r['transport']:<10} {r['received']:>5} {r['drops']:>5}  (no messages arrived)")
    bad = [r for r in rows if not r["ok"] or r["mismatches"]]
    for r in bad:
        print(f"FAILED: {r['transport']}: subscriber ok={r['ok']}, mismatched tensors={r['mismatches']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
