"""Random weights from a seed, isolated from the global torch RNG: every model family builds its
random-weights agents through :func:`seeded_rng`, so building one neither depends on what was drawn
before nor changes what is drawn after (a test seeding the global RNG, or an evaluation drawing noise,
sees the same numbers whether or not an agent was built in between)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def seeded_rng(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Inside: the CPU generator, and ``device``'s own when it is a CUDA device, seeded with ``seed``
    (the same numbers ``torch.manual_seed(seed)`` gives there); on exit both are as they were.

    Only the generators that are forked get seeded: ``torch.manual_seed`` would also seed every other
    CUDA device (lazily, even before CUDA starts), which no fork restores.
    """
    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield
