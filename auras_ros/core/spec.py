"""The executor spec: which executor runs an agent, in one dataclass and one text form.

Every entry point (node parameters, launch arguments, the demo, the evaluation, the tuner and the
benchmarks) parses and prints executors through this module, and builds runners with
:func:`make_runner`, so a name in a table means the same executor everywhere.

Text form (``ExecutorSpec.parse`` reads it, ``str(spec)`` writes it back, canonical):

    seq                        strict sequence (L = 1)
    dec  | dec:G               two threads; generation takes G frames (default 1)
    par:K                      K independent workers, each running a whole request
    auras:P+G                  the Auras pipeline, pp_perception P, pp_generation G
    auras:P+G:fO:aA[:private]  ... with fetch_offset O (0 or -1), skew alpha A, naive private context
    async | async:T | async:T:AGG
                               the peers' executor (LeRobot's async inference, ``core.async_runner``):
                               one request at a time, the next started when at most a fraction T in
                               [0, 1] of the last chunk's rows is left to play (default 0.5); its
                               chunks play under LeRobot's aggregate function AGG (weighted_average,
                               latest_only, average, conservative; default weighted_average), a
                               ``core.chunks`` overlap policy; written back as async:T:AGG

Defaults of the Auras knobs: fetch_offset 0, alpha 0, public context. :data:`DEFAULT_EXECUTOR` is
the one executor every entry point runs when none is named (node parameter, launch argument).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from auras_ros.core.async_runner import DEFAULT_THRESHOLD, AsyncRunner, check_threshold
from auras_ros.core.baselines import DecoupledRunner, ParallelRunner, SequentialRunner
from auras_ros.core.chunks import AGGREGATES, check_overlap, row_period
from auras_ros.core.clock import Clock
from auras_ros.core.errors import ConfigError, positive_int
from auras_ros.core.inpaint import InpaintConfig
from auras_ros.core.metrics import MetricsRecorder
from auras_ros.core.pipeline import PUBLIC, UNIFORM, AurasPipeline, PipelineConfig
from auras_ros.core.runner import DecisionSink, Runner
from auras_ros.core.sources import ObservationSource
from auras_ros.core.stages import Agent, chunk_rows as agent_chunk_rows

KINDS = ("seq", "dec", "par", "auras", "async")
DEFAULT_EXECUTOR = "auras:1+2:f0:a0"
DEFAULT_AGGREGATE = "weighted_average"  # LeRobot's aggregate_fn_name default
TEXT_FORMS = ("seq, dec[:G], par:K, auras:P+G[:fO][:aA][:private] (e.g. auras:1+5:f0:a0.5) "
              f"or async[:T[:AGG]] (T in [0, 1], AGG one of {', '.join(AGGREGATES)})")

MAX_DEGREE = 64  # the most stages, workers or generation frames a spec may ask for: each is a thread or a slot
MAX_TEXT = 100  # the longest text form parse reads (the longest valid one is well under)
_DEGREES = ("pp_perception", "pp_generation", "workers", "generation_frames")

_AURAS = re.compile(r"^(?P<p>\d+)\+(?P<g>\d+)(?P<rest>(:[^:]+)*)$")


@dataclass(frozen=True)
class ExecutorSpec:
    """One executor under test: a baseline or an Auras pipeline configuration."""

    kind: str = "auras"
    pp_perception: int = 1
    pp_generation: int = 1
    fetch_offset: int = 0
    alpha: float = UNIFORM
    workers: int = 1  # PAR
    generation_frames: int = 1  # DEC
    context_mode: str = PUBLIC
    threshold: float = DEFAULT_THRESHOLD  # ASYNC: fraction of the chunk's rows left when a request starts
    aggregate: str = DEFAULT_AGGREGATE  # ASYNC: how its chunks overlap (core.chunks.AGGREGATES)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError("executor", self.kind, f"one of {', '.join(KINDS)}")
        if self.kind == "async":
            check_threshold(self.threshold)
            if self.aggregate not in AGGREGATES:
                raise ConfigError("async aggregate", self.aggregate, f"one of {', '.join(AGGREGATES)}")
        for name in _DEGREES:
            if positive_int(name, getattr(self, name)) > MAX_DEGREE:
                raise ConfigError(name, getattr(self, name), f"an integer in [1, {MAX_DEGREE}]")
        if self.kind == "auras":
            self.pipeline_config()  # checks the degrees, fetch_offset, alpha and context mode

    # -- text form ---------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> "ExecutorSpec":
        """Read the text form; a malformed one raises ConfigError naming what was expected."""
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            shown = text[:MAX_TEXT] + f"... ({len(text)} characters)" if isinstance(text, str) else text
            raise ConfigError("executor", shown, f"{TEXT_FORMS}, at most {MAX_TEXT} characters")
        kind, colon, rest = text.strip().partition(":")
        try:
            if kind == "seq" and not rest:
                return cls("seq")
            if kind == "dec":
                return cls("dec", generation_frames=int(rest) if rest else 1)
            if kind == "par" and rest:
                return cls("par", workers=int(rest))
            if kind == "async":
                return cls._parse_async(rest.split(":") if colon else [])
            match = _AURAS.match(rest) if kind == "auras" else None
            if match:
                fields: dict[str, Any] = {"pp_perception": int(match["p"]), "pp_generation": int(match["g"])}
                for option in filter(None, match["rest"].split(":")):
                    if option == "private":
                        fields["context_mode"] = "private"
                    elif option[0] == "f":
                        fields["fetch_offset"] = int(option[1:])
                    elif option[0] == "a":
                        fields["alpha"] = float(option[1:])
                    else:
                        raise ValueError(option)
                return cls("auras", **fields)
        except (ValueError, ConfigError) as error:
            raise ConfigError("executor", text, f"{TEXT_FORMS} ({error})") from None
        raise ConfigError("executor", text, TEXT_FORMS)

    @classmethod
    def _parse_async(cls, fields: list[str]) -> "ExecutorSpec":
        if len(fields) > 2 or "" in fields:
            raise ValueError(f"async takes at most a threshold and an aggregate, got {':'.join(fields)!r}")
        threshold = float(fields[0]) if fields else DEFAULT_THRESHOLD
        return cls("async", threshold=threshold, aggregate=fields[1] if len(fields) == 2 else DEFAULT_AGGREGATE)

    def __str__(self) -> str:
        if self.kind == "seq":
            return "seq"
        if self.kind == "async":
            return f"async:{_number(self.threshold)}:{self.aggregate}"
        if self.kind == "dec":
            return "dec" if self.generation_frames == 1 else f"dec:{self.generation_frames}"
        if self.kind == "par":
            return f"par:{self.workers}"
        text = f"auras:{self.pp_perception}+{self.pp_generation}:f{self.fetch_offset}:a{self.alpha:g}"
        return text + (":private" if self.context_mode == "private" else "")

    def chunk_overlap(self, default: str) -> str:
        """The overlap policy its chunks play under: ASYNC's own aggregate, else ``default`` (the
        evaluation's or node's choice for the other executors)."""
        return self.aggregate if self.kind == "async" else default

    @property
    def name(self) -> str:
        """The label tables print: the canonical text form."""
        return str(self)

    # -- what it means -------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """L: the most requests in flight."""
        if self.kind == "par":
            return self.workers
        if self.kind == "dec":
            return 1 + self.generation_frames
        if self.kind == "auras":
            return self.pp_perception + self.pp_generation
        return 1

    def pipeline_config(self, frame_period: float | None = None) -> PipelineConfig:
        if self.kind != "auras":
            raise ConfigError("executor", str(self), "an auras:P+G executor for a pipeline configuration")
        if not isinstance(self.alpha, (int, float)) or not math.isfinite(self.alpha):
            raise ConfigError("alpha", self.alpha, "a finite number (0 = uniform partition)")
        return PipelineConfig(self.pp_perception, self.pp_generation, self.fetch_offset, float(self.alpha),
                              frame_period, self.context_mode)


@dataclass(frozen=True)
class Row:
    """A row of the chunk measurements' tables (``eval.chunk_table``, the demo): an executor and the
    overlap policy its chunks play under. Text form ``EXECUTOR[@OVERLAP]`` (:func:`parse_row`)."""

    spec: ExecutorSpec
    overlap: str = "replace"

    @property
    def label(self) -> str:
        """Names the overlap its chunks play under (async's own aggregate: ExecutorSpec.chunk_overlap)."""
        return f"{self.spec.name} @ {self.played}"

    @property
    def played(self) -> str:
        return self.spec.chunk_overlap(self.overlap)

    def __str__(self) -> str:
        """The text form; ``@replace``, the default, left out."""
        return str(self.spec) if self.overlap == "replace" else f"{self.spec}@{self.overlap}"


def parse_row(text: str, default: str = "replace") -> Row:
    """``EXECUTOR@OVERLAP`` (the overlap ``default`` when none is named); ConfigError naming what is
    not runnable here."""
    executor, _, overlap = text.partition("@")
    overlap = overlap or default
    try:
        check_overlap(overlap)
    except ConfigError as error:
        raise ConfigError("overlap", overlap, f"{error.allowed} (row {text!r})") from None
    return Row(ExecutorSpec.parse(executor), overlap)


def _number(value: float) -> str:
    """Short where that reads back exactly (0.5), every digit where not (1/3)."""
    text = f"{value:g}"
    return text if float(text) == value else repr(float(value))


def make_runner(spec: ExecutorSpec, agent: Agent, source: ObservationSource, clock: Clock, *,
                frame_period: float | None = None, recorder: MetricsRecorder | None = None,
                on_decision: DecisionSink | None = None, chunk_rows: int | None = None,
                chunk_period: float | None = None, inpaint: InpaintConfig | None = None, **kwargs: Any) -> Runner:
    """The runner that executes ``spec``: the one factory every entry point uses. ``kwargs`` go to
    the Auras pipeline (e.g. ``context=`` a public context the caller owns).

    ASYNC needs the rows each chunk plays and the seconds between them: ``chunk_rows`` (default the
    agent's, ``core.stages.chunk_rows``) and the row period by ``core.chunks.row_period``'s rule
    (``chunk_period``, else the agent's ``chunk_period`` where it states one, else ``frame_period``: one
    row per frame, the frame-stepped worlds' rule); with none it refuses. The other executors ignore
    both. ``inpaint`` (the ``inpaint`` overlap, ``core.inpaint``): every request's chunk is guided toward
    the newest one emitted."""
    common: dict[str, Any] = dict(frame_period=frame_period, recorder=recorder, on_decision=on_decision,
                                  inpaint=inpaint)
    if spec.kind == "seq":
        return SequentialRunner(agent, source, clock, **common)
    if spec.kind == "async":
        period = row_period(chunk_period, getattr(agent, "chunk_period", None), frame_period)
        if period is None:
            raise ConfigError("chunk_period", None, f"the seconds between an action chunk's rows for {spec}: "
                              "a chunk_period > 0, else one the checkpoint states, else a fixed frame_period")
        rows = agent_chunk_rows(agent) if chunk_rows is None else chunk_rows
        return AsyncRunner(agent, source, clock, chunk_rows=rows, chunk_period=period, threshold=spec.threshold,
                           **common)
    if spec.kind == "dec":
        return DecoupledRunner(agent, source, clock, generation_frames=spec.generation_frames, **common)
    if spec.kind == "par":
        return ParallelRunner(agent, source, clock, spec.workers, **common)
    return AurasPipeline(agent, spec.pipeline_config(frame_period), source, clock,
                         recorder=recorder, on_decision=on_decision, inpaint=inpaint, **kwargs)
