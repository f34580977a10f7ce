"""The mark of tests that need a CUDA device: they skip cleanly without one, and `pytest -m cuda`
(what tools/cuda_machine.sh runs on a GPU machine) selects exactly them."""

from __future__ import annotations

import pytest
import torch

requires_cuda = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def cuda_test(test):
    """Decorator form of :data:`requires_cuda`."""
    for mark in requires_cuda:
        test = mark(test)
    return test
