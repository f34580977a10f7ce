"""Shared-memory names arrive in messages and any local user can create a file under one: the reader
opens them without blocking or following links, and maps only regular files of its own user. Against
the real nodes, a FIFO named like a segment does not block them (issue 10)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterator

import pytest
import torch

from auras_ros.core.errors import InputError
from auras_ros.launching import node_command
from auras_ros.msg import AgentAction, Percept, PipelineStats
from auras_ros.nodes.qos import LATEST_RELIABLE, ORDERED
from auras_ros.transport import SHM, ShmPool, ShmReader
from auras_ros.transport.inline import pack_inline
import node_graph


listener = node_graph.listener  # the fixture

FAKE_NAME = f"auras_{os.getpid()}_abcdef01"  # a live owner's pid: no stale-segment cleanup removes it
PERCEPT_WIDTH = 1024  # the synthetic agent's percept (SyntheticConfig.generation_width)


@pytest.fixture
def payload(tmp_path: Path) -> Iterator[tuple[object, ShmReader]]:
    """A real shm payload of a pool in tmp_path, and a reader of that directory."""
    pool = ShmPool(slot_count=2, slot_bytes=1024, shm_dir=str(tmp_path))
    msg = Percept()
    pool.pack(torch.arange(4, dtype=torch.float32), msg.tensor)
    reader = ShmReader(shm_dir=str(tmp_path))
    yield msg.tensor, reader
    reader.close()
    pool.close()


def _unpack_in_a_thread(reader: ShmReader, payload) -> BaseException | None:
    """Unpack in a thread, so that a blocking open fails the test instead of hanging it."""
    errors: list[BaseException] = []
    worker = threading.Thread(target=lambda: errors.append(_raised(reader, payload)), daemon=True)
    worker.start()
    worker.join(timeout=30.0)  # a hang guard: the open must not block at all
    assert not worker.is_alive(), "unpack blocked on the file"
    return errors[0]


def _raised(reader: ShmReader, payload) -> BaseException | None:
    try:
        reader.unpack(payload)
    except BaseException as error:  # noqa: BLE001 - handed to the test thread
        return error
    return None


def test_a_real_segment_still_reads(payload) -> None:
    tensor_payload, reader = payload
    assert reader.unpack(tensor_payload).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_fifo_named_like_a_segment_is_refused_without_blocking(payload, tmp_path: Path) -> None:
    tensor_payload, reader = payload
    os.mkfifo(tmp_path / FAKE_NAME)
    tensor_payload.shm_name = FAKE_NAME
    error = _unpack_in_a_thread(reader, tensor_payload)
    assert isinstance(error, InputError) and error.what == "shm_name" and "not a regular file" in str(error)


def test_a_symbolic_link_to_a_segment_is_refused(payload, tmp_path: Path) -> None:
    tensor_payload, reader = payload
    os.symlink(tmp_path / tensor_payload.shm_name, tmp_path / FAKE_NAME)
    tensor_payload.shm_name = FAKE_NAME
    error = _unpack_in_a_thread(reader, tensor_payload)
    assert isinstance(error, InputError) and error.what == "shm_name"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_segment_of_another_user_is_refused(payload, tmp_path: Path) -> None:
    tensor_payload, reader = payload
    os.chown(tmp_path / tensor_payload.shm_name, 65534, 65534)
    error = _unpack_in_a_thread(reader, tensor_payload)
    assert isinstance(error, InputError) and "owner uid 65534" in str(error)


def test_a_fifo_percept_does_not_block_the_nodes(ros_env, listener, tmp_path: Path) -> None:
    """The issue's reproduction: a FIFO in /dev/shm plus one Percept naming it. The context and
    generation nodes refuse it, decide on the next good percept, and stop on SIGINT with exit 0."""
    fifo = Path("/dev/shm") / FAKE_NAME
    os.mkfifo(fifo)
    try:
        commands = [node_command("auras_ros", "context_node", name="context_node"),
                    node_command("auras_ros", "generation_node", name="generation_node") + ["-p", "stats_period:=0.2"]]
        actions = listener.record(AgentAction, "auras/action", ORDERED)
        stats = listener.record(PipelineStats, "auras/pipeline_stats", ORDERED)
        percepts = listener.node.create_publisher(Percept, "auras/percept", LATEST_RELIABLE)
        with node_graph.Processes(commands, ros_env, tmp_path) as processes:
            assert listener.spin_until(lambda: percepts.get_subscription_count() > 0, 60.0, processes.procs)
            # The stats window that counts the refusal must reach us: wait until the generation node's
            # stats publisher has matched this listener (a window published before that is gone).
            assert listener.spin_until(lambda: stats, 60.0, processes.procs), processes.output()

            def percept(seq: int) -> Percept:
                msg = Percept(key="percept", observation_seq=seq)
                msg.header.stamp = listener.node.get_clock().now().to_msg()
                pack_inline(torch.zeros(PERCEPT_WIDTH), msg.tensor)
                return msg

            bad = percept(1)  # a well-formed shm payload, whose segment name is the FIFO
            bad.tensor.transport, bad.tensor.data = SHM, b""
            bad.tensor.shm_name, bad.tensor.shm_offset, bad.tensor.shm_generation = FAKE_NAME, 128, 2
            refused = lambda: any("bad_payload:percept" in s.drop_reasons for s in stats)  # noqa: E731
            # Each sent until it shows: one sent the moment this side matched can be lost while the
            # other side of the match is still forming.
            assert listener.spin_until(refused, 60.0, processes.procs, each=lambda: percepts.publish(bad)), \
                processes.output()
            assert not actions
            good = percept(2)
            # A blocked node would never decide on the good percept.
            assert listener.spin_until(lambda: actions, 60.0, processes.procs, each=lambda: percepts.publish(good)), \
                processes.output()
            codes, output = processes.stop()
        assert codes == [0, 0], output
        assert "shm_name" in output and "not a regular file" in output, output
    finally:
        fifo.unlink()
