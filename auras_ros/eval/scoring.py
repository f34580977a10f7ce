"""Open-loop scoring of actions against what the robot did, and the report (ROS-free; the evaluator node
and ``python -m auras_ros.eval.bag_eval`` share it).

The **reference** is a recorded topic (a teleoperator's ``cmd_vel``, the joint states or trajectory the
robot followed, the simulator's expert action) with one field per action index. An action is compared
with the reference **at its observation stamp**: per dimension, the newest reference value sensed at or
before the stamp of the observation the action was decided on. The per-dimension error is
``scale[i] * action[i] - reference[i]``; the action's error is the Euclidean norm over the dimensions
that have a reference. The same error against the reference at the action's decision stamp shows what
acting late costs (the observation's reference is what the policy should have done; the decision's is
what the robot was doing by then). An action waits until a reference sample later than its decision has
arrived (then both references are final), or the run ends.

Every run reports per-dimension error (mean absolute, RMS), error against observation age, decisions
per second (wall time) and the observation age p50/p99.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from auras_ros.core.stats import Spread, percentile, rate


# Stamps that differ by less are one instant: a frame-stepped clock's sums land on a sensor's stamps only
# up to float rounding.
STAMP_TOLERANCE = 1e-6  # s


@dataclass
class ReferenceSeries:
    """What the robot did: per action index, the values of its reference field by sensor stamp."""

    topic: str
    msgtype: str
    fields: tuple[str, ...]
    scale: tuple[float, ...]
    samples: int = 0
    _stamps: list[list[float]] = field(default_factory=list, repr=False)
    _values: list[list[float]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._stamps = [[] for _ in self.fields]
        self._values = [[] for _ in self.fields]

    def add(self, stamp: float, values: Sequence[float]) -> None:
        """One reference message; NaN marks a field this message lacks (e.g. a joint it does not list)."""
        self.samples += 1
        for stamps, series, value in zip(self._stamps, self._values, values):
            if not math.isfinite(value):
                continue
            i = bisect.bisect_right(stamps, stamp)
            if i and stamps[i - 1] == stamp:
                series[i - 1] = value  # a re-sent message: the same sample
                continue
            stamps.insert(i, stamp)
            series.insert(i, value)

    def count(self, dim: int) -> int:
        return len(self._stamps[dim])

    @property
    def latest(self) -> float:
        return max((s[-1] for s in self._stamps if s), default=-math.inf)

    def at(self, dim: int, stamp: float) -> tuple[float, float] | None:
        """(value, its stamp) of dimension ``dim`` sensed at or before ``stamp``, or None."""
        i = bisect.bisect_right(self._stamps[dim], stamp + STAMP_TOLERANCE) - 1
        return (self._values[dim][i], self._stamps[dim][i]) if i >= 0 else None


@dataclass(frozen=True)
class ActionRecord:
    """One decision as the graph (or the core) emitted it."""

    request_id: int
    observation_stamp: float  # s, sensor time of the observation it was decided on
    decision_stamp: float  # s, on the graph's clock (bag time on replay)
    age: float  # observation age at the decision, s
    wall: float  # wall-clock arrival, s (for decisions per second)
    action: tuple[float, ...]


@dataclass(frozen=True)
class ScoredAction:
    request_id: int
    observation_stamp: float
    decision_stamp: float
    age: float
    wall: float
    errors: tuple[float, ...]  # per action index with a reference field; NaN where none was sensed yet
    error: float  # Euclidean norm over the finite per-dimension errors
    reference_stamp: float  # the newest reference stamp used
    # The same against the reference at the decision stamp: what acting late costs when the robot's
    # reference moves on while the observation ages.
    error_at_decision: float


class ActionScorer:
    def __init__(self, reference: ReferenceSeries) -> None:
        self.reference = reference
        self._pending: list[ActionRecord] = []
        self.records: list[ActionRecord] = []  # every action received, scored or not
        self.scored: list[ScoredAction] = []
        self.unmatched = 0  # actions whose observation precedes every reference sample

    def add_action(self, record: ActionRecord) -> None:
        self.records.append(record)
        self._pending.append(record)
        self.flush()

    def flush(self, final: bool = False) -> None:
        """Score the pending actions whose reference is final (all of them when ``final``)."""
        latest = self.reference.latest
        keep = []
        for record in self._pending:
            if not final and record.decision_stamp >= latest:
                keep.append(record)
                continue
            scored = self._score(record)
            if scored is None:
                self.unmatched += 1
            else:
                self.scored.append(scored)
        self._pending = keep

    def _errors(self, record: ActionRecord, stamp: float) -> tuple[list[float], list[float]]:
        """Per dimension ``scale * action - reference`` at ``stamp`` (NaN without one), and the stamps used."""
        errors, stamps = [], []
        for dim, (path, scale) in enumerate(zip(self.reference.fields, self.reference.scale)):
            found = self.reference.at(dim, stamp) if path else None
            if found is None or dim >= len(record.action):
                errors.append(math.nan)
                continue
            errors.append(scale * record.action[dim] - found[0])
            stamps.append(found[1])
        return errors, stamps

    def _score(self, record: ActionRecord) -> ScoredAction | None:
        errors, stamps = self._errors(record, record.observation_stamp)
        finite = [e for e in errors if math.isfinite(e)]
        if not finite:
            return None
        late = [e for e in self._errors(record, record.decision_stamp)[0] if math.isfinite(e)]
        return ScoredAction(record.request_id, record.observation_stamp, record.decision_stamp, record.age,
                            record.wall, tuple(errors), float(np.linalg.norm(finite)), max(stamps),
                            float(np.linalg.norm(late)))


def actions_digest(records: Sequence[ActionRecord]) -> str:
    """A fingerprint of the decisions themselves (request, observation stamp, action bytes), in request
    order: equal for two runs exactly when they decided the same actions on the same observations."""
    digest = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.request_id):
        digest.update(np.asarray([r.request_id, round(r.observation_stamp * 1e9)], dtype=np.int64).tobytes())
        digest.update(np.asarray(r.action, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


# ---- summaries --------------------------------------------------------------------------------------

def age_table(scored: Sequence[ScoredAction], frame_period: float) -> list[dict]:
    """Error statistics per observation age, in whole frames of ``frame_period``."""
    bins: dict[int, list[float]] = {}
    for s in scored:
        bins.setdefault(round(s.age / frame_period), []).append(s.error)
    return [{"age_frames": k, "age_s": k * frame_period, "actions": len(v), "error_mean": float(np.mean(v)),
             "error_p50": percentile(v, 50), "error_p90": percentile(v, 90)}
            for k, v in sorted(bins.items())]


def summarize(scored: Sequence[ScoredAction], reference: ReferenceSeries, frame_period: float) -> dict:
    """Per-dimension error, error by observation age, decisions per second and age p50/p99 of one run."""
    dims = []
    for dim, path in enumerate(reference.fields):
        values = [s.errors[dim] for s in scored if path and math.isfinite(s.errors[dim])]
        if path:
            dims.append({"index": dim, "field": path, "scale": reference.scale[dim], "scored": len(values),
                         "mae": float(np.mean(np.abs(values))) if values else math.nan,
                         "rmse": float(np.sqrt(np.mean(np.square(values)))) if values else math.nan})
    ages = [s.age for s in scored]
    errors = [s.error for s in scored]
    return {"actions": len(scored), "decisions_per_s": rate(sorted(s.wall for s in scored)),
            "age_p50_s": percentile(ages, 50), "age_p99_s": percentile(ages, 99),
            "error_mean": float(np.mean(errors)) if errors else math.nan, "error_p50": percentile(errors, 50),
            "error_at_decision_mean": float(np.mean([s.error_at_decision for s in scored])) if scored else math.nan,
            "per_dimension": dims, "by_age": age_table(scored, frame_period) if scored else []}


def _cell(value: float, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _throughput(runs: dict[str, dict]) -> tuple[list[str], dict[str, list[str]]]:
    """Decisions/s per run: one number, or with repeats ``rates`` (interleaved runs) the median [min–max]
    and the ratio to the first run's executor, repeat by repeat."""
    first = next(iter(runs.values()))
    if "rates" not in first:
        return ["decisions/s"], {name: [_cell(run["summary"]["decisions_per_s"], 1)] for name, run in runs.items()}
    base = next(iter(runs))
    return (["decisions/s", f"x {base}"],
            {name: [str(Spread.of(run["rates"])),
                    str(Spread.of([r / b for r, b in zip(run["rates"], first["rates"])]))] for name, run in runs.items()})


