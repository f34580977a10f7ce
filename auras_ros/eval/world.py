"""The simulator's episode loop, ROS-free: seeded episodes of the embedded catch task, one world frame at
a time, the agent's decisions executed as in the closed-loop evaluation, and each episode scored.

Used by ``sim_node`` (live, on a ROS graph) and by ``python -m auras_ros.eval.record`` (straight into a
bag), so both produce the very same frames for the same seeds.

**How an AgentAction drives the task.** ``AgentAction.action`` is read as a flattened action chunk of
``(vx, vy)`` rows, row-major: element ``2i`` and ``2i+1`` are the normalized velocity command of row ``i``
(``[-1, 1]`` per axis, times the task's ``max_speed`` in units/s; values outside are clipped, non-finite
ones stop the agent). A trailing odd element is ignored, so the 7-vector of a 7-DoF agent reads as 3 rows.
Chunks execute as in :mod:`auras_ros.eval.actuation` (its :class:`ChunkExecutor`, timing ``arrival``):
a new decision replaces the chunk, which plays from the step it arrives in (row 0 then, rows 1, 2, ... in
the next steps without a new decision, up to ``chunk_rows``), then the last played row holds; before the
first decision of an episode the agent stands still. Behind the safety gate the world still gets whole
chunks (its ``agent_action`` output, with renewals of the chunk in force and its stops): the gate plays
rows only for outputs of one command, so the world's player is the one that plays them here.

**Time.** Sim time is ``time0 + frame_period * n`` with ``n`` counting world frames over the whole run
(episodes follow each other without a gap), so stamps are unique and increase; ``time0`` is 1 s because
ROS reads a zero sim time as "no clock yet".
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Iterable, Sequence

import numpy as np

from auras_ros.core.errors import ConfigError, positive_int
from auras_ros.eval.actuation import ChunkExecutor, action_chunk
from auras_ros.eval.task import CatchTask, EpisodeScore, TaskConfig, WorldState

TIME0 = 1.0


def decision(request_id: int, action: Sequence[float]) -> SimpleNamespace:
    """What :class:`ChunkExecutor` reads of a core Decision, from an AgentAction's fields: the world
    plays each chunk from its arrival (the safety gate's ramps and stops, which carry the stamp of the
    action they end, must act at once)."""
    return SimpleNamespace(request_id=request_id, output=SimpleNamespace(action=action_chunk(action)),
                           observation_stamp=None)


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
                 chunk_rows: int = 1, control: str = "agent") -> None:
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
        self.episode = -1
        self.global_frame = 0
        self.scores: list[dict] = []
        self.actions_in_episode = 0
        self._digest = hashlib.sha256()
        self._executor = ChunkExecutor(chunk_rows, self.task.config.frame_period)
        self._last_applied = np.zeros(2)

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
        self._executor = ChunkExecutor(self.chunk_rows, self.period)
        self._last_applied = np.zeros(2)
        self.actions_in_episode = 0
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
        decisions = list(decisions)
        self.actions_in_episode += len(decisions)
        if self.finished:
            return None
        now = self.stamp()  # the step about to run starts at the current frame's stamp
        self.global_frame += 1
        if self.task.done:
            return self.start()
        action = self._executor.next(decisions, now)
        if self.control == "expert":
            action = self.task.expert_action()
        applied = np.asarray(action, dtype=np.float64).ravel()[:2]
        # What CatchTask.apply does with it: clipped, and a non-finite command stops the agent.
        self._last_applied = np.clip(applied, -1.0, 1.0) if np.all(np.isfinite(applied)) else np.zeros(2)
        self._digest.update(self._last_applied.tobytes())
        self.task.step(action)
        if self.task.done:
            self.scores.append(score_dict(self.task.score, self.episode, actions=self.actions_in_episode,
                                          applied_digest=self._digest.hexdigest()[:16]))
        return self.frame()

    def close(self) -> None:
        self.task.close()
