"""The eval tests need MuJoCo able to render headless. EGL renders on Mesa's llvmpipe here (osmesa
does not: its library is not installed); where neither works the tests fail with the reason, they
are not skipped, so a CI machine without a renderer can not pass them silently."""

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
    except Exception as error:  # noqa: BLE001 - any import or GL failure means the same: no renderer
        return (f"MuJoCo can not render with MUJOCO_GL={os.environ.get('MUJOCO_GL')}: {error!r} "
                "(install Mesa's EGL (libegl1, libgl1-mesa-dri) or set MUJOCO_GL to a working backend)")
    return None


_PROBLEM = _render_problem()


@pytest.fixture(autouse=True)
def renderer() -> None:
    if _PROBLEM is not None:
        pytest.fail(_PROBLEM)
