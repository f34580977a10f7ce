"""Shared memory: across real processes, bounded slot reuse, overwrite detection, segment lifetime."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from auras_ros.transport import (
    PayloadOverwritten, SegmentMissing, ShmPool, ShmReader, cleanup_stale_segments, make_transport)
from auras_ros.transport.shm import SHM_DIR
from fake_payload import FakePayload

REPO = Path(__file__).resolve().parents[2]


def _child(code: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, **kw)


def _fields(p: FakePayload) -> dict:
    return {k: (list(v) if k == "shape" else v) for k, v in vars(p).items() if k != "data"}


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


READER = """
import hashlib, json, sys
from auras_ros.transport import ShmReader
from types import SimpleNamespace
reader = ShmReader()
for line in sys.stdin:
    t = reader.unpack(SimpleNamespace(data=b"", **json.loads(line)))
    digest = hashlib.sha256(t.reshape(-1).view(__import__("torch").uint8).numpy().tobytes()).hexdigest()
    print(t.dtype, list(t.shape), digest, flush=True)
reader.close()
assert "rclpy" not in sys.modules, "auras_ros.transport imported rclpy"
"""


def test_another_process_reads_what_this_process_wrote_without_rclpy():
    tensors = [torch.randn(576, 4096).bfloat16(), torch.arange(10, dtype=torch.int64), torch.rand(3, 1, 2)]
    with_pool = ShmPool(slot_count=4, slot_bytes=576 * 4096 * 2)
    try:
        lines = []
        for t in tensors:
            p = FakePayload()
            with_pool.pack(t, p)
            lines.append(json.dumps(_fields(p)))
        out, _ = _child(READER).communicate("\n".join(lines) + "\n", timeout=60)
    finally:
        with_pool.close()
    got = out.splitlines()
    assert got == [f"{t.dtype} {list(t.shape)} {_sha(t)}" for t in tensors]


WRITER = """
import json, sys, torch
from auras_ros.transport import ShmPool
from types import SimpleNamespace
pool = ShmPool(slot_count=2, slot_bytes=1 << 16)
p = SimpleNamespace()
pool.pack(torch.arange(1000, dtype=torch.float32) * 0.5, p)
print(json.dumps({k: (list(v) if k == "shape" else v) for k, v in vars(p).items() if k != "data"}), flush=True)
sys.stdin.readline()  # hold the segment until told; "exit" ends normally
"""


@pytest.fixture(scope="module")
def writers():
    """Two writer processes started together (each pays torch's import time, so overlap them)."""
    children = [_child(WRITER), _child(WRITER)]
    yield children
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()


def test_segment_of_a_sigkilled_owner_is_removed_by_cleanup(writers):
    child = writers[0]
    try:
        fields = json.loads(child.stdout.readline())
        name = fields["shm_name"]
        assert name.startswith(f"auras_{child.pid}_")
        # Read across processes while the owner lives.
        reader = ShmReader()
        out = reader.unpack(FakePayload(**fields))
        reader.close()
        assert torch.equal(out, torch.arange(1000, dtype=torch.float32) * 0.5)
        assert name not in cleanup_stale_segments()  # owner alive: kept
        assert os.path.exists(os.path.join(SHM_DIR, name))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert os.path.exists(os.path.join(SHM_DIR, name)), "SIGKILL skips the owner's unlink"
    assert name in cleanup_stale_segments()
    assert not os.path.exists(os.path.join(SHM_DIR, name))


def test_owner_unlinks_its_segment_at_interpreter_exit(writers):
    child = writers[1]
    name = json.loads(child.stdout.readline())["shm_name"]
    assert os.path.exists(os.path.join(SHM_DIR, name))
    child.communicate("exit\n", timeout=60)
    assert child.returncode == 0
    assert not os.path.exists(os.path.join(SHM_DIR, name))


def test_close_and_garbage_collection_unlink_the_segment():
    pool = ShmPool(slot_count=2, slot_bytes=64)
    path = pool.path
    assert os.path.exists(path)
    pool.close()
    assert not os.path.exists(path) and pool.closed
    pool.close()  # idempotent
    pool = ShmPool(slot_count=2, slot_bytes=64)
    path = pool.path
    del pool
    assert not os.path.exists(path)


def test_pool_is_bounded_and_reuses_slots_round_robin():
    pool = ShmPool(slot_count=3, slot_bytes=256)
    try:
        payloads = []
        for i in range(7):
            p = FakePayload()
            pool.pack(torch.full((8,), float(i)), p)
            payloads.append(p)
        assert {p.shm_name for p in payloads} == {pool.name}
        offsets = [p.shm_offset for p in payloads]
        assert len(set(offsets)) == 3
        assert offsets[:3] == offsets[3:6] == [offsets[6], *offsets[1:3]]
        assert [p.shm_generation for p in payloads] == [2, 2, 2, 4, 4, 4, 6]
        assert os.path.getsize(pool.path) == pool.layout.size
        reader = ShmReader()
        assert torch.equal(reader.unpack(payloads[6]), torch.full((8,), 6.0))
        with pytest.raises(PayloadOverwritten):
            reader.unpack(payloads[3])  # its slot now holds payload 6
        assert torch.equal(reader.unpack(payloads[5]), torch.full((8,), 5.0))
        reader.close()
    finally:
        pool.close()


@pytest.fixture
def pool_and_reader():
    pool = ShmPool(slot_count=2, slot_bytes=256)
    reader = ShmReader()
    yield pool, reader
    reader.close()
    pool.close()


def test_slot_rewritten_during_the_copy_is_detected(pool_and_reader):
    """The writer reuses the slot between the reader's first check and its copy/second check."""
    pool, reader = pool_and_reader
    first = FakePayload()
    pool.pack(torch.ones(8), first)
    fences = []

    def rewrite_on_first_fence() -> None:
        fences.append(1)
        if len(fences) == 1:  # after the first check, before the copy
            pool.pack(torch.zeros(8), FakePayload())
            pool.pack(torch.zeros(8), FakePayload())

    reader._fence = rewrite_on_first_fence
    with pytest.raises(PayloadOverwritten) as caught:
        reader.unpack(first)
    assert (caught.value.expected_generation, caught.value.found_generation) == (2, 4)
    assert len(fences) == 2  # it got to the check after the copy


def test_slot_being_written_is_detected(pool_and_reader):
    pool, reader = pool_and_reader
    p = FakePayload()
    pool.pack(torch.ones(8), p)
    counter_at = pool.layout.counter_offset(0)
    pool._mm[counter_at:counter_at + 8] = (p.shm_generation + 1).to_bytes(8, "little")  # odd: writing
    with pytest.raises(PayloadOverwritten):
        reader.unpack(p)


def test_reader_releases_its_mappings_and_drops_unlinked_segments():
    pool = ShmPool(slot_count=2, slot_bytes=64)
    reader = ShmReader()
    p = FakePayload()
    pool.pack(torch.ones(4), p)
    reader.unpack(p)
    assert list(reader._segments) == [pool.name]
    pool.close()
    with pytest.raises(SegmentMissing):
        reader.unpack(p)  # cached mapping of a closed pool: released, not kept alive
    assert not reader._segments
    with pytest.raises(SegmentMissing):
        reader.unpack(p)
    pool = ShmPool(slot_count=2, slot_bytes=64)
    pool.pack(torch.ones(4), p)
    reader.unpack(p)
    reader.close()
    assert not reader._segments
    pool.close()


def test_subscriber_only_transport_creates_no_segment():
    transport = make_transport("shm", slot_count=2, slot_bytes=64)
    assert transport.pool is None
    transport.close()
