"""The real-time benchmarks run the code users run (``eval.realtime`` and ``demo``'s node graph): when the
demo's interface changes under them they must still run end to end (a change of ``demo.evaluate``'s
rows once broke both without any test noticing). One episode each; the numbers are not judged here."""

from __future__ import annotations

import subprocess
import sys


def _bench(module: str, *arguments: str) -> str:
    result = subprocess.run([sys.executable, "-m", module, *arguments], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_realtime_graph_compares_the_nodes_with_the_core_for_each_executor() -> None:
    out = _bench("auras_ros.bench.realtime_graph", "--episodes", "1", "--repeats", "1",
                 "--executors", "seq", "auras:1+2")
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ") and "executor" not in line}
    assert set(rows) == {"seq", "auras:1+2:f0:a0"}, out
    for line in rows.values():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert float(cells[1].split()[0]) > 0 and float(cells[2].split()[0]) > 0, line  # decisions/s core, nodes


def test_realtime_cpu_reports_both_paths() -> None:
    out = _bench("auras_ros.bench.realtime_cpu", "--episodes", "2", "--executor", "seq")
    assert "core (eval.realtime, one process)" in out and "nodes (sim_node + auras_composed)" in out, out
