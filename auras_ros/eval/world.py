"""The simulator's episode loop, ROS-free: seeded episodes of the embedded catch task, one world frame at
a time, the agent's decisions executed as in the closed-loop evaluation, and each episode scored.

Used by ``sim_node`` (live, on a ROS graph) and by ``python -m auras_ros.eval.record`` (straight into a
bag), so both produce the very same frames for the same seeds.

**How an AgentAction drives the task.** ``AgentAction.action`` is read as a flattened action chunk of
``(vx, vy)`` rows, row-major: element ``2i`` and ``2i+1`` are the normalized velocity command of row ``i``
(``[-1, 1]`` per axis, times the task's ``max_speed`` in units/s; values outside are clipped, non-finite
ones stop the agent). A trailing odd element is ignored, so the 7-vector of a 7-DoF agent reads as 3 rows.
Chunks execute as in :mod:`auras_ros.eval.actuation` (its :class:`ChunkExecutor`, under ``overlap`` and
``timing``; by default ``replace`` and ``arrival``): a new decision replaces the chunk, which plays from the
step it arrives in (row 0 then, rows 1, 2, ... in the next steps without a new decision, up to
``chunk_rows``), then the last played row holds; before the first decision of an episode the agent stands
still. A decision sensed before the episode's reset frame (its observation stamp is earlier: a request
that was in flight when the last episode ended) is not executed but counted (``earlier_episode_decisions``
in the score): the core's real-time evaluation starts each episode with nothing in flight, and a robot
must not act on what it saw before a reset. With timing ``observation`` row k of a chunk is due k frames
after its observation stamp. Behind the
safety gate the world still gets whole chunks (its ``agent_action`` output, with renewals of the chunk in
force and its ramps and stops): the gate plays rows only for outputs of one command, so the world's player
is the one that plays them here. A ramp or stop (:func:`decision` with ``interrupts``) ends every chunk
and plays alone from its arrival, under any overlap, as the gate's own stop clears its player.

**Measured**: each scored episode carries its chunk measurements (``chunks``: :class:`ChunkMetrics` as a
dict, :mod:`auras_ros.eval.seams`) of the commands it executed and the chunks they came from.

**Time.** Sim time is ``time0 + frame_period * n`` with ``n`` counting world frames over the whole run
(episodes follow each other without a gap), so stamps are unique and increase; ``time0`` is 1 s because
ROS reads a zero sim time as "no clock yet".
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Iterable, Sequence

import numpy as np

from auras_ros.core.errors import ConfigError, positive_int
from auras_ros.eval.actuation import ChunkExecutor, action_chunk
from auras_ros.eval.seams import ChunkMetrics
from auras_ros.eval.task import CatchTask, EpisodeScore, TaskConfig, WorldState

TIME0 = 1.0


def decision(request_id: int, action: Sequence[float], observation_stamp: float | None = None,
             interrupts: bool = False) -> SimpleNamespace:
    """What :class:`ChunkExecutor` reads of a core Decision, from an AgentAction's fields. A chunk is
    timed from ``observation_stamp`` (timing ``observation``; None: from its arrival); ``interrupts``:
    the safety gate's ramp or stop, which carries the stamps of the action it ends but must act at once
    and alone, so it plays from its arrival whatever the timing."""
    return SimpleNamespace(request_id=request_id, output=SimpleNamespace(action=action_chunk(action)),
                           observation_stamp=None if interrupts else observation_stamp, interrupts=interrupts)


@dataclass(frozen=True)
class SimFrame:
    """One world frame: what the simulator publishes (or records) for it."""

    stamp: float  # sim seconds
    seed: int
    episode: int
    state: WorldState
    image: np.ndarray  # HxWx3 uint8 RGB from the top camera
    expert_action: np.ndarray  # (2,)
    applied_action: np.ndarray  # (2,): the command of the step that led here (zeros at reset)
    success: bool
    done: bool


def score_dict(score: EpisodeScore, episode: int, **extra: object) -> dict:
    """An episode's score as plain JSON-able values."""
    return {"episode": episode, "seed": score.seed, "success": score.success, "frames": score.frames,
            "success_frame": score.success_frame, "time_to_success_frames": score.time_to_success,
            "tracking_error": None if math.isnan(score.tracking_error) else round(score.tracking_error, 6),
            **extra}