def markdown(runs: dict[str, dict], reference: ReferenceSeries, frame_period: float, meta: dict) -> str:
    """The side-by-side table of every run, then each run's error by observation age."""
    dims = next(iter(runs.values()))["summary"]["per_dimension"]
    throughput_head, throughput = _throughput(runs)
    head = ["executor", "actions", *throughput_head, "age p50 ms", "age p99 ms", "error mean", "error at decision"]
    head += [f"MAE [{d['index']}] {d['field']}" for d in dims]
    lines = [f"# Actions against the recorded reference ({meta.get('source', '?')})", "",
             f"Reference: {reference.topic} ({reference.msgtype}); action index i is compared with "
             f"{', '.join(f'[{i}] {p} x {s:g}' for i, (p, s) in enumerate(zip(reference.fields, reference.scale)) if p)} "
             "at the action's observation stamp (newest reference at or before it). Decisions/s are wall time "
             "on this machine (with repeats: median [min–max] of interleaved runs, and the ratio to the first "
             "executor repeat by repeat); ages are on the graph's clock (bag time).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, run in runs.items():
        s = run["summary"]
        row = [name, str(s["actions"]), *throughput[name], _cell(s["age_p50_s"] * 1000, 1),
               _cell(s["age_p99_s"] * 1000, 1), _cell(s["error_mean"]), _cell(s["error_at_decision_mean"])]
        row += [_cell(d["mae"]) for d in s["per_dimension"]]
        lines.append("| " + " | ".join(row) + " |")
    for name, run in runs.items():
        lines += ["", f"## {name}: error by observation age (frames of {frame_period * 1000:g} ms)", "",
                  f"{run.get('unmatched', 0)} actions decided before any reference sample were not scored.", "",
                  "| age (frames) | age (ms) | actions | error mean | error p50 | error p90 |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['age_frames']} | {r['age_s'] * 1000:.0f} | {r['actions']} | {r['error_mean']:.3f} "
                  f"| {r['error_p50']:.3f} | {r['error_p90']:.3f} |" for r in run["summary"]["by_age"]]
    lines += ["", "![error vs age](errors.png)", ""]
    return "\n".join(lines)


def _plot(runs: dict[str, dict], frame_period: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (name, run) in enumerate(runs.items()):
        scored = run["scored"]
        rows = run["summary"]["by_age"]
        ax.scatter([s.age / frame_period for s in scored], [s.error for s in scored], s=8, alpha=0.3, color=f"C{k}")
        ax.plot([r["age_frames"] for r in rows], [r["error_mean"] for r in rows], "o-", color=f"C{k}", label=name)
    ax.set_xlabel(f"observation age at the decision (frames of {frame_period * 1000:g} ms)")
    ax.set_ylabel("|action - reference|")
    ax.set_title("action error against the recorded reference vs observation age")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(runs: dict[str, dict], reference: ReferenceSeries, directory: Path, frame_period: float,
                 meta: dict) -> dict:
    """report.md, errors.png and evaluation.json in ``directory`` for ``runs`` (name -> {"scored": [...],
    "unmatched": n}); returns the JSON content. With nothing scored only evaluation.json is written, with
    ``ok: false`` and the reason: never a report that looks like a result."""
    directory.mkdir(parents=True, exist_ok=True)
    runs = {name: {**run, "summary": summarize(run["scored"], reference, frame_period)} for name, run in runs.items()}
    ok = bool(runs) and all(run["scored"] for run in runs.values())
    result = {"ok": ok, **meta, "frame_period": frame_period,
              "reference": {"topic": reference.topic, "type": reference.msgtype, "fields": list(reference.fields),
                            "scale": list(reference.scale), "samples": reference.samples},
              "runs": {name: {**run["summary"], "unmatched": run.get("unmatched", 0), "rates": run.get("rates"),
                              "scored": [asdict(s) for s in run["scored"]]} for name, run in runs.items()}}
    if ok:
        (directory / "report.md").write_text(markdown(runs, reference, frame_period, meta))
        _plot(runs, frame_period, directory / "errors.png")
    (directory / "evaluation.json").write_text(json.dumps(_strict(result), indent=1, sort_keys=True))
    return result


def _strict(value: object) -> object:
    """Strict JSON: NaN and infinity (a statistic of nothing) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value

