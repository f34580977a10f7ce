"""A LeRobot diffusion checkpoint keeps ``n_obs_steps`` observations of history; every evaluator starts
each episode (bag_eval: each executor run and repeat) with it empty (``core.stages.reset_episode``), so
episode 2 never sees episode 1's frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from auras_ros.core.inputs import input_spec
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import Observation, perceive_all
from auras_ros.eval.bag import TopicMap, check_bag
from auras_ros.eval.bag_eval import evaluate, run_executor
from auras_ros.models.factory import build_agent
from auras_ros.models.lerobot.diffusion import LeRobotDiffusionAgent
from foreign_bags import CAMERA, JOINTS, RobotBag, write_robot_bag

CHECKPOINT = Path(__file__).resolve().parents[1] / "data" / "lerobot_diffusion" / "pretrained_model"
JOINT_NAMES = ("j0", "j1", "j2", "j3")  # the checkpoint takes a state of 4 values
TOPICS = TopicMap(camera=CAMERA, state=JOINTS)


def robot_bag(tmp_path: Path) -> Path:
    return write_robot_bag(tmp_path / "bag", RobotBag(frames=6, image="rgb8", reference="none", joint_names=JOINT_NAMES))


def actions(run) -> list[tuple[float, ...]]:
    return [r.action for r in sorted(run.records, key=lambda r: r.request_id)]


def test_an_episode_does_not_see_the_frames_of_the_one_before(tmp_path: Path) -> None:
    agent = build_agent(str(CHECKPOINT))
    assert isinstance(agent, LeRobotDiffusionAgent) and agent.n_obs_steps == 2
    info = check_bag(robot_bag(tmp_path), TOPICS, need_reference=False)
    spec, inputs = ExecutorSpec.parse("seq"), input_spec(agent)
    first = run_executor(info, agent, spec, info.frame_period, inputs)
    # What an episode before leaves in the history: a frame the bag does not have.
    other = {"image": np.full((48, 64, 3), 200, np.uint8), "state": np.ones(4, np.float32)}
    perceive_all(agent, Observation(99, 0.0, other))
    second = run_executor(info, agent, spec, info.frame_period, inputs)
    assert len(first.records) == 6 and actions(second) == actions(first)
    # The control: what the history changes. An observation after another one is perceived with it, so
    # without the reset an episode's first decision would see the episode before.
    frame = {"image": np.zeros((48, 64, 3), np.uint8), "state": np.zeros(4, np.float32)}
    after_other = perceive_all(agent, Observation(100, 0.0, frame)).cond
    agent.reset()
    alone = perceive_all(agent, Observation(100, 0.0, frame)).cond
    assert not np.allclose(after_other.numpy(), alone.numpy())


def test_bag_eval_repeats_decide_alike(tmp_path: Path) -> None:
    """bag_eval's repeats must decide identically (it raises otherwise): each run starts a new episode."""
    agent = build_agent(str(CHECKPOINT))
    _, _, runs = evaluate(robot_bag(tmp_path), TOPICS, agent, [ExecutorSpec.parse("seq")], repeats=2)
    assert len(runs["seq"].records) == 6 and len(runs["seq"].rates) == 2