class SimWorld:
    """Seeded episodes ``seed, seed + 1, ...`` of the task, advanced one world frame per :meth:`advance`.

    ``control="expert"`` ignores the decisions and applies the scripted expert on the current state
    (privileged, age 0): the reference run, equal to ``expert_rollout(task, seed, delay=0)``.
    """

    CONTROLS = ("agent", "expert")

    def __init__(self, config: TaskConfig = TaskConfig(), seed: int = 0, episodes: int = 1,
                 chunk_rows: int = 1, control: str = "agent", overlap: str = "replace",
                 timing: str = "arrival") -> None:
        if control not in self.CONTROLS:
            raise ConfigError("control", control, " or ".join(self.CONTROLS))
        if episodes < 0:
            raise ConfigError("episodes", episodes, "an integer >= 0 (0: run forever)")
        positive_int("chunk_rows", chunk_rows)
        self.task = CatchTask(config)
        self.seed0 = seed
        self.episodes = episodes
        self.chunk_rows = chunk_rows
        self.control = control
        self.overlap = overlap
        self.timing = timing
        self.episode = -1
        self.global_frame = 0
        self.scores: list[dict] = []
        self.actions_in_episode = 0
        self.earlier_episode_decisions = 0
        self._episode_stamp = TIME0
        self._digest = hashlib.sha256()
        self._executor = self._new_executor()  # refuses an unknown overlap or timing here
        self._sources: list[int | None] = []  # per step of the episode: the chunk its command came from
        self._last_applied = np.zeros(2)

    def _new_executor(self) -> ChunkExecutor:
        return ChunkExecutor(self.chunk_rows, self.period, self.overlap, self.timing)

    @property
    def period(self) -> float:
        return self.task.config.frame_period

    @property
    def finished(self) -> bool:
        """Every requested episode has been played and scored."""
        return self.episodes > 0 and len(self.scores) >= self.episodes

    def stamp(self) -> float:
        return TIME0 + self.global_frame * self.period

    def start(self) -> SimFrame:
        """The reset frame of the next episode."""
        self.episode += 1
        self.task.reset(self.seed0 + self.episode)
        self._executor = self._new_executor()
        self._sources = []
        self._last_applied = np.zeros(2)
        self.actions_in_episode = 0
        self.earlier_episode_decisions = 0
        self._episode_stamp = self.stamp()
        self._digest = hashlib.sha256()  # of every applied command: equal digests, equal episodes
        return self.frame()

    def frame(self) -> SimFrame:
        """The current world frame (no stepping)."""
        state = self.task.state()
        return SimFrame(self.stamp(), self.task.seed, self.episode, state, self.task.render(),
                        self.task.expert_action(state), self._last_applied.copy(), self.task.score.success,
                        self.task.done)

    def advance(self, decisions: Iterable[SimpleNamespace] = ()) -> SimFrame | None:
        """One world frame: execute ``decisions`` (those that arrived since the last step) and step; at
        an episode's end, the next episode's reset frame instead. None once every episode is done."""
        decisions = [d for d in decisions if not self._from_earlier_episode(d)]
        self.actions_in_episode += len(decisions)
        if self.finished:
            return None
        now = self.stamp()  # the step about to run starts at the current frame's stamp
        self.global_frame += 1
        if self.task.done:
            return self.start()
        action = self._executor.next(decisions, now)
        self._sources.append(self._executor.source)
        if self.control == "expert":
            action = self.task.expert_action()
        applied = np.asarray(action, dtype=np.float64).ravel()[:2]
        # What CatchTask.apply does with it: clipped, and a non-finite command stops the agent.
        self._last_applied = np.clip(applied, -1.0, 1.0) if np.all(np.isfinite(applied)) else np.zeros(2)
        self._digest.update(self._last_applied.tobytes())
        self.task.step(action)
        if self.task.done:
            score = self.task.score
            chunks = ChunkMetrics.of(score.commands, self._sources, self.period, score.reversal_frame,
                                     score.reversal_velocity)
            self.scores.append(score_dict(score, self.episode, actions=self.actions_in_episode,
                                          earlier_episode_decisions=self.earlier_episode_decisions,
                                          applied_digest=self._digest.hexdigest()[:16], chunks=asdict(chunks)))
        return self.frame()

    def _from_earlier_episode(self, decision: SimpleNamespace) -> bool:
        """Sensed before this episode's reset frame (counted): a stamp of 0 or none is no sensor time (the
        gate's ramps and stops carry none), so it is never judged so. Stamps travel in whole nanoseconds:
        a frame's own stamp may come back a hair early, so the line is half a frame before the reset."""
        stamp = decision.observation_stamp
        if stamp is None or stamp <= 0 or stamp >= self._episode_stamp - self.period / 2:
            return False
        self.earlier_episode_decisions += 1
        return True

    def close(self) -> None:
        self.task.close()
