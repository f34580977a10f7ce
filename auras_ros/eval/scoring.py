"""Open-loop scoring of actions against what the robot did, and its typed summary (ROS-free; the
evaluator node and ``python -m auras_ros.eval.bag_eval`` share it; :mod:`auras_ros.eval.report` writes
the report).

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
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from auras_ros.core.stats import percentile, rate
from auras_ros.eval.results import Machine


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
        for stamps, series, value in zip(self._stamps, self._values, values, strict=False):
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


def observation_age(observation_stamp: float, decision_stamp: float) -> float:
    """The one definition of an action's age, in bag_eval, the evaluator node and the graph: the time the
    action is published on the graph's clock minus its observation's header stamp (s).

    On replay the graph's clock is the bag's log time (the player's /clock, and bag_eval's frame clock),
    while the observation keeps its sensor header stamp: a recorder that logged images 1.24 s after
    their capture gives ages 1.24 s longer, the same in every path. Not clamped: a negative age says the
    header stamps run ahead of the clock. In whole nanoseconds, the resolution of a ROS stamp: a frame
    clock's float sums land on a stamp only up to rounding, which must not print as -0.0 ms."""
    return round(decision_stamp - observation_stamp, 9) + 0.0  # + 0.0 turns -0.0 into 0.0


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
        for dim, (path, scale) in enumerate(zip(self.reference.fields, self.reference.scale, strict=False)):
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


# ---- summaries: the typed form every report and evaluation.json is written from ------------------

@dataclass(frozen=True)
class DimensionError:
    """One action index against its reference field."""

    index: int
    field: str  # the reference field's path
    scale: float
    scored: int  # actions with a reference value for this index
    mae: float
    rmse: float


@dataclass(frozen=True)
class AgeBin:
    """The errors of the actions whose observation was ``age_frames`` whole frames old."""

    age_frames: int
    age_s: float
    actions: int
    error_mean: float
    error_p50: float
    error_p90: float


@dataclass
class ScoreSummary:
    """One run's scored actions: per-dimension error, error by observation age, decisions per second
    (wall time) and the observation age p50/p99."""

    actions: int
    decisions_per_s: float
    age_p50_s: float
    age_p99_s: float
    error_mean: float
    error_p50: float
    error_at_decision_mean: float
    per_dimension: list[DimensionError]
    by_age: list[AgeBin]


@dataclass
class ScoredRun(ScoreSummary):
    """A summary with what it summarizes: a subclass, not a member, so its JSON stays one flat object
    per run (the summary's keys beside ``unmatched``, ``rates`` and ``scored``)."""

    unmatched: int = 0  # actions decided before any reference sample
    rates: list[float] | None = None  # decisions/s of each interleaved repeat (bag_eval), None if one run
    scored: list[ScoredAction] = field(default_factory=list)


@dataclass(frozen=True)
class ReferenceInfo:
    """What the actions were scored against, as the report names it."""

    topic: str
    type: str
    fields: list[str]
    scale: list[float]
    samples: int

    @classmethod
    def of(cls, reference: ReferenceSeries) -> ReferenceInfo:
        return cls(reference.topic, reference.msgtype, list(reference.fields), list(reference.scale), reference.samples)


@dataclass
class BagEvaluation:
    """Actions scored against a recorded reference: bag_eval's executors on a bag, or the graph's actions
    in evaluator_node. The fields after ``runs`` say where it came from; each source fills those it
    knows. ``ok`` only when there are runs and every one scored an action: only then is a report drawn."""

    source: str
    frame_period: float  # s, to express ages in frames
    reference: ReferenceInfo
    runs: dict[str, ScoredRun]  # the first run is the one the others' decisions/s are compared with
    model: str | None = None
    bad_images: int | None = None  # undecodable camera images skipped
    actions_received: int | None = None  # evaluator_node: every AgentAction
    actions_missed: int | None = None  # request ids never seen
    actions_digest: str | None = None
    reason: str | None = None  # why nothing could be scored
    machine: Machine | None = None
    ok: bool = field(init=False)

    def __post_init__(self) -> None:
        self.ok = bool(self.runs) and all(run.scored for run in self.runs.values())


def age_table(scored: Sequence[ScoredAction], frame_period: float) -> list[AgeBin]:
    """Error statistics per observation age, in whole frames of ``frame_period``."""
    bins: dict[int, list[float]] = {}
    for s in scored:
        bins.setdefault(round(s.age / frame_period), []).append(s.error)
    return [AgeBin(k, k * frame_period, len(v), float(np.mean(v)), percentile(v, 50), percentile(v, 90))
            for k, v in sorted(bins.items())]


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _dimension_errors(scored: Sequence[ScoredAction], reference: ReferenceSeries) -> list[DimensionError]:
    dims = []
    for dim, path in enumerate(reference.fields):
        if not path:
            continue
        values = [s.errors[dim] for s in scored if math.isfinite(s.errors[dim])]
        dims.append(DimensionError(dim, path, reference.scale[dim], len(values), _mean(np.abs(values)),
                                   float(np.sqrt(np.mean(np.square(values)))) if values else math.nan))
    return dims


def summarize(scored: Sequence[ScoredAction], reference: ReferenceSeries, frame_period: float) -> ScoreSummary:
    """Per-dimension error, error by observation age, decisions per second and age p50/p99 of one run."""
    ages = [s.age for s in scored]
    errors = [s.error for s in scored]
    return ScoreSummary(len(scored), rate(sorted(s.wall for s in scored)), percentile(ages, 50), percentile(ages, 99),
                        _mean(errors), percentile(errors, 50), _mean([s.error_at_decision for s in scored]),
                        _dimension_errors(scored, reference), age_table(scored, frame_period) if scored else [])


def score_run(scored: Sequence[ScoredAction], unmatched: int, reference: ReferenceSeries, frame_period: float,
              rates: list[float] | None = None) -> ScoredRun:
    """One run's summary with its scored actions, unmatched count and repeat rates."""
    summary = summarize(scored, reference, frame_period)
    return ScoredRun(**vars(summary), unmatched=unmatched, rates=rates, scored=list(scored))
