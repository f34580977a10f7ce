"""Scoring actions against the expert at their actuation time, and the error-vs-observation-age report
(ROS-free; the evaluator node feeds it).

An action's **actuation time** is its header stamp (the decision time, on the graph's clock: sim or bag
time under use_sim_time). Its reference is the expert action of the newest ground-truth sample stamped
**at or before** that time. An action is scored only once a later sample has arrived (so its reference
is final), or when the run ends. The **error** is the Euclidean distance between the command the world
would execute first (row 0 of the chunk, clipped to [-1, 1], see :mod:`auras_ros.sim.world`) and the
expert's command; it is reported against the action's observation age.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from auras_ros.sim.world import action_chunk


@dataclass(frozen=True)
class ScoredAction:
    request_id: int
    stamp: float  # actuation time, s
    age: float  # observation age at actuation, s
    error: float
    reference_stamp: float  # stamp of the ground-truth sample it was scored against


class ActionScorer:
    def __init__(self) -> None:
        self._stamps: list[float] = []
        self._experts: list[np.ndarray] = []
        self._pending: list[tuple[int, float, float, np.ndarray]] = []
        self.scored: list[ScoredAction] = []
        self.unmatched = 0  # actions stamped before any ground truth

    @property
    def samples(self) -> int:
        return len(self._stamps)

    def add_expert(self, stamp: float, expert_action: Sequence[float]) -> None:
        i = bisect.bisect_right(self._stamps, stamp)
        if i and self._stamps[i - 1] == stamp:  # a re-sent frame: same sample
            return
        self._stamps.insert(i, stamp)
        self._experts.insert(i, np.asarray(expert_action, dtype=np.float64)[:2])
        self.flush()

    def add_action(self, request_id: int, stamp: float, age: float, action: Sequence[float]) -> None:
        command = np.clip(action_chunk(action)[0], -1.0, 1.0)
        self._pending.append((request_id, stamp, age, command))
        self.flush()

    def flush(self, final: bool = False) -> None:
        """Score the pending actions whose reference is final (all of them when ``final``)."""
        latest = self._stamps[-1] if self._stamps else -math.inf
        keep = []
        for request_id, stamp, age, command in self._pending:
            if not final and stamp >= latest:
                keep.append((request_id, stamp, age, command))
                continue
            i = bisect.bisect_right(self._stamps, stamp) - 1
            if i < 0:
                self.unmatched += 1
                continue
            error = float(np.linalg.norm(command - self._experts[i]))
            self.scored.append(ScoredAction(request_id, stamp, age, error, self._stamps[i]))
        self._pending = keep


def age_table(scored: Sequence[ScoredAction], frame_period: float) -> list[dict]:
    """Error statistics per observation age, in whole frames of ``frame_period``."""
    bins: dict[int, list[float]] = {}
    for s in scored:
        bins.setdefault(round(s.age / frame_period), []).append(s.error)
    return [{"age_frames": k, "age_s": k * frame_period, "actions": len(v), "error_mean": float(np.mean(v)),
             "error_p50": float(np.percentile(v, 50)), "error_p90": float(np.percentile(v, 90))}
            for k, v in sorted(bins.items())]


def write_report(scored: Sequence[ScoredAction], directory: Path, frame_period: float, meta: dict) -> dict:
    """report.md, errors.png and evaluation.json in ``directory``; returns the JSON content. With
    nothing scored only evaluation.json is written, with ``ok: false`` and the reason."""
    directory.mkdir(parents=True, exist_ok=True)
    if not scored:
        result = {"ok": False, **meta}
        (directory / "evaluation.json").write_text(json.dumps(result, indent=1, sort_keys=True))
        return result
    rows = age_table(scored, frame_period)
    errors = [s.error for s in scored]
    result = {"ok": True, **meta, "actions": len(scored), "error_mean": float(np.mean(errors)),
              "error_p50": float(np.percentile(errors, 50)), "by_age": rows,
              "scored": [asdict(s) for s in scored]}
    (directory / "evaluation.json").write_text(json.dumps(result, indent=1, sort_keys=True))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([s.age / frame_period for s in scored], errors, s=8, alpha=0.4, label="actions")
    ax.plot([r["age_frames"] for r in rows], [r["error_mean"] for r in rows], "o-", color="C3", label="mean")
    ax.set_xlabel(f"observation age at actuation (frames of {frame_period * 1000:g} ms)")
    ax.set_ylabel("|action - expert action|")
    ax.set_title("action error against the expert vs observation age")
    ax.legend()
    fig.tight_layout()
    fig.savefig(directory / "errors.png", dpi=100)
    plt.close(fig)

    lines = [f"# Actions scored against the expert ({len(scored)} actions)", "",
             f"Source: {meta.get('source', '?')}. Error: |row 0 of the action (clipped) - expert action| "
             f"at the action's actuation time (nearest ground truth at or before its stamp).", "",
             f"Mean error {result['error_mean']:.3f}, median {result['error_p50']:.3f}; "
             f"{meta.get('unmatched', 0)} actions stamped before any ground truth were not scored.", "",
             "| observation age (frames) | age (ms) | actions | error mean | error p50 | error p90 |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['age_frames']} | {r['age_s'] * 1000:.0f} | {r['actions']} | {r['error_mean']:.3f} "
              f"| {r['error_p50']:.3f} | {r['error_p90']:.3f} |" for r in rows]
    lines += ["", "![error vs age](errors.png)", ""]
    (directory / "report.md").write_text("\n".join(lines))
    return result
