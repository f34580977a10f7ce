"""Fixtures of the simulator tests: the test-process listener of test/nodes."""

from sim_helpers import nodes_conftest

listener = nodes_conftest.listener
