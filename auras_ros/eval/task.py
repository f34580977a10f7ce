"""The embedded MuJoCo task: catch and hold a target that moves on its own.

A planar point agent (blue, velocity-controlled through two slide joints) must reach a target
(red, a mocap body bouncing around the arena at constant speed, seeded) and stay within
``catch_radius`` of it for ``hold_frames`` consecutive frames. A fixed top camera renders small RGB
images, the observation of every policy.

Why it is staleness-sensitive: the expert is a high-gain proportional controller (it closes
``gain * frame_period`` ≈ 80 % of the gap in one frame). With fresh observations the loop converges;
acting on an observation ``k`` frames old, a discrete loop with that gain and delay becomes
oscillatory (k = 1) and then unstable (k ≥ 2: the bound is gain·dt < 0.618), so the agent overshoots
and can not hold the target. The learned policies imitate this controller, so they inherit it.

Two time modes:
- **frame-stepped**: :meth:`CatchTask.step` advances the world by one frame (``frame_period`` of sim
  time, ``substeps`` physics steps); accuracy does not depend on the machine's speed.
- **real-time**: :class:`auras_ros.eval.realtime_world.RealTimeWorld` steps the same world in wall
  time at the frame rate from a thread; actions apply when they arrive, so a slow agent pays.

Variants (``TaskConfig.variant``): ``catch`` as above; ``reverse`` adds a sudden target change: at a
frame r drawn per seed from ``reverse_frames`` (the same r for every executor on that seed), the
target's velocity flips sign at the start of the step from frame r to r + 1 (observations up to frame
r show the old motion), and only a hold completed after the reversal counts as success (the hold
counter restarts there), so every successful episode has caught the target after it turned.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from auras_ros.core.stages import Observation
from auras_ros.eval.task_config import TaskConfig

# EGL renders headless on Mesa llvmpipe here; respect a caller's choice (e.g. osmesa).
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402  (MUJOCO_GL must be set before the import)


def _model_xml(config: TaskConfig) -> str:
    half = config.arena + 0.12
    # Top camera at height h with fovy 45 sees a half-width of h * tan(22.5°); frame the arena walls.
    height = half / math.tan(math.radians(22.5))
    wall = 'type="box" rgba="0.3 0.3 0.3 1" contype="0" conaffinity="0"'
    return f"""
<mujoco model="catch_moving_target">
  <option timestep="{config.frame_period / config.substeps}" gravity="0 0 0" integrator="implicitfast"/>
  <visual><global offwidth="{config.image_size}" offheight="{config.image_size}"/>
    <quality offsamples="0" shadowsize="0"/></visual>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1" directional="true" castshadow="false" diffuse="0.9 0.9 0.9"/>
    <geom name="floor" type="plane" size="{half} {half} 0.05" rgba="0.85 0.85 0.8 1" contype="0" conaffinity="0"/>
    <geom {wall} pos="0 {half} 0.02" size="{half} 0.03 0.02"/>
    <geom {wall} pos="0 {-half} 0.02" size="{half} 0.03 0.02"/>
    <geom {wall} pos="{half} 0 0.02" size="0.03 {half} 0.02"/>
    <geom {wall} pos="{-half} 0 0.02" size="0.03 {half} 0.02"/>
    <camera name="top" pos="0 0 {height:.4f}" xyaxes="1 0 0 0 1 0" fovy="45"/>
    <body name="agent" pos="0 0 0.06">
      <joint name="agent_x" type="slide" axis="1 0 0" limited="true" range="{-config.arena} {config.arena}"/>
      <joint name="agent_y" type="slide" axis="0 1 0" limited="true" range="{-config.arena} {config.arena}"/>
      <geom type="sphere" size="0.05" mass="1" rgba="0.1 0.3 0.95 1" contype="0" conaffinity="0"/>
    </body>
    <body name="target" mocap="true" pos="0 0 0.05">
      <geom type="cylinder" size="0.09 0.01" rgba="0.95 0.15 0.1 1" contype="0" conaffinity="0"/>
    </body>
  </worldbody>
  <actuator>
    <velocity name="vx" joint="agent_x" kv="100" ctrlrange="{-config.max_speed} {config.max_speed}" ctrllimited="true"/>
    <velocity name="vy" joint="agent_y" kv="100" ctrlrange="{-config.max_speed} {config.max_speed}" ctrllimited="true"/>
  </actuator>
