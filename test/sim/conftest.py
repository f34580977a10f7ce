"""Fixtures of the simulator tests: the test-process listener and in-process graph of test/node_graph.py."""

from node_graph import graph, listener  # noqa: F401  (fixtures)
