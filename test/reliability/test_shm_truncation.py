"""A same-user process truncating a shared-memory segment: the reader checks the segment's size before
each read and copies with pread, so the read is refused (counted, on /diagnostics for the generation
node) and the process lives on; the writer gives the file its size back before it writes. Neither dies
of SIGBUS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import torch
from diagnostic_msgs.msg import DiagnosticArray

from auras_ros.transport import ShmPool
from reliability_graph import NodeProcesses, Probe, context_state, drops, inline_codec, now_stamp
from test_bad_input import WIDTH, GenerationUnderTest

TRUNCATED_BYTES = 4096  # the header stays, the slots are gone


def _truncate_from_another_process(path: str) -> None:
    subprocess.run([sys.executable, "-c", f"import os; os.truncate({path!r}, {TRUNCATED_BYTES})"], check=True)


def test_a_reader_refuses_and_counts_a_segment_truncated_under_it(tmp_path) -> None:
    # In a child process: had the read touched a vanished page of a mapping, SIGBUS would end it.
    child = textwrap.dedent(f"""
        import os, subprocess, sys, torch
        from auras_ros.msg import Percept
        from auras_ros.transport import ShmPool, ShmReader
        from auras_ros.transport.shm import SegmentTruncated
        pool, reader = ShmPool(2, 1 << 16, shm_dir={str(tmp_path)!r}), ShmReader(shm_dir={str(tmp_path)!r})
        first, second = Percept(), Percept()
        pool.pack(torch.ones(8), first.tensor)
        pool.pack(torch.ones(8), second.tensor)
        assert reader.unpack(first.tensor).tolist() == [1.0] * 8  # mapped and cached by now
        subprocess.run([sys.executable, "-c", "import os; os.truncate(%r, {TRUNCATED_BYTES})" % pool.path], check=True)
        try:
            reader.unpack(second.tensor)
        except SegmentTruncated as error:
            print("refused:", error, "| counted:", reader.truncated)
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr  # -7 would be SIGBUS
    assert "refused:" in result.stdout and "shm segment size" in result.stdout, result.stdout + result.stderr
    assert result.stdout.strip().endswith("counted: 1"), result.stdout


def test_a_writer_restores_a_segment_truncated_under_it(tmp_path) -> None:
    child = textwrap.dedent(f"""
        import subprocess, sys, torch
        from auras_ros.msg import Percept
        from auras_ros.transport import ShmPool, ShmReader
        from auras_ros.transport.payload import PayloadOverwritten
        pool, reader = ShmPool(2, 1 << 16, shm_dir={str(tmp_path)!r}), ShmReader(shm_dir={str(tmp_path)!r})
        before, after = Percept(), Percept()
        pool.pack(torch.ones(8), before.tensor)
        subprocess.run([sys.executable, "-c", "import os; os.truncate(%r, {TRUNCATED_BYTES})" % pool.path], check=True)
        pool.pack(torch.full((8,), 2.0), after.tensor)  # into pages the truncation took away
        assert reader.unpack(after.tensor).tolist() == [2.0] * 8
        try:
            reader.unpack(before.tensor)  # its bytes are gone: never read as zeros
        except PayloadOverwritten:
            print("restored:", pool.truncated)
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr  # -7 would be SIGBUS
    assert result.stdout.strip() == "restored: 1", result.stdout + result.stderr


def _generation_status_values(arrays: list[DiagnosticArray]) -> list[dict[str, str]]:
    return [{kv.key: kv.value for kv in status.values} for array in arrays for status in array.status
            if status.name.endswith("generation_node")]


def test_the_generation_node_counts_a_truncated_segment_on_diagnostics_and_lives_on(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        generation = GenerationUnderTest(graph, probe)
        pool = ShmPool(2, 1 << 16)  # in /dev/shm, where the node reads segments
        try:
            good, truncated = (context_state(inline_codec(), None, stamp=now_stamp(probe), seq=seq) for seq in (1, 2))
            for msg in (good, truncated):
                pool.pack(torch.zeros(WIDTH), msg.entries[0].value)  # both packed before the truncation
            generation.seq = 2
            generation.states.publish(good)
            assert generation.wait(lambda: any(a.observation_seq == 1 for a in generation.actions)), graph.output()

            _truncate_from_another_process(pool.path)
            generation.states.publish(truncated)
            assert generation.wait(lambda: any(v.get("shm_truncated") == "1"
                                               for v in _generation_status_values(generation.diagnostics))), \
                graph.output()
            assert generation.wait(lambda: drops(generation.stats)["bad_payload:percept"] >= 1), graph.output()
            assert generation.acts_on_a_good_percept(), graph.output()  # it lives on
            assert generation.proc.poll() is None
        finally:
            pool.close()
