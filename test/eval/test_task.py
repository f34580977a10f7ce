"""The embedded task: determinism, bookkeeping against the expert, staleness sensitivity."""

from __future__ import annotations

import numpy as np
import pytest

from auras_ros.core.errors import ConfigError
from auras_ros.eval.realtime_world import RealTimeWorld
from auras_ros.eval.task import CatchTask, TaskConfig, expert_rollout


@pytest.fixture(scope="module")
def task():
    t = CatchTask()
    yield t
    t.close()


def test_same_seed_gives_identical_episode(task):
    def play(seed):
        task.reset(seed)
        images, actions = [task.render().copy()], []
        for _ in range(15):
            actions.append(task.expert_action())
            task.step(actions[-1])
            images.append(task.render().copy())
        return images, actions, task.state()

    a, b = play(3), play(3)
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=False))
    assert all(np.array_equal(x, y) for x, y in zip(a[1], b[1], strict=False))
    assert np.array_equal(a[2].agent, b[2].agent) and np.array_equal(a[2].target, b[2].target)
    c = play(4)
    assert not np.array_equal(a[2].target, c[2].target)


def test_observation_is_stamped_with_sim_time_and_shows_the_world(task):
    obs = task.reset(1)
    assert obs.seq == 0 and obs.stamp == 0.0
    assert obs.data["image"].shape == (64, 64, 3) and obs.data["image"].dtype == np.uint8
    task.step(np.zeros(2))
    task.step(np.zeros(2))
    obs = task.observation()
    assert obs.seq == 2 and obs.stamp == pytest.approx(2 * task.config.frame_period)
    # The agent (blue) is drawn where its ground-truth position projects.
    image = obs.data["image"].astype(int)
    blue = np.argwhere((image[..., 2] > 150) & (image[..., 0] < 100))
    assert len(blue) > 0
    row, col = blue.mean(axis=0)
    size, half = task.config.image_size, task.config.arena + 0.12
    x = (col + 0.5) / size * 2 * half - half
    y = half - (row + 0.5) / size * 2 * half
    assert np.hypot(x - task.state().agent[0], y - task.state().agent[1]) < 0.06


def test_the_expert_succeeds_and_doing_nothing_fails(task):
    expert = [expert_rollout(task, seed) for seed in range(10)]
    assert all(s.success for s in expert)
    assert all(s.success_frame is not None and s.frames == s.success_frame for s in expert)
    idle = []
    for seed in range(10):
        task.reset(seed)
        while not task.done:
            task.step(np.zeros(2))
        idle.append(task.score)
    assert not any(s.success for s in idle)
    assert all(s.frames == task.config.max_frames and s.success_frame is None for s in idle)
    assert np.mean([s.tracking_error for s in idle]) > np.mean([s.tracking_error for s in expert])


def test_staleness_costs_success(task):
    """The expert on k-frame-old observations: the task itself punishes staleness."""
    rates = [np.mean([expert_rollout(task, seed, delay).success for seed in range(12)]) for delay in range(4)]
    assert rates[0] == 1.0
    assert rates[2] <= 0.5 and rates[3] <= rates[2]
    assert rates[0] >= rates[1] >= rates[2]


def test_bad_config_and_bad_action():
    with pytest.raises(ConfigError, match="target_speed"):
        TaskConfig(target_speed=2.0, max_speed=1.0)
    with pytest.raises(ConfigError, match="image_size"):
        TaskConfig(image_size=0)
    task = CatchTask(TaskConfig(image_size=16))
    task.reset(0)
    task.apply(np.array([np.nan, 1.0]))
    assert np.all(task.data.ctrl == 0.0)
    task.close()


def test_real_time_world_advances_on_its_own():
    clock = [0.0]
    world = RealTimeWorld(CatchTask(TaskConfig(image_size=16, max_frames=3)), clock_now=lambda: clock[0])
    world.start(seed=0)
    # With a frozen clock the world thread only advances when time passes: push time forward and
    # wait for the episode to end (max_frames) - the world moved without anyone stepping it.
    clock[0] = 100.0
    world.join(timeout=30)
    score = world.stop()
    assert score.frames == 3
