"""Demonstrations from the scripted expert, for behaviour cloning.

The executed action is perturbed (Gaussian noise, and in some episodes the expert acts on a stale
observation), while the label is always the clean expert action at the state actually reached: the
policies see the states a perturbed or late controller visits and learn how to recover from them
(DART-style noise injection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from auras_ros.eval.task import CatchTask, TaskConfig


@dataclass(frozen=True)
class DemoConfig:
    episodes: int = 240
    frames: int = 60  # fixed length: the hold phase after a catch is data too
    seed: int = 10_000  # demo seeds never overlap the evaluation seeds (0, 1, 2, ...)
    action_noise: float = 0.25
    max_delay: int = 2  # each episode executes the expert on observations 0..max_delay frames old


@dataclass
class Demos:
    images: np.ndarray  # (N, H, W, 3) uint8
    states: np.ndarray  # (N, 2) float32: the agent's position (proprioception)
    actions: np.ndarray  # (N, 2) float32: the clean expert action at that frame
    episode: np.ndarray  # (N,) int: which episode each frame belongs to

    def chunks(self, horizon: int) -> np.ndarray:
        """(N, horizon, 2): the expert actions of the next ``horizon`` frames of the same episode
        (the last action repeats past the episode's end)."""
        n = len(self.actions)
        index = np.arange(n)[:, None] + np.arange(horizon)[None, :]
        index = np.minimum(index, n - 1)
        # Never reach into the next episode: clamp to the episode's last frame.
        last = np.zeros(n, dtype=np.int64)
        for e in np.unique(self.episode):
            rows = np.flatnonzero(self.episode == e)
            last[rows] = rows[-1]
        index = np.minimum(index, last[:, None])
        return self.actions[index]


def collect(task_config: TaskConfig = TaskConfig(), config: DemoConfig = DemoConfig(), progress: bool = True) -> Demos:
    task = CatchTask(task_config)
    rng = np.random.default_rng(config.seed)
    images, states, actions, episode = [], [], [], []
    for e in tqdm(range(config.episodes), desc="demonstrations", disable=not progress):
        task.reset(config.seed + e)
        delay = int(rng.integers(0, config.max_delay + 1))
        history = [task.state()]
        for _ in range(config.frames):
            obs = task.observation()
            images.append(obs.data["image"])
            states.append(obs.data["state"])
            actions.append(task.expert_action(history[-1]).astype(np.float32))
            episode.append(e)
            executed = task.expert_action(history[max(0, len(history) - 1 - delay)])
            executed = executed + rng.normal(0.0, config.action_noise, 2)
            history.append(task.step(np.clip(executed, -1.0, 1.0)))
    task.close()
    return Demos(np.stack(images), np.stack(states), np.stack(actions), np.asarray(episode))
