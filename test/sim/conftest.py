"""Fixtures of the simulator tests: the test-process listener of test/node_graph.py."""

from node_graph import listener  # noqa: F401  (fixture)