</mujoco>
"""


@dataclass(frozen=True)
class WorldState:
    """Ground truth of one frame."""

    frame: int
    time: float
    agent: np.ndarray  # (2,)
    target: np.ndarray  # (2,)
    target_velocity: np.ndarray  # (2,)

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.target - self.agent))


@dataclass
class EpisodeScore:
    """Per-episode score: success, time to success, tracking error."""

    seed: int
    success: bool = False
    frames: int = 0
    success_frame: int | None = None  # the frame at which the hold completed
    distances: list[float] = field(default_factory=list)
    # The command in force during each step (normalized, as clipped by apply): commands[i] moved the
    # world from frame i to frame i + 1.
    commands: list[list[float]] = field(default_factory=list)
    reversal_frame: int | None = None  # reverse variant: the step r whose start flips the target
    reversal_velocity: list[float] | None = None  # the target's velocity right after the flip

    @property
    def time_to_success(self) -> float | None:
        return None if self.success_frame is None else float(self.success_frame)

    @property
    def tracking_error(self) -> float:
        """Mean agent-target distance over the frames played."""
        return float(np.mean(self.distances)) if self.distances else math.nan


class CatchTask:
    """Frame-stepped MuJoCo world. Same seed → identical episode (physics and renders are deterministic)."""

    def __init__(self, config: TaskConfig = TaskConfig()) -> None:
        self.config = config
        self.model = mujoco.MjModel.from_xml_string(_model_xml(config))
        self.data = mujoco.MjData(self.model)
        self._renderer: mujoco.Renderer | None = None
        self._camera = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, "top")
        self._target_velocity = np.zeros(2)
        self._reversal_frame: int | None = None
        self._rendered: tuple[int, np.ndarray] | None = None
        self.renders = 0  # camera renders done (a frame's is reused): the work a test per decision counts
        self.frame = 0
        self.seed = 0
        self._hold = 0
        self.score = EpisodeScore(seed=0)

    # -- episode ----------------------------------------------------------------------------------
    def reset(self, seed: int) -> Observation:
        """Start the episode of ``seed``: agent and target at seeded places, target heading seeded."""
        rng = np.random.default_rng(seed)
        c = self.config
        mujoco.mj_resetData(self.model, self.data)
        while True:
            agent = rng.uniform(-c.arena, c.arena, 2)
            target = rng.uniform(-c.arena * 0.9, c.arena * 0.9, 2)
            if np.linalg.norm(agent - target) >= c.min_start_distance:
                break
        heading = rng.uniform(0, 2 * math.pi)
        # Drawn after everything the catch variant draws, so its episodes stay the same seed for seed.
        self._reversal_frame = int(rng.integers(c.reverse_frames[0], c.reverse_frames[1] + 1)) \
            if c.variant == "reverse" else None
        self.data.qpos[:2] = agent
        self.data.mocap_pos[0, :2] = target
        self._target_velocity = c.target_speed * np.array([math.cos(heading), math.sin(heading)])
        self.data.ctrl[:] = 0.0
        mujoco.mj_forward(self.model, self.data)
        self.frame = 0
        self.seed = seed
        self._hold = 0
        self._rendered = None
        self.score = EpisodeScore(seed=seed, reversal_frame=self._reversal_frame)
        return self.observation()

    @property
    def done(self) -> bool:
        return self.score.success or self.frame >= self.config.max_frames

    def state(self) -> WorldState:
        return WorldState(self.frame, self.time, self.data.qpos[:2].copy(), self.data.mocap_pos[0, :2].copy(),
                          self._target_velocity.copy())

    @property
    def time(self) -> float:
        return self.frame * self.config.frame_period

    # -- acting -----------------------------------------------------------------------------------
    def apply(self, action: np.ndarray) -> None:
        """Set the velocity command (normalized, [-1, 1] per axis); it holds until the next apply."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)[:2]
        if not np.all(np.isfinite(a)):
            a = np.zeros(2)  # a broken decision stops the agent rather than crashing the world
        self.data.ctrl[:2] = np.clip(a, -1.0, 1.0) * self.config.max_speed

    def step(self, action: np.ndarray | None = None) -> WorldState:
        """Advance the world by one frame (applying ``action`` first if given) and score it."""
        if action is not None:
            self.apply(action)
        c = self.config
        if self.frame == self._reversal_frame:
            self._target_velocity *= -1
            self._hold = 0
            self.score.reversal_velocity = [float(v) for v in self._target_velocity]
        self.score.commands.append([float(v) for v in self.data.ctrl[:2] / c.max_speed])
        dt = c.frame_period / c.substeps
        for _ in range(c.substeps):
            self._move_target(dt)
            mujoco.mj_step(self.model, self.data)
        self.frame += 1
        self._rendered = None
        state = self.state()
        self._score(state)
        return state

    def _move_target(self, dt: float) -> None:
        pos = self.data.mocap_pos[0, :2] + self._target_velocity * dt
        for axis in range(2):
            limit = self.config.arena
            if abs(pos[axis]) > limit:  # bounce off the arena edge
                pos[axis] = math.copysign(2 * limit - abs(pos[axis]), pos[axis])
                self._target_velocity[axis] *= -1
        self.data.mocap_pos[0, :2] = pos

    def _score(self, state: WorldState) -> None:
        s = self.score
        s.frames = self.frame
        s.distances.append(state.distance)
        self._hold = self._hold + 1 if state.distance <= self.config.catch_radius else 0
        turned = self._reversal_frame is None or self.frame > self._reversal_frame
        if not s.success and turned and self._hold >= self.config.hold_frames:
            s.success = True
            s.success_frame = self.frame

    # -- sensing ----------------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """uint8 HxWx3 RGB from the top camera (image row 0 = +y edge of the arena)."""
        if self._rendered is not None and self._rendered[0] == self.frame:
            return self._rendered[1]
        if self._renderer is None:
            size = self.config.image_size
            self._renderer = mujoco.Renderer(self.model, size, size)
            # Shadows cost ~10x the whole render on llvmpipe and the flat task does not need them.
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._renderer.update_scene(self.data, camera=self._camera)
        image = self._renderer.render().copy()
        self.renders += 1
        self._rendered = (self.frame, image)
        return image

    def observation(self) -> Observation:
        """The current render stamped with sim time; ``state`` is the agent's own position (proprioception)."""
        data = {"image": self.render(), "state": self.data.qpos[:2].astype(np.float32)}
        return Observation(seq=self.frame, stamp=self.time, data=data)

    def expert_action(self, state: WorldState | None = None) -> np.ndarray:
        """The scripted expert on privileged state: a saturated proportional controller."""
        s = self.state() if state is None else state
        velocity = self.config.gain * (s.target - s.agent)
        return np.clip(velocity / self.config.max_speed, -1.0, 1.0)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class TaskSource:
    """The world as the pipeline's ObservationSource: latest(now) is the current render, stamped with
    the sim time of the frame it shows."""

    def __init__(self, task: CatchTask) -> None:
        self.task = task

    def latest(self, now: float) -> Observation | None:
        return self.task.observation()


def expert_rollout(task: CatchTask, seed: int, delay: int = 0) -> EpisodeScore:
    """The expert acting on observations ``delay`` frames old (its state at frame t − delay)."""
    task.reset(seed)
    history = [task.state()]
    while not task.done:
        task.step(task.expert_action(history[max(0, len(history) - 1 - delay)]))
        history.append(task.state())
    return task.score
