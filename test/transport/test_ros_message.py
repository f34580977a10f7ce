"""The transports with the real generated message: through rclpy serialization and between two ROS processes."""

from __future__ import annotations

import pytest
import torch

from auras_ros.transport import HandleRegistry, make_transport

msg = pytest.importorskip("auras_ros.msg", reason="auras_ros.msg is not built: run `make test` (colcon build)")
serialization = pytest.importorskip("rclpy.serialization", reason="rclpy is not installed")


@pytest.mark.parametrize("check_fields", [False, True])
@pytest.mark.parametrize("kind", ["inline", "shm", "in_process"])
def test_pack_into_the_real_message_survives_serialization(kind, check_fields):
    registry = HandleRegistry()
    transport = make_transport(kind, registry=registry, slot_count=2, slot_bytes=1 << 16)
    try:
        tensor = torch.randn(7, 33).bfloat16()
        payload = msg.TensorPayload(check_fields=check_fields)  # True: the setters' type asserts run
        transport.pack(tensor, payload)
        wire = serialization.serialize_message(payload)
        received = serialization.deserialize_message(wire, msg.TensorPayload)
        assert received.transport == {"inline": 0, "shm": 1, "in_process": 2}[kind]
        assert torch.equal(transport.unpack(received), tensor)
    finally:
        transport.close()


def test_tensor_crosses_two_ros_processes_inline_and_by_shared_memory():
    """A publisher alternating inline and shm; the subscriber follows each payload's transport."""
    from auras_ros.bench.transport import run_hop

    report = run_hop(["inline", "shm"], count=6, shape=(16, 64), rate_hz=20.0, timeout_s=30.0)
    assert report["subscriber_rc"] == 0, report
    assert report["publisher_rc"] == 0, report  # SIGINT ends it cleanly
    assert {k: len(v) for k, v in report["latency_ms"].items()} == {"inline": 3, "shm": 3}
    assert report["mismatches"] == 0
