"""The eval tests need MuJoCo able to render headless; skip them with the reason when it can't."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


def _render_problem() -> str | None:
    try:
        from auras_ros.eval.task import CatchTask, TaskConfig

        task = CatchTask(TaskConfig(image_size=16))
        task.reset(0)
        image = task.render()
        task.close()
        if image.shape != (16, 16, 3):
            return f"MuJoCo rendered shape {image.shape}, expected (16, 16, 3)"
    except Exception as error:  # any import or GL failure means: can't run these here
        return f"MuJoCo can not render with MUJOCO_GL={os.environ.get('MUJOCO_GL')}: {error!r}"
    return None


_PROBLEM = _render_problem()


def pytest_collection_modifyitems(config, items) -> None:
    if _PROBLEM is None:
        return
    skip = pytest.mark.skip(reason=_PROBLEM)
    for item in items:
        if "test/eval" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)
